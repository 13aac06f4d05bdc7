"""Delivery paths the merged branches did not exercise together (review5a)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from digestbot.delivery.service import send_due
from digestbot.store import SqlStore
from digestbot.store.ledger import deliveries
from tests.conftest import NOW, write_config
from tests.delivery.helpers import (
    OFF_TOPIC_SCAN as OFF_TOPIC,
)
from tests.delivery.helpers import (
    add_papers,
    selective_scan_papers,
    settings_for,
)

DAY = timedelta(days=1)


def _file(path: Path) -> dict[str, object]:
    return {"file": {"path": str(path)}}


def test_a_paper_reached_only_through_expansion_is_not_picked_however_deep_it_ranks(
    store: SqlStore, tmp_path: Path
) -> None:
    """A destination's digest does not depend on another's: with a new destination beside
    it (every paper a candidate), a paper that matched the profile only through query
    expansion, ranked below 1,000 others, was picked (its light ranking had no breakdown
    for ``pick`` to check)."""
    a, b = tmp_path / "a", tmp_path / "b"
    add_papers(store, selective_scan_papers(1100), now=NOW)
    first = send_due(settings_for(deliver=[_file(a)]), store, now=NOW)
    assert [o.status for o in first.outcomes] == ["sent"]
    add_papers(store, [OFF_TOPIC], now=NOW + DAY)

    alone = send_due(settings_for(deliver=[_file(a)]), store, now=NOW + DAY, dry_run=True)
    assert [o.status for o in alone.outcomes] == ["nothing-new"]  # the reference

    both = send_due(settings_for(deliver=[_file(a), _file(b)]), store, now=NOW + DAY)
    assert [o.status for o in both.outcomes] == ["nothing-new", "sent"]
    assert not (a / "attn-2026-11-24.md").exists()
    assert "Selective scan memory" not in (b / "attn-2026-11-24.md").read_text()


def test_status_does_not_say_slack_rejected_an_email_digest(cli: Any, tmp_path: Path) -> None:
    """An email the mail server refused in full and as plain text is ``rejected`` too: the
    text status named Slack as the refuser of every rejected digest."""
    config = _rejected_today(tmp_path)
    text = cli("--config", str(config), "--now", NOW.isoformat(), "status").stdout
    assert "  2026-11-23 attn -> email:a@example.org: 552 5.3.4" in text
    assert "rejected by Slack" not in text
    assert "rejected for their content by Slack or the mail server (not retried" in text


def _rejected_today(tmp_path: Path) -> Path:
    """A config with one email destination, whose digest of NOW's day the server rejected."""
    config = write_config(
        tmp_path,
        "database_url: sqlite:///data/x.sqlite3\n"
        "email: {sender: d@example.org, smtp: {host: 127.0.0.1, port: 9}}\n"
        "profiles:\n  - name: attn\n"
        "    keywords: [linear attention]\n    deliver:\n      - email: {to: [a@example.org]}\n",
    )
    (tmp_path / "data").mkdir()
    store = SqlStore.open(f"sqlite:///{tmp_path / 'data' / 'x.sqlite3'}")
    with store.transaction() as conn:
        conn.execute(
            deliveries.insert().values(
                digest_id="dmail",
                profile="attn",
                destination="email:a@example.org",
                digest_date=NOW.date(),
                status="rejected",
                error="email:a@example.org: 552 5.3.4 too big; as plain text: 552 5.3.4 too big",
                watermark=0,
                paper_count=3,
                attempts=1,
                created_at=NOW,
                updated_at=NOW,
            )
        )
    store.close()
    return config


def test_a_digest_rejected_earlier_today_does_not_fail_every_later_run(
    cli: Any, tmp_path: Path
) -> None:
    """A rejection is reported once (exit 1 by the run that met it, one alert); a later
    ``send`` or ``run --once`` the same day finds it settled, sends nothing and exits 0,
    as after a digest sent (the README's "run it twice on one day ... exit 0")."""
    config = _rejected_today(tmp_path)
    (tmp_path / "seeds").mkdir()  # the drops folder (default)
    at = ["--config", str(config), "--now", (NOW.replace(hour=8, minute=0)).isoformat()]
    sent = cli(*at, "send")
    assert "REJECTED" in sent.stderr and "attn → email:a@example.org" in sent.stderr
    assert sent.exit_code == 0
    assert cli(*at, "run", "--once").exit_code == 0
