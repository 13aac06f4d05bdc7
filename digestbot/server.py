"""The HTTP side of ``digestbot serve``: a path -> handler dispatcher and a threaded server.

Routes are plain WSGI apps, so a feature adds its endpoint with one
``router.add(...)`` line in ``build_router``:

- ``POST /slack/events``: Bolt's single endpoint (slash commands, interactivity)
- ``GET /healthz``: ``ok`` while the process serves
- ``GET|POST /unsubscribe``: the newsletter's unsubscribe page and one-click POST

The server is the standard library's ``wsgiref`` with a thread per request
(``ThreadingMixIn``), a deep listen backlog and a bound on request bodies.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from slack_bolt import App
else:  # pragma: no cover - typing only
    StartResponse = WSGIApplication = WSGIEnvironment = Any

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000  # Slack payloads are far smaller
SLACK_EVENTS_PATH = "/slack/events"
UNSUBSCRIBE_PATH = "/unsubscribe"


def _plain(start_response: StartResponse, status: str, text: str, **headers: str) -> list[bytes]:
    body = text.encode("utf-8")
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *headers.items(),
        ],
    )
    return [body]


class Router:
    """Dispatch on the exact path; 404 for unknown paths, 405 for unknown methods."""

    def __init__(self) -> None:
        self._routes: dict[str, tuple[frozenset[str], WSGIApplication]] = {}

    def add(self, path: str, handler: WSGIApplication, *, methods: Iterable[str]) -> None:
        if path in self._routes:
            raise ValueError(f"route {path} is defined twice")
        self._routes[path] = (frozenset(m.upper() for m in methods), handler)

    @property
    def paths(self) -> list[str]:
        return sorted(self._routes)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        route = self._routes.get(environ.get("PATH_INFO") or "/")
        if route is None:
            return _plain(start_response, "404 Not Found", "not found\n")
        methods, handler = route
        if environ.get("REQUEST_METHOD", "GET").upper() not in methods:
            return _plain(
                start_response,
                "405 Method Not Allowed",
                "method not allowed\n",
                Allow=", ".join(sorted(methods)),
            )
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:  # a negative length would make the handler read until the peer closes
            return _plain(start_response, "400 Bad Request", "bad content length\n")
        if length > MAX_BODY_BYTES:
            return _plain(start_response, "413 Content Too Large", "request too large\n")
        return handler(environ, start_response)


def healthz(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    del environ
    return _plain(start_response, "200 OK", "ok\n")


def build_router(
    *, slack_app: App | None = None, unsubscribe: WSGIApplication | None = None
) -> Router:
    """Every HTTP endpoint digestbot serves (features add theirs here)."""
    router = Router()
    router.add("/healthz", healthz, methods=("GET", "HEAD"))
    if unsubscribe is not None:
        router.add(UNSUBSCRIBE_PATH, unsubscribe, methods=("GET", "POST"))
    if slack_app is not None:
        from slack_bolt.adapter.wsgi import SlackRequestHandler

        router.add(
            SLACK_EVENTS_PATH,
            SlackRequestHandler(slack_app, path=SLACK_EVENTS_PATH),
            methods=("POST",),
        )
    return router


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 256  # bursts of concurrent slash commands must not hit SYN retries
    allow_reuse_address = True


class _LoggingHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def build_http_server(app: WSGIApplication, *, host: str, port: int) -> ThreadingWSGIServer:
    """Bind (port 0: any free port; see ``server.server_port``); call ``serve_forever``."""
    server = make_server(
        host, port, app, server_class=ThreadingWSGIServer, handler_class=_LoggingHandler
    )
    assert isinstance(server, ThreadingWSGIServer)
    return server
