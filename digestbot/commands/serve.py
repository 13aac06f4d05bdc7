"""``digestbot serve``: the Slack app over HTTP (``/slack/events``, ``/healthz``) or Socket Mode,
and the newsletter's ``/unsubscribe`` (alone when Slack is not configured)."""

from __future__ import annotations

import logging
import os
from typing import Any

import click

from digestbot.cli import AppContext, handle_errors, pass_app
from digestbot.errors import ConfigError

log = logging.getLogger(__name__)


@click.command()
@click.option("--host", help="Interface to listen on (default: server.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: server.port, 3000).")
@click.option(
    "--socket-mode",
    is_flag=True,
    help="Connect out to Slack over a WebSocket (app token: SLACK_APP_TOKEN / slack.app_token).",
)
@pass_app
@handle_errors
def serve(app: AppContext, host: str | None, port: int | None, socket_mode: bool) -> None:
    """Answer /papers and the digest buttons in Slack, and email unsubscribe links, until
    interrupted."""
    from slack_sdk import WebClient

    from digestbot.server import (
        SLACK_EVENTS_PATH,
        UNSUBSCRIBE_PATH,
        build_http_server,
        build_router,
    )
    from digestbot.slack_app import build_slack_app
    from digestbot.unsubscribe import UnsubscribeApp

    settings = app.settings
    secret = settings.email.unsubscribe_secret
    unsubscribe = None
    if secret is not None and secret.get_secret_value():
        unsubscribe = UnsubscribeApp(
            app.store, secret=secret.get_secret_value(), templates_dir=settings.templates_dir
        )
    if settings.slack.bot_token is None and (unsubscribe is None or socket_mode):
        raise ConfigError(
            "needed to answer in Slack (bot_token: ${SLACK_BOT_TOKEN} under slack: in the "
            "config, or the variable DIGESTBOT_SLACK__BOT_TOKEN; or set "
            "email.unsubscribe_secret to serve only /unsubscribe)",
            path=settings.source,
            key="slack.bot_token",
        )
    if settings.slack.bot_token is None:
        server = build_http_server(
            build_router(unsubscribe=unsubscribe),
            host=host or settings.server.host,
            port=settings.server.port if port is None else port,
        )
        where = f"http://{host or settings.server.host}:{server.server_port}"
        click.echo(f"listening on {where}{UNSUBSCRIBE_PATH} and {where}/healthz", err=True)
        _serve(server)
        return
    client = WebClient(
        token=settings.slack.bot_token.get_secret_value(), base_url=settings.slack.base_url
    )
    bolt = build_slack_app(settings, app.store, client=client, socket_mode=socket_mode)
    from digestbot.ranking.semantic import preload

    preload(settings.ranking, settings.profiles)  # the model loads once, while we listen
    if socket_mode:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        secret = settings.slack.app_token
        token = (
            secret.get_secret_value() if secret is not None else os.environ.get("SLACK_APP_TOKEN")
        )
        if not token:
            raise ConfigError(
                "Socket Mode needs an app-level token (xapp-…; set SLACK_APP_TOKEN)",
                path=settings.source,
                key="slack.app_token",
            )
        click.echo("connecting to Slack in Socket Mode (Ctrl-C stops)", err=True)
        SocketModeHandler(bolt, token).start()  # type: ignore[no-untyped-call]
        return
    server = build_http_server(
        build_router(slack_app=bolt, unsubscribe=unsubscribe),
        host=host or settings.server.host,
        port=settings.server.port if port is None else port,
    )
    where = f"http://{host or settings.server.host}:{server.server_port}"
    click.echo(f"listening on {where}{SLACK_EVENTS_PATH} and {where}/healthz", err=True)
    _serve(server)


def _serve(server: Any) -> None:
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.server_close()


COMMANDS = [serve]
