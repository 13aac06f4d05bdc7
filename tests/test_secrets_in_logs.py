"""Secrets never reach the log, not even with ``--debug`` (libraries log what they send)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import SEEDS, write_config


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_debug_logs_of_a_failing_send_hold_no_secret(tmp_path: Path) -> None:
    port = _closed_port()
    config = write_config(
        tmp_path,
        f"""
database_url: sqlite:///data/x.sqlite3
drops: {{path: {SEEDS}}}
profiles:
  - name: p
    keywords: [attention]
    deliver:
      - slack: {{webhook_url: "http://127.0.0.1:{port}/services/T0/B0/HOOKSECRET1"}}
      - email: {{to: [a@example.org]}}
slack: {{bot_token: "${{SLACK_BOT_TOKEN}}", base_url: "http://127.0.0.1:{port}/api/"}}
email:
  smtp: {{host: 127.0.0.1, port: {port}, username: u, password: "${{SMTP_PASSWORD}}",
         timeout: 2}}
""",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGESTBOT_")}
    env.update(SLACK_BOT_TOKEN="xoxb-TOKENSECRET2", SMTP_PASSWORD="PASSWORDSECRET3")
    env["DIGESTBOT_AUTO_EMBEDDINGS"] = "0"
    base = [sys.executable, "-m", "digestbot", "--config", str(config)]
    subprocess.run([*base, "ingest"], cwd=tmp_path, env=env, capture_output=True, timeout=120)
    result = subprocess.run(
        [*base, "--debug", "send", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 1  # every destination failed
    assert "webhook" in result.stderr.lower()  # the libraries did log at debug level
    for secret in ("HOOKSECRET1", "TOKENSECRET2", "PASSWORDSECRET3"):
        assert secret not in result.stderr
        assert secret not in result.stdout


def test_every_secret_of_the_settings_is_redacted_in_text_and_json_lines() -> None:
    import logging

    from digestbot.config import parse_settings
    from digestbot.logs import JsonFormatter, RedactingFormatter

    settings = parse_settings(
        {
            "database_url": "postgresql+psycopg://bot:DBPASSWORD9@db.example/digest",
            "slack": {"signing_secret": 'sign"ing\\secret', "app_token": "xapp-APPTOKEN7"},
            "email": {"unsubscribe_secret": "UNSUBSECRET8"},
            "profiles": [{"name": "p", "keywords": ["x"], "deliver": [{"file": {}}]}],
        },
        env={},
    )
    secrets = settings.secret_values()
    assert set(secrets) == {'sign"ing\\secret', "xapp-APPTOKEN7", "UNSUBSECRET8", "DBPASSWORD9"}
    for inner in (logging.Formatter("%(message)s"), JsonFormatter()):
        formatter = RedactingFormatter(inner)
        formatter.add([*secrets, "x"])  # too short to hide: would blank ordinary words
        record = logging.LogRecord(
            "t", logging.DEBUG, __file__, 1, "sent %s with %s", (secrets[0], "x"), None
        )
        line = formatter.format(record)
        assert "[secret]" in line and "with x" in line
        assert not any(s in line for s in secrets)


def test_a_secret_that_is_the_programs_name_leaves_the_logger_names_alone() -> None:
    # a database password "digestbot" (user, database and password alike in a test set-up)
    # hid every line's logger name: "INFO [secret].polling: …"
    import json
    import logging

    from digestbot.logs import JsonFormatter, RedactingFormatter

    record = logging.LogRecord(
        "digestbot.polling", logging.INFO, __file__, 1, "login digestbot at %s", ("db",), None
    )
    text = RedactingFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    text.add(["digestbot"])
    assert text.format(record) == "INFO digestbot.polling: login [secret] at db"
    as_json = RedactingFormatter(JsonFormatter())
    as_json.add(["digestbot"])
    entry = json.loads(as_json.format(record))
    assert (entry["logger"], entry["message"]) == ("digestbot.polling", "login [secret] at db")
    # a secret holding the logger's name is still hidden whole
    longer = RedactingFormatter(logging.Formatter("%(name)s %(message)s"))
    longer.add(["digestbot.polling!pw"])
    record.msg, record.args = "pw digestbot.polling!pw", None
    assert longer.format(record) == "digestbot.polling pw [secret]"
