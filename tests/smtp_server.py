"""A real SMTP server (aiosmtpd) on 127.0.0.1 with STARTTLS and AUTH, for the email tests."""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

USER, PASSWORD = "digest", "s3cret-pass"


def body_of(message: EmailMessage, kind: str) -> str:
    """The message's ``plain`` or ``html`` body as text."""
    part = message.get_body((kind,))
    assert part is not None, f"no {kind} body"
    text: str = part.get_content()
    return text


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    session: int  # one number per connection
    tls: bool
    authenticated: bool

    @property
    def message(self) -> EmailMessage:
        return BytesParser(_class=EmailMessage, policy=default_policy).parsebytes(self.data)


@dataclass
class Handler:
    received: list[Received] = field(default_factory=list)
    reject_rcpt: dict[str, str] = field(default_factory=dict)  # address -> "550 ..."
    # next DATA replies, e.g. "451 ..." ("": take that message as usual)
    data_replies: list[str] = field(default_factory=list)
    mail_replies: list[str] = field(default_factory=list)  # next MAIL FROM replies, likewise
    sessions: dict[int, int] = field(default_factory=dict)
    # a limit checked only once the message is in (no SIZE in EHLO): "552 5.3.4" over it
    data_limit: int | None = None
    too_big: str = "552 5.3.4 Message too big for system"  # the reply over ``data_limit``
    mail_commands: list[str] = field(default_factory=list)  # every MAIL FROM, taken or not
    data_sizes: list[int] = field(default_factory=list)  # every message transferred, in bytes

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        reply = self.reject_rcpt.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            data = envelope.original_content or envelope.content
            self.data_sizes.append(len(data))
            reply = self.data_replies.pop(0) if self.data_replies else ""
            if reply:
                return reply
            if self.data_limit is not None and len(data) > self.data_limit:
                return self.too_big
            number = self.sessions.setdefault(id(session), len(self.sessions) + 1)
            self.received.append(
                Received(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    data=envelope.original_content or envelope.content,
                    session=number,
                    tls=session.ssl is not None,
                    authenticated=bool(session.authenticated),
                )
            )
        return "250 Message accepted"

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if address in r.rcpt_tos]


class _CountingSmtp(SMTP):
    """aiosmtpd's server, noting every MAIL command (it refuses one over SIZE itself,
    before any hook)."""

    async def smtp_MAIL(self, arg: str) -> None:
        handler = self.event_handler
        with handler.lock:
            handler.mail_commands.append(arg)
            reply = handler.mail_replies.pop(0) if handler.mail_replies else ""
        if reply:
            await self.push(reply)
            return
        await super().smtp_MAIL(arg)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _CountingSmtp(self.handler, **self.SMTP_kwargs)


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    """aiosmtpd requiring STARTTLS and AUTH; ``client_context`` trusts its certificate."""

    def __init__(
        self,
        ca: trustme.CA,
        *,
        port: int | None = None,
        size_limit: int | None = None,
        advertise_size: bool = True,
        too_big: str = "",
        smtputf8: bool = True,
    ) -> None:
        """``size_limit``: the largest message taken, in bytes (advertised as ``SIZE``: a
        larger one is refused at MAIL FROM, ``552 5.3.4``, or at DATA). Without
        ``advertise_size`` EHLO has no ``SIZE`` and the limit is checked once the message
        is in (``552 5.3.4`` at DATA, as a server that does not announce its limit; or the
        reply ``too_big``, such as a bare ``552``)."""
        self.ca = ca
        self.smtputf8 = smtputf8  # advertise SMTPUTF8 (RFC 6531), as aiosmtpd does by default
        self.size_limit = size_limit
        self.advertise_size = advertise_size
        self.port = port or free_port()
        self.handler = Handler(data_limit=None if advertise_size else size_limit)
        if too_big:
            self.handler.too_big = too_big
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
        self.server_context = server_context
        self.controller: Controller | None = None

    def _controller(self) -> Controller:
        limit: dict[str, Any] = {"data_size_limit": self.size_limit} if self.size_limit else {}
        if not self.advertise_size:
            limit = {"data_size_limit": None}  # no SIZE in EHLO, no limit at MAIL FROM
        return _Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=self.server_context,
            require_starttls=True,
            authenticator=_authenticate,
            auth_required=True,
            enable_SMTPUTF8=self.smtputf8,
            **limit,
        )

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def start(self) -> SmtpServer:
        self.controller = self._controller()
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
