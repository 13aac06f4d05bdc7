"""Headless Chromium (Debian's ``chromium``) for the rendering tests: DOM measurements and
screenshots of an HTML file, plus a pure-Python PNG decoder to tell a blank shot."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
]

# A test-only wrapper page: the email in an iframe exactly ``width`` px wide (headless
# Chromium's window is at least 500 px), measured from outside once it has loaded; the
# result goes to <title> as JSON, read back with --dump-dom.
WRAPPER = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>pending</title>
<style>body {{ margin: 0; }} iframe {{ border: 0; display: block; }}</style></head>
<body>
<iframe id="mail" style="width: {width}px; height: 2000px" srcdoc="{srcdoc}"></iframe>
<script>
document.getElementById("mail").addEventListener("load", function () {{
  var doc = this.contentDocument, win = this.contentWindow;
  var links = Array.prototype.map.call(doc.querySelectorAll("a[href]"), function (a) {{
    var box = a.getBoundingClientRect();
    return {{href: a.href, text: a.textContent, right: box.right, width: box.width}};
  }});
  document.title = "MEASURE:" + JSON.stringify({{
    scrollWidth: doc.documentElement.scrollWidth,
    bodyScrollWidth: doc.body.scrollWidth,
    innerWidth: win.innerWidth,
    text: doc.body.innerText,
    links: links
  }});
}});
</script>
</body></html>
"""


def wrap(html: str, *, width: int) -> str:
    from html import escape

    return WRAPPER.format(width=width, srcdoc=escape(html, quote=True))


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise AssertionError(
            "the rendering tests need Debian's chromium: apt-get install -y chromium "
            "(.ci/run installs it)"
        )
    return path


def _run(args: list[str], *, width: int, height: int) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="digestbot-chromium-") as profile:
        cmd = [
            chromium(),
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            *args,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)


def measure(html: str, *, width: int, workdir: Path) -> dict[str, Any]:
    """Load ``html`` (plus the measuring script) at ``width`` px; the measurements."""
    page = workdir / f"measure-{width}.html"
    page.write_text(wrap(html, width=width), encoding="utf-8")
    done = _run(
        [
            "--run-all-compositor-stages-before-draw",
            "--virtual-time-budget=3000",
            "--dump-dom",
            page.as_uri(),
        ],
        width=max(width, 600),
        height=2000,
    )
    start = done.stdout.find("MEASURE:")
    assert start >= 0, f"no measurement in the DOM; stderr: {done.stderr[-2000:]}"
    end = done.stdout.find("</title>", start)
    raw = done.stdout[start + len("MEASURE:") : end]
    import html as html_lib

    return json.loads(html_lib.unescape(raw))  # type: ignore[no-any-return]


def screenshot(html: str, *, width: int, workdir: Path) -> Path:
    """A PNG of the email in a ``width`` px frame (the window is at least 600 px)."""
    page = workdir / f"shot-{width}.html"
    page.write_text(wrap(html, width=width), encoding="utf-8")
    out = workdir / f"shot-{width}.png"
    _run([f"--screenshot={out}", page.as_uri()], width=max(width, 600), height=2000)
    return out


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit truecolour PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), f"unexpected PNG colour type {colour}/{depth}"
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        filt = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if filt == 1:
                line[x] = (line[x] + a) & 0xFF
            elif filt == 2:
                line[x] = (line[x] + b) & 0xFF
            elif filt == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows
