"""Offline: how much each image statistic adds to fp_similar precision@10 (issue 17).

Reads the stored fingerprints and image vectors of a loaded simulated archive, recovers the raw
statistics from the vectors' second block (``loaders/image_vector.py``: only those of non-zero
weight can be recovered), re-centres them on the training half's medians and robust spreads,
and prints the held-out precision@10 of cosine on ``[fp | w * statistics]`` for several
weights, and a greedy forward selection of statistics made on the training half's queries.
The figures of docs/experiments.md (2026-11-30) came from this with every weight non-zero.

    python bench/image_vector_tune.py DSN TRUTH.csv FIRST_HELD_OUT_OBSERVATION_ID
"""

from __future__ import annotations

import csv
import sys

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from caomai_loaders import image_vector as iv


def precision_at_k(x: np.ndarray, y: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    """Mean share of each query's k nearest rows (cosine, itself left out) with its class."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = x @ x.T
    np.fill_diagonal(sim, -9.0)
    scores = [
        np.mean(y[np.argsort(-sim[i], kind="stable")[:k]] == y[i]) for i in np.flatnonzero(queries)
    ]
    return float(np.mean(scores))


def main(dsn: str, truth: str, split: str) -> None:
    with open(truth, newline="") as fh:
        classes = {r["exposure_id"]: r["quality_class"] for r in csv.DictReader(fh)}
    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        rows = conn.execute(
            "SELECT o.observationid, f.fp, f.image_vec FROM caomai.fingerprint AS f"
            " JOIN caom2.plane AS p USING (planeid) JOIN caom2.observation AS o"
            " ON o.obsid = p.obsid WHERE f.model_id = caomai.active_model('map1')"
            " AND f.image_vec IS NOT NULL ORDER BY 1"
        ).fetchall()
    rows = [r for r in rows if r[0] in classes]
    y = np.array([classes[r[0]] for r in rows])
    held = np.array([r[0] >= split for r in rows])
    fp = np.stack([r[1].to_numpy() for r in rows]).astype(np.float64)
    vec = np.stack([r[2].to_numpy() for r in rows]).astype(np.float64)
    w = iv.weights()
    used = np.flatnonzero(w > 0)
    names = [iv.NAMES[j] for j in used]
    scaled = vec[:, 400:][:, used] / np.linalg.norm(vec[:, :400], axis=1, keepdims=True) / w[used]
    centre = np.array([iv.CENTER[n] for n in names])
    scale = np.array([iv.SCALE[n] for n in names])
    raw = scaled * scale + centre
    train = ~held
    med = np.median(raw[train], 0)
    spread = (np.percentile(raw[train], 75, 0) - np.percentile(raw[train], 25, 0)) / 1.349
    spread[spread == 0] = 1.0
    z = np.clip((raw - med) / spread, -iv.CLIP, iv.CLIP)
    print(f"{len(rows)} exposures, {held.sum()} held out; statistics: {', '.join(names)}")
    print(f"fp alone: {precision_at_k(fp, y, held):.3f}")
    for weight in (0.05, 0.1, 0.15, 0.2, 0.3):
        p = precision_at_k(np.hstack([fp, weight * z]), y, held)
        print(f"all statistics, weight {weight}: {p:.3f}")
    for weight in (0.1, 0.2):
        chosen: list[int] = []
        best = precision_at_k(fp, y, train)
        while len(chosen) < len(names):
            s, j = max(
                (precision_at_k(np.hstack([fp, weight * z[:, chosen + [j]]]), y, train), j)
                for j in range(len(names))
                if j not in chosen
            )
            if s <= best + 0.002:
                break
            best, chosen = s, chosen + [j]
        p = precision_at_k(np.hstack([fp, weight * z[:, chosen]]), y, held)
        print(f"greedy, weight {weight}: {[names[j] for j in chosen]} -> held out {p:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
