"""Run a command with its stderr on a pseudo-terminal (where rich draws its progress bars),
its stdout on a pipe: the bars are tested as a user's terminal receives them."""

from __future__ import annotations

import os
import pty
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TerminalRun:
    returncode: int
    stdout: str
    screen: str  # every byte written to the terminal, escape sequences included


def run_on_terminal(
    args: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 120
) -> TerminalRun:
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    stdout = proc.communicate(timeout=timeout)[0].decode()
    os.close(master)
    return TerminalRun(proc.returncode, stdout, seen.decode(errors="replace"))
