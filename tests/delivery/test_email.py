"""EmailDeliverer against a real SMTP server (aiosmtpd) with STARTTLS and AUTH."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest

from digestbot.delivery.email import EmailResult, OutgoingEmail
from digestbot.delivery.formats import EmailContent
from tests.conftest import NOW
from tests.delivery.helpers import email_deliverer
from tests.smtp_server import SmtpServer, body_of, free_port

CONTENT = EmailContent(
    subject="2 new papers for attn · Mon 23 Nov",
    html="<html><body><p>Hello <b>papers</b></p></body></html>",
    text="Hello papers\n",
)


def mail(to: str, n: int = 1, content: EmailContent = CONTENT) -> OutgoingEmail:
    return OutgoingEmail(to=to, content=content, message_id=f"<d{n}@example.org>", profile="attn")


def send(deliverer, mails: list[OutgoingEmail]) -> list[EmailResult]:
    results: list[EmailResult] = []
    deliverer.send_all(mails, now=NOW, on_result=lambda _m, r: results.append(r))
    return results


def test_one_message_per_recipient_over_one_tls_authenticated_connection(
    smtp_server: SmtpServer,
) -> None:
    results = send(
        email_deliverer(smtp_server),
        [mail("alice@example.org", 1), mail("Bob <bob@example.org>", 2)],
    )
    assert [r.ok for r in results] == [True, True]
    received = smtp_server.handler.received
    assert [r.rcpt_tos for r in received] == [["alice@example.org"], ["bob@example.org"]]
    assert {r.session for r in received} == {1}  # connection reused
    assert all(r.tls and r.authenticated for r in received)
    assert received[0].mail_from == "digest@example.org"
    msg = received[1].message
    assert msg["To"] == "Bob <bob@example.org>"  # no recipient sees another
    assert msg["From"] == "Paper Digest <digest@example.org>"
    assert msg["Subject"] == "2 new papers for attn · Mon 23 Nov"
    assert msg["Message-ID"] == "<d2@example.org>"
    assert msg["Date"] == "Mon, 23 Nov 2026 09:00:00 +0000"
    assert msg["List-Id"] == "attn <attn.digestbot.example.org>"
    assert msg["List-Unsubscribe"] == "<mailto:digest@example.org?subject=unsubscribe%20attn>"
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert isinstance(msg, EmailMessage)
    assert body_of(msg, "html").strip() == CONTENT.html
    assert body_of(msg, "plain").replace("\r\n", "\n") == CONTENT.text


def test_a_5xx_fails_that_recipient_only(smtp_server: SmtpServer) -> None:
    smtp_server.handler.reject_rcpt["gone@example.org"] = "550 5.1.1 no such user"
    results = send(
        email_deliverer(smtp_server),
        [mail("alice@example.org", 1), mail("gone@example.org", 2), mail("bob@example.org", 3)],
    )
    assert [(r.to, r.ok) for r in results] == [
        ("alice@example.org", True),
        ("gone@example.org", False),
        ("bob@example.org", True),
    ]
    assert results[1].permanent and results[1].error.startswith("550")
    assert len(smtp_server.handler.received) == 2


def test_a_4xx_is_retried_and_the_message_goes_out_once(smtp_server: SmtpServer) -> None:
    smtp_server.handler.data_replies.extend(["451 4.3.0 try again later"] * 2)
    [result] = send(email_deliverer(smtp_server), [mail("alice@example.org")])
    assert result.ok
    assert len(smtp_server.handler.to("alice@example.org")) == 1


def test_a_4xx_that_persists_fails_after_the_bound(smtp_server: SmtpServer) -> None:
    smtp_server.handler.data_replies.extend(["451 4.3.0 try again later"] * 3)
    [result] = send(email_deliverer(smtp_server), [mail("alice@example.org")])
    assert not result.ok and not result.permanent and "451" in result.error
    assert smtp_server.handler.received == []


def test_bad_password_fails_everyone_at_once_without_leaking_it(smtp_server: SmtpServer) -> None:
    deliverer = email_deliverer(smtp_server, password="wrong-password-123")
    results = send(deliverer, [mail("alice@example.org", 1), mail("bob@example.org", 2)])
    assert [r.ok for r in results] == [False, False]
    assert all(r.permanent and "535" in r.error for r in results)
    assert all("wrong-password-123" not in r.error for r in results)


def test_server_down_fails_every_recipient_as_transient(ca) -> None:
    down = SmtpServer(ca, port=free_port())  # never started: nothing listens there
    results = send(
        email_deliverer(down), [mail("alice@example.org", 1), mail("bob@example.org", 2)]
    )
    assert [r.ok for r in results] == [False, False]
    assert not results[0].permanent and "cannot reach the SMTP server" in results[0].error


@pytest.mark.parametrize("security", ["ssl", "none"])
def test_ssl_and_plain_connections_are_supported(ca, security: str) -> None:
    from aiosmtpd.controller import Controller

    from tests.smtp_server import Handler

    handler = Handler()
    port = free_port()
    kwargs: dict[str, Any] = {}
    if security == "ssl":
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        kwargs["ssl_context"] = context
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        from digestbot.config import SmtpSettings
        from digestbot.delivery.email import EmailDeliverer, build_smtp_factory

        client_context = None
        if security == "ssl":
            import ssl

            client_context = ssl.create_default_context()
            ca.configure_trust(client_context)
        factory = build_smtp_factory(
            SmtpSettings(host="127.0.0.1", port=port, security=security, timeout=5),
            ssl_context=client_context,
        )
        deliverer = EmailDeliverer(factory, sender="digest@example.org", backoff=0)
        [result] = send(deliverer, [mail("alice@example.org")])
    finally:
        controller.stop()
    assert result.ok
    assert handler.received[0].rcpt_tos == ["alice@example.org"]


def test_crlf_in_a_subject_cannot_inject_a_header(smtp_server: SmtpServer) -> None:
    evil = EmailContent(
        subject="Hello\r\nBcc: victim@example.net\r\nX-Evil: 1", html="<p>x</p>", text="x\n"
    )
    [result] = send(email_deliverer(smtp_server), [mail("alice@example.org", content=evil)])
    assert result.ok
    [received] = smtp_server.handler.received
    assert received.rcpt_tos == ["alice@example.org"]
    msg = received.message
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert msg["Subject"] == "Hello Bcc: victim@example.net X-Evil: 1"


def test_8bitmime_parts_go_unencoded_unless_a_line_is_too_long(smtp_server: SmtpServer) -> None:
    long_line = EmailContent(subject="s", html="<p>" + "é" * 600 + "</p>", text="ok ·\n")
    results = send(
        email_deliverer(smtp_server),
        [mail("alice@example.org", 1), mail("bob@example.org", 2, content=long_line)],
    )
    assert all(r.ok for r in results)
    short, long_ = (r.message for r in smtp_server.handler.received)
    assert [p["Content-Transfer-Encoding"] for p in short.iter_parts()] == ["8bit", "8bit"]
    text, html = long_.iter_parts()
    assert text["Content-Transfer-Encoding"] == "8bit"
    assert html["Content-Transfer-Encoding"] != "8bit"  # 1,200 octets: over SMTP's 998
    assert html.get_content().strip() == long_line.html


def test_a_421_closing_the_connection_is_retried_on_a_new_one(smtp_server: SmtpServer) -> None:
    # 421: the server is closing the channel (smtplib closes its socket); the next
    # attempt must reconnect, not spend itself on the dead connection
    smtp_server.handler.data_replies.extend(["421 4.3.2 shutting down, try again"] * 2)
    [result] = send(email_deliverer(smtp_server), [mail("alice@example.org")])
    assert result.ok, result.error
    assert len(smtp_server.handler.to("alice@example.org")) == 1


def test_only_a_refusal_about_the_mailbox_is_a_bounce() -> None:
    from digestbot.delivery.email import is_bounce

    assert is_bounce(550, "5.1.1 <gone@example.org>: Recipient address rejected")
    assert is_bounce(550, "No such user here")
    assert not is_bounce(554, "5.7.1 <a@example.org>: Relay access denied")
    assert not is_bounce(550, "relay not permitted")  # Exim, no enhanced status
    assert not is_bounce(530, "5.7.0 Authentication required")
    assert not is_bounce(450, "4.2.0 mailbox busy")
