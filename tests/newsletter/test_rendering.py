"""The HTML email in a real headless Chromium at 600 px and 375 px; the text part alike."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from digestbot.delivery.formats import render_email
from digestbot.models import Digest, ScoredPaper
from digestbot.newsletter import unsubscribe_url
from tests.conftest import NOW
from tests.delivery.helpers import make_paper
from tests.newsletter.browser import decode_png, measure, screenshot

pytestmark = pytest.mark.browser

LONG_WORD = "Supercalifragilistic" * 8  # 160 characters, no break opportunity
TITLES = [f"Linear attention study number {i}" for i in range(1, 20)] + [
    f"{LONG_WORD} & <b>not bold</b>"
]


def digest() -> Digest:
    papers = [
        make_paper(i + 1, title=title, abstract="We study linear attention. " * 20)
        for i, title in enumerate(TITLES)
    ]
    return Digest(
        profile="efficient-attention",
        digest_date=date(2026, 11, 23),
        generated_at=NOW,
        papers=tuple(
            ScoredPaper(paper=p, score=20.0 - i, why="matches linear attention")
            for i, p in enumerate(papers)
        ),
        description="Linear attention & friends",
    )


def expected_links() -> set[str]:
    links = set()
    for i in range(1, 21):
        links.add(f"https://arxiv.org/abs/2611.{i:05d}")
        links.add(f"https://github.com/example/repo{i}")
    return links


@pytest.fixture(scope="module")
def content():  # one render for every width
    url = unsubscribe_url("https://digest.example.org", "TOKEN.abc")
    return render_email(digest(), unsubscribe_url=url)


def test_the_links_the_test_expects_are_the_papers_links(content) -> None:
    for link in expected_links():
        assert f'href="{link}"' in content.html


@pytest.mark.parametrize("width", [600, 375])
def test_html_email_fits_without_horizontal_scrolling(content, width: int, tmp_path: Path) -> None:
    got = measure(content.html, width=width, workdir=tmp_path)
    assert got["innerWidth"] == width
    assert got["scrollWidth"] <= width and got["bodyScrollWidth"] <= width
    text = got["text"]
    for title in TITLES:
        assert title in text  # every title shown, as text (the <b> is not markup)
    hrefs = {link["href"] for link in got["links"]}
    assert expected_links() <= hrefs
    assert "https://digest.example.org/unsubscribe?t=TOKEN.abc" in hrefs
    for link in got["links"]:
        assert link["right"] <= width + 0.5 and link["width"] > 0, link  # on screen, visible


@pytest.mark.parametrize("width", [600, 375])
def test_screenshot_is_not_blank(content, width: int, tmp_path: Path) -> None:
    shot = screenshot(content.html, width=width, workdir=tmp_path)
    w, h, rows = decode_png(shot.read_bytes())
    assert (w, h) == (600, 2000)
    rows = [row[: width * (4 if len(row) == w * 4 else 3)] for row in rows]  # the frame
    step = 4 if len(rows[0]) == w * 4 else 3
    pixels = Counter(row[x : x + 3] for row in rows[::5] for x in range(0, len(row), step * 5))
    assert len(pixels) > 20  # text, links, background: not one flat colour
    _background, most = pixels.most_common(1)[0]
    assert most / sum(pixels.values()) < 0.97
    dark = sum(n for px, n in pixels.items() if max(px) < 110)
    assert dark > 50  # there is text on it


def test_text_part_carries_the_same_papers_and_links(content) -> None:
    for title in TITLES:
        assert title in content.text
    for link in expected_links():
        assert link in content.text
    assert "Unsubscribe: https://digest.example.org/unsubscribe?t=TOKEN.abc" in content.text
    assert content.text.index(TITLES[0]) < content.text.index(TITLES[19])
