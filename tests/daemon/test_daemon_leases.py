"""The daemon over the real delivery service and ledger: a digest another run left leased."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from digestbot.alerts import Alerter
from digestbot.config import parse_settings
from digestbot.delivery.outcomes import PAUSE_ENV
from digestbot.delivery.service import LEASE, send_due
from digestbot.ingest import ingest_paths
from digestbot.scheduler import Daemon
from digestbot.store import SqlStore
from digestbot.store.ledger import claim_deliveries, deliveries
from tests.conftest import SEEDS
from tests.daemon.test_daemon import Recorder

FIRE = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def test_a_digest_a_dead_run_left_leased_is_sent_once_its_lease_runs_out(
    tmp_path: Path, store: SqlStore
) -> None:
    # A daemon sending the 08:00 digest is stopped (SIGTERM: the delivery is abandoned after
    # 7 s, its row pending under a 15-minute lease) and restarted at once: the new one finds
    # the digest "being sent by another run". It must ask again after the lease, not leave
    # the digest pending until tomorrow.
    ingest_paths(store, [SEEDS], now=FIRE - timedelta(hours=1))
    (tmp_path / "drops").mkdir()
    blocker = tmp_path / "out"
    blocker.write_text("not a folder yet")  # the first attempt fails, so a row exists
    settings = parse_settings(
        {
            "drops": {"path": "drops"},
            "profiles": [
                {
                    "name": "attn",
                    "keywords": ["attention"],
                    "deliver": [{"file": {"path": "out"}}],
                }
            ],
        },
        base=tmp_path,
        env={},
    )
    now = [FIRE + timedelta(minutes=1)]
    daemon = Daemon(
        settings,
        store,
        send=send_due,
        alerter=Alerter(store, Recorder()),
        clock=lambda: now[0],
        embeddings=False,
    )
    assert daemon.send_profile("attn") is False
    with store.engine.begin() as conn:
        pk = conn.execute(sa.select(deliveries.c.pk)).scalar_one()
    # the run that retries it dies holding the lease
    assert claim_deliveries(store, [pk], token="dead-run", now=now[0], lease=LEASE) == {pk}
    blocker.unlink()

    for minutes in range(11, 60, 10):  # the retry job, as the daemon runs it every minute
        now[0] = FIRE + timedelta(minutes=minutes)
        daemon.run_retries()
    with store.engine.begin() as conn:
        status = conn.execute(sa.select(deliveries.c.status)).scalar_one()
    assert status == "sent"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["attn-2026-11-23.md"]


def test_a_catch_up_after_midnight_holds_its_lease_in_real_time(
    tmp_path: Path, store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The 23:30 digest is caught up at 00:10 (a restart within the grace). It is for the
    # 22nd, but its lease must run from the real time: taken at 23:30 it had run out
    # already, and a `digestbot send` at that moment took the digest being sent over
    # (superseded, its papers put in the 23rd's digest: sent twice).
    fire = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    real = datetime(2026, 11, 23, 0, 10, tzinfo=UTC)
    ingest_paths(store, [SEEDS], now=fire - timedelta(hours=1))
    (tmp_path / "drops").mkdir()
    settings = parse_settings(
        {
            "drops": {"path": "drops"},
            "profiles": [
                {
                    "name": "attn",
                    "keywords": ["attention"],
                    "schedule": {"cron": "30 23 * * *", "timezone": "UTC"},
                    "deliver": [{"file": {"path": "out"}}],
                }
            ],
        },
        base=tmp_path,
        env={},
    )
    daemon = Daemon(
        settings,
        store,
        send=send_due,
        alerter=Alerter(store, Recorder()),
        clock=lambda: real,
        embeddings=False,
    )
    gate = tmp_path / "gate"
    gate.mkdir()
    monkeypatch.setenv(PAUSE_ENV, f"after-send:{gate}")  # the catch-up stops once written
    catch_up = threading.Thread(target=daemon.send_profile, args=("attn", fire))
    catch_up.start()
    try:
        deadline = time.monotonic() + 60
        while not (gate / "after-send.reached").exists():
            assert catch_up.is_alive() and time.monotonic() < deadline
            time.sleep(0.01)
        monkeypatch.delenv(PAUSE_ENV)
        with store.engine.begin() as conn:
            day, lease_until = conn.execute(
                sa.select(deliveries.c.digest_date, deliveries.c.lease_until)
            ).one()
        assert day == date(2026, 11, 22)
        assert lease_until.replace(tzinfo=UTC) == real + LEASE
        # `digestbot send` by hand, while the catch-up is sending
        report = send_due(settings, store, now=real + timedelta(minutes=1))
        [outcome] = report.outcomes
        assert outcome.status == "already-sent" and outcome.detail == "another run is sending"
    finally:
        (gate / "release").touch()
        catch_up.join(60)
    with store.engine.begin() as conn:
        rows = conn.execute(sa.select(deliveries.c.digest_date, deliveries.c.status)).all()
    assert rows == [(date(2026, 11, 22), "sent")]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["attn-2026-11-22.md"]
