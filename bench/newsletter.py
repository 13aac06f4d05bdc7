"""Newsletter figure: a 20-paper digest to 10,000 subscribers, each with their own
unsubscribe token (one-click URL in the header and the footer), through ``send_due``
with the ledger, against a local SMTP server (aiosmtpd, STARTTLS + AUTH, own process).

    .venv/bin/python bench/newsletter.py [SUBSCRIBERS]

Target (issue #8): < 60 s for 10,000, connections reused.
"""

from __future__ import annotations

import os
import re
import smtplib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trustme

from bench.delivery import NOW, smtp_server
from digestbot.config import parse_settings
from digestbot.delivery.email import EmailDeliverer, build_smtp_factory
from digestbot.delivery.service import send_due
from digestbot.delivery.targets import Deliverers
from digestbot.newsletter import read_token
from digestbot.store import SqlStore
from digestbot.store.subscribers import upsert_subscribers
from tests.delivery.helpers import add_papers, make_paper

SECRET = "bench-unsubscribe-secret"
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))  # email.smtp.connections


def main(count: int) -> None:
    settings = parse_settings(
        {
            "profiles": [
                {"name": "efficient-attention", "keywords": ["linear attention"], "top_k": 20}
            ],
            "email": {"sender": "Paper Digest <digest@example.org>", "unsubscribe_secret": SECRET},
            "server": {"public_url": "https://digest.example.org"},
        },
        env={},
    )
    ca = trustme.CA()
    with smtp_server(ca) as (smtp, client_context), tempfile.TemporaryDirectory() as tmp:
        store = SqlStore.open(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        add_papers(store, [make_paper(i) for i in range(1, 41)], now=NOW)
        start = time.perf_counter()
        rows: Any = [(f"reader{i}@example.org", "daily", "active") for i in range(count)]
        upsert_subscribers(store, profile="efficient-attention", rows=rows, now=NOW)
        print(f"subscribers added: {count:,} in {time.perf_counter() - start:.2f} s")

        factory = build_smtp_factory(smtp, ssl_context=client_context)
        connections = 0
        seen: list[bytes] = []

        def counting_factory() -> smtplib.SMTP:
            nonlocal connections
            connections += 1
            conn = factory()
            send = conn.sendmail

            def sendmail(sender: str, to: list[str], msg: bytes, **kw: Any) -> Any:
                if len(seen) < 3:
                    seen.append(msg)
                return send(sender, to, msg, **kw)

            conn.sendmail = sendmail  # type: ignore[method-assign,assignment]
            return conn

        deliverer = EmailDeliverer(
            counting_factory, sender=settings.email.sender, connections=CONNECTIONS
        )
        start, cpu_start = time.perf_counter(), time.process_time()
        report = send_due(settings, store, now=NOW, deliverers=Deliverers(email=deliverer))
        took, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        sent = report.count("sent")
        papers = {o.papers for o in report.outcomes}
        print(
            f"newsletter send_due: {sent:,}/{count:,} subscribers, {papers} papers each, in "
            f"{took:.2f} s = {sent / took:,.0f} messages/s over {connections} connection(s) "
            f"(target < 60 s); client CPU {cpu:.2f} s"
        )
        tokens = []
        for msg in seen:
            header = re.search(rb"List-Unsubscribe:\s*<[^>]*\?t=([^>]+)>", msg)
            assert header is not None
            token = header.group(1).decode()
            assert msg.count(token.encode()) == 3  # header, HTML footer, text footer
            tokens.append(read_token(SECRET, token))
        print(f"sampled tokens verify and are per reader: {tokens}")
        start = time.perf_counter()
        again = send_due(settings, store, now=NOW, deliverers=Deliverers(email=deliverer))
        print(
            f"send_due again the same day: {again.count('already-sent'):,} already sent, "
            f"{again.count('sent')} sent, {time.perf_counter() - start:.2f} s"
        )
        store.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
