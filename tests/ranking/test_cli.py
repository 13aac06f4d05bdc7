"""``rank``, ``feedback`` and ``explain`` through the CLI on the sample drops."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import SEEDS, as_json, write_config

CONFIG = """
database_url: sqlite:///data/db.sqlite3
drops: {path: seeds}
profiles:
  - name: attention
    description: Sub-quadratic attention and state space models for long sequences.
    keywords: [linear attention, mamba, state space model]
  - name: likes
    like:
      - "NaLaFormer: Norm-Aware Linear Attention for Transformer Models"
      - The Devil in Linear Transformer
"""


def setup(tmp_path: Path, cli) -> str:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    config = str(write_config(tmp_path, CONFIG))
    assert cli("--config", config, "ingest", "--json").exit_code == 0
    return config


def test_rank_json_lists_every_paper_best_first_with_why(tmp_path: Path, cli) -> None:
    config = setup(tmp_path, cli)
    ranked = as_json(cli("--config", config, "rank", "--profile", "attention", "--json"))
    assert len(ranked) == 186
    assert {"id", "title", "score", "why"} <= set(ranked[0])
    scores = [item["score"] for item in ranked]
    assert scores == sorted(scores, reverse=True)
    top = [item["title"] for item in ranked[:5]]
    assert any("Linear Attention" in t or "Mamba" in t for t in top)
    assert ranked[0]["why"].startswith("matches ")


def test_like_only_profile_finds_other_linear_attention_papers(tmp_path: Path, cli) -> None:
    config = setup(tmp_path, cli)
    ranked = as_json(cli("--config", config, "rank", "--profile", "likes", "--json"))
    liked = {
        "NaLaFormer: Norm-Aware Linear Attention for Transformer Models",
        "The Devil in Linear Transformer",
    }
    others = [item for item in ranked if item["title"] not in liked]
    top5 = [item["title"] for item in others[:5]]
    assert "LinFusion: 1 GPU, 1 Minute, 16K Image" in top5
    assert others[0]["why"].startswith("like “")


def test_a_like_only_profile_names_and_explains_its_liked_papers_phrases(
    tmp_path: Path, cli
) -> None:
    config = setup(tmp_path, cli)
    ranked = as_json(cli("--config", config, "rank", "--profile", "likes", "--json"))
    linfusion = next(item for item in ranked if item["title"].startswith("LinFusion"))
    # both liked papers are on linear attention; LinFusion's abstract uses the phrase too
    assert linfusion["why"].startswith("like “")
    assert "matches linear attention" in linfusion["why"]
    explained = as_json(
        cli("--config", config, "explain", "--profile", "likes", linfusion["id"], "--json")
    )
    assert explained["breakdown"]["liked:linear attention"] > 0
    assert not any(key.startswith("keyword:") for key in explained["breakdown"])


def test_feedback_down_drops_the_paper_and_explain_says_so(tmp_path: Path, cli) -> None:
    config = setup(tmp_path, cli)
    before = as_json(cli("--config", config, "rank", "--profile", "attention", "--json"))
    target = before[0]["id"]
    result = cli("--config", config, "feedback", "--profile", "attention", target, "down")
    assert result.exit_code == 0 and "👎" in result.stdout
    after = as_json(cli("--config", config, "rank", "--profile", "attention", "--json"))
    assert after[0]["id"] != target
    dropped = next(item for item in after if item["id"] == target)
    assert dropped["score"] == 0 and dropped["why"] == "marked 👎"
    explained = as_json(
        cli("--config", config, "explain", "--profile", "attention", target, "--json")
    )
    assert explained["disliked"] is True and explained["score"] == 0
    up = cli("--config", config, "feedback", "--profile", "attention", target, "up")
    assert up.exit_code == 0
    again = as_json(cli("--config", config, "rank", "--profile", "attention", "--json"))
    assert again[0]["id"] == target


def test_explain_prints_the_breakdown(tmp_path: Path, cli) -> None:
    config = setup(tmp_path, cli)
    ranked = as_json(cli("--config", config, "rank", "--profile", "attention", "--json"))
    first = ranked[0]
    explained = as_json(
        cli("--config", config, "explain", "--profile", "attention", first["id"], "--json")
    )
    assert explained["rank"] == 1 and explained["of"] == 186
    assert explained["score"] == first["score"] and explained["why"] == first["why"]
    keys = set(explained["breakdown"])
    assert {"profile", "expansion"} <= keys
    assert any(k.startswith("keyword:") for k in keys)
    text = cli("--config", config, "explain", "--profile", "attention", first["id"])
    assert text.exit_code == 0 and "keyword:" in text.stdout and "rank 1 of 186" in text.stdout


def test_feedback_on_an_unknown_paper_or_profile_is_a_clear_error(tmp_path: Path, cli) -> None:
    config = setup(tmp_path, cli)
    bad = cli("--config", config, "feedback", "--profile", "attention", "no-such-paper", "up")
    assert bad.exit_code == 2 and "unknown paper 'no-such-paper'" in bad.stderr
    bad = cli("--config", config, "explain", "--profile", "nope", "x")
    assert bad.exit_code == 2 and "unknown profile 'nope'" in bad.stderr


def test_a_liked_title_that_is_not_stored_is_reported_and_ignored(
    tmp_path: Path, cli, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    config = str(
        write_config(
            tmp_path,
            CONFIG
            + """  - name: typo
    like: ["The Devil in Linear Transformer", "A Paper That Does Not Exist"]
""",
        )
    )
    assert cli("--config", config, "ingest", "--json").exit_code == 0
    result = cli("--config", config, "rank", "--profile", "typo", "--json")
    ranked = as_json(result)
    assert "'A Paper That Does Not Exist' is not in the store" in caplog.text
    assert len(ranked) == 186 and ranked[1]["why"].startswith("like “The Devil")
