"""Rare-aware sampling of Map 1's training objects.

Why: a uniform sample of an archive's detections is mostly noise peaks, faint galaxies and
cosmic rays. A satellite trail is one detection in 6% of the images, a bleeding star a few in
a third of them: in 20 000 uniformly drawn cutouts they are a few dozen, too few to own a
Map-1 node, and a kind that owns no node cannot be asked for with ``has_object_node``.

So the sample is drawn with a probability that mixes uniform (``1 - mix``) and inverse density
(``mix``): each object falls in a cell of a coarse grid over what makes kinds differ in the
measured features (``shape.NAMES``: isophotal area, peak signal-to-noise, elongation, the
saturated and segment flags), and an object's inverse-density weight is one over its cell's
population, capped at ``cap`` times the mean so one freak object cannot take a hundred
places. Common kinds still fill most of the map (the fingerprint's resolution is where the
objects are); rare kinds get enough members to own nodes of their own.
"""

from __future__ import annotations

import numpy as np

from . import shape

#: share of the sampling probability given by inverse density
DEFAULT_MIX = 0.5
#: an object's inverse-density weight is at most this many times the mean
DEFAULT_CAP = 30.0
#: grid steps per feature (natural-log units for log_area and log_snr)
STEPS = {"log_area": 0.7, "log_snr": 0.7, "elongation": 0.4}


def cells(raw: np.ndarray) -> np.ndarray:
    """The grid cell of each object (rows of ``shape.raw_features``), as one integer key."""
    col = {name: raw[:, i] for i, name in enumerate(shape.NAMES)}
    parts = [
        np.clip(np.floor(col[name] / step), -4, 20).astype(np.int64) + 4
        for name, step in STEPS.items()
    ]
    parts.append(col["saturated"].astype(np.int64) * 2 + col["segment"].astype(np.int64))
    key = np.zeros(len(raw), np.int64)
    for p in parts:
        key = key * 32 + p
    return key


def probabilities(
    raw: np.ndarray, mix: float = DEFAULT_MIX, cap: float = DEFAULT_CAP
) -> np.ndarray:
    """Sampling probability of each object (sums to 1)."""
    n = len(raw)
    if n == 0:
        return np.zeros(0)
    _, inverse, counts = np.unique(cells(raw), return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse.ravel()]
    for _ in range(50):  # capping lowers the mean: repeat until no weight is above the cap
        over = w > cap * w.mean() * (1 + 1e-9)
        if not over.any():
            break
        w = np.minimum(w, cap * w.mean())
    return (1.0 - mix) / n + mix * w / w.sum()


def pick(
    raw: np.ndarray,
    n: int,
    seed: int,
    mix: float = DEFAULT_MIX,
    cap: float = DEFAULT_CAP,
) -> np.ndarray:
    """Sorted indices of ``n`` objects drawn without replacement (all when there are fewer);
    ``mix`` 0 is a uniform sample."""
    total = len(raw)
    rng = np.random.default_rng(seed)
    if total <= n:
        return np.arange(total)
    if mix <= 0:
        return np.sort(rng.choice(total, n, replace=False))
    return np.sort(rng.choice(total, n, replace=False, p=probabilities(raw, mix, cap)))
