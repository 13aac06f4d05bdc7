"""Stand-ins for the delivery service, injected through ``Daemon(send=...)``.

``LedgerSend`` keeps the contract the daemon relies on: one digest per profile and
digest date (the date of ``as_of``, else ``now``, in the profile's time zone), recorded in the real
SQLite database, so a second call the same day sends nothing, across restarts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from digestbot.config import Settings
from digestbot.delivery.outcomes import DeliveryOutcome as Outcome
from digestbot.delivery.outcomes import OutcomeStatus
from digestbot.delivery.outcomes import SendReport as Report
from digestbot.store import SqlStore

LEDGER_DDL = (
    "CREATE TABLE IF NOT EXISTS fake_ledger (profile TEXT NOT NULL, digest_date TEXT NOT NULL,"
    " status TEXT NOT NULL, sent_for TEXT NOT NULL, PRIMARY KEY (profile, digest_date))"
)


def ledger_rows(store: SqlStore) -> list[tuple[str, str, str, str]]:
    with store.engine.begin() as conn:
        conn.execute(sa.text(LEDGER_DDL))
        rows = conn.execute(
            sa.text("SELECT profile, digest_date, status, sent_for FROM fake_ledger ORDER BY 1, 2")
        ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


class LedgerSend:
    """``send_due`` with a ledger: 'sent' once per profile and local date, then 'already-sent'.

    ``delay`` makes the send slow (for the shutdown tests); ``fail`` names profiles whose
    delivery fails; ``empty`` names profiles that have nothing new.
    """

    def __init__(
        self,
        *,
        delay: float = 0.0,
        fail: Sequence[str] = (),
        empty: Sequence[str] = (),
        crash: Sequence[str] = (),
        empty_note: Sequence[str] = (),
    ) -> None:
        self.delay = delay
        self.fail = set(fail)
        self.empty = set(empty)
        self.crash = set(crash)
        self.empty_note = set(empty_note)  # nothing new, and a "nothing new" note is sent
        self.calls: list[tuple[str, datetime]] = []  # (profile, the moment its digest is for)
        self.clock_times: list[datetime] = []  # the real time of each call (``now``)
        self.delivered: list[tuple[str, str]] = []  # (profile, digest date) really sent
        self.called = threading.Event()

    def __call__(
        self,
        settings: Settings,
        store: SqlStore,
        *,
        now: datetime,
        as_of: datetime | None = None,
        profiles: Sequence[str] | None = None,
    ) -> Report:
        report = Report()
        moment = as_of or now
        for name in profiles or [p.name for p in settings.profiles]:
            self.calls.append((name, moment))
            self.clock_times.append(now)
            self.called.set()
            if name in self.crash:
                raise RuntimeError(f"boom in {name}")
            zone = ZoneInfo(settings.profile(name).schedule.timezone)
            day = moment.astimezone(zone).date().isoformat()
            digest_id = f"{name}:{day}"
            with store.engine.begin() as conn:
                conn.execute(sa.text(LEDGER_DDL))
                row = conn.execute(
                    sa.text("SELECT status FROM fake_ledger WHERE profile=:p AND digest_date=:d"),
                    {"p": name, "d": day},
                ).first()
                if row is not None and row[0] in ("sent", "empty"):
                    report.outcomes.append(
                        Outcome(name, "file:out", "already-sent", digest_id=digest_id)
                    )
                    continue
                if row is None:
                    conn.execute(
                        sa.text("INSERT INTO fake_ledger VALUES (:p, :d, 'pending', :n)"),
                        {"p": name, "d": day, "n": moment.isoformat()},
                    )
            time.sleep(self.delay)
            status = "failed" if name in self.fail else "empty" if name in self.empty else "sent"
            if status == "sent":
                self.delivered.append((name, day))
            with store.engine.begin() as conn:
                conn.execute(
                    sa.text("UPDATE fake_ledger SET status=:s WHERE profile=:p AND digest_date=:d"),
                    {"s": status, "p": name, "d": day},
                )
            statuses: dict[str, OutcomeStatus] = {
                "failed": "failed",
                "empty": "nothing-new",
                "sent": "sent",
            }
            outcome_status = statuses[status]
            report.outcomes.append(
                Outcome(
                    name,
                    "file:out",
                    outcome_status,
                    papers=0 if status != "sent" or name in self.empty_note else 3,
                    error="smtp down" if status == "failed" else "",
                    digest_id=digest_id,
                )
            )
        return report
