"""Fetch a feed over HTTP, politely: the only module that talks to httpx.

- Conditional GET: the ETag and Last-Modified of the last answer are sent back
  (``If-None-Match`` / ``If-Modified-Since``); a 304 is "not modified".
- A ``User-Agent`` naming digestbot, its version and its home page.
- A timeout per request: ``timeout`` bounds each wait on the socket and also the
  whole request (a server trickling a byte every few seconds is cut off once the
  answer has taken ``timeout``; the check is made as each piece arrives, so the
  request lasts at most about twice ``timeout``); bounded retries on timeouts, connection errors and
  500/502/504 (exponential back-off), and on 429/503 after ``Retry-After``
  (seconds or an HTTP date) when that is within ``retry_after_cap``; a longer
  wait fails the poll with the server's wish in the message instead of blocking.
- At most one request per 3 seconds to arXiv hosts (arXiv's terms of use),
  process-wide, whatever the feed.
- Bodies larger than ``max_bytes`` are refused, on the wire and once decompressed:
  digestbot asks for ``gzip, deflate`` only and inflates them itself, never more
  than ``max_bytes`` (httpx would inflate a whole network read at once, so a few
  kilobytes gzipped twice became gigabytes in memory before any size check).

Clock and sleep are injected, so tests never wait.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from digestbot import __version__
from digestbot.errors import FetchError
from digestbot.redact import redact_url, redact_urls

log = logging.getLogger(__name__)

HOME_PAGE = "https://github.com/digestbot/digestbot"
USER_AGENT = f"digestbot/{__version__} (+{HOME_PAGE})"
ARXIV_HOSTS = ("arxiv.org",)
ARXIV_INTERVAL = 3.0
RETRY_STATUSES = frozenset({500, 502, 504})
RETRY_AFTER_STATUSES = frozenset({429, 503})
MAX_BYTES = 50 * 1024 * 1024
ACCEPT_ENCODING = "gzip, deflate"  # the codings ``_inflate`` reads, bounded
_GZIP_WBITS = 16 + zlib.MAX_WBITS

Sleep = Callable[[float], None]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: int  # 200 (or another 2xx) or 304
    body: bytes
    etag: str | None
    last_modified: str | None
    content_type: str | None
    attempts: int = 1
    moved_to: str | None = None  # where a permanent redirect (301, 308) led: the new URL

    def moved_warning(self, source: str) -> list[str]:
        """A warning when the feed has moved for good (its old URL may stop redirecting)."""
        if self.moved_to is None:
            return []
        moved = redact_url(self.moved_to)
        return [f"{source}: moved permanently to {moved}: update its url in the config"]

    @property
    def is_not_modified(self) -> bool:
        return self.status == 304


class HostRateLimiter:
    """At most one request per ``interval`` seconds to hosts ending in one of ``hosts``."""

    def __init__(
        self,
        *,
        interval: float = ARXIV_INTERVAL,
        hosts: tuple[str, ...] = ARXIV_HOSTS,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.interval = interval
        self.hosts = hosts
        self.clock = clock
        self.sleep = sleep
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def _group(self, host: str) -> str | None:
        host = host.lower().rstrip(".")
        for suffix in self.hosts:
            if host == suffix or host.endswith("." + suffix):
                return suffix
        return None

    def wait(self, host: str) -> float:
        """Block until a request to ``host`` is allowed; returns the seconds waited."""
        group = self._group(host)
        if group is None:
            return 0.0
        with self._lock:
            last = self._last.get(group)
            now = self.clock()
            delay = 0.0 if last is None else max(0.0, last + self.interval - now)
            if delay > 0:
                self.sleep(delay)
            self._last[group] = now + delay
        return delay


# One limiter per process: arXiv's limit is per client, not per feed.
DEFAULT_LIMITER = HostRateLimiter()


def build_http_client(*, timeout: float = 30.0) -> httpx.Client:
    """The production client: our User-Agent, redirects followed, proxies from the env."""
    return httpx.Client(
        headers={"User-Agent": USER_AGENT},
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
    )


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _too_large(max_bytes: int, *, source: str, decoded: bool = False) -> FetchError:
    after = " once decompressed" if decoded else ""
    return FetchError(
        f"response larger than {max_bytes} bytes{after}, refused", source=source, status=200
    )


def _inflate(data: bytes, coding: str, *, max_bytes: int, source: str) -> bytes:
    """One ``Content-Encoding`` undone, producing at most ``max_bytes`` (else refused)."""
    if coding in ("gzip", "x-gzip"):
        attempts = [_GZIP_WBITS]
    elif coding == "deflate":  # zlib-wrapped as the RFC says, or raw as some servers send
        attempts = [zlib.MAX_WBITS, -zlib.MAX_WBITS]
    else:
        raise FetchError(f"unsupported Content-Encoding {coding!r}", source=source, status=200)
    for wbits in attempts:
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(data, max_bytes + 1)
            if len(out) <= max_bytes:
                out += inflater.flush()
        except zlib.error as exc:
            if wbits != attempts[-1]:
                continue
            raise FetchError(f"cannot decompress the {coding} body: {exc}", source=source) from None
        if len(out) > max_bytes:
            raise _too_large(max_bytes, source=source, decoded=True)
        return out
    raise AssertionError("unreachable")  # pragma: no cover


def _read(response: httpx.Response, *, max_bytes: int, source: str, deadline: float) -> bytes:
    """The body as sent (at most ``max_bytes``), then decompressed (at most ``max_bytes``)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_raw():
        if time.monotonic() > deadline:  # each read came in time, the whole answer did not
            raise httpx.ReadTimeout("the whole answer took too long", request=response.request)
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes, source=source)
        chunks.append(chunk)
    body = b"".join(chunks)
    codings = response.headers.get("Content-Encoding", "").lower().split(",")
    for coding in reversed([c.strip() for c in codings if c.strip()]):
        if coding != "identity":
            body = _inflate(body, coding, max_bytes=max_bytes, source=source)
    return body


def fetch_feed(
    client: httpx.Client,
    url: str,
    *,
    source: str,
    now: datetime,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: float = 30.0,
    attempts: int = 3,
    backoff: float = 2.0,
    retry_after_cap: float = 120.0,
    limiter: HostRateLimiter = DEFAULT_LIMITER,
    sleep: Sleep = time.sleep,
    max_bytes: int = MAX_BYTES,
) -> FetchResult:
    """GET ``url`` (conditionally); ``FetchError`` naming ``source`` when it cannot be had."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL as exc:
        raise FetchError(redact_urls(f"bad URL {url!r}: {exc}"), source=source) from None
    error = "no attempt made"
    status: int | None = None
    body = b""
    for attempt in range(1, attempts + 1):
        limiter.wait(host)
        delay = backoff * 2 ** (attempt - 1)
        deadline = time.monotonic() + timeout
        try:
            with client.stream(
                "GET", url, headers=headers, timeout=httpx.Timeout(timeout), follow_redirects=True
            ) as response:
                status = response.status_code
                moved = (
                    str(response.url)
                    if any(r.status_code in (301, 308) for r in response.history)
                    else None
                )
                if status == 304:  # validators may be refreshed by the 304 itself
                    return FetchResult(
                        status=304,
                        body=b"",
                        etag=response.headers.get("ETag") or etag,
                        last_modified=response.headers.get("Last-Modified") or last_modified,
                        content_type=None,
                        attempts=attempt,
                        moved_to=moved,
                    )
                body = _read(response, max_bytes=max_bytes, source=source, deadline=deadline)
                if 200 <= status < 300:
                    return FetchResult(
                        status=status,
                        body=body,
                        etag=response.headers.get("ETag"),
                        last_modified=response.headers.get("Last-Modified"),
                        content_type=response.headers.get("Content-Type"),
                        attempts=attempt,
                        moved_to=moved,
                    )
                error = f"HTTP {status} {response.reason_phrase}".strip()
                if status in RETRY_AFTER_STATUSES:
                    wait = parse_retry_after(response.headers.get("Retry-After"), now=now)
                    if wait is not None and wait > retry_after_cap:
                        raise FetchError(
                            f"{error}: the server asks to retry after {wait:.0f} s "
                            f"(more than {retry_after_cap:.0f} s): not retried now",
                            source=source,
                            status=status,
                            body=body,
                        )
                    delay = wait if wait is not None else delay
                elif status not in RETRY_STATUSES:
                    raise FetchError(error, source=source, status=status, body=body)
        except httpx.TimeoutException:
            status, body = None, b""
            error = f"timed out after {timeout:g} s"
        except httpx.TooManyRedirects:
            raise FetchError("too many redirects", source=source) from None
        except httpx.UnsupportedProtocol as exc:
            raise FetchError(redact_urls(f"unsupported URL: {exc}"), source=source) from None
        except httpx.TransportError as exc:
            status, body = None, b""
            error = redact_urls(f"cannot connect: {exc or type(exc).__name__}")
        if attempt < attempts:
            log.info(
                "%s: %s; retry %d of %d in %.1f s", source, error, attempt, attempts - 1, delay
            )
            sleep(delay)
    raise FetchError(
        f"{error} (after {attempts} attempts)", source=source, status=status, body=body
    )
