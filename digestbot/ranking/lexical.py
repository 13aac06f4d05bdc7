"""BM25 over title and abstract, as sparse matrices (no per-paper loops in scoring).

Documents are indexed as unigrams and adjacent bigrams, so a two-word keyword is
matched as a phrase and a longer one by all of its bigrams.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import scipy.sparse as sp

from digestbot.models import Paper
from digestbot.ranking.text import tokenize

TITLE_WEIGHT = 3.0
K1 = 1.2
B = 0.75


def _terms(tokens: list[str]) -> list[str]:
    return tokens + [f"{a} {b}" for a, b in pairwise(tokens)]


@dataclass(frozen=True)
class LexicalIndex:
    vocabulary: dict[str, int]
    tf: sp.csr_matrix  # documents x terms, field-weighted term frequencies
    doc_len: np.ndarray
    idf: np.ndarray

    @classmethod
    def build(cls, papers: Sequence[Paper]) -> LexicalIndex:
        vocabulary: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        lengths = np.zeros(len(papers))
        for row, paper in enumerate(papers):
            title = tokenize(paper.title)
            abstract = tokenize(paper.abstract)
            lengths[row] = TITLE_WEIGHT * len(title) + len(abstract)
            for weight, tokens in ((TITLE_WEIGHT, title), (1.0, abstract)):
                for term in _terms(tokens):
                    rows.append(row)
                    cols.append(vocabulary.setdefault(term, len(vocabulary)))
                    vals.append(weight)
        tf = sp.csr_matrix(
            (
                np.asarray(vals),
                (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)),
            ),
            shape=(len(papers), max(len(vocabulary), 1)),
        )
        tf.sum_duplicates()
        df = np.bincount(tf.indices, minlength=tf.shape[1])
        n = max(len(papers), 1)
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        return cls(vocabulary=vocabulary, tf=tf, doc_len=lengths, idf=idf)

    def term_scores(self, terms: Sequence[str]) -> np.ndarray:
        """BM25 contribution of each query term to each document: documents x terms."""
        n_docs = self.tf.shape[0]
        out = np.zeros((n_docs, len(terms)))
        known = [(j, self.vocabulary[t]) for j, t in enumerate(terms) if t in self.vocabulary]
        if not known or n_docs == 0:
            return out
        cols = [c for _, c in known]
        sub = self.tf[:, cols].toarray()
        avg = self.doc_len.mean() or 1.0
        norm = K1 * (1 - B + B * self.doc_len / avg)
        bm25 = sub * (K1 + 1) / (sub + norm[:, None])
        bm25 *= self.idf[cols][None, :]
        for k, (j, _) in enumerate(known):
            out[:, j] = bm25[:, k]
        return out


def phrase_terms(phrase: str) -> list[str]:
    """The index terms that stand for a keyword: its unigram, or its bigrams."""
    tokens = tokenize(phrase)
    if len(tokens) <= 1:
        return tokens
    return [f"{a} {b}" for a, b in pairwise(tokens)]
