"""What the README promises of the command line: the `--json` keys it names, exactly (a key
added or lost shows here first), and the commands it says keep working."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import SEEDS, as_json, write_config

CONFIG = "database_url: sqlite:///db.sqlite3\nprofiles:\n  - {name: a, keywords: [mamba]}\n"


def test_ingest_and_papers_json_keys_are_the_readmes(tmp_path: Path, cli) -> None:
    write_config(tmp_path, CONFIG)
    shutil.copytree(SEEDS, tmp_path / "seeds")
    summary = as_json(cli("ingest", "--json"))
    assert set(summary) == {"files", "papers", "details"}
    assert set(summary["files"]) == {"new", "skipped", "failed"}
    assert set(summary["papers"]) == {"new", "merged"}
    assert {frozenset(d) for d in summary["details"]} == {
        frozenset(
            {"path", "status", "entries", "papers_new", "papers_merged", "error", "warnings"}
            | {"unchanged"}
        )
    }
    (paper,) = as_json(cli("papers", "--json", "--limit", "1"))
    assert set(paper) == {
        "id", "title", "abstract", "published", "upvotes", "authors_count", "organization",
        "authors", "arxiv_id", "arxiv_version", "urls", "link", "first_seen", "sources", "extra",
    }  # fmt: skip
    assert {frozenset(s) for s in paper["sources"]} == {
        frozenset({"kind", "name", "entry", "line"})
    }


def test_history_of_a_profile_no_longer_configured_is_still_listed(tmp_path: Path, cli) -> None:
    """``status`` reports such digests as orphaned and says ``history`` keeps them: the
    profile's own history stays reachable by name (a personal ``@U…`` profile's too)."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    write_config(
        tmp_path,
        CONFIG.replace("}", ", deliver: [{file: {path: out}}]}")
        + "  - {name: old, keywords: [scaling law], deliver: [{file: {path: out}}]}\n",
    )
    assert cli("ingest").exit_code == 0
    assert cli("send").exit_code == 0
    write_config(tmp_path, CONFIG)  # "old" removed from the config
    rows = as_json(cli("history", "--json", "--profile", "old"))
    assert [(r["profile"], r["status"]) for r in rows] == [("old", "sent")]
    typo = cli("history", "--profile", "olf")
    assert typo.exit_code == 2
    assert "unknown profile 'olf'" in typo.stderr
