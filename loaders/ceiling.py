"""The truth ceiling: what Map 2 reaches when it sees the simulator's own conditions.

Why: the simulated quality classes meet at their edges by design (``sim/conditions.py``: the
sharpest bad seeing is as sharp as the worst good night, the shortest clouded exposure as deep
as the shallowest good one), so no fingerprint can reach every figure the paper quotes. To tell
how much of a gap is the fingerprints' and how much the archive's, ``caomai evaluate`` runs the
same Map-2 recipe (20x20 SOM, the epochs and final radius the Map-2 model recorded) and the same
scoring on a vector of the conditions each exposure was rendered with, read from the truth
manifest: nothing a fingerprint could beat, short of guessing the labels themselves.

The conditions (``CONDITIONS``) are those the classes change: depth (5-sigma limit minus its
band's median, so a u exposure is not "shallow" for being u), seeing, trail length, donut size,
the four background problems, and the star density that makes a field crowded. Logs where a
factor matters more than a difference; every column standardised on the Map-2 training
exposures. Similarity for precision@k is Euclidean on that vector (the fingerprints use cosine
because they are histograms; these are not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caomai_db.config import GRID_COLS, GRID_ROWS

from .scoring import (
    GOOD,
    BinaryScores,
    binary,
    in_cell_scores,
    mean_precision,
    training_label_scores,
)
from .som import SOM

#: (manifest column, transform) of the conditions the classes act on
CONDITIONS = (
    ("mag_limit", "depth"),
    ("fwhm", "log"),
    ("track_length", "log+0.05"),
    ("donut_diameter", "log+0.5"),
    ("gradient", "log+0.01"),
    ("scattered_light", "log+0.01"),
    ("amp_step", "log+0.002"),
    ("n_bright", "linear"),
    ("star_density", "log"),
)


@dataclass
class Ceiling:
    """Map 2 on the true conditions, scored as the fingerprints are (``evaluate.Report``)."""

    in_cell: BinaryScores  # ties counted Bad, as for the fingerprints
    in_cell_ties_good: BinaryScores
    held_out: BinaryScores | None  # node labels from the training exposures
    precision_at_k: float | None  # None only without held-out queries
    precision_at_k_by_class: dict[str, float]


def has_conditions(rows: list[dict[str, str]]) -> bool:
    """Whether a truth manifest carries the simulator's conditions (real truth may not)."""
    return bool(rows) and all(name in rows[0] for name, _ in CONDITIONS) and "band" in rows[0]


def condition_matrix(rows: list[dict[str, str]], train: np.ndarray) -> np.ndarray:
    """(N, len(CONDITIONS)) standardised conditions; ``train`` marks the rows that set the scale."""
    cols = []
    band = np.array([r["band"] for r in rows])
    for name, how in CONDITIONS:
        v = np.array([float(r[name]) for r in rows], np.float64)
        if how == "depth":
            for b in set(band.tolist()):
                v[band == b] -= np.median(v[band == b])
        elif how == "log":
            v = np.log(np.clip(v, 1e-9, None))
        elif how.startswith("log+"):
            v = np.log(v + float(how[4:]))
        cols.append(v)
    x = np.stack(cols, axis=1)
    ref = x[train] if train.any() else x
    scale = ref.std(axis=0)
    return ((x - ref.mean(axis=0)) / np.where(scale > 1e-9, scale, 1.0)).astype(np.float32)


def precision_at_k(
    x: np.ndarray, classes: list[str], queries: np.ndarray, k: int
) -> tuple[float | None, dict[str, float]]:
    """Share of each query's k nearest other exposures (Euclidean) that have its class."""
    cls = np.array(classes)
    per: dict[str, list[float]] = {}
    for i in np.flatnonzero(queries):
        d = np.sum((x - x[i]) ** 2, axis=1)
        d[i] = np.inf
        top = np.argsort(d, kind="stable")[:k]
        per.setdefault(cls[i], []).append(float(np.mean(cls[top] == cls[i])))
    return mean_precision(per)


def truth_ceiling(
    rows: list[dict[str, str]],
    train2: np.ndarray,
    held: np.ndarray,
    k: int = 10,
    epochs: int = 60,
    sigma_end: float = 0.8,
    seed: int = 0,
) -> Ceiling:
    """Fit a Map 2 on the true conditions of the ``train2`` rows and score the ``held`` rows.

    ``rows`` are the manifest rows of the fingerprinted exposures, in the order of the masks.
    """
    x = condition_matrix(rows, train2)
    fit_on = train2 if train2.any() else held
    som = SOM(GRID_ROWS, GRID_COLS)
    som.fit(x[fit_on], epochs=epochs, sigma_end=sigma_end, seed=seed)
    nodes = som.assign(x)[0]
    cls = [r["quality_class"] for r in rows]
    h_bin = [binary(c) for c, h in zip(cls, held, strict=True) if h]
    h_nodes = nodes[held]
    held_out = None
    if train2.any():
        t_bin = [binary(c) for c, t in zip(cls, train2, strict=True) if t]
        held_out = training_label_scores(nodes[train2], t_bin, h_nodes, h_bin, som.codebook)
    p, by_class = precision_at_k(x, cls, held, k)
    return Ceiling(
        in_cell=in_cell_scores(h_nodes, h_bin, prefer="bad"),
        in_cell_ties_good=in_cell_scores(h_nodes, h_bin, prefer=GOOD),
        held_out=held_out,
        precision_at_k=p,
        precision_at_k_by_class=by_class,
    )
