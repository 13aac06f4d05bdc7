"""End to end through the CLI on the sample drops."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import SEEDS, as_json


def test_demo_writes_a_digest_per_profile_and_ingest_again_is_a_noop(tmp_path: Path, cli) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    result = cli("demo")
    assert result.exit_code == 0, result.stderr
    written = [Path(line) for line in result.stdout.split()]
    assert {p.name.split("-2")[0] for p in written} == {
        "efficient-attention",
        "scaling-laws",
        "model-compression",
        "representation-learning",
    }
    assert all(p.is_file() and p.read_text().startswith("# ") for p in written)
    again = as_json(cli("ingest", "--json"))
    assert again["files"] == {"new": 0, "skipped": 4, "failed": 0}
    assert again["papers"] == {"new": 0, "merged": 0}
    assert len(as_json(cli("papers", "--json"))) == 186
