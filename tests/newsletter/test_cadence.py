"""Weekly cadence with a controlled ``now``, config/subscriber overlap, and bounces."""

from __future__ import annotations

from datetime import timedelta

from digestbot.delivery.service import send_due
from digestbot.delivery.targets import Deliverers
from digestbot.newsletter import week_label
from digestbot.status import build_status
from digestbot.store import SqlStore
from digestbot.store.ledger import count_sent
from digestbot.store.subscribers import load_subscribers, upsert_subscribers
from tests.conftest import NOW
from tests.delivery.helpers import add_papers, email_deliverer, make_paper
from tests.newsletter.conftest import at, newsletter_settings
from tests.smtp_server import SmtpServer, body_of


def test_week_labels() -> None:
    assert week_label(NOW.date()) == "16–22 Nov"
    assert week_label(NOW.date() + timedelta(days=14)) == "30 Nov–6 Dec"
    assert week_label(NOW.date().replace(year=2027, month=1, day=4)) == "28 Dec 2026–3 Jan 2027"


def test_weekly_readers_get_the_best_of_the_week_once_on_their_day(
    store: SqlStore, smtp_server: SmtpServer
) -> None:
    settings = newsletter_settings(public_url="https://digest.example.org", top_k=3)
    upsert_subscribers(
        store,
        profile="attn",
        rows=[("week@example.org", "weekly", "active"), ("day@example.org", "daily", "active")],
        now=at(1),
    )
    deliverers = Deliverers(email=email_deliverer(smtp_server))
    handler = smtp_server.handler
    add_papers(store, [make_paper(1, upvotes=99)], now=at(12))  # 11 days before: not this week
    add_papers(store, [make_paper(i, upvotes=i) for i in range(2, 7)], now=at(17))
    # Sunday the 22nd, Saturday...: the daily reader gets mail, the weekly one nothing
    for day in (20, 21, 22):
        report = send_due(settings, store, now=at(day), deliverers=deliverers)
        assert {o.destination for o in report.outcomes} == {"email:day@example.org"}
    assert handler.to("week@example.org") == []
    # Monday the 23rd: once, the top 3 of the week, the weekly subject
    add_papers(store, [make_paper(7, upvotes=7)], now=at(22, 20))
    report = send_due(settings, store, now=at(23), deliverers=deliverers)
    assert {o.destination: o.status for o in report.outcomes}["email:week@example.org"] == "sent"
    [mail] = handler.to("week@example.org")
    msg = mail.message
    assert msg["Subject"] == "Your week in attn: 3 papers · 16–22 Nov"
    text = body_of(msg, "plain")
    titles = [f"Linear attention study number {i}" for i in range(1, 8)]
    shown = [t for t in titles if t + "\n" in text or t + "\r\n" in text]
    assert shown == [titles[4], titles[5], titles[6]]  # 5, 6, 7: best this week; 1 is older
    # again on Monday: nothing; Tuesday: still nothing for the weekly reader
    for when in (at(23, 15), at(24)):
        report = send_due(settings, store, now=when, deliverers=deliverers)
        weekly = [o for o in report.outcomes if o.destination == "email:week@example.org"]
        assert [o.status for o in weekly] == (["already-sent"] if when.day == 23 else [])
    assert len(handler.to("week@example.org")) == 1
    # next Monday: the papers of that week not sent yet (never a repeat)
    add_papers(store, [make_paper(i, upvotes=i) for i in range(8, 10)], now=at(26))
    send_due(settings, store, now=at(30), deliverers=deliverers)
    second = handler.to("week@example.org")[1].message
    assert second["Subject"] == "Your week in attn: 2 papers · 23–29 Nov"  # 8 and 9 only
    body = body_of(second, "plain")
    assert "number 9\n" in body.replace("\r\n", "\n") and "number 7\n" not in body.replace(
        "\r\n", "\n"
    )
    assert count_sent(store, destination="email:week@example.org") == 5


def test_weekly_day_is_the_profiles_local_day(store: SqlStore, smtp_server: SmtpServer) -> None:
    # 23:30 UTC Sunday is Monday in Tokyo
    settings = newsletter_settings(public_url=None, timezone="Asia/Tokyo")
    upsert_subscribers(
        store, profile="attn", rows=[("w@example.org", "weekly", "active")], now=at(1)
    )
    add_papers(store, [make_paper(1)], now=at(20))
    deliverers = Deliverers(email=email_deliverer(smtp_server))
    assert send_due(settings, store, now=at(22, 14), deliverers=deliverers).outcomes == []
    report = send_due(settings, store, now=at(22, 23), deliverers=deliverers)
    assert [o.status for o in report.outcomes] == ["sent"]


def test_a_config_recipient_who_also_subscribes_weekly_gets_one_daily_mail(
    store: SqlStore, smtp_server: SmtpServer
) -> None:
    settings = newsletter_settings(public_url=None, to=["both@example.org"])
    upsert_subscribers(
        store, profile="attn", rows=[("both@example.org", "weekly", "active")], now=at(1)
    )
    add_papers(store, [make_paper(1)], now=at(22))
    report = send_due(
        settings, store, now=at(23), deliverers=Deliverers(email=email_deliverer(smtp_server))
    )
    assert [(o.destination, o.status) for o in report.outcomes] == [
        ("email:both@example.org", "sent")
    ]
    assert len(smtp_server.handler.received) == 1
    assert smtp_server.handler.received[0].message["Subject"].startswith("1 new paper for attn")


def test_a_permanent_bounce_marks_the_subscriber_and_stops_retries(
    store: SqlStore, smtp_server: SmtpServer
) -> None:
    settings = newsletter_settings(public_url=None)
    upsert_subscribers(
        store,
        profile="attn",
        rows=[("gone@example.org", "daily", "active"), ("ok@example.org", "daily", "active")],
        now=at(1),
    )
    smtp_server.handler.reject_rcpt["gone@example.org"] = "550 5.1.1 no such user"
    add_papers(store, [make_paper(1)], now=at(22))
    deliverers = Deliverers(email=email_deliverer(smtp_server))
    report = send_due(settings, store, now=at(23), deliverers=deliverers)
    assert {o.destination: o.status for o in report.outcomes} == {
        "email:gone@example.org": "failed",
        "email:ok@example.org": "sent",
    }
    [gone] = [s for s in load_subscribers(store, profile="attn") if s.status == "bounced"]
    assert (
        gone.address == "gone@example.org"
        and gone.error is not None
        and gone.error.startswith("550")
    )
    status = build_status(settings, store, now=at(23))
    assert status["bounced_subscribers"] == [
        {
            "profile": "attn",
            "email": "gone@example.org",
            "since": at(23).isoformat(),
            "error": gone.error,
        }
    ]
    add_papers(store, [make_paper(2)], now=at(23, 20))
    report = send_due(settings, store, now=at(24), deliverers=deliverers)
    assert [o.destination for o in report.outcomes] == ["email:ok@example.org"]


def test_a_connection_level_5xx_bounces_no_one(store: SqlStore, smtp_server: SmtpServer) -> None:
    settings = newsletter_settings(public_url=None)
    upsert_subscribers(
        store, profile="attn", rows=[("a@example.org", "daily", "active")], now=at(1)
    )
    add_papers(store, [make_paper(1)], now=at(22))
    smtp_server.handler.data_replies.append(
        "554 5.7.1 message refused"
    )  # the message, not the reader
    report = send_due(
        settings, store, now=at(23), deliverers=Deliverers(email=email_deliverer(smtp_server))
    )
    assert [o.status for o in report.outcomes] == ["failed"]
    assert [s.status for s in load_subscribers(store)] == ["active"]


def test_a_weekly_digest_that_failed_on_its_day_goes_out_the_next_day_once(
    store: SqlStore, smtp_server: SmtpServer
) -> None:
    settings = newsletter_settings(public_url=None, top_k=3)
    upsert_subscribers(
        store, profile="attn", rows=[("week@example.org", "weekly", "active")], now=at(1)
    )
    deliverers = Deliverers(email=email_deliverer(smtp_server))
    handler = smtp_server.handler
    add_papers(store, [make_paper(i, upvotes=i) for i in range(1, 5)], now=at(17))
    handler.data_replies.extend(["451 4.3.0 try again later"] * 3)  # Monday: the server is sick
    report = send_due(settings, store, now=at(23), deliverers=deliverers)
    assert [o.status for o in report.outcomes] == ["failed"]
    # Tuesday (not the weekly day): the failed weekly digest is sent, as it was
    report = send_due(settings, store, now=at(24), deliverers=deliverers)
    assert [(o.destination, o.status) for o in report.outcomes] == [
        ("email:week@example.org", "sent")
    ]
    [mail] = handler.to("week@example.org")
    assert mail.message["Subject"] == "Your week in attn: 3 papers · 16–22 Nov"
    # Wednesday and the next Monday: no repeat
    assert send_due(settings, store, now=at(25), deliverers=deliverers).outcomes == []
    send_due(settings, store, now=at(30), deliverers=deliverers)
    assert len(handler.to("week@example.org")) == 1
    assert count_sent(store, destination="email:week@example.org") == 3


def test_a_relay_refusal_at_rcpt_is_the_servers_policy_and_bounces_no_one(
    store: SqlStore, smtp_server: SmtpServer
) -> None:
    # a misconfigured relay refuses every recipient with 5.7.x: that says nothing about
    # the readers' mailboxes, so none of them may be dropped as bounced
    settings = newsletter_settings(public_url=None)
    readers = ["a@example.org", "b@example.org"]
    upsert_subscribers(
        store, profile="attn", rows=[(r, "daily", "active") for r in readers], now=at(1)
    )
    for reader in readers:
        smtp_server.handler.reject_rcpt[reader] = "554 5.7.1 <a@example.org>: Relay access denied"
    add_papers(store, [make_paper(1)], now=at(22))
    deliverers = Deliverers(email=email_deliverer(smtp_server))
    report = send_due(settings, store, now=at(23), deliverers=deliverers)
    assert [o.status for o in report.outcomes] == ["failed", "failed"]
    assert [s.status for s in load_subscribers(store)] == ["active", "active"]
    # the relay fixed: both readers get the digest on the next run
    smtp_server.handler.reject_rcpt.clear()
    report = send_due(settings, store, now=at(24), deliverers=deliverers)
    assert sorted(o.status for o in report.outcomes) == ["sent", "sent"]


def test_a_weekly_reader_gets_the_weeks_papers_however_deep_they_rank_in_the_store(
    store: SqlStore, smtp_server: SmtpServer
) -> None:
    """Beyond the best 1,000 papers of the whole store a ranking carries light papers (no
    first-seen time), and the weekly pool, filtered on that time, lost this week's papers
    whenever more than 1,000 older ones ranked above them."""
    settings = newsletter_settings(public_url="https://digest.example.org", top_k=3)
    upsert_subscribers(
        store, profile="attn", rows=[("week@example.org", "weekly", "active")], now=at(1)
    )
    add_papers(store, [make_paper(i, upvotes=500) for i in range(1, 1101)], now=at(2))
    add_papers(
        store,
        [
            make_paper(
                5000 + i,
                title=f"Field notes on sparse retrieval, part {i}",
                abstract=(
                    "Sparse retrieval and indexing at scale, with a long discussion of "
                    "inverted files, posting lists, compression, caching, sharding and query "
                    "planning; one closing aside mentions linear attention."
                ),
                upvotes=0,
            )
            for i in range(1, 4)
        ],
        now=at(20),
    )
    deliverers = Deliverers(email=email_deliverer(smtp_server))
    report = send_due(settings, store, now=at(23), deliverers=deliverers)
    assert [(o.status, o.papers) for o in report.outcomes] == [("sent", 3)]
    [mail] = smtp_server.handler.to("week@example.org")
    text = body_of(mail.message, "plain").replace("\r\n", "\n")
    assert all(f"Field notes on sparse retrieval, part {i}\n" in text for i in range(1, 4))
