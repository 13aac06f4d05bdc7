"""The daemon's background embedding worker: missing vectors computed off the main path.

``digestbot run`` starts one ``EmbeddingWorker`` thread. It loads the model once
(the process keeps it: digests in the same process reuse it), then embeds the
papers without a vector, newest first, ``BATCH`` papers per transaction, so an
ingest or a digest never waits for more than one small write. Each chunk of papers
is followed by a chunk of title vectors (``ranking.title_weight``; in batches of
their own, ``TITLE_BATCHES`` times as many per transaction: a title embeds about ten
times faster). The thread runs at a lower CPU priority (nice +10, Linux: per thread,
and the torch threads it starts inherit it), so ingests and digests get the cores
first. Ranking meanwhile uses the vectors already stored and scores the other papers
on their lexical evidence (``semantic.fuse_available``).

What it embeds (``ranking.embed_backlog``): ``all`` papers missing a vector;
``recent``: those first seen in the last ``embed_since_days``; ``none``: only
papers first seen after the worker started (new ingests, never the old backlog).

It stops between two batches when asked (SIGTERM: at most one batch, about a
second), records its progress in the ``embedding_worker`` row (``digestbot
status``; its heartbeat on the database's clock, as the scheduler lock's, so
``status`` on another machine, or after this one's clock was stepped, judges it on
one clock), and reports a failure (the model does not load, the database is
unavailable) as the source ``embeddings``, retried after ``retry_seconds``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from digestbot.config import RankingSettings
from digestbot.errors import DigestError
from digestbot.ranking.semantic import (
    PAPER,
    Embedder,
    VectorKind,
    changed_texts,
    get_embedder,
    vector_kinds,
)
from digestbot.store import SqlStore
from digestbot.store.embeddings import (
    WorkerState,
    missing_embeddings,
    record_embeddings,
    record_worker_state,
)

log = logging.getLogger(__name__)

SOURCE = "embeddings"  # its name among the sources in ``digestbot status``
BATCH = 16  # papers per transaction (about a second of work on 2 cores)
TITLE_BATCHES = 4  # titles per transaction: this many batches (short texts, as quick a write)
CHUNK = 256  # papers read per query
NICE = 10

ResultFn = Callable[[bool, str | None], None]  # (ok, error): the source health entry


def lower_priority(increment: int = NICE) -> bool:
    """Lower the calling thread's CPU priority (Linux: nice is per thread). False if not."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + increment)
    except (AttributeError, OSError):
        return False
    return True


class EmbeddingWorker:
    """A thread that embeds missing papers until stopped; see the module docstring."""

    def __init__(
        self,
        store: SqlStore,
        settings: RankingSettings,
        *,
        holder: str,
        clock: Callable[[], datetime],
        embedder: Embedder | None = None,
        on_result: ResultFn | None = None,
        idle_seconds: float = 30.0,
        retry_seconds: float = 600.0,
        batch: int = BATCH,
        queries: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.settings = settings
        self.holder = holder
        self.clock = clock
        self.embedder = embedder if embedder is not None else get_embedder(settings)
        self.on_result = on_result
        self.idle_seconds = idle_seconds
        self.retry_seconds = retry_seconds
        self.batch = batch
        self.queries = list(queries)  # profile texts embedded right after the model loads
        self.started_at = clock()
        self.embedded = 0  # title + abstract vectors computed since started
        self.titles_embedded = 0
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._rate: float | None = None
        self._healthy: bool | None = None

    @property
    def is_enabled(self) -> bool:
        """False without a model (lexical ranking): then there is nothing to run."""
        return self.embedder is not None

    def since(self, now: datetime) -> datetime | None:
        """The oldest first-seen time the worker embeds (None: every paper)."""
        backlog = self.settings.embed_backlog
        if backlog == "recent":
            return now - timedelta(days=self.settings.embed_since_days)
        if backlog == "none":
            return self.started_at
        return None

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if not self.is_enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self.run, name="digestbot-embed", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """New papers were stored: look for work now instead of after the idle wait."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop after the current batch; True if the thread ended within ``timeout``."""
        self.stopping.set()
        self._wake.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the work -----------------------------------------------------------------------------
    def run(self) -> None:
        lower_priority()
        while not self.stopping.is_set():
            try:
                done = self.run_pass()
            except DigestError as exc:
                self._report(ok=False, error=str(exc), state="failed")
                log.error("embeddings: %s", exc, extra={"event": "source.failed", "source": SOURCE})
                self._sleep(self.retry_seconds)
                continue
            except Exception as exc:  # the top of a job: log it, keep the daemon alive
                log.exception("embedding worker failed", extra={"event": "job.crashed"})
                self._report(ok=False, error=f"{type(exc).__name__}: {exc}", state="failed")
                self._sleep(self.retry_seconds)
                continue
            if not done and not self.stopping.is_set():
                self._sleep(self.idle_seconds)
        self._write_state("stopped")

    def run_pass(self, *, limit: int | None = None) -> int:
        """Embed what is missing in scope (at most ``limit`` papers, and as many titles) until
        none is left or stopping; returns how many papers (title + abstract vectors)."""
        assert self.embedder is not None
        embedder = self.embedder
        done = {kind.name: 0 for kind in vector_kinds(self.settings)}
        active = list(vector_kinds(self.settings))
        while active and not self.stopping.is_set():
            for kind in list(active):  # a chunk of papers, then a chunk of their titles
                if self.stopping.is_set():
                    break
                most = None if limit is None else limit - done[kind.name]
                found, count = (False, 0) if most == 0 else self._chunk(embedder, kind, most)
                done[kind.name] += count
                if not found:
                    active.remove(kind)
        total = done[PAPER.name]
        if total or sum(done.values()):
            log.info(
                "embedded %d papers (%.1f papers/s) and %d titles",
                total,
                self._rate or 0.0,
                sum(done.values()) - total,
                extra={"event": "embeddings.done"},
            )
        self._report(ok=True, state="idle")
        return total

    def _chunk(self, embedder: Embedder, kind: VectorKind, most: int | None) -> tuple[bool, int]:
        """Embed the next ``CHUNK`` (at most ``most``) missing vectors of ``kind``, newest
        first: (whether any were missing, how many went through the model)."""
        model = kind.key(embedder.name)
        chunk = CHUNK if most is None else min(CHUNK, most)
        todo = missing_embeddings(
            self.store, model=model, limit=chunk, since=self.since(self.clock())
        )
        if not todo:
            return False, 0
        todo, texts = changed_texts(self.store, todo, model=model, kind=kind)
        if todo and not embedder.is_loaded:
            self._load_model(embedder)
        batch = self.batch if kind is PAPER else self.batch * TITLE_BATCHES
        count = 0
        for start in range(0, len(todo), batch):
            if self.stopping.is_set():
                break
            part, part_texts = todo[start : start + batch], texts[start : start + batch]
            began = time.monotonic()
            vectors = embedder.embed_background(part_texts)
            record_embeddings(
                self.store, part, vectors, model=model, now=self.clock(), texts=part_texts
            )
            count += len(part)
            if kind is PAPER:
                took = max(time.monotonic() - began, 1e-6)
                rate = len(part) / took
                self._rate = rate if self._rate is None else 0.8 * self._rate + 0.2 * rate
                self.embedded += len(part)
            else:
                self.titles_embedded += len(part)
            self._write_state("embedding")
        return True, count

    def _load_model(self, embedder: Embedder) -> None:
        """Load the model once, here on the worker's thread and not in a digest, and embed the
        profiles' texts."""
        self._write_state("loading")
        began = time.monotonic()
        embedder.embed(["warm-up"])
        for text in self.queries:  # the configured profiles' digests then never wait for it
            embedder.embed_query(text, store=self.store)
        log.info(
            "embedding model %s loaded in %.1f s",
            embedder.name,
            time.monotonic() - began,
            extra={"event": "embeddings.model-loaded"},
        )

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _report(self, *, ok: bool, state: str, error: str | None = None) -> None:
        self._write_state(state, error=error)
        if self.on_result is not None and (not ok or self._healthy is not True):
            self.on_result(ok, error)  # a change, or a failure (counted): not every idle pass
        self._healthy = ok

    def _write_state(self, state: str, *, error: str | None = None) -> None:
        if self.embedder is None:
            return
        try:
            record_worker_state(
                self.store,
                WorkerState(
                    holder=self.holder,
                    model=self.embedder.name,
                    state=state,
                    backlog=self.settings.embed_backlog,
                    embedded=self.embedded,
                    papers_per_second=round(self._rate, 2) if self._rate else None,
                    started_at=self.started_at,
                    updated_at=None,  # the heartbeat: the database's clock, as the lock's
                    error=error,
                ),
            )
        except DigestError as exc:
            log.warning("embeddings: cannot record progress: %s", exc)
