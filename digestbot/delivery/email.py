"""Email: one message per recipient over one reused SMTP connection.

The connection factory is injected (``build_smtp_factory`` makes one from the
settings: STARTTLS, SSL or none, then AUTH). Each message is multipart/alternative
(text + inlined HTML) with Message-ID, Date, List-Id and List-Unsubscribe. A 4xx
reply or a dropped connection is retried with backoff (bounded); a 5xx fails that
recipient only. Header values are folded to one line, so a CR/LF in any text
cannot add a header.

A message goes out in the largest form the server takes: in full (text + HTML), else as
compact HTML (``OutgoingEmail.compact``: text + an HTML part without the abstracts), else
as plain text only (no HTML part: about a sixth of the size with abstracts), else as plain
text listing only its first papers (``OutgoingEmail.cut``: a line says the others come in
the next digest; ``EmailResult.kept`` says how many went). A server that advertises
``SIZE`` (RFC 1870) is never sent a form over it: the one that fits goes at once. A form
refused for itself, not for its recipient or sender (``5.3.4`` / ``5.2.3`` / a bare ``552``:
too large; ``5.6.x``: its content), is followed at once by a smaller one (a content refusal
goes straight to the plain text and stops there; a size refusal without ``SIZE`` cuts the
list to 3/4 of the refused size each time, ``MAX_FORMS`` sends in all). What one reader's
refusal taught holds for every reader of the same content in that ``send_all``: a
newsletter too large is refused once, not once per reader. Not so a bare ``552`` (no
enhanced status code) once the message was in: RFC 5321's "exceeded storage allocation"
may be that reader's full mailbox, so it teaches that reader's ladder alone, unless
``UNSURE_READERS`` readers were so refused and no reader's server took that form. When no form
goes, the result says ``refused`` (the same message would be refused every day: not to be
retried).
"""

from __future__ import annotations

import logging
import queue
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr
from urllib.parse import quote

from digestbot.config import SmtpSettings
from digestbot.delivery.formats import EmailContent
from digestbot.errors import DeliveryError, DigestError
from digestbot.render import one_line

log = logging.getLogger(__name__)

SmtpFactory = Callable[[], smtplib.SMTP]
_BARE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+\Z")
# an internationalised bare address (RFC 6532: written as UTF-8, the server speaking SMTPUTF8)
_BARE_UTF8_ADDRESS = re.compile(r"[^\s<>\"(),:;@\\\[\]]+@[^\s<>\"(),:;@\\\[\]]+\Z")
_URL_SAFE = re.compile(r"[\x21-\x7e]+\Z")
FLUSH_EVERY, FLUSH_SECONDS = 100, 0.25  # parallel sending: how often on_idle is called
# Stands in for each reader's unsubscribe token in the shared body; replaced per message.
TOKEN_SLOT = "UNSUBSCRIBE-TOKEN-SLOT"  # noqa: S105 - a placeholder, not a secret


def build_smtp_factory(
    settings: SmtpSettings, *, ssl_context: ssl.SSLContext | None = None
) -> SmtpFactory:
    """A function that opens an authenticated connection as the settings say."""

    def connect() -> smtplib.SMTP:
        context = ssl_context or ssl.create_default_context()
        conn: smtplib.SMTP
        if settings.security == "ssl":
            conn = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            conn = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        try:
            if conn.sock is not None:  # small commands back to back: no Nagle delays
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.ehlo()
            if settings.security == "starttls":
                conn.starttls(context=context)
                conn.ehlo()
            if settings.username:
                password = settings.password.get_secret_value() if settings.password else ""
                conn.login(settings.username, password)
        except BaseException:
            conn.close()
            raise
        return conn

    return connect


def ascii_address(address: str) -> str:
    """``address`` with an internationalised domain in its ASCII (IDNA) form, as SMTP
    commands need it (``ada@bücher.de`` -> ``ada@xn--bcher-kva.de``); unchanged when already
    ASCII. A local part that is not ASCII stays so: only a server offering SMTPUTF8
    (RFC 6531) takes it."""
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return address
    return f"{local}@{domain}"


def sender_domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "localhost"


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    to: str
    content: EmailContent
    message_id: str  # "<...@domain>", stable across retries of the same digest
    profile: str
    # one-click unsubscribe (RFC 8058): the URL with TOKEN_SLOT, and this reader's token
    unsubscribe_url: str = ""
    unsubscribe_token: str = ""
    # too large even as plain text: ``cut(n)`` is the plain text listing only the first n
    # of its ``papers`` (and a line saying the others are offered again)
    papers: int = 0
    cut: Callable[[int], EmailContent] | None = field(default=None, compare=False, repr=False)
    # too large in full: ``compact()`` is the same email with no abstracts in its HTML (None:
    # its HTML is compact already, so there is no such middle form)
    compact: Callable[[], EmailContent] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class EmailResult:
    to: str
    ok: bool
    message_id: str
    error: str = ""
    permanent: bool = False
    bounced: bool = False  # the server refused this recipient for good (RCPT 5xx)
    refused: bool = False  # the server refused this message (size, content), even plain
    plain: bool = False  # sent as plain text only: the full message was refused
    compact: bool = False  # sent as compact HTML (no abstracts): the full message was refused
    refusal: str = ""  # why the larger forms were refused (``plain``, ``compact``, ``refused``)
    kept: int = 0  # sent listing only its first ``kept`` papers (0: all of them)
    at_data: bool = False  # refused once the message was in (DATA), not at MAIL FROM


@dataclass(frozen=True, slots=True)
class _Form:
    """How a mail goes out: in full, as compact HTML (no abstracts), as plain text, or as
    plain text with ``keep`` papers."""

    plain: bool
    keep: int = 0
    compact: bool = False

    def label(self) -> str:
        if self.keep:
            return f"listing {self.keep} paper{'' if self.keep == 1 else 's'}"
        if self.compact:
            return "as compact HTML"
        return "as plain text" if self.plain else "in full"


FULL, COMPACT, PLAIN = _Form(plain=False), _Form(plain=False, compact=True), _Form(plain=True)
MAX_FORMS = 7  # forms sent to one mail at most (each refused cut is 3/4 the size)
# readers of one content refused with a bare 552 (none taking that form) before it is taken
# for the server's size limit, as a 5.3.4 is at once: one full mailbox moves no one else
UNSURE_READERS = 3


@dataclass
class _Ladder:
    """What is known of one content's forms on this server (shared by its readers): the
    first form worth trying (``forms[start]``), the size a refusal taught (``cap``: larger
    messages were refused), why each larger form did not go, and the largest form of this
    content a reader's server took (``taken``, its index: a refusal of that form or a
    smaller one cannot be the server's size limit; compared by form, not by bytes, as each
    reader's own headers differ by a few bytes)."""

    start: int = 0
    cap: int | None = None
    reasons: list[tuple[_Form, str]] = field(default_factory=list)
    taken: int | None = None
    unsure: int = 0  # readers refused with a bare 552 (``refusal_kind``: ``unsure``)


def _copy(ladder: _Ladder, *, into: _Ladder) -> None:
    into.start, into.cap, into.reasons = ladder.start, ladder.cap, list(ladder.reasons)


def _forms(mail: OutgoingEmail) -> list[_Form]:
    """Every form of the mail, largest first."""
    cuts = range(mail.papers - 1, 0, -1) if mail.cut is not None else range(0)
    middle = [COMPACT] if mail.compact is not None else []
    return [FULL, *middle, PLAIN, *(_Form(plain=True, keep=k) for k in cuts)]


def _why(reasons: Sequence[tuple[_Form, str]]) -> str:
    """Why each larger form did not go: the first (the full message's) reason, then each
    other whole form's, then those of the cut lists."""
    if not reasons:
        return ""
    parts = [reasons[0][1]]
    parts += [f"{form.label()}: {why}" for form, why in reasons[1:] if not form.keep]
    cuts = [why for form, why in reasons[1:] if form.keep]
    if cuts:
        parts.append(f"cut to fewer papers: {'; '.join(cuts)}")
    return "; ".join(parts)


class _ConnectionFailed(Exception):
    def __init__(self, error: str, *, permanent: bool) -> None:
        super().__init__(error)
        self.error = error
        self.permanent = permanent


class EmailDeliverer:
    def __init__(
        self,
        connect: SmtpFactory,
        *,
        sender: str,
        reply_to: str | None = None,
        label: str = "smtp",
        max_attempts: int = 3,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        connections: int = 1,
    ) -> None:
        self.connect = connect
        self.sender = one_line(sender)
        self.reply_to = one_line(reply_to) if reply_to else None
        self.label = label
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.sleep = sleep
        self.connections = connections
        self._conn: smtplib.SMTP | None = None
        self._shared: dict[
            tuple[EmailContent, str, datetime, bool, str, bool], tuple[bytes, bytes]
        ] = {}
        self._eight_bit = False
        self._size_limit: int | None = None  # the server's SIZE (RFC 1870), when it says
        self._ladders: dict[EmailContent, _Ladder] = {}

    # -- messages ---------------------------------------------------------------------------
    def _headers(self, pairs: Sequence[tuple[str, str]], *, mail: OutgoingEmail) -> EmailMessage:
        msg = EmailMessage(policy=SMTP_POLICY)
        try:
            for name, value in pairs:
                msg[name] = one_line(value)  # a CR/LF in any value cannot start a header
        except ValueError as exc:
            raise DeliveryError(
                f"cannot build the message: {exc}", destination=f"email:{mail.to}"
            ) from exc
        return msg

    def _common_pairs(self, mail: OutgoingEmail, *, now: datetime) -> list[tuple[str, str]]:
        """The headers every recipient of this digest shares."""
        domain = sender_domain(self.sender)
        profile = one_line(mail.profile)
        pairs = [("Subject", mail.content.subject), ("From", self.sender)]
        if self.reply_to:
            pairs.append(("Reply-To", self.reply_to))
        pairs += [
            ("Date", format_datetime(now)),
            ("List-Id", f"{profile} <{profile}.digestbot.{domain}>"),
        ]
        if mail.unsubscribe_url:  # the URL is the reader's own: in _own_pairs
            pairs.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        else:
            pairs.append(("List-Unsubscribe", self._mailto(mail)))
        return pairs

    def _mailto(self, mail: OutgoingEmail) -> str:
        unsubscribe = parseaddr(self.reply_to or self.sender)[1]
        return f"<mailto:{unsubscribe}?subject={quote('unsubscribe ' + one_line(mail.profile))}>"

    def _own_pairs(self, mail: OutgoingEmail) -> list[tuple[str, str]]:
        pairs = [("To", _ascii_to(mail.to)), ("Message-ID", mail.message_id)]
        if mail.unsubscribe_url:
            url = mail.unsubscribe_url.replace(TOKEN_SLOT, mail.unsubscribe_token)
            pairs.append(("List-Unsubscribe", f"<{url}>, {self._mailto(mail)}"))
        return pairs

    def build_headers(self, mail: OutgoingEmail, *, now: datetime) -> EmailMessage:
        """Every header of the recipient's message (no body), each folded to one line."""
        pairs = self._common_pairs(mail, now=now) + self._own_pairs(mail)
        return self._headers(pairs, mail=mail)

    def build_message(self, mail: OutgoingEmail, *, now: datetime) -> EmailMessage:
        """The whole message: the headers, then multipart/alternative (text, HTML)."""
        msg = self.build_headers(mail, now=now)
        content = _personal(mail)
        msg.set_content(content.text)
        msg.add_alternative(content.html, subtype="html")
        return msg

    def message_bytes(
        self, mail: OutgoingEmail, *, now: datetime, eight_bit: bool = False, plain: bool = False
    ) -> bytes:
        """``build_message`` as wire bytes. What recipients share (the MIME body, the
        common headers) is encoded once per digest: 1,000 readers cost one encoding.
        With ``eight_bit`` (the server speaks 8BITMIME) parts whose lines fit go unencoded.
        A reader's unsubscribe token replaces ``TOKEN_SLOT`` in the encoded body when the
        slot survived the encoding whole; otherwise that reader's body is encoded alone.
        With ``plain`` the body is the text part alone (no HTML alternative)."""
        key = (mail.content, mail.profile, now, eight_bit, mail.unsubscribe_url, plain)
        cached = self._shared.get(key)
        if cached is None:
            common = self._headers(self._common_pairs(mail, now=now), mail=mail).as_bytes()
            # body: MIME-Version, Content-Type (boundary), blank line, the parts
            cached = (common.rstrip(b"\r\n") + b"\r\n", _body(mail.content, eight_bit, plain))
            if len(self._shared) >= 4:  # mails come grouped by digest: its few forms
                self._shared = {}
            self._shared[key] = cached
        common, body = cached
        own = self._own_bytes(mail)
        slots = mail.content.text.count(TOKEN_SLOT)
        slots += 0 if plain else mail.content.html.count(TOKEN_SLOT)
        if slots:
            slot = TOKEN_SLOT.encode("ascii")
            if body.count(slot) == slots and mail.unsubscribe_token.isascii():
                body = body.replace(slot, mail.unsubscribe_token.encode("ascii"))
            else:
                body = _body(_personal(mail), eight_bit, plain)
        return common + own + body

    def _own_bytes(self, mail: OutgoingEmail) -> bytes:
        """The reader's own headers as wire bytes. A bare ASCII address (every subscriber)
        and an ASCII URL are written directly (the email package's folding costs ~1 ms a
        header, a tenth of a newsletter's budget); anything else goes through it."""
        to = _ascii_to(mail.to)
        url = mail.unsubscribe_url.replace(TOKEN_SLOT, mail.unsubscribe_token)
        bare = _BARE_ADDRESS.match(to) or (not to.isascii() and _BARE_UTF8_ADDRESS.match(to))
        plain_url = not url or (_URL_SAFE.match(url) and self._mailto(mail).isascii())
        if _URL_SAFE.match(mail.message_id) and plain_url:
            if bare:  # UTF-8 only for a local part that is not ASCII (sent with SMTPUTF8)
                to_line = f"To: {to}".encode()
            else:  # "Name <address>": the email package encodes and folds the name
                to_line = self._headers([("To", to)], mail=mail).as_bytes().rstrip(b"\r\n")
            lines = [to_line, f"Message-ID: {mail.message_id}".encode("ascii")]
            if url:  # written as it is: folded by the email package, a long URL became
                # RFC 2047 encoded words, no longer a URL a mail client can POST to
                unsubscribe = f"List-Unsubscribe: <{url}>,\r\n {self._mailto(mail)}"
                lines.append(unsubscribe.encode("ascii"))
            return b"\r\n".join(lines) + b"\r\n"
        own = self._headers(self._own_pairs(mail), mail=mail).as_bytes()
        return own.rstrip(b"\r\n") + b"\r\n"

    # -- sending ----------------------------------------------------------------------------
    def send_all(
        self,
        mails: Sequence[OutgoingEmail],
        *,
        now: datetime,
        on_result: Callable[[OutgoingEmail, EmailResult], None],
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        """Send each mail; ``on_result`` is called after each, success or not, always in
        the calling thread. ``on_idle`` tells the caller to record what it was told: after
        each result over one connection; with ``connections`` > 1 (the mails shared among
        that many connections, each reused, in its own thread) after every
        ``FLUSH_EVERY`` results or ``FLUSH_SECONDS``, whichever comes first."""
        self._ladders = {}  # what a refusal taught holds for this run's readers only
        if self.connections > 1 and len(mails) > 1:
            self._send_parallel(mails, now=now, on_result=on_result, on_idle=on_idle)
            return
        idle = on_idle or (lambda: None)

        def report(mail: OutgoingEmail, result: EmailResult) -> None:
            on_result(mail, result)
            idle()

        self._send_serial(mails, now=now, on_result=report)

    def _clone(self) -> EmailDeliverer:
        clone = EmailDeliverer(
            self.connect,
            sender=self.sender,
            reply_to=self.reply_to,
            label=self.label,
            max_attempts=self.max_attempts,
            backoff=self.backoff,
            sleep=self.sleep,
        )
        clone._ladders = self._ladders  # one refusal teaches every connection
        return clone

    def _send_parallel(
        self,
        mails: Sequence[OutgoingEmail],
        *,
        now: datetime,
        on_result: Callable[[OutgoingEmail, EmailResult], None],
        on_idle: Callable[[], None] | None,
    ) -> None:
        count = min(self.connections, len(mails))
        results: queue.SimpleQueue[tuple[OutgoingEmail, EmailResult] | None] = queue.SimpleQueue()

        def work(share: Sequence[OutgoingEmail]) -> None:
            try:
                self._clone()._send_serial(
                    share, now=now, on_result=lambda m, r: results.put((m, r))
                )
            finally:
                results.put(None)

        threads = [
            threading.Thread(target=work, args=(mails[i::count],), daemon=True)
            for i in range(count)
        ]
        for thread in threads:
            thread.start()
        running, since, last = count, 0, time.monotonic()
        while running:
            item = results.get()
            if item is None:
                running -= 1
            else:
                on_result(*item)
                since += 1
            due = since >= FLUSH_EVERY or time.monotonic() - last >= FLUSH_SECONDS
            if on_idle is not None and since and (due or not running):
                on_idle()
                since, last = 0, time.monotonic()
        for thread in threads:
            thread.join()

    def _send_serial(
        self,
        mails: Sequence[OutgoingEmail],
        *,
        now: datetime,
        on_result: Callable[[OutgoingEmail, EmailResult], None],
    ) -> None:
        broken: _ConnectionFailed | None = None
        try:
            for mail in mails:
                if broken is not None:
                    on_result(mail, self._failed(mail, broken.error, broken.permanent))
                    continue
                try:
                    result = self._send_one(mail, now=now)
                except DeliveryError as exc:  # a header that cannot be built
                    result = self._failed(mail, exc.reason, True)
                except DigestError as exc:  # a shorter form that cannot be rendered
                    result = self._failed(mail, str(exc), True)
                except _ConnectionFailed as exc:
                    broken = exc
                    result = self._failed(mail, exc.error, exc.permanent)
                on_result(mail, result)
        finally:
            self.close()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                self._conn.close()
            self._conn = None

    def _failed(self, mail: OutgoingEmail, error: str, permanent: bool) -> EmailResult:
        return EmailResult(
            to=mail.to, ok=False, message_id=mail.message_id, error=error, permanent=permanent
        )

    def _open(self) -> smtplib.SMTP:
        if self._conn is None:
            try:
                self._conn = self.connect()
                self._eight_bit = bool(self._conn.has_extn("8bitmime"))
                self._size_limit = _advertised_size(self._conn)
            except smtplib.SMTPResponseException as exc:
                error = f"{self.label}: {exc.smtp_code} {_text(exc.smtp_error)}"
                if exc.smtp_code >= 500:
                    raise _ConnectionFailed(error, permanent=True) from exc
                raise
        return self._conn

    def _send_one(self, mail: OutgoingEmail, *, now: datetime) -> EmailResult:
        forms = _forms(mail)
        shared = self._ladders.setdefault(mail.content, _Ladder())
        ladder = _Ladder(shared.start, shared.cap, list(shared.reasons))
        own = False  # a refusal about this reader alone: what it taught is not shared
        counted = False  # this reader's bare 552 is counted in ``shared.unsure``
        for _ in range(MAX_FORMS):
            chosen: list[tuple[_Form, int]] = []

            def pick(chosen: list[tuple[_Form, int]] = chosen) -> bytes | None:
                found = self._choose(mail, forms, ladder, now=now)
                if found is None:
                    return None
                chosen[:] = [(found[0], len(found[1]))]
                return found[1]

            result = self._send_form(mail, pick)
            if not own and ladder.start > shared.start:  # the size limit: every reader's
                _copy(ladder, into=shared)
            if not chosen:  # no form fits the size limit (or the connection failed)
                return self._refused(mail, ladder) if result.refused else result
            form, size = chosen[0]
            if result.ok:
                index = forms.index(form)
                shared.taken = index if shared.taken is None else min(shared.taken, index)
                return self._sent(mail, form, ladder)
            if not result.refused:
                return result  # failed otherwise (a 4xx, the connection): retried as ever
            kind = refusal_kind(result.error, at_data=result.at_data)
            if kind == "unsure":
                # a bare 552 once the message was in: the server's size limit, or this
                # reader's full mailbox. A form as large went to another reader: the mailbox
                # (tried as plain text, then given up, as 5.2.2); else it may be the size, of
                # this reader alone: smaller forms for this reader, the others unmoved, until
                # UNSURE_READERS readers were so refused and none took the form (the server's
                # limit, not so many full mailboxes in a row)
                if shared.taken is not None and shared.taken <= forms.index(form):
                    kind, own = "other", True
                else:
                    if not counted:
                        shared.unsure += 1
                        counted = True
                    kind = "size"
                    own = own or shared.unsure < UNSURE_READERS
            ladder.reasons.append((form, result.error))
            index, plain = forms.index(form), forms.index(PLAIN)
            ladder.start = index + 1
            if kind in ("content", "other"):
                # the plain text may go (no HTML; a smaller message for a mailbox's quota), a
                # compact HTML or a shorter list would be refused as well
                ladder.start = plain if index < plain else len(forms)
            elif kind == "size":
                ladder.cap = size - 1 if not form.plain else size * 3 // 4
            own = own or kind == "other"
            if not own:  # about the message, not this reader: holds for every reader
                _copy(ladder, into=shared)
            if ladder.start < len(forms):
                log.warning(
                    "%s: the message to %s was refused %s (%s): sending it %s",
                    self.label,
                    mail.to,
                    form.label(),
                    result.error,
                    "with fewer papers"
                    if forms[ladder.start].keep
                    else forms[ladder.start].label(),
                )
        return self._refused(mail, ladder)

    def _choose(
        self, mail: OutgoingEmail, forms: Sequence[_Form], ladder: _Ladder, *, now: datetime
    ) -> tuple[_Form, bytes] | None:
        """The largest form from ``ladder.start`` within the size limit (the server's
        ``SIZE``, or what a refusal taught), with its bytes; None when none fits. The
        ladder moves to it, noting why the full and the plain form did not fit; the cut
        forms are searched by halves (their size grows with the papers kept)."""
        limit = min((n for n in (self._size_limit, ladder.cap) if n is not None), default=None)

        def data(index: int) -> bytes:
            form = forms[index]
            one = mail
            if form.keep and mail.cut is not None:
                one = replace(mail, content=mail.cut(form.keep))
            elif form.compact and mail.compact is not None:
                one = replace(mail, content=mail.compact())
            return self.message_bytes(one, now=now, eight_bit=self._eight_bit, plain=form.plain)

        def over(size: int) -> str:
            if limit == self._size_limit:
                return f"{size} bytes, over its SIZE limit of {limit}"
            return f"{size} bytes, over the {limit} it was found to take"

        index = ladder.start
        while index < len(forms):
            message = data(index)
            if limit is None or len(message) <= limit:
                ladder.start = index
                return forms[index], message
            if not forms[index].keep:
                ladder.reasons.append((forms[index], over(len(message))))
                index += 1
                continue
            # the cut forms: the smallest (one paper) first, then the largest that fits
            last = len(forms) - 1
            smallest = data(last) if last > index else message
            if len(smallest) > limit:
                ladder.reasons.append((forms[last], over(len(smallest))))
                break
            low, high = index + 1, last  # forms[high] fits, forms[index] does not
            while low < high:
                middle = (low + high) // 2
                if len(data(middle)) <= limit:
                    high = middle
                else:
                    low = middle + 1
            ladder.start = high
            return forms[high], data(high)
        ladder.start = len(forms)
        return None

    def _sent(self, mail: OutgoingEmail, form: _Form, ladder: _Ladder) -> EmailResult:
        return EmailResult(
            to=mail.to,
            ok=True,
            message_id=mail.message_id,
            plain=form.plain,
            compact=form.compact,
            refusal="" if form == FULL else _why(ladder.reasons),
            kept=form.keep,
        )

    def _refused(self, mail: OutgoingEmail, ladder: _Ladder) -> EmailResult:
        """No form of the mail went: refused for itself (the same would happen daily)."""
        reasons = ladder.reasons or [(FULL, "refused")]
        return EmailResult(
            to=mail.to,
            ok=False,
            message_id=mail.message_id,
            error=_why(reasons),
            permanent=True,
            refused=True,
            refusal=reasons[0][1],
        )

    def _send_form(self, mail: OutgoingEmail, pick: Callable[[], bytes | None]) -> EmailResult:
        """Send the bytes ``pick`` returns once connected (None: nothing to send, the result
        says ``refused``), retrying what is transient."""
        envelope_from = parseaddr(self.sender)[1]
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                conn = self._open()
                message = pick()
                if message is None:
                    return EmailResult(
                        to=mail.to, ok=False, message_id=mail.message_id, refused=True
                    )
                options = ["BODY=8BITMIME"] if self._eight_bit else []
                recipient = ascii_address(parseaddr(mail.to)[1] or mail.to)
                if not recipient.isascii():  # smtplib would raise UnicodeEncodeError
                    if not conn.has_extn("smtputf8"):
                        return self._failed(
                            mail,
                            "the address is not ASCII and the SMTP server does not offer "
                            "SMTPUTF8 (RFC 6531)",
                            True,
                        )
                    options.append("SMTPUTF8")
                conn.sendmail(envelope_from, [recipient], message, mail_options=options)
                return EmailResult(to=mail.to, ok=True, message_id=mail.message_id)
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()), (0, b""))
                last = f"{code} {_text(text)}"
                if code >= 500:
                    return EmailResult(
                        to=mail.to,
                        ok=False,
                        message_id=mail.message_id,
                        error=last,
                        permanent=True,
                        bounced=is_bounce(code, _text(text)),
                    )
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
                last = f"{exc.smtp_code} {_text(exc.smtp_error)}"
                if exc.smtp_code >= 500:
                    data = isinstance(exc, smtplib.SMTPDataError)
                    return EmailResult(
                        to=mail.to,
                        ok=False,
                        message_id=mail.message_id,
                        error=last,
                        permanent=True,
                        refused=is_message_refusal(
                            exc.smtp_code, _text(exc.smtp_error), at_data=data
                        ),
                        at_data=data,
                    )
            except smtplib.SMTPResponseException as exc:  # from connect: a 4xx greeting/auth
                last = f"{exc.smtp_code} {_text(exc.smtp_error)}"
                self._drop()
            except (smtplib.SMTPException, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                self._drop()
            if self._conn is not None and self._conn.sock is None:
                self._drop()  # smtplib closed it (a 421): the next attempt reconnects
            log.warning(
                "%s: sending to %s, attempt %s failed (%s)", self.label, mail.to, attempt, last
            )
            if attempt < self.max_attempts:
                self.sleep(self.backoff * 2 ** (attempt - 1))
        if self._conn is None:
            raise _ConnectionFailed(
                f"{self.label}: cannot reach the SMTP server ({last})", permanent=False
            )
        return self._failed(mail, f"gave up after {self.max_attempts} attempts: {last}", False)

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_ENHANCED = re.compile(r"\s*([245])\.(\d{1,3})\.\d{1,3}\b")
_ENHANCED_FULL = re.compile(r"\s*5\.(\d{1,3})\.(\d{1,3})\b")  # subject, detail


def is_bounce(code: int, text: str) -> bool:
    """Whether a permanent RCPT refusal is about the reader's mailbox (a bounce), not the
    server's policy: a relay that refuses everyone (``554 5.7.1 Relay access denied``),
    authentication wanted (``530``) or the sender blocklisted says nothing about the
    reader, and must not drop every subscriber at once (RFC 3463: ``5.7.x`` is security
    or policy)."""
    if code < 500 or code == 530 or "relay" in text.lower():  # Exim: "550 relay not permitted"
        return False
    enhanced = _ENHANCED.match(text)
    return not (enhanced is not None and enhanced.group(2) == "7")


def is_message_refusal(code: int, text: str, *, at_data: bool) -> bool:
    """Whether a permanent refusal is of this message itself, so that sending the same one
    again would be refused again: too large (``552``, ``5.3.4`` message too big, ``5.2.3``
    over the administrative limit; at MAIL FROM too, where smtplib announces its SIZE), or
    its content at DATA (``5.6.x``: media, conversion). A policy refusal (``5.7.x``: relay
    denied, the sender not allowed, authentication wanted) and anything else is not: it
    stays ``failed``, retried, and alerts as a failure."""
    enhanced = _ENHANCED_FULL.match(text)
    detail = (enhanced.group(1), enhanced.group(2)) if enhanced else None
    if detail is not None and detail[0] == "7":
        return False
    if code == 552 or detail in (("3", "4"), ("2", "3")):
        return True
    return at_data and detail is not None and detail[0] == "6"


def refusal_kind(error: str, *, at_data: bool = True) -> str:
    """What a message refusal (``is_message_refusal``; ``error`` as "552 5.3.4 text") is
    about: ``size`` (``5.3.4``, ``5.2.3``, or a bare ``552`` to MAIL FROM, before any
    recipient: a smaller form may go), ``unsure`` (a bare ``552`` once the message was in:
    RFC 1870's "message size exceeds fixed maximum", or RFC 5321's "exceeded storage
    allocation", a full mailbox), ``content`` (``5.6.x``: plain text may go, a shorter list
    would not help) or ``other`` (``552 5.2.2``, a full mailbox: about this reader, not the
    message)."""
    code, _, text = error.partition(" ")
    enhanced = _ENHANCED_FULL.match(text)
    detail = (enhanced.group(1), enhanced.group(2)) if enhanced else None
    if detail is None and code == "552":
        return "unsure" if at_data else "size"
    if detail in (("3", "4"), ("2", "3")):
        return "size"
    if detail is not None and detail[0] == "6":
        return "content"
    return "other"


def _ascii_to(to: str) -> str:
    """The address's domain in IDNA form for the To: header, bare or named (``Name
    <addr>``: the email package encodes the name, but would write an IDN domain as an
    encoded word, which is no address)."""
    if "<" not in to:
        return ascii_address(to)
    head, _, address = to.rpartition("<")
    if not address.endswith(">"):
        return to
    return f"{head}<{ascii_address(address[:-1])}>"


def _advertised_size(conn: smtplib.SMTP) -> int | None:
    """The largest message the server takes, as its EHLO ``SIZE`` says (RFC 1870: 0 or no
    number means no fixed limit)."""
    if not conn.has_extn("size"):
        return None
    value = str(conn.esmtp_features.get("size", "")).strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def _personal(mail: OutgoingEmail) -> EmailContent:
    """The content with this reader's token in place of ``TOKEN_SLOT``."""
    token = mail.unsubscribe_token
    return EmailContent(
        subject=mail.content.subject,
        html=mail.content.html.replace(TOKEN_SLOT, token),
        text=mail.content.text.replace(TOKEN_SLOT, token),
    )


def _body(content: EmailContent, eight_bit: bool, plain: bool = False) -> bytes:
    part = EmailMessage(policy=SMTP_POLICY)
    part.set_content(content.text, cte=_cte(content.text, eight_bit))
    if not plain:
        part.add_alternative(content.html, subtype="html", cte=_cte(content.html, eight_bit))
    return part.as_bytes()


def _cte(text: str, eight_bit: bool) -> str | None:
    """``8bit`` when allowed and every line fits SMTP's 998 octets, else the default."""
    if eight_bit and all(len(line.encode("utf-8")) <= 998 for line in text.splitlines()):
        return "8bit"
    return None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
