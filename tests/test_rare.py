"""Rare-aware sampling of Map 1's training objects (loaders/rare.py)."""

from __future__ import annotations

import numpy as np

from caomai_loaders import rare, shape


def _raw(n_common: int, n_rare: int, seed: int = 0) -> np.ndarray:
    """Shape features of n_common faint round objects and n_rare segment-flagged long ones."""
    rng = np.random.default_rng(seed)
    raw = np.zeros((n_common + n_rare, len(shape.NAMES)))
    col = {name: i for i, name in enumerate(shape.NAMES)}
    raw[:, col["log_area"]] = rng.normal(2.5, 0.3, len(raw))
    raw[:, col["log_snr"]] = rng.normal(1.5, 0.3, len(raw))
    raw[:, col["elongation"]] = rng.uniform(0, 0.3, len(raw))
    raw[n_common:, col["log_area"]] = 9.0
    raw[n_common:, col["elongation"]] = 3.0
    raw[n_common:, col["segment"]] = 1.0
    return raw


def test_rare_objects_get_places_a_uniform_sample_would_not_give_them() -> None:
    raw = _raw(20000, 20)
    rare_ones = np.arange(20000, 20020)
    uniform = rare.pick(raw, 2000, seed=1, mix=0.0)
    mixed = rare.pick(raw, 2000, seed=1)
    # a uniform tenth holds about 2 of the 20; the rare-aware draw most (about 16: each is drawn with ~15x the weight, capped)
    assert np.isin(rare_ones, uniform).sum() <= 6
    assert np.isin(rare_ones, mixed).sum() >= 12
    # and the common kind still fills most of the sample
    assert (mixed < 20000).sum() >= 0.9 * len(mixed)
    assert np.array_equal(mixed, np.unique(mixed)) and len(mixed) == 2000


def test_probabilities_sum_to_one_cap_the_weight_and_repeat_by_seed() -> None:
    raw = _raw(5000, 3)
    p = rare.probabilities(raw, mix=1.0, cap=10.0)
    assert abs(p.sum() - 1.0) < 1e-9
    assert p.max() <= 10.0 * p.mean() * (1 + 1e-6)
    assert np.array_equal(rare.pick(raw, 100, seed=4), rare.pick(raw, 100, seed=4))
    assert len(rare.pick(raw[:50], 100, seed=4)) == 50  # fewer than asked: all of them
