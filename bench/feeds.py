"""Feed figures: parse + merge throughput, and the CPU cost of a poll answered 304.

Run: ``.venv/bin/python bench/feeds.py [--runs 5] [--polls 300] [--database-url URL]``
(prints; not a test). ``--database-url`` (a PostgreSQL database): each store is a fresh
database ``bench_feeds`` on that server instead of a SQLite file.

1. A 1,000-item arXiv RSS feed, generated from the captured real feed
   (tests/fixtures/feeds, 50 items repeated 20 times with distinct ids and
   titles), parsed and merged into a fresh SQLite store: items/s (target
   >= 1,000). Also: the same feed merged again into the filled store, and
   feedparser alone, for comparison.
2. A poll of one feed that the server (a real HTTP server on 127.0.0.1, in
   another thread) answers 304: CPU time of the polling thread per poll
   (target < 10 ms), over many polls.
"""

from __future__ import annotations

import hashlib
import io
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import feedparser
import httpx

from digestbot.config import FeedSettings
from digestbot.polling import poll_feed, store_feed_items
from digestbot.sources.feeds import parse_feed
from digestbot.sources.fetch import FetchResult, HostRateLimiter
from digestbot.store import SqlStore

SERVER: str | None = None  # ``--database-url``: stores go on this PostgreSQL server


def fresh_store(tmp: str) -> SqlStore:
    """An empty store: a SQLite file in ``tmp``, or a new database on ``SERVER``."""
    if SERVER is None:
        return SqlStore.open(f"sqlite:///{tmp}/bench.sqlite3")
    from bench.databases import server_database

    return SqlStore.open(server_database(SERVER, "bench_feeds"))


ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "feeds" / "arxiv_rss_2024-11-28_all-archives_first50.xml"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def thousand_item_feed() -> bytes:
    text = FIXTURE.read_text("utf-8")
    head, rest = text.split("<item>", 1)
    items = "<item>" + rest.rsplit("</item>", 1)[0] + "</item>"
    tail = rest.rsplit("</item>", 1)[1]
    copies = []
    for copy in range(20):
        block = items
        for n in range(50):
            old = f"2411.{17700 + n}"
            new = f"2411.{20000 + copy * 50 + n}"
            block = block.replace(old, new)
        copies.append(block.replace("</title>", f" (part {copy})</title>"))
    return (head + "".join(copies) + tail).encode("utf-8")


def _timed(func: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = func()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def bench_parse_merge(runs: int) -> None:
    data = thousand_item_feed()
    feed = FeedSettings(name="bench", url="http://127.0.0.1/bench")
    result = FetchResult(200, data, None, None, "application/rss+xml")
    sha = hashlib.sha256(data).hexdigest()
    rates: dict[str, list[tuple[float, float]]] = {"feedparser": [], "fresh": [], "again": []}
    for _ in range(runs):
        doc, wall, cpu = _timed(
            lambda: feedparser.parse(
                io.BytesIO(data), sanitize_html=False, resolve_relative_uris=False
            )
        )
        rates["feedparser"].append((len(doc.entries) / wall, len(doc.entries) / cpu))
        with tempfile.TemporaryDirectory() as tmp:
            store = fresh_store(tmp)
            for label, now in (("fresh", NOW), ("again", NOW + timedelta(hours=1))):

                def work(now: datetime = now, store: SqlStore = store) -> Any:
                    parsed = parse_feed(data, name="bench")
                    return store_feed_items(store, feed, parsed, result, sha256=sha, now=now)

                outcome, wall, cpu = _timed(work)
                assert outcome.items == 1000, outcome
                assert (outcome.new if label == "fresh" else outcome.merged) == 1000, outcome
                rates[label].append((1000 / wall, 1000 / cpu))
            assert store.count_papers() == 1000
            store.close()
    names = {
        "feedparser": "feedparser alone (reference)",
        "fresh": "parse + merge into an empty store",
        "again": "parse + merge, all 1,000 already stored",
    }
    for key, label in names.items():
        walls = sorted(r[0] for r in rates[key])
        cpus = sorted(r[1] for r in rates[key])
        print(
            f"{label}: best {walls[-1]:,.0f} items/s wall "
            f"(median {statistics.median(walls):,.0f}); "
            f"best {cpus[-1]:,.0f} items/s CPU (median {statistics.median(cpus):,.0f})"
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    body = FIXTURE.read_bytes()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.send_header("ETag", '"v1"')
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


def bench_304(polls: int = 300) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    feed = FeedSettings(name="bench", url=f"http://{host!s}:{port}/rss")
    limiter = HostRateLimiter()
    with tempfile.TemporaryDirectory() as tmp, httpx.Client(trust_env=False) as http:
        store = fresh_store(tmp)
        first = poll_feed(store, feed, now=NOW, http=http, limiter=limiter)
        assert first.status == "ok", first
        cpu_ms, wall_ms = [], []
        for i in range(polls):
            now = NOW + timedelta(minutes=i + 1)
            wall, cpu = time.perf_counter(), time.thread_time()
            outcome = poll_feed(store, feed, now=now, http=http, limiter=limiter)
            cpu_ms.append((time.thread_time() - cpu) * 1000)
            wall_ms.append((time.perf_counter() - wall) * 1000)
            assert outcome.status == "not-modified", outcome
        store.close()
    server.shutdown()
    server.server_close()
    cpu_ms.sort()
    print(
        f"poll answered 304 ({polls} polls, CPU of the polling thread): "
        f"median {statistics.median(cpu_ms):.2f} ms, p95 {cpu_ms[int(polls * 0.95)]:.2f} ms, "
        f"max {cpu_ms[-1]:.2f} ms; wall median {statistics.median(wall_ms):.2f} ms"
    )


if __name__ == "__main__":
    import argparse
    import os
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="repetitions of the 1,000-item run")
    parser.add_argument("--polls", type=int, default=300, help="polls answered 304")
    parser.add_argument("--database-url", help="a PostgreSQL database: stores on its server")
    args = parser.parse_args()
    if args.database_url and not args.database_url.startswith("sqlite"):
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        SERVER = args.database_url
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {args.runs} runs")
    bench_parse_merge(args.runs)
    bench_304(args.polls)
