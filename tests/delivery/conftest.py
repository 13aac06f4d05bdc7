"""Fixtures for the delivery tests: the Slack stand-in and a real SMTP server, both on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trustme
from slack_sdk import WebClient

from digestbot.config import SmtpSettings
from digestbot.delivery.email import EmailDeliverer, build_smtp_factory
from digestbot.delivery.slack import SlackDeliverer
from digestbot.delivery.targets import Deliverers
from tests.delivery.slack_api import SlackApi
from tests.delivery.smtp_server import PASSWORD, USER, SmtpServer


@pytest.fixture
def slack_api() -> Iterator[SlackApi]:
    api = SlackApi().start()
    yield api
    api.stop()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def smtp_server(ca: trustme.CA) -> Iterator[SmtpServer]:
    server = SmtpServer(ca).start()
    yield server
    server.stop()


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


@pytest.fixture
def deliverers(slack_api: SlackApi, smtp_server: SmtpServer) -> Deliverers:
    return Deliverers(slack=slack_deliverer(slack_api), email=email_deliverer(smtp_server))
