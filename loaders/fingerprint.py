"""From the Map-1 nodes of an image's sampled objects to its 400-value fingerprint.

- ``counts``: how many *sampled* objects fell on each node (stored as they are, because
  ``has_object_node`` scales them by ``n_detected / n_sampled`` itself);
- weighted histogram: ``counts * n_detected / n_sampled``, the expected number of *detected*
  objects per node, so a fingerprint does not depend on how many objects were sampled;
- ``fp``: the weighted histogram through a variance-stabilising transform, L2-normalised for
  cosine similarity (pgvector's ``<=>``, ``fp_similar``).

The transform (``TRANSFORMS``, recorded in the Map-1 model's parameters so loading and
training agree) is ``sqrt`` by default: Poisson counts have a variance equal to their mean,
and the square root makes it about constant, so a node holding 400 objects does not drown
the 30 nodes holding 5 - the rarer object kinds (trails, donuts, bleeds) are what tells image
kinds apart. ``smooth-sqrt`` first spreads each count over the neighbouring nodes of Map 1
(Gaussian, sigma 1 node): Map 1 keeps the 2-D topology, so neighbours are similar objects and
a few hundred samples over 400 nodes stop being a sparse, noisy histogram.
``log-density`` is ``log(1 + objects per node per million pixels / DENSITY_SCALE)``: unlike
the others it is not scale-free, so after normalisation the fingerprint still tells a sparse
image (a short or cloudy exposure: few nodes, each thinly filled) from a dense one (a crowded
field: every node filled), which a shape histogram alone cannot.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from caomai_db.config import GRID_COLS, GRID_ROWS, N_NODES
from caomai_db.errors import UsageError

TRANSFORMS = ("linear", "sqrt", "smooth-sqrt", "log-density")
#: log-density: objects per node per million (valid) pixels at which the log bends
DENSITY_SCALE = 1.0
DEFAULT_TRANSFORM = "sqrt"


def counts_of(nodes: np.ndarray, n_nodes: int = N_NODES) -> np.ndarray:
    """Raw counts of the sampled objects per node."""
    return np.bincount(np.asarray(nodes, dtype=np.int64), minlength=n_nodes).astype(np.int64)


def weighted(counts: np.ndarray, n_detected, n_sampled) -> np.ndarray:
    """Expected detected objects per node (one image, or one row per image with arrays of
    ``n_detected`` and ``n_sampled``)."""
    n_sampled = np.asarray(n_sampled)
    if np.any(n_sampled <= 0):
        raise UsageError("a fingerprint needs at least one sampled object")
    per = np.asarray(n_detected, np.float64) / n_sampled
    return np.asarray(counts, np.float64) * np.expand_dims(per, -1)


def fingerprint(
    counts: np.ndarray,
    n_detected,
    n_sampled,
    transform: str = DEFAULT_TRANSFORM,
    rows: int = GRID_ROWS,
    cols: int = GRID_COLS,
    pixels=None,
) -> np.ndarray:
    """L2-normalised fingerprint (float32, 400 values) of one image.

    Also for many images at once: ``counts`` (N, 400) with arrays of ``n_detected``,
    ``n_sampled`` (and ``pixels``) give (N, 400), row i computed exactly as image i alone
    (the synthetic archive writes a million this way). ``pixels`` (valid pixels searched) is
    needed by the ``log-density`` transform only.
    """
    hist = weighted(counts, n_detected, n_sampled)
    if transform == "linear":
        v = hist
    elif transform == "sqrt":
        v = np.sqrt(hist)
    elif transform == "smooth-sqrt":
        v = np.sqrt(smooth(hist, rows, cols))
    elif transform == "log-density":
        if pixels is None or np.any(np.asarray(pixels) <= 0):
            raise UsageError("the log-density transform needs the number of pixels searched")
        mpix = np.expand_dims(np.asarray(pixels, np.float64) / 1e6, -1)
        v = np.log1p(hist / mpix / DENSITY_SCALE)
    else:
        raise UsageError(f"unknown fingerprint transform {transform!r}; one of {TRANSFORMS}")
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    if np.any(norm == 0):
        raise UsageError("a fingerprint of no objects cannot be normalised")
    return (v / norm).astype(np.float32)


def smooth(hist: np.ndarray, rows: int = GRID_ROWS, cols: int = GRID_COLS, sigma: float = 1.0):
    """Spread each node's value over its grid neighbours (Gaussian kernel, total preserved).

    ``hist`` is one histogram or one per row (the last axis is the nodes).
    """
    return np.asarray(hist, np.float64) @ _kernel(rows, cols, sigma).T


@lru_cache(maxsize=4)
def _kernel(rows: int, cols: int, sigma: float) -> np.ndarray:
    """Column j: how node j's value spreads over the grid (each column sums to 1)."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    d2 = (r[:, None] - r[None, :]) ** 2 + (c[:, None] - c[None, :]) ** 2
    k = np.exp(-d2 / (2 * sigma * sigma))
    k /= k.sum(axis=0, keepdims=True)
    k.flags.writeable = False
    return k
