"""``/unsubscribe``: the page behind an email's link and RFC 8058 one-click POSTs.

``GET /unsubscribe?t=TOKEN`` shows a confirmation page with a POST button and
changes nothing (mail scanners follow links). ``POST /unsubscribe?t=TOKEN`` (mail
providers send the body ``List-Unsubscribe=One-Click``, form-urlencoded or as
multipart/form-data; our form sends it too, and
``t`` may come in the form instead of the query) records the opt-out and answers
200 with a page: no login, no redirect. A malformed token is 400, one whose
signature does not match (forged, altered, another reader's) 403; nothing changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from digestbot.errors import TokenError
from digestbot.newsletter import read_token
from digestbot.render import render_template
from digestbot.store import SqlStore
from digestbot.store.subscribers import record_unsubscribe

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment
else:  # pragma: no cover - typing only
    StartResponse = WSGIEnvironment = Any

log = logging.getLogger(__name__)

TEMPLATE = "email/unsubscribe.html.j2"
MAX_FORM_BYTES = 16_384


def _utcnow() -> datetime:
    return datetime.now(UTC)


def parse_form(raw: bytes, content_type: str) -> dict[str, list[str]]:
    """A POST body as ``parse_qs`` gives it, from ``application/x-www-form-urlencoded`` or
    ``multipart/form-data`` (RFC 8058 allows either for the one-click POST)."""
    if not content_type.lower().startswith("multipart/form-data"):
        return parse_qs(raw.decode("utf-8", "replace"))
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    message = BytesParser(policy=default_policy).parsebytes(head + raw)
    form: dict[str, list[str]] = {}
    if not message.is_multipart():
        return form
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str) and part.get_filename() is None:
            value = part.get_payload(decode=True)
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else ""
            form.setdefault(name, []).append(text.strip())
    return form


class UnsubscribeApp:
    """The WSGI handler; ``clock`` gives the time recorded with an opt-out."""

    def __init__(
        self,
        store: SqlStore,
        *,
        secret: str,
        templates_dir: Any = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.store = store
        self.secret = secret
        self.templates_dir = templates_dir
        self.clock = clock

    def _page(self, start_response: StartResponse, status: str, **context: Any) -> list[bytes]:
        context = {"address": "", "profile": "", "token": "", "reason": "", **context}
        body = render_template(TEMPLATE, templates_dir=self.templates_dir, **context)
        data = body.encode("utf-8")
        start_response(
            status,
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(data))),
                ("Cache-Control", "no-store"),
                ("Referrer-Policy", "no-referrer"),
                ("X-Content-Type-Options", "nosniff"),
                (
                    "Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
                ),
            ],
        )
        return [data]

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        query = parse_qs(environ.get("QUERY_STRING") or "")
        form: dict[str, list[str]] = {}
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(min(length, MAX_FORM_BYTES)) if length else b""
            form = parse_form(raw, environ.get("CONTENT_TYPE") or "")
        token = (query.get("t") or form.get("t") or [""])[0]
        try:
            profile, address = read_token(self.secret, token)
        except TokenError as exc:
            status = "400 Bad Request" if exc.is_malformed else "403 Forbidden"
            log.info("unsubscribe refused: %s", exc)
            return self._page(start_response, status, state="invalid", reason=str(exc))
        if method != "POST":
            return self._page(
                start_response,
                "200 OK",
                state="confirm",
                profile=profile,
                address=address,
                token=token,
            )
        if form.get("List-Unsubscribe") != ["One-Click"]:
            return self._page(
                start_response,
                "400 Bad Request",
                state="invalid",
                reason="a one-click unsubscribe is a POST of List-Unsubscribe=One-Click",
            )
        if record_unsubscribe(self.store, profile=profile, address=address, now=self.clock()):
            log.info("unsubscribed %s from %s", address, profile)
        return self._page(start_response, "200 OK", state="done", profile=profile, address=address)
