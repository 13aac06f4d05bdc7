"""``digestbot rank --json`` on a SQLite store: acronyms the stored papers define (not in
``ACRONYMS``) find papers that write only the other form, and exclude them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import as_json, write_config

DEFINING = [  # two papers define KAN the same way: trusted
    ("Pruning for symbolic regression", "We prune Kolmogorov-Arnold networks (KANs) for laws."),
    ("Sparse training at scale", "Kolmogorov-Arnold networks (KANs) are trained sparsely."),
]
SHORT_ONLY = ("A KAN layer for tabular data", "We add one layer to a tabular model.")
LONG_ONLY = ("Kolmogorov-Arnold networks for physics", "We fit conservation laws.")
OFF_TOPIC = ("Protein folding with diffusion", "We fold proteins with a denoiser.")
# other papers, so that KAN is a rare word (a description keeps only rare words)
OTHERS = [(f"Weather model {i}", f"We forecast rain in region {i} with radar.") for i in range(20)]
SAM = [  # SAM: two long forms, each defined twice: ambiguous, never expanded
    ("Masks for medicine", "We adapt the segment anything model (SAM) to scans."),
    ("Masks for video", "A segment anything model (SAM) tracks objects."),
    ("Flat minima", "Sharpness-aware minimization (SAM) finds flat minima."),
    ("Flat minima again", "We speed up sharpness-aware minimization (SAM) twice."),
    ("Prompted masks", "We prompt a segment anything model with points."),
]


def write_drop(folder: Path, papers: list[tuple[str, str]]) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "a.txt").write_text(
        "Daily Papers\n\nJan 8\n\n"
        + "".join(f"{t}\n\n{a}\n\n  • 2 authors\n·\nJan 7, 2026\n\n" for t, a in papers),
        encoding="utf-8",
    )


CONFIG = """
database_url: sqlite:///data/db.sqlite3
drops: {path: drops}
profiles:
  - {name: short, keywords: [KAN]}
  - {name: long, keywords: [Kolmogorov-Arnold network]}
  - {name: described, description: Layers built as KAN for physics and tables.}
  - {name: excluding, keywords: [tabular, physics, laws], exclude: [KAN]}
  - {name: sam, keywords: [SAM]}
"""


def ranked(tmp_path: Path, cli: Any, papers: list[tuple[str, str]], profile: str) -> dict[str, Any]:
    if not (tmp_path / "data").exists():
        write_drop(tmp_path / "drops", [*papers, *OTHERS])
        write_config(tmp_path, CONFIG)
        assert cli("ingest", "--json").exit_code == 0
    return {item["title"]: item for item in as_json(cli("rank", "--profile", profile, "--json"))}


def test_a_mined_short_form_finds_a_paper_that_writes_only_the_long_form(
    tmp_path: Path, cli: Any
) -> None:
    found = ranked(tmp_path, cli, [*DEFINING, SHORT_ONLY, LONG_ONLY, OFF_TOPIC], "short")
    assert found[LONG_ONLY[0]]["score"] > 0
    assert found[LONG_ONLY[0]]["why"].startswith("matches KAN")  # named as the keyword
    assert found[OFF_TOPIC[0]]["score"] == 0
    described = ranked(tmp_path, cli, [], "described")  # a description's word too
    assert described[LONG_ONLY[0]]["score"] > 0


def test_a_mined_long_form_finds_a_paper_that_writes_only_the_short_form(
    tmp_path: Path, cli: Any
) -> None:
    found = ranked(tmp_path, cli, [*DEFINING, SHORT_ONLY, LONG_ONLY, OFF_TOPIC], "long")
    assert found[SHORT_ONLY[0]]["score"] > 0
    assert found[SHORT_ONLY[0]]["why"].startswith("matches Kolmogorov-Arnold network")
    assert found[OFF_TOPIC[0]]["score"] == 0


def test_an_acronym_defined_by_one_paper_only_expands_nothing(tmp_path: Path, cli: Any) -> None:
    found = ranked(tmp_path, cli, [DEFINING[0], SHORT_ONLY, LONG_ONLY, OFF_TOPIC], "short")
    # found only through the best matches' terms (pseudo-relevance feedback), not as KAN
    assert found[LONG_ONLY[0]]["why"] == "shares terms with the best matches"


def test_an_exclusion_excludes_the_papers_writing_its_mined_counterpart(
    tmp_path: Path, cli: Any
) -> None:
    found = ranked(tmp_path, cli, [*DEFINING, SHORT_ONLY, LONG_ONLY, OFF_TOPIC], "excluding")
    assert found[SHORT_ONLY[0]]["score"] == 0  # writes KAN
    assert found[LONG_ONLY[0]]["score"] == 0  # writes only the long form: excluded too


def test_an_ambiguous_short_form_is_not_expanded(tmp_path: Path, cli: Any) -> None:
    found = ranked(tmp_path, cli, [*SAM, OFF_TOPIC], "sam")
    # writes only "segment anything model": found through the best matches' terms, not as SAM
    assert found["Prompted masks"]["why"] == "shares terms with the best matches"
    assert found["Masks for medicine"]["score"] > 0  # writes SAM


def test_rank_without_a_store_reads_the_acronyms_its_papers_define() -> None:
    # the library's rank(papers, profile, now=...) counts the given papers' definitions
    # as the store's table does: KAN (defined twice) finds the long form alone, SAM not
    from digestbot.config import Profile
    from digestbot.models import Paper
    from digestbot.ranking import rank
    from tests.conftest import NOW

    texts = [*DEFINING, SHORT_ONLY, LONG_ONLY, OFF_TOPIC, *SAM, *OTHERS]
    papers = [Paper(title=t, abstract=a) for t, a in texts]
    kan = {s.paper.title: s for s in rank(papers, Profile(name="k", keywords=["KAN"]), now=NOW)}
    assert kan[LONG_ONLY[0]].score > 0 and kan[LONG_ONLY[0]].why.startswith("matches KAN")
    assert kan[OFF_TOPIC[0]].score == 0
    sam = {s.paper.title: s for s in rank(papers, Profile(name="s", keywords=["SAM"]), now=NOW)}
    # writes only a long form of the ambiguous SAM: no match of the profile's own terms
    assert sam["Prompted masks"].breakdown["profile"] == 0
    assert sam["Masks for video"].breakdown["profile"] > 0
