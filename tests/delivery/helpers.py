"""Papers, settings and deliverers (wired to the stand-ins) for the delivery tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slack_sdk import WebClient

from digestbot.config import Settings, SmtpSettings, parse_settings
from digestbot.delivery.email import EmailDeliverer, build_smtp_factory
from digestbot.delivery.slack import SlackDeliverer
from digestbot.models import Paper
from digestbot.store import SqlStore
from tests.slack_api import SlackApi
from tests.smtp_server import PASSWORD, USER, SmtpServer


def make_paper(index: int, *, title: str | None = None, **extra: Any) -> Paper:
    values: dict[str, Any] = {
        "title": title or f"Linear attention study number {index}",
        "abstract": f"We study linear attention and long context, case {index}.",
        "arxiv_id": f"2611.{index:05d}",
        "authors": ("Ada Lovelace", "Alan Turing"),
        "organization": "Example Lab",
        "upvotes": index,
        "urls": (f"https://github.com/example/repo{index}",),
    }
    return Paper(**{**values, **extra})


def add_papers(store: SqlStore, papers: Sequence[Paper], *, now: datetime) -> None:
    with store.transaction() as conn:
        store.upsert_papers(conn, list(papers), now=now)


def settings_for(
    *,
    deliver: list[dict[str, Any]],
    top_k: int = 10,
    extra: dict[str, Any] | None = None,
    on_empty: str = "skip",
    timezone: str = "UTC",
) -> Settings:
    data: dict[str, Any] = {
        "profiles": [
            {
                "name": "attn",
                "description": "Efficient attention",
                "keywords": ["linear attention"],
                "top_k": top_k,
                "deliver": deliver,
                "on_empty": on_empty,
                "schedule": {"cron": "0 8 * * *", "timezone": timezone},
            }
        ],
        "email": {"sender": "Paper Digest <digest@example.org>"},
        **(extra or {}),
    }
    return parse_settings(data, env={})


def slack_deliverer(api: SlackApi, **kw: float) -> SlackDeliverer:
    client = WebClient(token=api.token, base_url=api.url)
    return SlackDeliverer(client, **{"min_interval": 0.0, "backoff": 0.0, **kw})  # type: ignore[arg-type]


def smtp_settings(server: SmtpServer, **kw: object) -> SmtpSettings:
    values = {
        "host": "127.0.0.1",
        "port": server.port,
        "security": "starttls",
        "username": USER,
        "password": PASSWORD,
        "timeout": 5,
        **kw,
    }
    return SmtpSettings.model_validate(values)


def email_deliverer(server: SmtpServer, **kw: object) -> EmailDeliverer:
    factory = build_smtp_factory(smtp_settings(server, **kw), ssl_context=server.client_context())
    return EmailDeliverer(
        factory, sender="Paper Digest <digest@example.org>", backoff=0.0, label="test smtp"
    )


# matches no profile on linear attention by its words; "selective scan" is learnt by query
# expansion from the best papers of ``selective_scan_papers``
OFF_TOPIC_SCAN = make_paper(
    9001, title="Selective scan memory", abstract="A selective scan for memory.", upvotes=900
)


def selective_scan_papers(total: int) -> list[Paper]:
    """``total`` papers on linear attention (ids 1 to ``total``, 500 upvotes each), the best
    20 of them on selective scans too."""
    best = [
        make_paper(
            i,
            title=f"Linear attention selective scan {i}",
            abstract=f"Linear attention selective scan, case {i}.",
            upvotes=500,
        )
        for i in range(1, 21)
    ]
    rest = [
        make_paper(i, title=f"Efficient sequence model study {i}", upvotes=500)
        for i in range(21, total + 1)
    ]
    return best + rest
