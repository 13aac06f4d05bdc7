"""Unsubscribe end to end: real SMTP receives the mail, the link in its header is followed
against the real HTTP server, and the next send skips the address."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from digestbot.delivery.service import send_due
from digestbot.delivery.targets import Deliverers
from digestbot.errors import TokenError
from digestbot.newsletter import make_token, read_token
from digestbot.store import SqlStore
from digestbot.store.subscribers import load_subscribers, upsert_subscribers
from tests.conftest import NOW
from tests.delivery.helpers import add_papers, email_deliverer, make_paper
from tests.newsletter.conftest import SECRET, Web, newsletter_settings
from tests.smtp_server import SmtpServer, body_of


def statuses(report) -> dict[str, str]:
    return {o.destination: o.status for o in report.outcomes}


def one_click(header: str) -> str:
    urls: list[str] = re.findall(r"<([^>]+)>", header)
    assert len(urls) == 2 and urls[1].startswith("mailto:digest@example.org?subject=")
    return urls[0]


def test_tokens_round_trip_and_refuse_forgeries() -> None:
    token = make_token(SECRET, profile="attn", address="alice@example.org")
    assert re.fullmatch(r"[A-Za-z0-9_\-.]+", token)
    assert read_token(SECRET, token) == ("attn", "alice@example.org")
    other = make_token(SECRET, profile="attn", address="bob@example.org")
    swapped = other.split(".")[0] + "." + token.split(".")[1]  # bob's name, alice's signature
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for forged in (
        swapped,
        flipped,
        make_token("another-secret", profile="attn", address="alice@example.org"),
    ):
        with pytest.raises(TokenError) as info:
            read_token(SECRET, forged)
        assert not info.value.is_malformed
    for junk in ("", "abc", ".", "!!!.???", "YQ.YQ"):
        with pytest.raises(TokenError) as info:
            read_token(SECRET, junk)
        assert info.value.is_malformed


def test_unsubscribe_flow_from_the_received_header(
    store: SqlStore, smtp_server: SmtpServer, web: Web
) -> None:
    settings = newsletter_settings(public_url=web.url + "/", to=["Boss <Boss@example.org>"])
    upsert_subscribers(
        store,
        profile="attn",
        rows=[("alice@example.org", "daily", "active"), ("bob@example.org", "daily", "active")],
        now=NOW,
    )
    add_papers(store, [make_paper(i) for i in range(1, 4)], now=NOW - timedelta(hours=1))
    deliverers = Deliverers(email=email_deliverer(smtp_server))
    report = send_due(settings, store, now=NOW, deliverers=deliverers)
    assert statuses(report) == {
        "email:boss@example.org": "sent",
        "email:alice@example.org": "sent",
        "email:bob@example.org": "sent",
    }
    handler = smtp_server.handler
    [alice_mail] = handler.to("alice@example.org")
    msg = alice_mail.message
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = one_click(msg["List-Unsubscribe"])
    assert url.startswith(web.url + "/unsubscribe?t=")
    token = parse_qs(urlsplit(url).query)["t"][0]
    assert read_token(SECRET, token) == ("attn", "alice@example.org")
    html = body_of(msg, "html")
    text = body_of(msg, "plain")
    assert f'href="{url}"' in html and f"Unsubscribe: {url}" in text  # the reader's own link
    [bob_mail] = handler.to("bob@example.org")
    bob_url = one_click(bob_mail.message["List-Unsubscribe"])
    assert bob_url != url and bob_url in body_of(bob_mail.message, "html")

    # GET: a page with a POST button, and nothing changes (link scanners follow links)
    status, page = web.request(url)
    assert status == 200
    assert 'method="post"' in page and "alice@example.org" in page and "attn" in page
    assert 'name="List-Unsubscribe" value="One-Click"' in page
    assert {s.status for s in load_subscribers(store, profile="attn")} == {"active"}

    # POST, as a mail provider does it (RFC 8058): unsubscribed, 200, no redirect
    status, page = web.request(url, data=b"List-Unsubscribe=One-Click")
    assert status == 200 and "You are unsubscribed" in page
    # the config recipient uses the form (token in the form body, not the query)
    boss_url = one_click(handler.to("Boss@example.org")[0].message["List-Unsubscribe"])
    boss_token = parse_qs(urlsplit(boss_url).query)["t"][0]
    form = f"t={boss_token}&List-Unsubscribe=One-Click".encode()
    status, _ = web.request(web.url + "/unsubscribe", data=form)
    assert status == 200
    got = {s.address: s.status for s in load_subscribers(store, profile="attn")}
    assert got == {
        "alice@example.org": "unsubscribed",
        "bob@example.org": "active",
        "boss@example.org": "unsubscribed",
    }

    # the next digest goes to bob only
    add_papers(store, [make_paper(i) for i in range(4, 6)], now=NOW + timedelta(hours=20))
    report = send_due(settings, store, now=NOW + timedelta(days=1), deliverers=deliverers)
    assert statuses(report) == {"email:bob@example.org": "sent"}
    assert len(handler.to("alice@example.org")) == 1
    assert len(handler.to("Boss@example.org")) == 1
    assert len(handler.to("bob@example.org")) == 2


def test_forged_altered_and_other_peoples_tokens_are_refused(store: SqlStore, web: Web) -> None:
    upsert_subscribers(
        store, profile="attn", rows=[("alice@example.org", "daily", "active")], now=NOW
    )
    mine = make_token(SECRET, profile="attn", address="mallory@example.org")
    alice = make_token(SECRET, profile="attn", address="alice@example.org")
    forged = alice.split(".")[0] + "." + mine.split(".")[1]
    wrong_key = make_token("guess", profile="attn", address="alice@example.org")
    body = b"List-Unsubscribe=One-Click"
    for token in (forged, wrong_key, alice[:-3] + "xyz"):
        assert web.request(f"{web.url}/unsubscribe?t={token}", data=body)[0] == 403
        assert web.request(f"{web.url}/unsubscribe?t={token}")[0] == 403
    for token in ("", "garbage", "%00.%00"):
        assert web.request(f"{web.url}/unsubscribe?t={token}", data=body)[0] == 400
    # a genuine token without the one-click body changes nothing either
    assert web.request(f"{web.url}/unsubscribe?t={alice}", data=b"x=1")[0] == 400
    assert web.request(f"{web.url}/unsubscribe?t={alice}")[0] == 200
    assert [(s.address, s.status) for s in load_subscribers(store)] == [
        ("alice@example.org", "active")
    ]
    # and the page escapes what it shows
    odd = make_token(SECRET, profile="<script>x</script>", address="a@example.org")
    status, page = web.request(f"{web.url}/unsubscribe?t={odd}")
    assert status == 200 and "<script>x" not in page and "&lt;script&gt;x" in page


def test_without_public_url_mails_keep_the_mailto_header_and_warn(
    store: SqlStore, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    import digestbot.newsletter as newsletter

    newsletter._warned.clear()
    settings = newsletter_settings(public_url=None)
    upsert_subscribers(
        store, profile="attn", rows=[("alice@example.org", "daily", "active")], now=NOW
    )
    add_papers(store, [make_paper(1)], now=NOW)
    with caplog.at_level("WARNING", logger="digestbot.newsletter"):
        send_due(
            settings, store, now=NOW, deliverers=Deliverers(email=email_deliverer(smtp_server))
        )
    msg = smtp_server.handler.received[0].message
    assert msg["List-Unsubscribe"] == "<mailto:digest@example.org?subject=unsubscribe%20attn>"
    assert msg["List-Unsubscribe-Post"] is None
    assert "UNSUBSCRIBE-TOKEN-SLOT" not in msg.as_string()
    assert "reply with" in body_of(msg, "plain")
    assert "server.public_url" in caplog.text


def test_a_one_click_post_as_multipart_form_data_unsubscribes(store: SqlStore, web: Web) -> None:
    # RFC 8058 allows the one-click body as multipart/form-data (its own example is one)
    import urllib.request

    upsert_subscribers(
        store, profile="attn", rows=[("alice@example.org", "daily", "active")], now=NOW
    )
    token = make_token(SECRET, profile="attn", address="alice@example.org")
    boundary = "---FormBoundaryjWmhtjORrn"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n'
        "\r\n"
        "One-Click\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    request = urllib.request.Request(f"{web.url}/unsubscribe?t={token}", data=body, method="POST")
    request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    assert [(s.address, s.status) for s in load_subscribers(store)] == [
        ("alice@example.org", "unsubscribed")
    ]


def test_a_named_recipient_gets_the_one_click_url_as_written_not_as_encoded_words(
    store: SqlStore, smtp_server: SmtpServer, web: Web
) -> None:
    # "Name <address>" went through the email package, which folded the long URL into
    # RFC 2047 encoded words: no mail client finds a URL to POST to in that header
    settings = newsletter_settings(
        public_url=web.url,
        to=["Boss Person <boss@example.org>", '"Lovelace, Ada" <ada@example.org>'],
    )
    add_papers(store, [make_paper(i) for i in range(1, 4)], now=NOW - timedelta(hours=1))
    report = send_due(
        settings, store, now=NOW, deliverers=Deliverers(email=email_deliverer(smtp_server))
    )
    assert set(statuses(report).values()) == {"sent"}
    for address, to in (
        ("boss@example.org", "Boss Person <boss@example.org>"),
        ("ada@example.org", '"Lovelace, Ada" <ada@example.org>'),
    ):
        [mail] = smtp_server.handler.to(address)
        head = mail.data.split(b"\r\n\r\n")[0].decode("ascii")
        assert f"\r\nTo: {to}\r\n" in head
        assert "=?" not in head.split("List-Unsubscribe: ")[1].split("\r\nMIME-Version")[0]
        url = one_click(mail.message["List-Unsubscribe"])
        assert f"\r\nList-Unsubscribe: <{url}>,\r\n <mailto:digest@example.org?" in head
        assert web.request(url, data=b"List-Unsubscribe=One-Click")[0] == 200
    got = {s.address: s.status for s in load_subscribers(store, profile="attn")}
    assert got == {"boss@example.org": "unsubscribed", "ada@example.org": "unsubscribed"}
