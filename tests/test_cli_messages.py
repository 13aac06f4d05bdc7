"""Error messages a new user meets without Slack, SMTP or the semantic extra: each says
what to change, in the words the configuration uses."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import write_config

PROFILES = "profiles:\n  - {name: a, keywords: [linear attention]}\n"


def test_embed_without_a_model_says_why_not_only_set_the_model(tmp_path: Path, cli) -> None:
    # the default, auto, with DIGESTBOT_AUTO_EMBEDDINGS=0 (as the tests run): auto is off
    write_config(tmp_path, "database_url: sqlite:///db.sqlite3\n" + PROFILES)
    result = cli("embed")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: config.yaml: ranking.embedding_model: no model to embed with: "
        "auto, but DIGESTBOT_AUTO_EMBEDDINGS=0 turns auto off"
    )
    assert "set ranking.embedding_model" not in result.stderr  # it is set: to auto

    write_config(
        tmp_path, 'database_url: sqlite:///db.sqlite3\nranking: {embedding_model: ""}\n' + PROFILES
    )
    result = cli("embed")
    assert result.exit_code == 2
    assert "no model to embed with: empty: ranking is lexical" in result.stderr
