"""A real HTTP server on 127.0.0.1 that serves feed fixtures, for fetch and poll tests.

Each path serves a ``Route``: a body with an ETag and Last-Modified (answered
304 when the client sends them back), or a script of canned answers taken one
per request (a 429 with Retry-After, a 500, a slow answer...), then the body.
Every request is recorded with its headers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a timeout)
    trickle: float = 0.0  # seconds between bytes of the body (a server that never stalls long)


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    script: list[Answer] = field(default_factory=list)


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(
                    Seen(self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                route = server.routes.get(self.path)
                if route is None:
                    self._send(404, b"not found", {"Content-Type": "text/plain"})
                    return
                if route.script:
                    answer = route.script.pop(0)
                    if answer.delay and server.stop.wait(answer.delay):
                        return
                    self._send(answer.status, answer.body, answer.headers, trickle=answer.trickle)
                    return
                headers = {"Content-Type": route.content_type}
                if route.etag:
                    headers["ETag"] = route.etag
                if route.last_modified:
                    headers["Last-Modified"] = route.last_modified
                etag_hit = route.etag and self.headers.get("If-None-Match") == route.etag
                date_hit = (
                    not route.etag
                    and route.last_modified
                    and self.headers.get("If-Modified-Since") == route.last_modified
                )
                if etag_hit or date_hit:
                    self._send(304, b"", {k: v for k, v in headers.items() if k != "Content-Type"})
                    return
                self._send(200, route.body, headers)

            def _send(
                self, status: int, body: bytes, headers: dict[str, str], *, trickle: float = 0.0
            ) -> None:
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    if status != 304:
                        self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if status != 304 and trickle:
                        for byte in body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            if server.stop.wait(trickle):
                                return
                    elif status != 304:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def serving() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


# -- bodies built from the captured fixtures ------------------------------------------------
FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"
RSS_FIRST50 = FEEDS / "arxiv_rss_2024-11-28_all-archives_first50.xml"
HF_NEWER = FEEDS / "hf_daily_papers_api_2026-07_5-items_test-fixture.json"


@dataclass(frozen=True)
class RssItem:
    arxiv_id: str
    version: int
    title: str
    abstract: str = "An abstract."
    announce: str = "new"
    authors: str = "Ada Lovelace, Alan Turing"


def arxiv_rss(items: list[RssItem]) -> bytes:
    """An arXiv RSS document: the real fixture's channel with these items."""
    text = RSS_FIRST50.read_text("utf-8")
    head = text[: text.index("<item>")]
    body = "".join(
        f"""<item>
      <title>{escape(i.title)}</title>
      <link>https://arxiv.org/abs/{i.arxiv_id}</link>
      <description>arXiv:{i.arxiv_id}v{i.version} Announce Type: {i.announce}
Abstract: {escape(i.abstract)}</description>
      <guid isPermaLink="false">oai:arXiv.org:{i.arxiv_id}v{i.version}</guid>
      <category>cs.LG</category>
      <pubDate>Thu, 28 Nov 2024 00:00:00 -0500</pubDate>
      <arxiv:announce_type>{i.announce}</arxiv:announce_type>
      <dc:creator>{escape(i.authors)}</dc:creator>
    </item>
    """
        for i in items
    )
    return (head + body + "</channel>\n</rss>\n").encode("utf-8")


def hf_api(*, arxiv_id: str, title: str, upvotes: int, stars: int, authors: list[str]) -> bytes:
    """A daily-papers API answer: the real newer-schema item with these values."""
    item = json.loads(HF_NEWER.read_bytes())[0]
    item["paper"].update(id=arxiv_id, title=title, upvotes=upvotes, githubStars=stars)
    item["paper"]["authors"] = [
        {"_id": f"a{n}", "name": a, "hidden": False} for n, a in enumerate(authors)
    ]
    item["title"] = title
    return json.dumps([item]).encode("utf-8")
