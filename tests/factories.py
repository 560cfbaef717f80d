"""Small hand-made archives for tests: CAOM2 rows, models and fingerprints with known values."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from caomai_loaders import caom2_rows

N = 400


@dataclass
class Plane:
    planeid: uuid.UUID
    publisherid: str
    planeuri: str
    counts: np.ndarray
    n_detected: int
    n_sampled: int
    map2_node: int | None
    proprietary: bool


def add_model(
    conn: psycopg.Connection,
    kind: str = "map1",
    active: bool = True,
    name: str | None = None,
    parent: int | None = None,
) -> int:
    name = name or f"{kind}-{uuid.uuid4().hex[:6]}"
    if active:
        conn.execute("UPDATE caomai.model SET active = false WHERE kind = %s", (kind,))
    return conn.execute(
        "INSERT INTO caomai.model (name, kind, dim, active, parent_id) VALUES (%s, %s, %s, %s, %s)"
        " RETURNING model_id",
        (name, kind, 64 if kind == "map1" else N, active, parent),
    ).fetchone()[0]


def add_plane(
    conn: psycopg.Connection,
    model_id: int,
    counts: np.ndarray | list[int] | None,
    *,
    name: str,
    n_detected: int | None = None,
    map2_node: int | None = None,
    proprietary: bool = False,
    collection: str = "TEST",
    instrument: str = "MegaPrime",
    band: str = "r",
    calibration_level: int = 2,
) -> Plane:
    """One observation + plane (+ fingerprint when counts are given)."""
    register_vector(conn)
    obsid, planeid = uuid.uuid4(), uuid.uuid4()
    release = datetime.utcnow() + (timedelta(days=365) if proprietary else -timedelta(days=30))
    publisherid = f"ivo://test.example/{collection}?{name}/{name}p"
    planeuri = f"caom:{collection}/{name}/{name}p"
    observation = caom2_rows.Observation(
        obsid=obsid,
        observationuri=f"caom:{collection}/{name}",
        collection=collection,
        observationid=name,
        intent="science",
        instrument_name=instrument,
        telescope_name="CFHT 3.6m",
        type="OBJECT",
        metarelease=release,
    )
    caom2_rows.upsert(conn, [observation], "error")
    caom2_rows.upsert(
        conn,
        [
            caom2_rows.Plane(
                planeid=planeid,
                obsid=obsid,
                planeuri=planeuri,
                publisherid=publisherid,
                productid=f"{name}p",
                metarelease=release,
                datarelease=release,
                calibrationlevel=calibration_level,
                dataproducttype="image",
                energy_bandpassname=band,
            )
        ],
        "error",
    )
    plane = Plane(
        planeid, publisherid, planeuri, np.zeros(N, dtype=int), 0, 0, map2_node, proprietary
    )
    if counts is not None:
        c = np.asarray(counts, dtype=int)
        n_sampled = int(c.sum())
        n_det = n_detected if n_detected is not None else n_sampled
        fp = c / np.linalg.norm(c)
        conn.execute(
            "INSERT INTO caomai.fingerprint (planeid, model_id, publisherid, metarelease, fp, counts,"
            " n_detected, n_sampled, map2_node) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                planeid,
                model_id,
                publisherid,
                release,
                fp.astype(np.float32),
                c.tolist(),
                n_det,
                n_sampled,
                map2_node,
            ),
        )
        plane.counts, plane.n_detected, plane.n_sampled = c, n_det, n_sampled
    return plane


def counts_at(nodes: dict[int, int]) -> np.ndarray:
    c = np.zeros(N, dtype=int)
    for k, v in nodes.items():
        c[k] = v
    return c
