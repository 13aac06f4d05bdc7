"""Start ``digestbot serve`` as a real process and find the port it listens on."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def serve_process(config: str, *, env: dict[str, str], cwd: Path, route: str) -> Iterator[str]:
    """Run ``digestbot --config CONFIG serve --port 0``; yield ``http://127.0.0.1:PORT``.

    The port is read from the line that announces ``route``; a few lines before it
    (Bolt may warn first) are allowed. The process is stopped on the way out.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "digestbot", "--config", config, "serve", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )
    try:
        assert process.stderr is not None
        pattern = re.compile(r"http://127\.0\.0\.1:(\d+)" + re.escape(route))
        seen: list[str] = []
        match = None
        while match is None and len(seen) < 20:
            seen.append(process.stderr.readline())
            match = pattern.search(seen[-1])
        assert match, seen
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()
