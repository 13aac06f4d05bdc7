"""Figures for the Slack app (issue 6). Prints numbers; not a test.

1. ``/papers search`` answer time on N synthetic papers (made from the sample drops):
   - "answer": FTS5 query + rendering the Block Kit answer, in process
   - "end to end": a signed slash command POSTed to the real HTTP server until the
     answer reaches a local response_url stand-in
2. 50 concurrent slash commands on loopback: time until each is acknowledged (HTTP 200).

    python bench/slack.py                      # 100,000 and 1,000,000 papers
    python bench/slack.py --papers 100000 --queries 300

The synthetic databases are kept in --work (default /tmp/digestbot-bench) and reused.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import re
import sqlite3
import statistics
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rich.progress import Progress  # noqa: E402
from slack_sdk import WebClient  # noqa: E402

from digestbot.config import load_defaults_data, parse_settings  # noqa: E402
from digestbot.ids import title_id_of_key  # noqa: E402
from digestbot.server import build_http_server, build_router  # noqa: E402
from digestbot.slack_app import build_slack_app  # noqa: E402
from digestbot.slack_commands import PapersCommand  # noqa: E402
from digestbot.sources.drops import read_drop  # noqa: E402
from digestbot.store import SqlStore  # noqa: E402
from tests.slack_api import running_slack_api, sign  # noqa: E402

SECRET = "bench-secret"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
WORD = re.compile(r"[A-Za-z][A-Za-z-]{3,}")
STOP = {"with", "from", "that", "this", "their", "these", "which", "while", "into", "have"}


def sample_text() -> tuple[list[str], list[str], list[str]]:
    """Title words, abstract sentences and query words from the sample drops."""
    titles: list[str] = []
    sentences: list[str] = []
    for path in sorted((REPO / "seeds").glob("*.txt")):
        for paper in read_drop(path).papers:
            titles.append(paper.title)
            sentences += [s.strip() for s in re.split(r"(?<=\.)\s+", paper.abstract) if s.strip()]
    words = [w for t in titles for w in WORD.findall(t) if w.lower() not in STOP]
    return titles, sentences, words


def build_database(path: Path, count: int, *, seed: int = 7) -> None:
    """``count`` synthetic papers, inserted with executemany (the FTS triggers index them)."""
    if path.exists():
        return
    tmp = path.with_suffix(".building")
    for stale in tmp.parent.glob(tmp.name + "*"):
        stale.unlink()
    SqlStore.open(f"sqlite:///{tmp}").close()  # schema, FTS table and triggers
    titles, sentences, words = sample_text()
    rng = random.Random(seed)
    stamp = NOW.replace(tzinfo=None).isoformat(sep=" ")
    conn = sqlite3.connect(tmp)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    sql = (
        "INSERT INTO papers (id, title_key, tid, title, abstract, authors, urls, upvotes, extra, "
        "first_seen, last_seen, updated_at) VALUES (?, ?, ?, ?, ?, '[]', '[]', ?, '{}', ?, ?, ?)"
    )
    batch = 20_000
    started = time.perf_counter()
    with Progress(transient=True) as progress:
        task = progress.add_task(f"generating {count:,} papers", total=count)
        for start in range(0, count, batch):
            rows = []
            for i in range(start, min(start + batch, count)):
                base = rng.choice(titles).split()
                extra = rng.sample(words, 3)
                title = " ".join(base[: rng.randint(3, len(base))] + extra)
                abstract = " ".join(rng.sample(sentences, rng.randint(3, 6)))
                rows.append(
                    (
                        f"syn.{i:08d}",
                        f"syn {i}",
                        title_id_of_key(f"syn {i}"),
                        title,
                        abstract,
                        rng.randint(0, 50),
                        stamp,
                        stamp,
                        stamp,
                    )
                )
            with conn:
                conn.executemany(sql, rows)
            progress.advance(task, len(rows))
    conn.execute("PRAGMA optimize")
    conn.close()
    tmp.rename(path)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    print(
        f"  generated {count:,} papers in {time.perf_counter() - started:.0f} s "
        f"({path.stat().st_size / 1e9:.2f} GB)"
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(label: str, ms: list[float]) -> None:
    print(
        f"  {label}: n={len(ms)} p50={percentile(ms, 50):.1f} ms "
        f"p95={percentile(ms, 95):.1f} ms p99={percentile(ms, 99):.1f} ms "
        f"max={max(ms):.1f} ms mean={statistics.fmean(ms):.1f} ms"
    )


def queries(n: int, *, seed: int = 11) -> list[str]:
    _, _, words = sample_text()
    rng = random.Random(seed)
    return [" ".join(rng.sample(words, rng.choice((1, 2, 2, 3)))) for _ in range(n)]


def command_body(text: str, response_url: str, n: int) -> bytes:
    return urlencode(
        {
            "token": "x",
            "team_id": "T1",
            "team_domain": "lab",
            "channel_id": "C1",
            "channel_name": "papers",
            "user_id": f"U{n % 97}",
            "user_name": "bench",
            "command": "/papers",
            "text": text,
            "api_app_id": "A1",
            "response_url": response_url,
            "trigger_id": f"t.{n}",
        }
    ).encode()


def post(url: str, body: bytes) -> int:
    ts = int(time.time())
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SECRET, body, ts)}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        return int(response.status)


def bench_database(path: Path, *, n_queries: int, concurrency: int, rounds: int) -> None:
    data = load_defaults_data()
    data["database_url"] = f"sqlite:///{path}"
    data["slack"] = {"bot_token": "xoxb-bench", "signing_secret": SECRET}
    settings = parse_settings(data, env={})
    store = SqlStore.open(settings.database_url)
    print(f"{path.name}: {store.count_papers():,} papers")
    command = PapersCommand(settings, store, now=lambda: NOW, lookup_timezone=lambda _u: None)
    texts = queries(n_queries)
    for text in texts[:20]:  # warm the page cache
        command.search_page(text)
    answer_ms = []
    for text in texts:
        started = time.perf_counter()
        answer = command.search_page(text)
        answer_ms.append((time.perf_counter() - started) * 1000)
        assert answer["blocks"], text
    summary("/papers search answer (query + blocks)", answer_ms)

    # "Slack" (the load generator and the Web API / response_url stand-in) runs in its own
    # process, as it would: the server's threads do not share a GIL with the client's
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    slack_side = context.Process(
        target=play_slack, args=(theirs, texts, concurrency, rounds), daemon=True
    )
    slack_side.start()
    base = ours.recv()
    client = WebClient(token="xoxb-bench", base_url=f"{base}/api/")
    app = build_slack_app(settings, store, client=client)
    server = build_http_server(build_router(slack_app=app), host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        ours.send(f"http://127.0.0.1:{server.server_port}/slack/events")
        e2e_ms, ack_ms, answered_ms = ours.recv()
        summary("/papers search end to end (signed POST -> response_url)", e2e_ms)
        print(
            f"  {concurrency} concurrent commands: all answered in "
            f"{statistics.median(answered_ms):.0f} ms (median of {rounds} rounds)"
        )
        summary(f"ack under {concurrency} concurrent slash commands ({rounds} rounds)", ack_ms)
    finally:
        slack_side.join(30)
        server.shutdown()
        server.server_close()
        store.close()


def play_slack(conn: Connection, texts: list[str], concurrency: int, rounds: int) -> None:
    """Slack's side, in a child process: send signed commands, receive the answers."""
    with running_slack_api(token="xoxb-bench") as slack:
        conn.send(slack.base)
        url = conn.recv()
        e2e_ms = []
        for n, text in enumerate(texts[:100]):
            started = time.perf_counter()
            assert post(url, command_body(f"search {text}", slack.response_url(f"q{n}"), n)) == 200
            slack.wait_for("respond", count=n + 1, timeout=30)
            e2e_ms.append((time.perf_counter() - started) * 1000)
        ack_ms: list[float] = []
        answered_ms: list[float] = []
        lock = threading.Lock()
        done = len(e2e_ms)
        for r in range(rounds):
            barrier = threading.Barrier(concurrency)
            bodies = [
                command_body(
                    f"search {texts[(r * concurrency + i) % len(texts)]}",
                    slack.response_url(f"c{r}.{i}"),
                    r * concurrency + i,
                )
                for i in range(concurrency)
            ]

            def one(body: bytes, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                started = time.perf_counter()
                status = post(url, body)
                elapsed = (time.perf_counter() - started) * 1000
                assert status == 200
                with lock:
                    ack_ms.append(elapsed)

            workers = [threading.Thread(target=one, args=(body,)) for body in bodies]
            for w in workers:
                w.start()
            started = time.perf_counter()
            for w in workers:
                w.join()
            done += concurrency
            slack.wait_for("respond", count=done, timeout=120)
            answered_ms.append((time.perf_counter() - started) * 1000)
            time.sleep(0.5)
        conn.send((e2e_ms, ack_ms, answered_ms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--papers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--work", type=Path, default=Path("/tmp/digestbot-bench"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    for count in args.papers:
        path = args.work / f"slack-{count}.sqlite3"
        build_database(path, count)
        bench_database(
            path, n_queries=args.queries, concurrency=args.concurrency, rounds=args.rounds
        )
    print(json.dumps({"note": "p95 targets: < 50 ms at 100k, < 300 ms at 1M; ack p99 < 1 s"}))


if __name__ == "__main__":
    main()
