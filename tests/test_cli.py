"""The command line end to end: exit codes, --json shapes, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import SEEDS, as_json, write_config

CONFIG = """
database_url: sqlite:///data/db.sqlite3
drops: {path: drops}
profiles:
  - name: efficient-attention
    description: Linear and sub-quadratic attention, state-space models, long-context efficiency.
    keywords: [linear attention, mamba, state space model]
    exclude: [diffusion]
    top_k: 3
  - name: compression
    keywords: [quantization, distillation, pruning]
"""


def setup_drops(tmp_path: Path) -> Path:
    shutil.copytree(SEEDS, tmp_path / "drops")
    return write_config(tmp_path, CONFIG)


def test_ingest_json_summary_and_exit_code_with_a_bad_file(tmp_path: Path, cli) -> None:
    setup_drops(tmp_path)
    (tmp_path / "drops" / "zz_bad.txt").write_bytes(b"garbage \xff\xfe")
    result = cli("ingest", "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["files"] == {"new": 4, "skipped": 0, "failed": 1}
    assert summary["papers"] == {"new": 186, "merged": 2}
    (bad,) = [d for d in summary["details"] if d["status"] == "failed"]
    assert bad["path"].endswith("zz_bad.txt") and "not UTF-8" in bad["error"]
    assert "zz_bad.txt" in result.stderr


def test_ingest_named_paths_and_text_summary(tmp_path: Path, cli) -> None:
    setup_drops(tmp_path)
    result = cli("ingest", "drops/000_ca14cdb193ee54f8.txt")
    assert result.exit_code == 0
    assert result.stdout.strip() == ("files: 1 new, 0 skipped, 0 failed; papers: 11 new, 0 merged")


def test_papers_json_has_the_contract_keys(tmp_path: Path, cli) -> None:
    setup_drops(tmp_path)
    cli("ingest")
    rows = as_json(cli("papers", "--json"))
    assert len(rows) == 186
    required = {
        "id",
        "title",
        "abstract",
        "published",
        "upvotes",
        "authors_count",
        "organization",
        "urls",
        "sources",
    }
    assert all(required <= set(row) for row in rows)
    (arc,) = [r for r in rows if r["title"].startswith("ARC-Encoder")]
    assert arc["organization"] == "Kyutai" and arc["upvotes"] == 1
    assert arc["sources"][0]["kind"] == "drop" and arc["sources"][0]["name"].endswith(".txt")
    twice = [r for r in rows if len(r["sources"]) == 2]
    assert len(twice) == 2  # the two papers that recur across drops
    limited = as_json(cli("papers", "--json", "--limit", "5", "--search", "attention"))
    assert len(limited) == 5 and all(
        "attention" in (r["title"] + r["abstract"]).lower() for r in limited
    )


def test_rank_json_lists_every_paper_best_first(tmp_path: Path, cli) -> None:
    setup_drops(tmp_path)
    cli("ingest")
    ranked = as_json(cli("rank", "--profile", "efficient-attention", "--json"))
    assert len(ranked) == 186
    assert all({"id", "title", "score", "why"} <= set(r) for r in ranked)
    scores = [r["score"] for r in ranked]
    assert scores == sorted(scores, reverse=True)
    top_titles = [r["title"] for r in ranked[:5]]
    assert "NaLaFormer: Norm-Aware Linear Attention for Transformer Models" in top_titles
    assert all("diffusion" not in t.lower() for t in top_titles)  # excluded
    assert "linear attention" in ranked[0]["why"] or "mamba" in ranked[0]["why"]
    assert len(as_json(cli("rank", "--profile", "compression", "--json", "--limit", "7"))) == 7


def test_digest_renders_markdown_with_top_k_and_why(tmp_path: Path, cli) -> None:
    setup_drops(tmp_path)
    cli("ingest")
    result = cli("digest", "--profile", "efficient-attention")
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith("# 3 new papers for efficient-attention")
    assert out.count("\n## ") == 3
    assert "**Why:** matches" in out


def test_unknown_profile_is_one_line_and_exit_2(tmp_path: Path, cli) -> None:
    setup_drops(tmp_path)
    result = cli("rank", "--profile", "nope")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: unknown profile 'nope' (known: efficient-attention, compression)"
    )
    assert "Traceback" not in result.output


def test_missing_config_file_is_a_clear_error(tmp_path: Path, cli) -> None:
    result = cli("--config", "missing.yaml", "papers")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: missing.yaml: config file not found"


def test_misspelt_key_names_the_key_and_file(tmp_path: Path, cli) -> None:
    path = write_config(tmp_path, "profiles:\n  - name: a\n    keywrds: [x]\n", name="c.yaml")
    result = cli("--config", str(path), "papers")
    assert result.exit_code == 2
    assert f"{path}: profiles.0.keywrds: unknown key" in result.stderr


def test_a_path_that_cannot_be_written_is_one_line_and_exit_2(tmp_path: Path, cli) -> None:
    # operator slips (an output folder under a file, a database beside a file of its name)
    # are one ``error:`` line naming the path, as the README promises, not a traceback
    setup_drops(tmp_path)
    (tmp_path / "afile").write_text("")
    demo = cli("demo", "--out", "afile/digests")
    assert demo.exit_code == 2
    assert demo.stderr.strip().splitlines()[-1] == "error: afile/digests: not a directory"
    assert "Traceback" not in demo.stderr
    export = cli("subscribers", "export", "--profile", "compression", "afile/s.csv")
    assert export.exit_code == 2 and "afile/s.csv" in export.stderr
    config = write_config(
        tmp_path, "database_url: sqlite:///afile/db.sqlite3\nprofiles: []\n", name="c.yaml"
    )
    status = cli("--config", str(config), "papers")
    assert status.exit_code == 2
    assert status.stderr.startswith("error: ") and "afile" in status.stderr


def test_missing_drops_folder_is_a_clear_error(tmp_path: Path, cli) -> None:
    write_config(tmp_path, CONFIG)
    result = cli("ingest")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path.resolve() / 'drops'}: no such file or folder"


def test_config_from_environment_variable(tmp_path: Path, cli) -> None:
    path = setup_drops(tmp_path)
    moved = tmp_path / "elsewhere.yaml"
    path.rename(moved)
    result = cli("ingest", "--json", env={"DIGESTBOT_CONFIG": str(moved)})
    assert json.loads(result.stdout)["papers"]["new"] == 186


def test_markdown_escapes_untrusted_titles(tmp_path: Path, cli) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    (drops / "evil.txt").write_text(
        "Daily Papers\n\nJan 8\n\n"
        "<!channel> *x* <https://evil.example|click> & <script>alert(1)</script> [a](http://e.example) linear attention\n\n"
        "An abstract about linear attention with <b>html</b>.\n\n  • 2 authors\n·\nJan 2, 2025\n"
    )
    write_config(tmp_path, CONFIG)
    cli("ingest")
    out = cli("digest", "--profile", "efficient-attention").stdout
    assert "<script>" not in out and "<!channel>" not in out and "<b>" not in out
    assert "&lt;script&gt;" in out and "&lt;!channel&gt;" in out and "&amp;" in out
    assert "\\[a\\](http://e.example)" in out


def test_python_dash_m_and_console_script_agree(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "digestbot", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("digestbot, version ")


def test_every_command_module_is_mapped_for_lazy_loading() -> None:
    import importlib
    import pkgutil

    import digestbot.commands
    from digestbot.cli import COMMAND_MODULES

    defined = {}
    for info in pkgutil.iter_modules(digestbot.commands.__path__):
        module = importlib.import_module(f"digestbot.commands.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            defined[command.name] = info.name
    assert defined == COMMAND_MODULES


def test_rank_does_not_import_slack_feeds_or_the_scheduler(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from digestbot.cli import main\n"
        "try:\n"
        "    main(['rank', '--profile', 'efficient-attention', '--limit', '1'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('slack_bolt', 'feedparser', 'apscheduler', 'httpx') if m in sys.modules]\n"
        "print(','.join(heavy) or 'none')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "none"


def test_ingest_leaves_the_search_and_ranking_indexes_up_to_date(tmp_path: Path, cli) -> None:
    import sqlite3

    setup_drops(tmp_path)
    assert cli("ingest").exit_code == 0
    db = sqlite3.connect(tmp_path / "data" / "db.sqlite3")
    try:
        newest = db.execute("SELECT MAX(pk) FROM papers").fetchone()[0]
        watermark = db.execute("SELECT value FROM schema_info WHERE key = 'fts_indexed_pk'")
        assert int(watermark.fetchone()[0]) == newest  # full-text search caught up
        fts_rows = db.execute("SELECT COUNT(*) FROM papers_fts").fetchone()[0]
        assert fts_rows == 186
    finally:
        db.close()
    manifest = json.loads((tmp_path / "data" / "db.sqlite3.index" / "manifest.json").read_text())
    assert manifest["max_pk"] == newest  # the ranking index too: the next rank reads nothing new


def test_a_cron_ingest_keeps_reporting_an_unchanged_failed_drop_without_parsing_it(
    tmp_path: Path, cli
) -> None:
    setup_drops(tmp_path)
    bad = tmp_path / "drops" / "zz_notes.txt"
    bad.write_text("# meeting notes\n\nnothing to see\n")
    first = cli("ingest", "--json")
    assert first.exit_code == 1
    (failed,) = [d for d in json.loads(first.stdout)["details"] if d["status"] == "failed"]
    assert failed["unchanged"] is False
    assert "drops/zz_notes.txt:1: not a Hugging Face" in failed["error"]
    again = cli("ingest", "--json")
    assert again.exit_code == 1
    summary = json.loads(again.stdout)
    assert summary["files"] == {"new": 0, "skipped": 4, "failed": 1}
    (still,) = [d for d in summary["details"] if d["status"] == "failed"]
    assert still["unchanged"] is True and still["error"] == failed["error"]
    text = cli("ingest")
    assert text.exit_code == 1
    assert (
        f"failed: {failed['error']} (unchanged since it failed: not parsed again; ingest --retry-failed parses it)"
        in text.stderr
    )
    retried = cli("ingest", "--json", "--retry-failed")
    assert retried.exit_code == 1
    (parsed,) = [d for d in json.loads(retried.stdout)["details"] if d["status"] == "failed"]
    assert parsed["unchanged"] is False and parsed["error"] == failed["error"]
    bad.unlink()
    assert cli("ingest").exit_code == 0


def test_status_names_a_failed_drop_until_it_is_fixed_or_removed(tmp_path: Path, cli) -> None:
    """``status`` said "sources: all healthy" while a drop in the folder had failed."""
    setup_drops(tmp_path)
    bad = tmp_path / "drops" / "zz_notes.txt"
    bad.write_text("# meeting notes\n\nnothing to see\n")
    assert cli("ingest").exit_code == 1
    report = json.loads(cli("status", "--json").stdout)
    (failed,) = report["failed_drops"]
    assert failed["path"] == str(bad)
    assert f"{bad}:1: not a Hugging Face" in failed["error"]
    text = cli("status").stdout
    sources = text[text.index("sources:") :].splitlines()
    assert sources[0] == "sources: "
    assert sources[1].startswith(f"  drop {bad}: failed ")
    assert "not a Hugging Face" in sources[1]
    bad.unlink()  # removed: no longer a problem of the folder
    assert json.loads(cli("status", "--json").stdout)["failed_drops"] == []
    assert "sources: all healthy" in cli("status").stdout


def test_status_names_a_failed_drop_whose_file_name_is_not_utf8(tmp_path: Path, cli) -> None:
    """Its path is stored with ``\\x`` escapes; ``status`` looked for a file of that
    escaped name, found none, and said "sources: all healthy"."""
    setup_drops(tmp_path)
    folder = tmp_path / "drops"
    Path(os.fsdecode(bytes(folder) + b"/notes-r\xe9sum\xe9.txt")).write_text("# notes\n")
    assert cli("ingest").exit_code == 1
    (failed,) = json.loads(cli("status", "--json").stdout)["failed_drops"]
    assert failed["path"] == str(folder / "notes-r\\xe9sum\\xe9.txt")
    assert "sources: all healthy" not in cli("status").stdout


def test_a_file_that_failed_through_ingest_path_outside_the_drops_folder_is_no_failed_drop(
    tmp_path: Path, cli
) -> None:
    """It stayed in ``status``'s ``failed_drops`` ("sources" not healthy) until deleted."""
    setup_drops(tmp_path)
    assert cli("ingest").exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "notes.txt").write_text("# meeting notes\n\nnothing to see\n")
    assert cli("ingest", "elsewhere/notes.txt").exit_code == 1
    assert json.loads(cli("status", "--json").stdout)["failed_drops"] == []
    assert "sources: all healthy" in cli("status").stdout
    # still not parsed again while unchanged
    again = json.loads(cli("ingest", "--json", "elsewhere/notes.txt").stdout)
    assert again["details"][0]["unchanged"] is True
    # a drop of the folder named by a relative path still counts
    (tmp_path / "drops" / "zz_notes.txt").write_text("# notes\n\nnothing\n")
    assert cli("ingest", "drops/zz_notes.txt").exit_code == 1
    (failed,) = json.loads(cli("status", "--json").stdout)["failed_drops"]
    assert failed["path"] == "drops/zz_notes.txt"


def test_status_text_gives_the_next_run_in_local_time_and_in_utc(tmp_path: Path, cli) -> None:
    write_config(
        tmp_path,
        "database_url: sqlite:///data/db.sqlite3\n"
        "profiles:\n"
        "  - name: berlin\n    keywords: [x]\n"
        "    schedule: {cron: '30 7 * * *', timezone: Europe/Berlin}\n"
        "  - name: london\n    keywords: [x]\n"
        "    schedule: {cron: '0 8 * * *', timezone: Europe/London}\n",
    )
    result = cli("--now", "2026-11-23T09:00:00Z", "status")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if "next" in line}
    # 07:30 in Berlin (UTC+1 in November) is 06:30 UTC, the next day's
    assert "next 2026-11-24T07:30:00+01:00 = 2026-11-24 06:30 UTC" in lines["berlin"]
    # London is on UTC in November: one time is enough
    assert "next 2026-11-24T08:00:00+00:00  (" in lines["london"]
