"""An email digest too large for the mail server, to many readers: what goes over the wire.

    .venv/bin/python bench/email_size.py [READERS]

Ten papers with long abstracts (the full message is about 16 kB, its plain text under
3 kB, one paper's plain text under 1 kB) to READERS (default 200) config recipients,
through ``send_due`` with the ledger, against the tests' aiosmtpd server (STARTTLS + AUTH,
in this process) in three set-ups:

* ``SIZE 10000``: the server advertises its limit in EHLO (RFC 1870);
* ``no SIZE, 10000``: it does not, and refuses a larger message once it is in (552 5.3.4);
* ``SIZE 12000`` and ``no SIZE, 12000``: the same, with room for the compact HTML (text +
  HTML without abstracts, about 11 kB) but not the full message;
* ``no SIZE, bare 552, 12000``: refused with a bare ``552`` (no enhanced code), which may be
  a reader's full mailbox: each reader learns it alone;
* ``SIZE 2000``: even the plain text is too large: the list is cut to fit.

Printed per set-up: MAIL FROM commands, messages transferred (and how many of them were
refused), bytes transferred, papers counted as sent, wall and CPU time.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DIGESTBOT_AUTO_EMBEDDINGS", "0")

import trustme

from digestbot.delivery.service import send_due
from digestbot.delivery.targets import Deliverers
from digestbot.store import SqlStore
from digestbot.store.ledger import count_sent
from tests.conftest import NOW
from tests.delivery.helpers import add_papers, email_deliverer, make_paper, settings_for
from tests.smtp_server import SmtpServer

ABSTRACT = "Linear attention reduces the cost of long sequences in transformers. " * 40


def run(readers: int, limit: int, *, advertise: bool, ca: trustme.CA, bare: bool = False) -> str:
    addresses = [f"reader{i}@example.org" for i in range(readers)]
    with tempfile.TemporaryDirectory() as folder:
        store = SqlStore.open(f"sqlite:///{folder}/bench.sqlite3")
        settings = settings_for(deliver=[{"email": {"to": addresses}}])
        add_papers(store, [make_paper(i, abstract=ABSTRACT) for i in range(1, 11)], now=NOW)
        too_big = "552 Message size exceeds maximum permitted" if bare else ""
        server = SmtpServer(ca, size_limit=limit, advertise_size=advertise, too_big=too_big)
        server.start()
        try:
            deliverers = Deliverers(email=email_deliverer(server))
            wall, cpu = time.perf_counter(), time.process_time()
            report = send_due(settings, store, now=NOW, deliverers=deliverers)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            handler = server.handler
            sent = sum(1 for o in report.outcomes if o.status == "sent")
            papers = sum(count_sent(store, destination=f"email:{a}") for a in addresses)
            transfers, taken = len(handler.data_sizes), len(handler.received)
            forms: dict[str, int] = {}
            for received in handler.received:
                kind = received.message.get_content_type()
                if kind == "multipart/alternative":
                    html = received.message.get_body(("html",))
                    full = html is not None and "reduces the cost" in str(html.get_content())
                    kind = "full" if full else "compact"
                else:
                    kind = "plain"
                forms[kind] = forms.get(kind, 0) + 1
            setup = f"{'SIZE' if advertise else 'no SIZE,'}{' bare 552,' if bare else ''} {limit}"
            line = (
                f"{setup}: {sent}/{readers} sent "
                f"({', '.join(f'{n} {k}' for k, n in sorted(forms.items()))}), "
                f"{len(handler.mail_commands)} MAIL FROM, {transfers} messages transferred "
                f"({transfers - taken} refused), {sum(handler.data_sizes):,} bytes, "
                f"{papers} papers counted as sent; {wall:.2f} s wall, {cpu:.2f} s CPU"
            )
        finally:
            server.stop()
            store.close()
    return line


def main() -> None:
    readers = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    ca = trustme.CA()
    setups = (
        (10_000, True, False),
        (10_000, False, False),
        (12_000, True, False),
        (12_000, False, False),
        (12_000, False, True),
        (2_000, True, False),
    )
    for limit, advertise, bare in setups:
        print(run(readers, limit, advertise=advertise, ca=ca, bare=bare), flush=True)


if __name__ == "__main__":
    main()
