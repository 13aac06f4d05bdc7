"""TeX maths in titles (arXiv's feeds) and the Unicode a drop or a journal prints: one
paper. Ids of titles without ``$`` or a backslash do not change (pinned: computed by
the code before maths were folded)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from digestbot.ids import normalize_title, normalize_title_slow, title_id
from digestbot.ingest import ingest_paths
from digestbot.store import SqlStore
from tests.conftest import NOW
from tests.feed_server import FeedServer, Route, RssItem, arxiv_rss
from tests.test_dedup_generic import poll, settings_for

PINNED = {
    "α-Divergence Variational Inference Meets Importance Weighted Auto-Encoders": "t-ae68096b889f",
    "Learning in O(n²) Time with ℓ1 Regularisation": "t-d07820bac457",
    "Schr\\\"odinger Bridges for Erd\\H{o}s--R\\'{e}nyi Graphs": "t-2e755c4b19e9",
    "Глубокое обучение для анализа текстов": "t-d37effcd1043",
    "大規模言語モデルの推論能力": "t-50939bd39b26",
    "Attention Is All You Need": "t-4a1c934d3d98",
    "Σ-Δ Modulators, Revisited: 50% Less Power": "t-8fb9039b229f",
    "Pay $5 for 10% More Accuracy": "t-2cec4147ef7b",
    "x^2 and y_1 are not maths here": "t-b00af8df97a1",
}


def test_ids_of_titles_without_tex_maths_do_not_change() -> None:
    for title, ident in PINNED.items():
        assert title_id(title) == ident, title


@pytest.mark.parametrize(
    ("tex", "unicode"),
    [
        (
            "$\\alpha$-Divergence Variational Inference Meets Importance Weighted Auto-Encoders",
            "α-Divergence Variational Inference Meets Importance Weighted Auto-Encoders",
        ),
        (
            "Learning in $O(n^2)$ Time with $\\ell_1$ Regularisation",
            "Learning in O(n²) Time with ℓ1 Regularisation",
        ),
        (
            "Learning in $O(n^{2})$ Time with $\\ell_{1}$ Regularisation",
            "Learning in O(n²) Time with ℓ₁ Regularisation",
        ),
        ("$\\Sigma$-$\\Delta$ Modulators: 50\\% Less Power", "Σ-Δ Modulators: 50% Less Power"),
        (
            "$\\mathcal{O}(\\log n)$ Regret for $k$-Armed Bandits",
            "𝒪(log n) Regret for k-Armed Bandits",
        ),
        ("$\\varepsilon$-Greedy $Q$-Learning", "ε-greedy Q-learning"),
        ("$\\epsilon$-Greedy is $\\phi$-Optimal", "ε-Greedy is φ-Optimal"),
        ("Scaling $\\textsc{Bert}$ to $10^6$ Tokens", "Scaling BERT to 10⁶ Tokens"),
        ("$x_{ij} \\leq \\infty$ Bounds", "xᵢⱼ ≤ ∞ Bounds"),
    ],
)
def test_tex_maths_and_unicode_give_one_key(tex: str, unicode: str) -> None:
    assert normalize_title(tex) == normalize_title(unicode)
    assert title_id(tex) == title_id(unicode)
    assert normalize_title(tex) == normalize_title_slow(tex)


def test_an_arxiv_title_in_tex_merges_with_its_unicode_drop(
    server: FeedServer, http: httpx.Client, store: SqlStore, tmp_path: Path
) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    (drops / "d.txt").write_text(
        "Daily Papers\n\nJan 8\n\nα-Divergence Bridges for O(n²) Sampling\n\n"
        "We study bridges.\n\n  • 2 authors\n·\nJan 7, 2026 4\n",
        encoding="utf-8",
    )
    ingest_paths(store, [drops], now=NOW)
    title = "$\\alpha$-Divergence Bridges for $O(n^2)$ Sampling"
    server.routes["/rss"] = Route(body=arxiv_rss([RssItem("2601.00077", 1, title)]))
    report = poll(settings_for({"name": "arxiv", "url": server.url("/rss")}), store, http)
    assert (report.feeds[0].new, report.feeds[0].merged) == (0, 1)
    assert store.count_papers() == 1
    assert store.get_paper("2601.00077").upvotes == 4


def test_a_database_from_before_the_fold_rekeys_its_tex_titles_on_open(tmp_path: Path) -> None:
    """Its arXiv paper with a TeX title was keyed ``alpha divergence … o n 2 …``: a drop
    under the Unicode title after the upgrade merges into it; its old title id still finds it."""
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    old = SqlStore.open(url)
    title = "$\\alpha$-Divergence Bridges for $O(n^2)$ Sampling"
    from digestbot.models import Paper

    with old.transaction() as conn:
        old.upsert_papers(conn, [Paper(title=title, abstract="a", arxiv_id="2601.00078")], now=NOW)
        old_key = "alpha divergence bridges for o n 2 sampling"  # as the code before made it
        old_tid = "t-" + __import__("hashlib").sha256(old_key.encode()).hexdigest()[:12]
        conn.exec_driver_sql("UPDATE papers SET title_key = ?, tid = ?", (old_key, old_tid))
        conn.exec_driver_sql("DROP TABLE paper_aliases")
    old.close()
    store = SqlStore.open(url)
    try:
        drops = tmp_path / "drops"
        drops.mkdir()
        (drops / "d.txt").write_text(
            "Daily Papers\n\nJan 8\n\nα-Divergence Bridges for O(n²) Sampling\n\n"
            "We study bridges.\n\n  • 2 authors\n·\nJan 7, 2026 4\n",
            encoding="utf-8",
        )
        report = ingest_paths(store, [drops], now=NOW)
        assert (report.papers_new, report.papers_merged) == (0, 1)
        assert store.count_papers() == 1
        assert store.get_paper(old_tid).id == "2601.00078"
    finally:
        store.close()
