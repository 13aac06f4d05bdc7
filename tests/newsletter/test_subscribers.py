"""Subscribers in the database and the ``digestbot subscribers`` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from digestbot.errors import AddressError
from digestbot.store import SqlStore
from digestbot.store.subscribers import (
    load_subscribers,
    mark_bounced,
    normalize_address,
    record_unsubscribe,
    upsert_subscribers,
)
from tests.conftest import NOW, as_json, write_config

CONFIG = """
database_url: sqlite:///db.sqlite3
profiles:
  - name: attn
    keywords: [attention]
"""


def subs(cli: Any, path: str, *args: str) -> Result:
    """``digestbot --config PATH subscribers ARGS…``"""
    result: Result = cli("--config", path, "subscribers", *args)
    return result


def test_addresses_are_normalised_and_bad_ones_named() -> None:
    assert normalize_address("  Alice@Example.ORG ") == "alice@example.org"
    for bad in ("alice", "alice@", "a b@example.org", "alice@@example.org", ""):
        with pytest.raises(AddressError) as info:
            normalize_address(bad)
        assert repr(bad) in str(info.value)


def test_unsubscribe_and_bounce_change_status_once(any_store: SqlStore) -> None:
    store = any_store  # SQLite, and PostgreSQL where CI gives one
    upsert_subscribers(store, profile="attn", rows=[("a@example.org", "daily", "active")], now=NOW)
    assert mark_bounced(store, profile="attn", address="a@example.org", error="550 gone", now=NOW)
    assert not mark_bounced(store, profile="attn", address="cfg@example.org", error="x", now=NOW)
    assert record_unsubscribe(store, profile="attn", address="cfg@example.org", now=NOW)
    assert not record_unsubscribe(store, profile="attn", address="cfg@example.org", now=NOW)
    rows = {s.address: (s.status, s.error) for s in load_subscribers(store, profile="attn")}
    assert rows == {
        "a@example.org": ("bounced", "550 gone"),
        "cfg@example.org": ("unsubscribed", None),
    }


def test_cli_add_list_remove(tmp_path: Path, cli) -> None:
    path = str(write_config(tmp_path, CONFIG))
    result = subs(cli, path, "add", "--profile", "attn", "Bob@Example.org", "c@example.org")
    assert result.exit_code == 0, result.stderr
    assert "2 added" in result.stdout
    result = subs(cli, path, "add", "--profile", "attn", "--weekly", "bob@example.org")
    assert "0 added, 1 updated (weekly)" in result.stdout
    listed = as_json(subs(cli, path, "list", "--profile", "attn", "--json"))
    assert [(s["email"], s["cadence"], s["status"]) for s in listed] == [
        ("bob@example.org", "weekly", "active"),
        ("c@example.org", "daily", "active"),
    ]
    assert subs(cli, path, "remove", "--profile", "attn", "c@example.org").exit_code == 0
    listed = as_json(subs(cli, path, "list", "--profile", "attn", "--json"))
    assert [s["email"] for s in listed] == ["bob@example.org"]


def test_cli_rejects_a_bad_address_and_writes_nothing(tmp_path: Path, cli) -> None:
    path = str(write_config(tmp_path, CONFIG))
    result = subs(cli, path, "add", "--profile", "attn", "ok@example.org", "not-an-address")
    assert result.exit_code == 2
    assert "'not-an-address'" in result.stderr
    assert as_json(subs(cli, path, "list", "--profile", "attn", "--json")) == []
    result = subs(cli, path, "add", "--profile", "nope", "ok@example.org")
    assert result.exit_code == 2 and "nope" in result.stderr


def test_csv_import_export_round_trip_and_errors_name_the_line(tmp_path: Path, cli) -> None:
    path = str(write_config(tmp_path, CONFIG))
    good = tmp_path / "in.csv"
    good.write_text(
        "email,cadence,status\nA@example.org,weekly,active\nb@example.org,,\nc@example.org,daily,unsubscribed\n",
        encoding="utf-8",
    )
    result = subs(cli, path, "import", "--profile", "attn", str(good))
    assert result.exit_code == 0, result.stderr
    assert "3 added" in result.stdout
    result = subs(cli, path, "export", "--profile", "attn")
    assert result.stdout == (
        "email,cadence,status\n"
        "a@example.org,weekly,active\n"
        "b@example.org,daily,active\n"
        "c@example.org,daily,unsubscribed\n"
    )
    out = tmp_path / "out.csv"
    assert subs(cli, path, "export", "--profile", "attn", str(out)).exit_code == 0
    assert out.read_text(encoding="utf-8") == result.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("email,cadence\nd@example.org,daily\ne@,daily\n", encoding="utf-8")
    result = subs(cli, path, "import", "--profile", "attn", str(bad))
    assert result.exit_code == 2
    assert f"{bad}:3" in result.stderr and "'e@'" in result.stderr
    bad.write_text("email,cadence\nd@example.org,monthly\n", encoding="utf-8")
    result = subs(cli, path, "import", "--profile", "attn", str(bad))
    assert f"{bad}:2" in result.stderr and "monthly" in result.stderr
    listed = as_json(subs(cli, path, "list", "--profile", "attn", "--json"))
    assert "d@example.org" not in [s["email"] for s in listed]  # nothing of a bad file


def test_a_spreadsheet_export_with_capitalised_header_and_values_imports(
    tmp_path: Path, cli
) -> None:
    path = str(write_config(tmp_path, CONFIG))
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(
        "Email,Cadence,Status\r\na@example.org,Weekly,Active\r\nb@example.org,DAILY,Active\r\n",
        encoding="utf-8",
    )
    result = subs(cli, path, "import", "--profile", "attn", str(sheet))
    assert result.exit_code == 0, result.stderr
    assert subs(cli, path, "export", "--profile", "attn").stdout == (
        "email,cadence,status\na@example.org,weekly,active\nb@example.org,daily,active\n"
    )


def test_an_import_does_not_resubscribe_a_reader_who_unsubscribed(tmp_path: Path, cli) -> None:
    # a list imported from elsewhere (status "active", or no status column) silently mailed
    # again readers who had opted out with the one-click link; only `add` re-subscribes
    path = str(write_config(tmp_path, CONFIG))
    added = subs(cli, path, "add", "--profile", "attn", "gone@example.org", "b@example.org")
    assert added.exit_code == 0, added.stderr
    store = SqlStore.open(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        assert record_unsubscribe(store, profile="attn", address="gone@example.org", now=NOW)
    finally:
        store.close()
    listing = tmp_path / "list.csv"
    listing.write_text("email\nGone@example.org\nb@example.org\nnew@example.org\n", "utf-8")
    result = subs(cli, path, "import", "--profile", "attn", str(listing))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == (
        f"attn: 1 added, 2 updated from {listing}; 1 kept unsubscribed"
        " (gone@example.org: it opted out; `subscribers add` re-subscribes it)"
    )
    listed = {
        s["email"]: s["status"]
        for s in as_json(subs(cli, path, "list", "--profile", "attn", "--json"))
    }
    assert listed == {
        "b@example.org": "active",
        "gone@example.org": "unsubscribed",
        "new@example.org": "active",
    }
    assert subs(cli, path, "add", "--profile", "attn", "gone@example.org").exit_code == 0
    listed = {
        s["email"]: s["status"]
        for s in as_json(subs(cli, path, "list", "--profile", "attn", "--json"))
    }
    assert listed["gone@example.org"] == "active"  # an admin's decision, as the README says
