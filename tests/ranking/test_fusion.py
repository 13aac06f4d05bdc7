"""Fusing evidence when some papers have no embedding yet (``semantic.fuse_available``)."""

from __future__ import annotations

import numpy as np

from digestbot.ranking.semantic import fuse_available, scaled_partial


def test_with_every_value_present_it_is_the_weighted_mean() -> None:
    parts = fuse_available(
        [("profile", 1.0, np.array([1.0, 0.5])), ("semantic", 1.0, np.array([0.2, 1.0]))]
    )
    assert np.allclose(parts["profile"], [0.5, 0.25])
    assert np.allclose(parts["semantic"], [0.1, 0.5])


def test_a_paper_without_a_vector_is_scored_on_its_other_evidence() -> None:
    parts = fuse_available(
        [
            ("profile", 1.0, np.array([0.8, 0.8, 0.0])),
            ("like", 1.0, np.array([0.4, 0.4, 0.0])),
            ("semantic", 1.0, np.array([0.9, np.nan, np.nan])),
        ]
    )
    total = sum(parts.values())
    # (0.8 + 0.4 + 0.9) / 3 with a vector; (0.8 + 0.4) / 2 without, not (0.8 + 0.4) / 3
    assert np.allclose(total, [0.7, 0.6, 0.0])
    assert parts["semantic"][1] == 0.0 and not np.isnan(parts["semantic"]).any()


def test_weights_count_only_where_the_source_has_a_value() -> None:
    parts = fuse_available(
        [("profile", 1.0, np.array([0.6, 0.6])), ("semantic", 3.0, np.array([1.0, np.nan]))]
    )
    assert np.allclose(sum(parts.values()), [(0.6 + 3.0) / 4.0, 0.6])


def test_scaling_keeps_missing_values_missing() -> None:
    values = np.array([0.5, np.nan, 0.25, 2.0])
    dead = np.array([False, False, False, True])
    scaled = scaled_partial(values, skip=dead)
    assert np.isnan(scaled[1])
    assert np.allclose(scaled[[0, 2]], [1.0, 0.5])  # by the best live paper
