"""``digestbot show``: one paper in full, the digests that carried it, its votes."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import SEEDS, as_json, write_config

TITLE = "Beyond neural scaling laws: beating power law scaling via data pruning"
SEED = "003_e69bb1ed9e59af63.txt"

CONFIG = """
database_url: sqlite:///data/db.sqlite3
drops: {path: drops}
profiles:
  - name: scaling
    keywords: [scaling laws, data pruning]
    top_k: 3
    deliver:
      - file: {path: out}
  - name: other
    keywords: [protein folding]
"""


def seed_lines() -> list[str]:
    return (SEEDS / SEED).read_text(encoding="utf-8").splitlines()


def test_show_by_title_lists_the_paper_its_source_digest_and_votes(tmp_path: Path, cli) -> None:
    shutil.copytree(SEEDS, tmp_path / "drops")
    write_config(tmp_path, CONFIG)
    assert cli("ingest").exit_code == 0
    lines = seed_lines()
    title_line = lines.index(TITLE) + 1  # 1-based, as a drop source records it
    abstract = lines[title_line + 1]  # the paragraph after the blank line

    before = as_json(cli("show", TITLE, "--json"))
    assert before["title"] == TITLE and before["abstract"] == abstract
    assert before["deliveries"] == [] and before["votes"] == []
    (source,) = before["sources"]
    assert source["kind"] == "drop" and source["name"].endswith(SEED)
    assert source["line"] == title_line

    assert cli("send").exit_code == 0
    assert cli("feedback", "--profile", "other", before["id"], "down").exit_code == 0
    after = as_json(cli("show", before["id"], "--json"))
    (sent,) = after["deliveries"]
    assert sent["profile"] == "scaling" and sent["destination"].startswith("file:")
    assert sent["status"] == "sent" and sent["sent_at"] is not None
    history = as_json(cli("history", "--json"))
    (digest,) = history
    assert sent["rank"] == digest["papers"].index(before["id"]) + 1
    (vote,) = after["votes"]
    assert (vote["subject_kind"], vote["subject"], vote["value"], vote["source"]) == (
        "profile",
        "other",
        -1,
        "cli",
    )

    text = cli("show", before["id"])
    assert text.exit_code == 0
    out = text.stdout.splitlines()
    assert out[0] == TITLE and abstract in out
    assert f"  drop {source['name']}:{title_line} (entry {source['entry']})" in out
    assert any(
        line.startswith("  ") and "scaling → file:" in line and "sent" in line for line in out
    )
    assert "vote: down by profile other (cli)" in out


def test_show_an_unknown_paper_is_a_one_line_error(tmp_path: Path, cli) -> None:
    shutil.copytree(SEEDS, tmp_path / "drops")
    write_config(tmp_path, CONFIG)
    cli("ingest")
    result = cli("show", "no such paper at all")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip() == "error: unknown paper 'no such paper at all'"
