"""The ``deliverers`` fixture: Slack and email deliverers wired to the Slack stand-in and the
real SMTP server (fixtures in tests/conftest.py)."""

from __future__ import annotations

import pytest

from digestbot.delivery.targets import Deliverers
from tests.delivery.helpers import email_deliverer, slack_deliverer
from tests.slack_api import SlackApi
from tests.smtp_server import SmtpServer


@pytest.fixture
def deliverers(slack_api: SlackApi, smtp_server: SmtpServer) -> Deliverers:
    return Deliverers(slack=slack_deliverer(slack_api), email=email_deliverer(smtp_server))
