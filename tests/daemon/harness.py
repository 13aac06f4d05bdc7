"""A ``run`` whose delivery is a slow fake: ``python -m tests.daemon.harness CONFIG DELAY``.

The shutdown tests send it SIGTERM in the middle of a send. It serves exactly as
the ``run`` command does (``serve_until_signalled``), with ``LedgerSend`` injected.
"""

from __future__ import annotations

import logging
import sys

from digestbot.alerts import Alerter, LogNotifier
from digestbot.config import load_settings
from digestbot.scheduler import Daemon, serve_until_signalled
from digestbot.store import SqlStore
from tests.daemon.fakes import LedgerSend


def main() -> None:
    config, delay = sys.argv[1], float(sys.argv[2])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings(config)
    store = SqlStore.open(settings.database_url)
    daemon = Daemon(
        settings, store, send=LedgerSend(delay=delay), alerter=Alerter(store, LogNotifier())
    )
    serve_until_signalled(daemon, on_exit=[store.close])
    store.close()
    logging.getLogger("harness").info("exited cleanly")


if __name__ == "__main__":
    main()
