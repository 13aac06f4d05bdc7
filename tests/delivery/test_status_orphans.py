"""``status``: unsent digests whose profile or destination left the config are listed apart
(``orphaned_digests``), not as pending or failed forever; ``send`` never retries them.
Personal profiles (``@U…``, in the database only) and weekly subscribers (absent from the
day's targets on other days) are live, not orphaned."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from digestbot.config import parse_settings
from digestbot.delivery.service import send_due
from digestbot.store import SqlStore
from digestbot.store.ledger import deliveries, load_history
from digestbot.store.slack import PersonalProfile, upsert_personal_profile
from digestbot.store.subscribers import upsert_subscribers
from tests.conftest import as_json, write_config

FRIDAY = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # not the weekly day (mon)
CONFIG = """\
database_url: sqlite:///data/x.sqlite3
profiles:
  - name: attn
    keywords: [linear attention]
    deliver:
      - file: {path: out}
"""


def add_rows(store: SqlStore, rows: list[tuple[str, str, str, date, str]]) -> None:
    with store.transaction() as conn:
        conn.execute(
            deliveries.insert(),
            [
                {
                    "digest_id": digest_id,
                    "profile": profile,
                    "destination": destination,
                    "digest_date": day,
                    "status": status,
                    "error": "boom" if status == "failed" else None,
                    "watermark": 0,
                    "paper_count": 0,
                    "attempts": 1,
                    "created_at": FRIDAY,
                    "updated_at": FRIDAY,
                }
                for digest_id, profile, destination, day, status in rows
            ],
        )


def test_status_lists_orphaned_digests_apart_and_keeps_personal_and_weekly_ones(
    cli: Any, tmp_path: Path
) -> None:
    config = write_config(tmp_path, CONFIG)
    (tmp_path / "data").mkdir()
    store = SqlStore.open(f"sqlite:///{tmp_path / 'data' / 'x.sqlite3'}")
    out = f"file:{(tmp_path / 'out').resolve()}:markdown"
    upsert_personal_profile(store, PersonalProfile(user_id="U1", terms=("vision",)), now=FRIDAY)
    upsert_subscribers(
        store,
        profile="attn",
        rows=[("w@example.org", "weekly", "active"), ("b@example.org", "daily", "bounced")],
        now=FRIDAY,
    )
    add_rows(
        store,
        [
            ("dlive", "attn", out, date(2026, 11, 26), "failed"),
            ("dpersonal", "@U1", "slack:U1", date(2026, 11, 26), "failed"),
            ("dweekly", "attn", "email:w@example.org", date(2026, 11, 23), "failed"),
            ("dprofile", "gone", out, date(2026, 11, 20), "failed"),
            ("ddest", "attn", "slack:COLD", date(2026, 11, 19), "pending"),
            ("dsentgone", "gone2", out, date(2026, 11, 18), "sent"),
            ("dbounced", "attn", "email:b@example.org", date(2026, 11, 26), "failed"),
        ],
    )
    store.close()
    now = ["--config", str(config), "--now", FRIDAY.isoformat()]

    report = as_json(cli(*now, "status", "--json"))

    assert [d["digest_id"] for d in report["open_digests"]] == ["dpersonal", "dlive", "dweekly"]
    orphaned = [d["digest_id"] for d in report["orphaned_digests"]]
    assert orphaned == ["dbounced", "dprofile", "ddest"]  # newest first
    # the last digest per destination: live destinations only (as the feeds)
    last = [d["digest_id"] for d in report["deliveries"]]  # by profile, then destination
    assert last == ["dpersonal", "dweekly", "dlive"]
    text = cli(*now, "status").stdout
    pending = text[text.index("pending or failed:") : text.index("orphaned:")]
    assert "dlive" in pending and "dweekly" in pending and "dpersonal" in pending
    assert "dprofile" not in pending and "ddest" not in pending
    assert (
        "orphaned: 3 unsent digests whose profile or destination is gone (removed from "
        "the config, unsubscribed or bounced; never retried; see `digestbot history`):"
    ) in text
    assert "  dprofile gone -> " in text and "  ddest attn -> slack:COLD: pending" in text


def test_send_leaves_orphaned_digests_alone(store: SqlStore, tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "profiles": [
                {
                    "name": "attn",
                    "keywords": ["linear attention"],
                    "deliver": [{"file": {"path": str(tmp_path / "out")}}],
                }
            ]
        },
        env={},
    )
    out = f"file:{(tmp_path / 'out').resolve()}:markdown"
    add_rows(
        store,
        [
            ("dprofile", "gone", out, date(2026, 11, 26), "failed"),
            ("ddest", "attn", "slack:COLD", date(2026, 11, 26), "failed"),
        ],
    )
    report = send_due(settings, store, now=FRIDAY)
    assert [(o.destination, o.status) for o in report.outcomes] == [(out, "nothing-new")]
    statuses = {r.digest_id: r.status for r in load_history(store)}
    assert statuses["dprofile"] == "failed" and statuses["ddest"] == "failed"
