"""Delivery figures: render a 20-paper digest in every format; one digest to 1,000 recipients.

    .venv/bin/python bench/delivery.py

Targets (issue #4): rendering < 20 ms for all formats together; >= 100 messages/s
to a local SMTP server (aiosmtpd with STARTTLS and AUTH, one reused connection).
The second email figure goes through ``send_due`` with the ledger (a SQLite file,
one row per recipient recorded before and marked after each message).
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trustme

from digestbot.config import (
    SmtpSettings,
    parse_settings,
)
from digestbot.delivery.email import EmailDeliverer, OutgoingEmail, build_smtp_factory
from digestbot.delivery.formats import render_email, render_format, render_slack_messages
from digestbot.delivery.service import send_due
from digestbot.delivery.targets import Deliverers
from digestbot.models import Digest, ScoredPaper
from digestbot.store import SqlStore
from tests.delivery.helpers import add_papers, make_paper
from tests.smtp_server import PASSWORD, USER, free_port

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
RECIPIENTS = 1000


def digest_of(n: int) -> Digest:
    papers = [
        make_paper(i, abstract="We study linear attention for long context. " * 25)
        for i in range(1, n + 1)
    ]
    return Digest(
        profile="efficient-attention",
        digest_date=date(2026, 11, 23),
        generated_at=NOW,
        papers=tuple(
            ScoredPaper(paper=p, score=5.0, why="matches linear attention, long context")
            for p in papers
        ),
        description="Linear and sub-quadratic attention",
    )


def bench_render() -> None:
    digest = digest_of(20)
    steps: dict[str, Callable[[], object]] = {
        "slack (validated, split)": lambda: render_slack_messages(digest),
        "email (subject+html inlined+text)": lambda: render_email(digest),
        "markdown": lambda: render_format(digest, "markdown"),
    }
    for step in steps.values():  # warm the template cache
        step()
    totals: list[float] = []
    cpu_totals: list[float] = []
    per: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(50):
        total = 0.0
        cpu_start = time.process_time()
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            took = time.perf_counter() - start
            per[name].append(took)
            total += took
        cpu_totals.append(time.process_time() - cpu_start)
        totals.append(total)
    for name, values in per.items():
        print(f"render {name:<36} median {statistics.median(values) * 1000:6.2f} ms")
    wall, cpu = statistics.median(totals) * 1000, statistics.median(cpu_totals) * 1000
    print(
        f"render all formats, 20 papers            median {wall:6.2f} ms wall, {cpu:6.2f} ms CPU"
        f" (min wall {min(totals) * 1000:.2f} ms; target < 20 ms)"
    )
    html = render_email(digest).html
    size = len(html.encode()) / 1024
    print(f"email html size, 20 papers               {size:6.1f} KB (target < 100 KB)")


def serve(port: int, chain: str) -> None:
    """Child process: aiosmtpd with STARTTLS and AUTH, like the tests' server."""
    from aiosmtpd.controller import Controller

    from tests.smtp_server import Handler, _authenticate

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain)
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticate,
        auth_required=True,
    )
    controller.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.read()  # until the parent closes our stdin
    controller.stop()


@contextlib.contextmanager
def smtp_server(ca: trustme.CA) -> Iterator[tuple[SmtpSettings, ssl.SSLContext]]:
    """A local SMTP server in its own process (so it does not share our GIL)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        chain = Path(tmp) / "server.pem"
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(chain))
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port), str(chain)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"},
        )
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        client = ssl.create_default_context()
        ca.configure_trust(client)
        settings = SmtpSettings(
            host="127.0.0.1", port=port, security="starttls", username=USER, password=PASSWORD
        )
        try:
            yield settings, client
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=30)


def bench_smtp(ca: trustme.CA) -> None:
    with smtp_server(ca) as (smtp, client_context):
        content = render_email(digest_of(20))
        factory = build_smtp_factory(smtp, ssl_context=client_context)
        deliverer = EmailDeliverer(factory, sender="Paper Digest <digest@example.org>")
        mails = [
            OutgoingEmail(
                to=f"reader{i}@example.org",
                content=content,
                message_id=f"<bench{i}@example.org>",
                profile="efficient-attention",
            )
            for i in range(RECIPIENTS)
        ]
        ok = 0

        def on_result(_mail: OutgoingEmail, result: object) -> None:
            nonlocal ok
            ok += bool(getattr(result, "ok", False))

        connections = 0

        def counting_factory() -> smtplib.SMTP:
            nonlocal connections
            connections += 1
            return factory()

        deliverer.connect = counting_factory
        start, cpu_start = time.perf_counter(), time.process_time()
        deliverer.send_all(mails, now=NOW, on_result=on_result)
        took, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        print(
            f"smtp deliverer: {ok}/{RECIPIENTS} messages in {took:.2f} s = "
            f"{ok / took:,.0f} messages/s over {connections} connection(s) (target >= 100/s); "
            f"client CPU {cpu:.2f} s = {cpu / RECIPIENTS * 1000:.2f} ms a message"
        )


def bench_send_due(ca: trustme.CA) -> None:
    recipients = [f"reader{i}@example.org" for i in range(RECIPIENTS)]
    settings = parse_settings(
        {
            "profiles": [
                {
                    "name": "efficient-attention",
                    "keywords": ["linear attention"],
                    "top_k": 20,
                    "deliver": [{"email": {"to": recipients}}],
                }
            ],
            "email": {"sender": "Paper Digest <digest@example.org>"},
        },
        env={},
    )
    with smtp_server(ca) as (smtp, client_context), tempfile.TemporaryDirectory() as tmp:
        store = SqlStore.open(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        add_papers(store, [make_paper(i) for i in range(1, 41)], now=NOW)
        factory = build_smtp_factory(smtp, ssl_context=client_context)
        deliverers = Deliverers(email=EmailDeliverer(factory, sender=settings.email.sender))
        start = time.perf_counter()
        report = send_due(settings, store, now=NOW, deliverers=deliverers)
        took = time.perf_counter() - start
        sent = report.count("sent")
        print(
            f"send_due with ledger: {sent}/{RECIPIENTS} recipients in {took:.2f} s = "
            f"{sent / took:,.0f} messages/s (record, claim, send, mark per recipient)"
        )
        start = time.perf_counter()
        again = send_due(settings, store, now=NOW, deliverers=deliverers)
        print(
            f"send_due again the same day: {again.count('already-sent')} already sent, "
            f"{again.count('sent')} sent, {(time.perf_counter() - start) * 1000:.0f} ms"
        )
        store.close()


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]), sys.argv[3])
        return
    bench_render()
    ca = trustme.CA()
    bench_smtp(ca)
    bench_send_due(ca)


if __name__ == "__main__":
    main()
