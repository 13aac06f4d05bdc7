"""The Hugging Face daily-papers API (older and newer schema) and JSON Feed."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digestbot.errors import SourceError
from digestbot.sources.hf import is_json_feed, parse_hf_daily_papers, parse_json_feed

FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"
OLDER = FEEDS / "hf_daily_papers_api_2024-03-21.json"
NEWER = FEEDS / "hf_daily_papers_api_2026-07_5-items_test-fixture.json"
HF_PAPERS = "https://huggingface" + ".co/papers/"


def test_older_schema_papers_with_authors_upvotes_and_arxiv_ids() -> None:
    parsed = parse_hf_daily_papers(OLDER.read_bytes(), name="hf")
    assert parsed.entries == 18 and len(parsed.items) == 18 and parsed.warnings == []
    first = parsed.items[0].paper
    assert first.id == "2403.13248" and first.arxiv_id == "2403.13248"
    assert first.title == "Mora: Enabling Generalist Video Generation via A Multi-Agent Framework"
    assert first.authors[:2] == ("Zhengqing Yuan", "Ruoxi Chen") and first.authors_count == 7
    assert first.upvotes == 47
    assert first.published == date(2024, 3, 20)
    assert "\n" not in first.abstract and first.abstract.startswith("Sora is the first")
    assert first.urls == (HF_PAPERS + "2403.13248",)
    assert first.source is not None and first.source.entry == "2403.13248"
    assert "2401.13923" in {i.paper.id for i in parsed.items}


def test_newer_schema_github_stars_and_organisation() -> None:
    parsed = parse_hf_daily_papers(NEWER.read_bytes(), name="hf")
    by_id = {i.paper.id: i.paper for i in parsed.items}
    assert len(by_id) == 5
    omni = by_id["2607.23193"]
    assert omni.extra["github_repo"] == "https://github.com/MAC-AutoML/OmniScope"
    assert omni.extra["github_stars"] == 3
    assert "https://github.com/MAC-AutoML/OmniScope" in omni.urls
    sigma = by_id["2607.27958"]
    assert sigma.title.startswith("Σ-Mem")
    assert sigma.organization == "Nanyang Technological University"


def test_a_bad_item_is_skipped_with_its_index_and_field_and_the_rest_kept() -> None:
    items = json.loads(NEWER.read_bytes())
    del items[1]["paper"]["id"]
    items[2]["paper"]["upvotes"] = "many"
    parsed = parse_hf_daily_papers(json.dumps(items).encode(), name="hf")
    assert len(parsed.items) == 3
    assert parsed.warnings[0] == "hf: item 2: paper.id: Field required, skipped"
    assert parsed.warnings[1].startswith("hf: item 3: paper.upvotes:")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": "Invalid date"}', "hf: Hugging Face API error: Invalid date"),
        (b'{"papers": []}', "hf: expected a JSON list of daily papers, got an object"),
        (b"[1, 2", "hf:1: not JSON"),
        (b"\xff\xfe[]", "hf: not UTF-8 JSON"),
    ],
)
def test_api_errors_and_non_json_are_clear_errors(body: bytes, message: str) -> None:
    with pytest.raises(SourceError) as caught:
        parse_hf_daily_papers(body, name="hf")
    assert caught.value.message.startswith(message)


def test_json_feed_of_the_community_hf_feed() -> None:
    data = (FEEDS / "hf_papers_community-jsonfeed_michaelmarkert_2026-08-22.json").read_bytes()
    assert is_json_feed(data)
    parsed = parse_json_feed(data, name="jf")
    assert len(parsed.items) == 26
    first = parsed.items[0].paper
    assert first.id == "2608.19880"
    assert first.title == "EnvHarness: Awakening Static Worlds for Agent Learning"
    assert first.abstract.startswith("LLM agents learn by interacting")
    assert first.published == date(2026, 8, 21)
    assert not is_json_feed(OLDER.read_bytes())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.fixed_dictionaries({"paper": json_values}), max_size=3) | json_values)
def test_any_json_gives_papers_and_warnings_or_a_clear_error(doc: object) -> None:
    try:
        parsed = parse_hf_daily_papers(json.dumps(doc).encode(), name="fuzz")
    except SourceError as exc:
        assert exc.message.startswith("fuzz")
    else:
        assert len(parsed.items) + len(parsed.warnings) == parsed.entries
        assert all(item.paper.title for item in parsed.items)


def test_an_item_without_an_arxiv_id_links_its_hf_page_which_keys_a_symbol_title() -> None:
    item = json.loads(NEWER.read_bytes())[0]
    item["paper"].update(id="sym-paper-1", title="∇ ⊗ ∇", githubRepo="https://github.com/o/r")
    other = json.loads(json.dumps(item))
    other["paper"].update(id="sym-paper-2")
    first, second = (
        i.paper for i in parse_hf_daily_papers(json.dumps([item, other]).encode(), name="hf").items
    )
    assert first.arxiv_id is None and first.urls[0] == HF_PAPERS + "sym-paper-1"
    assert first.id != second.id  # the same glyphs, the same repository: two papers


def test_a_json_feed_item_with_a_date_not_in_rfc_3339_is_kept() -> None:
    # a generator writing RFC 822 dates (as its RSS does) lost every item: each was skipped
    # for its date alone, and the feed failed as "none of its items could be read"
    def item(n: int, when: object) -> dict[str, object]:
        return {
            "id": f"urn:lab:{n}",
            "url": f"https://lab.example/posts/{n}",
            "title": f"Post {n}",
            "content_text": "About attention.",
            "date_published": when,
        }

    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Lab",
        "items": [
            item(1, "2026-08-22T10:00:00Z"),
            item(2, "Sat, 22 Aug 2026 10:00:00 GMT"),
            item(3, "2026-08-21"),
            item(4, "sometime last week"),
            item(5, None),
        ],
    }
    parsed = parse_json_feed(json.dumps(doc).encode(), name="lab")
    assert [i.paper.title for i in parsed.items] == [f"Post {n}" for n in range(1, 6)]
    assert [i.paper.published for i in parsed.items] == [
        date(2026, 8, 22),
        date(2026, 8, 22),
        date(2026, 8, 21),
        None,
        None,
    ]
    assert parsed.warnings == ["lab: item 4: unreadable date_published 'sometime last week'"]
