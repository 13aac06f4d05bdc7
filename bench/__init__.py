"""Benchmark scripts (``python bench/NAME.py`` or ``python -m bench.NAME``).

Importing this package puts this checkout first on ``PYTHONPATH`` for the child processes
the scripts start (``digestbot rank``…): a virtualenv's editable install points at one
checkout, and a script run from another (an old worktree measured against main) would
otherwise time the installed checkout's code in its children.
"""

from __future__ import annotations

import os
from pathlib import Path

CHECKOUT = str(Path(__file__).resolve().parent.parent)
_PATHS = os.environ.get("PYTHONPATH", "").split(os.pathsep)
if _PATHS[0] != CHECKOUT:
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [CHECKOUT, *_PATHS] if p)
