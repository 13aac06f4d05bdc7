"""Phrases that describe the liked papers: a profile without words of its own gets them.

A profile with only ``like:`` (or only 👍 papers) says nothing in words. Its
liked papers' shared, distinctive phrases stand in for keywords: the 1-3 word
runs of content words in their titles and abstracts (never across a stop word
or punctuation), each weighted by

    idf x (SHARED_WEIGHT x geometric mean of its counts + mean of its counts)

over the liked papers (a title occurrence counts ``TITLE_COUNT``), so a phrase
found in every liked paper beats one frequent in a single paper. Phrases in
fewer than ``MIN_DF`` papers (the liked ones counted: with one liked paper, a
phrase no other paper holds) or in more than ``MAX_DF_SHARE`` of the papers are
left out. The best ``LIKED_PHRASES`` are then matched
as keywords are (``query.keyword_features``), and ``why`` can name them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from digestbot.ranking.lexical import LexicalIndex
from digestbot.ranking.stopwords import STOP_WORDS
from digestbot.ranking.text import WORD_OR_MARK, column, fold, phrase_terms, phrase_unigrams

LIKED_PHRASES = 6  # phrases kept
MAX_WORDS = 3
TITLE_COUNT = 2.0  # a phrase in a title counts as this many abstract occurrences
SHARED_WEIGHT = 3.0  # the geometric mean's weight (phrases in every liked paper)
MIN_DF = 2  # papers holding a phrase, the liked ones included
MAX_DF_SHARE = 0.1  # in more than this share of the papers: too common to describe one


def _runs(text: str) -> list[list[str]]:
    """Runs of content words as written (folded); stop words, numbers and punctuation
    end a run."""
    out: list[list[str]] = []
    run: list[str] = []
    for match in WORD_OR_MARK.finditer(fold(text)):
        token = match.group(0)
        if not token[0].isalnum() or token in STOP_WORDS or token.isdigit():
            content = False
        else:
            content = bool(phrase_terms(token, whole=False))
        if content:
            run.append(token)
        elif run:
            out.append(run)
            run = []
    if run:
        out.append(run)
    return out


def candidate_phrases(title: str, abstract: str) -> dict[str, tuple[str, float]]:
    """A paper's 1-``MAX_WORDS`` word phrases: their stems -> (first wording, count)."""
    out: dict[str, tuple[str, float]] = {}
    for text, weight in ((title, TITLE_COUNT), (abstract, 1.0)):
        for run in _runs(text):
            for n in range(1, MAX_WORDS + 1):
                for start in range(len(run) - n + 1):
                    wording = " ".join(run[start : start + n])
                    key = " ".join(phrase_unigrams(wording))
                    first, count = out.get(key, (wording, 0.0))
                    out[key] = (first, count + weight)
    return out


def liked_phrases(
    index: LexicalIndex, texts: Sequence[tuple[str, str]], *, k: int = LIKED_PHRASES
) -> list[str]:
    """The ``k`` phrases that best describe all the liked papers (title, abstract), best
    first, as first written."""
    # per phrase: its first wording, the sum of its counts and of their logs, how many liked
    # papers hold it (one pass over each paper's phrases: no phrases x papers table)
    wording: dict[str, str] = {}
    sums: dict[str, list[float]] = {}  # phrase -> [count sum, log count sum, papers holding]
    for title, abstract in texts:
        for key, (first, count) in candidate_phrases(title, abstract).items():
            wording.setdefault(key, first)
            found_sums = sums.setdefault(key, [0.0, 0.0, 0.0])
            found_sums[0] += count
            found_sums[1] += math.log(count)
            found_sums[2] += 1.0
    keys = sorted(wording)
    if not keys or k <= 0:
        return []
    # one document-frequency look-up for every phrase's terms; a phrase's is its rarest term's
    term_lists = [phrase_terms(wording[key], whole=False) for key in keys]  # as its key
    cols = np.asarray(sorted({column(t) for ts in term_lists for t in ts}), dtype=np.int64)
    found = dict(zip(cols.tolist(), index.document_frequency(cols).tolist(), strict=True))
    df = np.asarray([min(found[column(t)] for t in ts) for ts in term_lists], dtype=np.float64)
    n = max(index.n_live, 1)
    count_sum, log_sum, held = np.asarray([sums[key] for key in keys]).T
    n_liked = float(len(texts))
    # the geometric mean of its counts over the liked papers (0 unless every one holds it)
    shared = np.where(held == n_liked, np.exp(log_sum / n_liked), 0.0)
    idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
    weight = idf * (SHARED_WEIGHT * shared + count_sum / n_liked)
    # MIN_DF counts the liked papers too: a phrase only they share is kept (measured better
    # than leaving it out on the dev sets' like mode: it lifts them in the feedback pass)
    usable = (df >= MIN_DF) & (df <= MAX_DF_SHARE * n)
    order = [i for i in np.lexsort((np.asarray(keys), -weight)).tolist() if usable[i]]
    return [wording[keys[i]] for i in order[:k]]
