"""Fetching from a real HTTP server on 127.0.0.1: validators, retries, limits, timeouts."""

from __future__ import annotations

import gzip
import socket
import time
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from digestbot.errors import FetchError
from digestbot.sources.fetch import HostRateLimiter, fetch_feed, parse_retry_after
from tests.conftest import NOW
from tests.feed_server import Answer, FeedServer, Route

BODY = b"<rss version='2.0'><channel><title>t</title></channel></rss>"


class Sleeps:
    """An injected sleep that records instead of waiting, and a clock it moves."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.now = 1000.0

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def get(http: httpx.Client, url: str, sleeps: Sleeps | None = None, **kwargs: object):
    sleeps = sleeps or Sleeps()
    return fetch_feed(
        http,
        url,
        source="f",
        now=NOW,
        sleep=sleeps,
        limiter=HostRateLimiter(clock=sleeps.clock, sleep=sleeps),
        **kwargs,  # type: ignore[arg-type]
    )


def test_etag_round_trip_gives_304_and_user_agent_names_digestbot(
    server: FeedServer, http: httpx.Client
) -> None:
    server.routes["/f"] = Route(body=BODY, etag='"v1"')
    first = get(http, server.url("/f"))
    assert (first.status, first.body, first.etag) == (200, BODY, '"v1"')
    assert first.content_type == "application/rss+xml; charset=utf-8"
    second = get(http, server.url("/f"), etag=first.etag)
    assert second.is_not_modified and second.body == b""
    assert server.requests[1].headers["if-none-match"] == '"v1"'
    assert server.requests[0].headers["user-agent"].startswith("digestbot/0.1.0 (+https://")


def test_last_modified_round_trip(server: FeedServer, http: httpx.Client) -> None:
    stamp = "Thu, 28 Nov 2024 14:47:20 GMT"
    server.routes["/f"] = Route(body=BODY, last_modified=stamp)
    first = get(http, server.url("/f"))
    assert first.last_modified == stamp and first.status == 200
    second = get(http, server.url("/f"), last_modified=stamp)
    assert second.status == 304
    assert server.requests[1].headers["if-modified-since"] == stamp


def test_429_waits_for_retry_after_then_succeeds(server: FeedServer, http: httpx.Client) -> None:
    server.routes["/f"] = Route(body=BODY, script=[Answer(429, headers={"Retry-After": "7"})])
    sleeps = Sleeps()
    result = get(http, server.url("/f"), sleeps)
    assert result.status == 200 and result.attempts == 2
    assert sleeps.calls == [7.0]
    assert server.hits("/f") == 2


def test_503_with_an_http_date_retry_after(server: FeedServer, http: httpx.Client) -> None:
    when = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    server.routes["/f"] = Route(body=BODY, script=[Answer(503, headers={"Retry-After": when})])
    sleeps = Sleeps()
    assert get(http, server.url("/f"), sleeps).status == 200
    assert sleeps.calls == [30.0]


def test_retry_after_beyond_the_cap_fails_now_without_waiting(
    server: FeedServer, http: httpx.Client
) -> None:
    server.routes["/f"] = Route(body=BODY, script=[Answer(429, headers={"Retry-After": "3600"})])
    sleeps = Sleeps()
    with pytest.raises(FetchError) as caught:
        get(http, server.url("/f"), sleeps, retry_after_cap=120.0)
    assert "HTTP 429" in caught.value.message and "retry after 3600 s" in caught.value.message
    assert caught.value.status == 429
    assert sleeps.calls == [] and server.hits("/f") == 1


def test_500s_are_retried_with_backoff_a_bounded_number_of_times(
    server: FeedServer, http: httpx.Client
) -> None:
    server.routes["/f"] = Route(body=BODY, script=[Answer(500, b"oops")] * 3)
    sleeps = Sleeps()
    with pytest.raises(FetchError) as caught:
        get(http, server.url("/f"), sleeps, attempts=3, backoff=2.0)
    assert caught.value.message == "f: HTTP 500 Internal Server Error (after 3 attempts)"
    assert sleeps.calls == [2.0, 4.0]
    assert server.hits("/f") == 3


def test_a_500_then_success(server: FeedServer, http: httpx.Client) -> None:
    server.routes["/f"] = Route(body=BODY, script=[Answer(500)])
    assert get(http, server.url("/f")).body == BODY


def test_a_404_is_not_retried_and_keeps_the_body(server: FeedServer, http: httpx.Client) -> None:
    server.routes["/f"] = Route(script=[Answer(404, b"gone")])
    with pytest.raises(FetchError) as caught:
        get(http, server.url("/f"))
    assert caught.value.status == 404 and caught.value.body == b"gone"
    assert server.hits("/f") == 1


def test_a_timeout_is_retried_then_reported(server: FeedServer, http: httpx.Client) -> None:
    server.routes["/f"] = Route(body=BODY, script=[Answer(200, BODY, delay=5)] * 2)
    with pytest.raises(FetchError, match=r"timed out after 0.2 s \(after 2 attempts\)"):
        get(http, server.url("/f"), timeout=0.2, attempts=2)
    server.routes["/g"] = Route(body=BODY, script=[Answer(200, BODY, delay=5)])
    assert get(http, server.url("/g"), timeout=0.2, attempts=2).body == BODY


def test_a_body_trickled_byte_by_byte_times_out_on_the_whole_request(
    server: FeedServer, http: httpx.Client
) -> None:
    # each byte comes well within the timeout, but the whole body would take 8 s
    server.routes["/f"] = Route(body=BODY, script=[Answer(200, b"x" * 40, trickle=0.2)])
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"timed out after 1 s \(after 1 attempts\)"):
        get(http, server.url("/f"), timeout=1.0, attempts=1)
    assert time.monotonic() - started < 3.0


def test_a_refused_connection_is_a_fetch_error(http: httpx.Client) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match="cannot connect"):
        get(http, f"http://127.0.0.1:{port}/f", attempts=2)


def test_an_oversized_body_is_refused(server: FeedServer, http: httpx.Client) -> None:
    server.routes["/f"] = Route(body=b"x" * 5000)
    with pytest.raises(FetchError, match="larger than 1000 bytes"):
        get(http, server.url("/f"), max_bytes=1000)


def _gzip_of_zeros(size: int, *, times: int) -> bytes:
    body = b""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    body = b"".join(packer.compress(block) for _ in range(size >> 20)) + packer.flush()
    for _ in range(times - 1):
        body = gzip.compress(body, 9)
    return body


def test_a_gzip_bomb_is_refused_without_inflating_it_in_memory(
    server: FeedServer, http: httpx.Client
) -> None:
    # 256 MB of zeros gzipped twice: a few hundred bytes on the wire
    bomb = _gzip_of_zeros(256 << 20, times=2)
    assert len(bomb) < 10_000
    headers = {"Content-Encoding": "gzip, gzip", "Content-Type": "application/rss+xml"}
    server.routes["/f"] = Route(body=BODY, script=[Answer(200, bomb, headers)])
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match="larger than 1000000 bytes"):
            get(http, server.url("/f"), max_bytes=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_a_gzipped_feed_is_read_and_only_gzip_and_deflate_are_asked_for(
    server: FeedServer, http: httpx.Client
) -> None:
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/rss+xml"}
    server.routes["/f"] = Route(body=BODY, script=[Answer(200, gzip.compress(BODY), headers)])
    assert get(http, server.url("/f")).body == BODY
    assert server.requests[-1].headers["accept-encoding"] == "gzip, deflate"
    headers["Content-Encoding"] = "deflate"
    server.routes["/g"] = Route(body=BODY, script=[Answer(200, zlib.compress(BODY), headers)])
    assert get(http, server.url("/g")).body == BODY
    headers["Content-Encoding"] = "br"
    server.routes["/h"] = Route(body=BODY, script=[Answer(200, b"\x0b\x01\x80", headers)])
    with pytest.raises(FetchError, match="Content-Encoding 'br'"):
        get(http, server.url("/h"))


def test_arxiv_hosts_get_one_request_per_three_seconds() -> None:
    sleeps = Sleeps()
    limiter = HostRateLimiter(clock=sleeps.clock, sleep=sleeps)
    assert limiter.wait("rss.arxiv.org") == 0.0
    assert limiter.wait("export.arxiv.org") == 3.0  # one budget for every arXiv host
    sleeps.now += 1.0
    assert limiter.wait("arxiv.org") == 2.0
    assert limiter.wait("notarxiv.org") == 0.0 and limiter.wait("127.0.0.1") == 0.0
    assert sleeps.calls == [3.0, 2.0]


def test_the_limiter_spaces_real_requests(server: FeedServer, http: httpx.Client) -> None:
    server.routes["/f"] = Route(body=BODY)
    sleeps = Sleeps()
    limiter = HostRateLimiter(hosts=("127.0.0.1",), clock=sleeps.clock, sleep=sleeps)
    for _ in range(3):
        fetch_feed(http, server.url("/f"), source="f", now=NOW, limiter=limiter, sleep=sleeps)
    assert sleeps.calls == [3.0, 3.0] and server.hits("/f") == 3


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after("Mon, 23 Nov 2026 09:01:00 GMT", now=now) == 60.0
    assert parse_retry_after("Mon, 23 Nov 2026 08:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None, now=now) is None
