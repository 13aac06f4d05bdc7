"""Building a segment from whole chunks of texts gives the postings of per-paper analysis."""

from __future__ import annotations

import zlib

import numpy as np

from digestbot.ranking.lexical import Document, Segment
from digestbot.ranking.text import N_COLUMNS, batch_columns


def crc(term: str) -> int:
    return zlib.crc32(term.encode()) & (N_COLUMNS - 1)


def test_batch_columns_are_the_crc_of_unigrams_bigrams_and_joined_words() -> None:
    owner, cols, n_words = batch_columns(
        ["Sub-quadratic attention", "", "The café of graphs", "x" * 400 + " yz"]
    )
    by_text = [
        sorted(c for o, c in zip(owner.tolist(), cols.tolist(), strict=True) if o == i)
        for i in range(4)
    ]
    unigrams = [crc("sub"), crc("quadrat"), crc("attent"), crc("subquadrat")]
    assert by_text[0] == sorted([*unigrams, crc("sub quadrat"), crc("quadrat attent")])
    assert by_text[1] == []
    assert by_text[2] == sorted([crc("cafe"), crc("graph"), crc("cafe graph")])
    assert by_text[3] == sorted([crc("x" * 400), crc("yz"), crc("x" * 400 + " yz")])
    # a second word too long for the shift tables: hashed as a string
    long_second = batch_columns(["yz " + "x" * 400])[1].tolist()
    assert crc("yz " + "x" * 400) in long_second
    assert n_words.tolist() == [3, 0, 2, 2]


def test_a_separator_character_in_a_text_is_a_space() -> None:
    _, cols, n_words = batch_columns(["graph\x00network"])
    assert sorted(cols.tolist()) == sorted([crc("graph"), crc("network"), crc("graph network")])
    assert n_words.tolist() == [2]


def test_segment_postings_weigh_title_words_and_count_repeats() -> None:
    seg = Segment.build(
        [
            Document(pk=7, title="Graph graph", abstract="graph networks"),
            Document(pk=9, title="", abstract="networks"),
        ]
    )
    rows, tf = seg.postings(crc("graph"))
    assert rows.tolist() == [0] and tf.tolist() == [2.5 + 2.5 + 1.0]
    rows, tf = seg.postings(crc("network"))
    assert rows.tolist() == [0, 1] and tf.tolist() == [1.0, 1.0]
    rows, tf = seg.postings(crc("graph graph"))
    assert rows.tolist() == [0] and tf.tolist() == [2.5]
    assert seg.doc_len.tolist() == [2.5 * 2 + 2, 1.0]
    assert np.all(np.diff(seg.cols) > 0)


def test_segments_of_many_chunks_match_one_paper_at_a_time() -> None:
    docs = [
        Document(pk=i, title=f"Paper {i} on state-space models", abstract=f"Variant {i % 7} scan.")
        for i in range(2500)
    ]
    whole = Segment.build(docs)
    parts = [Segment.build(docs[i : i + 1]) for i in (0, 1234, 2499)]
    for row, part in zip((0, 1234, 2499), parts, strict=True):
        for col in part.cols.tolist():
            rows, tf = whole.postings(col)
            assert row in rows.tolist()
            assert tf[rows.tolist().index(row)] == part.postings(col)[1][0]
    assert whole.doc_len[1234] == parts[1].doc_len[0]


def test_columns_stay_the_same_when_the_token_cache_is_renewed(monkeypatch) -> None:
    from digestbot.ranking import text

    texts = ["Graph neural networks for graph-level tasks", "Neural scaling of graphs"]
    before = batch_columns(texts)
    monkeypatch.setattr(text, "_TOKEN_CACHE_MAX", 2)  # renewed on every call from now on
    for _ in range(2):
        after = batch_columns(texts)
        for a, b in zip(before, after, strict=True):
            assert a.tolist() == b.tolist()


def test_batch_columns_agree_with_query_analysis_on_awkward_text() -> None:
    from collections import Counter

    from digestbot.ranking.text import column, terms, words

    texts = [
        "a--b x/'y l'état d'art -lead trail- //",
        "ﬁne-tuning naïve Bayes\u3000co\u0301de ½-precision",
        "self-supervised state-space models, sub-quadratic; 3-d 2/3 it's",
        "tab\tnew\nline\x0bvt\x1fus",
        "Schr\\\"odinger Erd\\H{o}s \\AA ngstr\\\"om, \\'{e}t\\'e",
    ]
    owner, cols, n_words = batch_columns(texts)
    for i, text in enumerate(texts):
        analysed = words(text)
        expected = Counter(column(t) for t in terms(analysed))
        assert Counter(c for o, c in zip(owner, cols, strict=True) if o == i) == expected
        assert n_words[i] == len(analysed[0])
