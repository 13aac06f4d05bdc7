"""One error tree for everything digestbot reports to a user.

::

    DigestError                 caught at the CLI edge: one line on stderr, exit 2
    ├── ConfigError             bad config file, key or value (file, key path)
    ├── NotFoundError           an unknown profile, paper or feed named by the user
    ├── SourceError             a drop file or feed that cannot be read (source, line)
    │   ├── ParseError          a drop that is not a Hugging Face daily-papers dump
    │   ├── FetchError          a feed that could not be fetched (HTTP status, timeout)
    │   └── FeedError           a feed whose body is its server's error (arXiv, HF API)
    ├── StoreError              the database failed or holds something unexpected
    │   └── LockHeldError       another scheduler holds this database (names the holder)
    ├── RenderError             a template failed to render
    ├── AddressError            an email address that is not one (names the address)
    ├── TokenError              an unsubscribe token that is malformed or not ours
    └── DeliveryError           a destination refused or could not be reached
        └── ContentRefusedError Slack refused a message for its content (invalid_blocks…)

Messages name the values that identify the failure and keep them as attributes.
They never contain secrets.
"""

from __future__ import annotations


class DigestError(Exception):
    """Root of every error digestbot raises on purpose."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(DigestError):
    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        where = ": ".join(part for part in (path, key) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.detail = message
        self.path = path
        self.key = key


class NotFoundError(DigestError):
    def __init__(self, kind: str, name: str, *, known: list[str] | None = None) -> None:
        hint = f" (known: {', '.join(known)})" if known else ""
        super().__init__(f"unknown {kind} {name!r}{hint}")
        self.kind = kind
        self.name = name


class SourceError(DigestError):
    def __init__(self, message: str, *, source: str, line: int | None = None) -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")
        self.source = source
        self.line = line


class ParseError(SourceError):
    """A drop file that is not text or not a daily-papers dump."""


class FetchError(SourceError):
    """A feed the network did not give us: HTTP status, timeout, refused connection.

    ``status`` is the last HTTP status (None without a response); ``body`` the
    error response's body, kept so that arXiv's own error message can be read.
    """

    def __init__(
        self, message: str, *, source: str, status: int | None = None, body: bytes = b""
    ) -> None:
        super().__init__(message, source=source)
        self.status = status
        self.body = body


class FeedError(SourceError):
    """The feed's server answered with an error document; the message is the server's."""


class StoreError(DigestError):
    pass


class LockHeldError(StoreError):
    """A second ``digestbot run`` on a database another scheduler holds."""

    def __init__(self, message: str, *, name: str, holder: str) -> None:
        super().__init__(message)
        self.name = name
        self.holder = holder


class RenderError(DigestError):
    def __init__(self, message: str, *, template: str) -> None:
        super().__init__(f"template {template}: {message}")
        self.template = template


class AddressError(DigestError):
    def __init__(self, message: str, *, address: str) -> None:
        super().__init__(f"{address!r}: {message}")
        self.address = address


class TokenError(DigestError):
    """A forged, altered or malformed unsubscribe token (``is_malformed``: not even shaped
    like one)."""

    def __init__(self, message: str, *, is_malformed: bool = False) -> None:
        super().__init__(message)
        self.is_malformed = is_malformed


class DeliveryError(DigestError):
    def __init__(
        self, message: str, *, destination: str, reason: str = "", permanent: bool = False
    ) -> None:
        super().__init__(f"{destination}: {message}")
        self.destination = destination
        self.reason = reason or message
        self.permanent = permanent


class ContentRefusedError(DeliveryError):
    """Slack refused a message for what it holds (``invalid_blocks``, ``msg_too_long``…),
    not for where it goes: the same message would be refused again."""
