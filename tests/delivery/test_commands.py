"""``digestbot send`` and ``digestbot history`` through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import as_json, write_config
from tests.smtp_server import PASSWORD, USER, SmtpServer
from tests.terminal import run_on_terminal

CONFIG = """\
database_url: sqlite:///data/db.sqlite3
drops: {{path: {seeds}}}
profiles:
  - name: efficient-attention
    keywords: [linear attention, mamba, state space model]
    deliver:
      - file: {{path: out}}
{extra}
"""

BROKEN = """\
  - name: broken
    keywords: [attention]
    deliver:
      - slack: {channel: C0123}
"""


def test_send_twice_then_history(cli, tmp_path: Path, seeds: Path) -> None:
    config = str(write_config(tmp_path, CONFIG.format(seeds=seeds, extra="")))
    assert cli("--config", config, "ingest").exit_code == 0
    # how many papers the profile's digest holds is the ranker's business: read it off `digest`
    header = cli("--config", config, "digest", "--profile", "efficient-attention").stdout
    count = int(header.split()[1])
    assert header.startswith(f"# {count} new papers for efficient-attention") and count >= 3
    dry = cli("--config", config, "send", "--dry-run")
    assert dry.exit_code == 0 and f"# {count} new papers for efficient-attention" in dry.stdout
    assert as_json(cli("--config", config, "history", "--json")) == []
    first = cli("--config", config, "--now", "2026-11-23T08:00:00Z", "send")
    assert first.exit_code == 0, first.stderr
    assert "sent          efficient-attention → file:" in first.stdout
    assert (tmp_path / "out" / "efficient-attention-2026-11-23.md").is_file()
    second = cli("--config", config, "--now", "2026-11-23T12:00:00Z", "send")
    assert second.exit_code == 0
    assert "nothing to send: today's digests were already sent" in second.stdout
    [row] = as_json(cli("--config", config, "history", "--json"))
    assert row["status"] == "sent" and row["digest_date"] == "2026-11-23"
    assert len(row["papers"]) == count and row["attempts"] == 1 and row["error"] is None
    text = cli("--config", config, "history", "--profile", "efficient-attention")
    assert "sent" in text.stdout and f"{count} papers" in text.stdout


def test_a_failed_delivery_exits_1_and_shows_in_history(cli, tmp_path: Path, seeds: Path) -> None:
    config = str(write_config(tmp_path, CONFIG.format(seeds=seeds, extra=BROKEN)))
    assert cli("--config", config, "ingest").exit_code == 0
    result = cli("--config", config, "--now", "2026-11-23T08:00:00Z", "send")
    assert result.exit_code == 1
    assert "FAILED        broken → slack:C0123: slack.bot_token is not set" in result.stderr
    assert "sent          efficient-attention" in result.stdout  # the others still went out
    rows = as_json(cli("--config", config, "history", "--json", "--profile", "broken"))
    assert [(r["status"], "bot_token" in r["error"]) for r in rows] == [("failed", True)]
    unknown = cli("--config", config, "history", "--profile", "nope")
    assert unknown.exit_code == 2 and "unknown profile 'nope'" in unknown.stderr


def test_send_shows_progress_on_a_terminal(
    tmp_path: Path, seeds: Path, smtp_server: SmtpServer
) -> None:
    """Forty recipients through the real CLI, its stderr a pseudo-terminal: a rich bar."""
    smtp_server.ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    recipients = ", ".join(f"r{i}@example.org" for i in range(40))
    config = write_config(
        tmp_path,
        CONFIG.format(seeds=seeds, extra="")
        + f"""\
email:
  smtp: {{host: 127.0.0.1, port: {smtp_server.port}, security: starttls,
         username: {USER}, password: "${{SMTP_PASSWORD}}"}}
  sender: "Paper Digest <digest@example.org>"
""",
    )
    text = config.read_text().replace(
        "      - file: {path: out}\n", f"      - email: {{to: [{recipients}]}}\n"
    )
    config.write_text(text)
    env = {
        **os.environ,
        "SMTP_PASSWORD": PASSWORD,
        "SSL_CERT_FILE": str(tmp_path / "ca.pem"),
        "TERM": "xterm-256color",
        "COLUMNS": "100",
    }
    base = [sys.executable, "-m", "digestbot", "--config", str(config)]
    subprocess.run([*base, "ingest"], env=env, cwd=tmp_path, check=True, capture_output=True)
    run = run_on_terminal([*base, "--now", "2026-11-23T08:00:00Z", "send"], env=env, cwd=tmp_path)
    assert run.returncode == 0
    assert run.stdout.count("sent          efficient-attention → email:") == 40
    screen = run.screen
    assert "sending" in screen and "40/40" in screen  # advanced per recipient, to the end
    assert len(smtp_server.handler.received) == 40
