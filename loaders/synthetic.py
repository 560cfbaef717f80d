"""A synthetic fingerprint archive for the TAP tests and the query benchmark.

Real fingerprints come from the loaders; these imitate their statistics closely enough to
exercise the vector index honestly, without images:

- image *kinds* (good, bad seeing, bad tracking, crowded, ...) each put their objects on a few
  Gaussian blobs of the 20x20 Map-1 grid (neighbouring nodes hold similar objects, as on a
  self-organising map);
- every image jitters its kind's blobs (centres, widths, weights), detects a log-normal number
  of objects, samples at most 300 of them and counts them per node (multinomial), so vectors
  are non-negative, sparse-ish, clustered and never exactly equal;
- the fingerprint is computed from the counts as the loaders compute it (weighted by
  detected/sampled, ``smooth-sqrt``, L2-normalised); the Map-2 node follows the kind and the
  jitter, so similar images share nodes;
- every image is a CAOM2 observation + plane with metadata whose selectivity is known:
  ``time_bounds_lower`` is spread evenly over MJD 55000..60000 in a random order, so
  ``time_bounds_lower < 55000 + 5000 * f`` keeps a fraction f of the rows exactly; instrument,
  filter, calibration level and sky position vary too; 1 % of the planes are proprietary.

Rows are written with binary COPY in batches; for large archives the HNSW index is dropped
during the load and rebuilt afterwards (much faster than inserting into it).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from caomai_db.config import GRID_COLS, GRID_ROWS, N_NODES

from . import caom2_rows
from .caom2_rows import Observation, Plane

log = logging.getLogger(__name__)

KINDS = (
    "good",
    "bad_seeing",
    "bad_tracking",
    "really_bad_tracking",
    "bad_focus",
    "background",
    "crowded",
    "low_exposure",
)
KIND_WEIGHTS = np.array([0.45, 0.12, 0.1, 0.03, 0.08, 0.08, 0.08, 0.06])
INSTRUMENTS = (("MegaPrime", 0.70), ("WIRCam", 0.25), ("ESPaDOnS", 0.05))
BANDS = ("u", "g", "r", "i", "z")
MJD0, MJD_SPAN = 55000.0, 5000.0
COLLECTION = "SYNTH"
AUTHORITY = "caomai.example"
MAX_SAMPLED = 300
HNSW_INDEX = "ix_fingerprint_fp_hnsw"
#: Version of the vectors this module writes (2: the loaders' smooth-sqrt fingerprints), so a
#: benchmark database built by an older version is not reused.
GENERATOR = 2


@dataclass(frozen=True)
class Archive:
    """What :func:`generate` wrote."""

    n: int
    map1_model: int
    map2_model: int
    seed: int


def time_cut(fraction: float) -> float:
    """The ``time_bounds_lower`` below which a fraction of the synthetic planes lie."""
    return MJD0 + MJD_SPAN * fraction


def publisher_id(i: int) -> str:
    return f"ivo://{AUTHORITY}/{COLLECTION}?syn{i:07d}/syn{i:07d}p"


def _kind_blobs(rng: np.random.Generator) -> list[np.ndarray]:
    """Per kind: rows of (centre row, centre col, sigma, weight) on the Map-1 grid."""
    blobs = []
    for _ in KINDS:
        n = rng.integers(2, 5)
        centres = rng.uniform(1, [GRID_ROWS - 2, GRID_COLS - 2], size=(n, 2))
        sigma = rng.uniform(0.8, 2.5, size=(n, 1))
        weight = rng.dirichlet(np.full(n, 2.0))[:, None]
        blobs.append(np.hstack([centres, sigma, weight]))
    return blobs


_GRID_R, _GRID_C = np.divmod(np.arange(N_NODES), GRID_COLS)


def fingerprints(
    rng: np.random.Generator, kinds: np.ndarray, blobs: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Counts (n, 400) int32, n_detected, n_sampled and the mean blob jitter of each image."""
    n = len(kinds)
    p = np.full((n, N_NODES), 0.002)
    jitter = np.zeros((n, 2))
    for k, kb in enumerate(blobs):
        idx = np.flatnonzero(kinds == k)
        if idx.size == 0:
            continue
        m = idx.size
        shift = rng.normal(0.0, 0.9, size=(m, 2))
        jitter[idx] = shift
        for r, c, s, w in kb:
            cr = r + shift[:, :1] + rng.normal(0, 0.4, size=(m, 1))
            cc = c + shift[:, 1:] + rng.normal(0, 0.4, size=(m, 1))
            sig = s * np.exp(rng.normal(0, 0.2, size=(m, 1)))
            wt = w * rng.gamma(8.0, 1 / 8.0, size=(m, 1))
            d2 = (_GRID_R[None, :] - cr) ** 2 + (_GRID_C[None, :] - cc) ** 2
            p[idx] += wt * np.exp(-0.5 * d2 / sig**2)
    p /= p.sum(axis=1, keepdims=True)
    scale = np.where(kinds == KINDS.index("crowded"), 5.0, 1.0)
    scale = np.where(kinds == KINDS.index("low_exposure"), 0.08, scale)
    n_det = np.clip(rng.lognormal(np.log(600), 0.8, size=n) * scale, 25, 50_000).astype(np.int64)
    n_samp = np.minimum(n_det, MAX_SAMPLED)
    counts = rng.multinomial(n_samp, p).astype(np.int32)
    return counts, n_det, n_samp, jitter


def _ensure_models(conn: psycopg.Connection) -> tuple[int, int]:
    """Active synthetic Map-1/Map-2 models (created once)."""
    ids = []
    for kind, parent in (("map1", None), ("map2", "x")):
        name = f"synthetic-{kind}"
        row = conn.execute("SELECT model_id FROM caomai.model WHERE name = %s", (name,)).fetchone()
        if row is None:
            conn.execute("UPDATE caomai.model SET active = false WHERE kind = %s", (kind,))
            row = conn.execute(
                "INSERT INTO caomai.model (name, kind, dim, active, parent_id, description)"
                " VALUES (%s, %s, %s, true, %s, 'synthetic fingerprints (caomai_loaders.synthetic)')"
                " RETURNING model_id",
                (name, kind, 64 if kind == "map1" else N_NODES, ids[0] if parent else None),
            ).fetchone()
        ids.append(row[0])
    return ids[0], ids[1]


def generate(
    dsn: str,
    n: int,
    *,
    seed: int = 0,
    batch: int = 20_000,
    rebuild_index: bool | None = None,
    proprietary_fraction: float = 0.01,
) -> Archive:
    """Write ``n`` synthetic planes with fingerprints into the (migrated) database at ``dsn``.

    ``rebuild_index`` (default: when n >= 50,000) drops the HNSW index during the load and
    builds it again afterwards.
    """
    if rebuild_index is None:
        rebuild_index = n >= 50_000
    rng = np.random.default_rng(seed)
    blobs = _kind_blobs(rng)
    order = rng.permutation(n)  # rank of each plane along time_bounds_lower
    now = time.time()
    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        m1, m2 = _ensure_models(conn)
        index_def = None
        if rebuild_index:
            index_def = conn.execute(
                "SELECT pg_get_indexdef(to_regclass(%s))", (f"caomai.{HNSW_INDEX}",)
            ).fetchone()[0]
            if index_def:
                conn.execute(f"DROP INDEX caomai.{HNSW_INDEX}")
        conn.commit()
        t0 = time.monotonic()
        for start in range(0, n, batch):
            stop = min(n, start + batch)
            _write_batch(conn, rng, blobs, start, stop, n, order, m1, m2, now, proprietary_fraction)
            conn.commit()
            rate = stop / max(time.monotonic() - t0, 1e-9)
            log.info("synthetic: %d/%d planes (%.0f/s)", stop, n, rate)
        if index_def:
            log.info("synthetic: building the HNSW index")
            conn.execute("SET maintenance_work_mem = '2GB'")
            conn.execute(index_def)
            conn.commit()
        conn.autocommit = True
        for table in ("caom2.observation", "caom2.plane", "caomai.fingerprint"):
            conn.execute(f"ANALYZE {table}")
    return Archive(n=n, map1_model=m1, map2_model=m2, seed=seed)


def _write_batch(
    conn: psycopg.Connection,
    rng: np.random.Generator,
    blobs: list[np.ndarray],
    start: int,
    stop: int,
    n: int,
    order: np.ndarray,
    m1: int,
    m2: int,
    now: float,
    proprietary_fraction: float,
) -> None:
    from datetime import UTC, datetime, timedelta

    from .fingerprint import fingerprint

    m = stop - start
    kinds = rng.choice(len(KINDS), size=m, p=KIND_WEIGHTS)
    counts, n_det, n_samp, jitter = fingerprints(rng, kinds, blobs)
    # the loaders' own fingerprint, all rows at once: neighbourhoods as tight as real ones (among
    # 1000 images the median similarity of the 1st / 10th / 50th nearest neighbour is 0.968 /
    # 0.953 / 0.925 here, 0.962 / 0.949 / 0.925 on the demo archive; plain normalised counts
    # gave 0.741 / 0.684 / 0.611)
    fps = fingerprint(counts, n_det, n_samp, "smooth-sqrt")
    base = np.array([[2 + 5 * (k % 4), 3 + 5 * (k // 4) * 2] for k in range(len(KINDS))])
    node_rc = np.clip(np.rint(base[kinds] + jitter * 1.5), 0, [GRID_ROWS - 1, GRID_COLS - 1])
    map2_node = (node_rc[:, 0] * GRID_COLS + node_rc[:, 1]).astype(int)
    map2_dist = np.linalg.norm(jitter, axis=1).astype(np.float32)
    inst_names = [i for i, _ in INSTRUMENTS]
    inst = rng.choice(len(INSTRUMENTS), size=m, p=[f for _, f in INSTRUMENTS])
    band = rng.integers(0, len(BANDS), size=m)
    calib = np.where(rng.random(m) < 0.1, 1, 2)
    t_lo = MJD0 + MJD_SPAN * (order[start:stop] + 0.5) / n
    exptime = rng.choice([30.0, 60.0, 120.0, 300.0, 600.0], size=m)
    ra = rng.uniform(0, 360, size=m)
    dec = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-30)), np.sin(np.radians(70)), m)))
    proprietary = rng.random(m) < proprietary_fraction
    t_now = datetime.fromtimestamp(now, UTC).replace(tzinfo=None)
    past = t_now - timedelta(days=400)
    future = t_now + timedelta(days=365)
    obs_rows: list[Observation] = []
    plane_rows: list[Plane] = []
    fp_rows = []
    for j in range(m):
        i = start + j
        obs = f"syn{i:07d}"
        prod = obs + "p"
        obsid = uuid.UUID(bytes=rng.bytes(16), version=4)
        planeid = uuid.UUID(bytes=rng.bytes(16), version=4)
        release = future if proprietary[j] else past
        pub = publisher_id(i)
        half = 0.5 / max(np.cos(np.radians(dec[j])), 0.05)
        r0, r1, d0, d1 = ra[j] - half, ra[j] + half, dec[j] - 0.5, dec[j] + 0.5
        obs_rows.append(
            Observation(
                obsid=obsid,
                observationuri=f"caom:{COLLECTION}/{obs}",
                collection=COLLECTION,
                observationid=obs,
                type="OBJECT",
                intent="science",
                metarelease=release,
                target_name=KINDS[kinds[j]],
                telescope_name="CFHT 3.6m",
                instrument_name=inst_names[inst[j]],
            )
        )
        plane_rows.append(
            Plane(
                planeid=planeid,
                obsid=obsid,
                planeuri=f"caom:{COLLECTION}/{obs}/{prod}",
                publisherid=pub,
                productid=prod,
                metarelease=release,
                datarelease=release,
                dataproducttype="image",
                calibrationlevel=int(calib[j]),
                position_bounds=[r0, d0, r1, d0, r1, d1, r0, d1],
                position_bounds_center=[float(ra[j]), float(dec[j])],
                position_bounds_area=1.0,
                position_bounds_size=float(np.hypot(2 * half * np.cos(np.radians(dec[j])), 1.0)),
                energy_bandpassname=BANDS[band[j]],
                time_bounds_lower=float(t_lo[j]),
                time_bounds_upper=float(t_lo[j] + exptime[j] / 86400),
                time_exposure=float(exptime[j]),
            )
        )
        fp_rows.append(
            (
                planeid,
                m1,
                pub,
                release,
                fps[j],
                counts[j].tolist(),
                int(n_det[j]),
                int(n_samp[j]),
                m2,
                int(map2_node[j]),
                float(map2_dist[j]),
            )
        )
    caom2_rows.copy(conn, obs_rows)
    caom2_rows.copy(conn, plane_rows)
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY caomai.fingerprint (planeid, model_id, publisherid, metarelease, fp, counts,"
            " n_detected, n_sampled, map2_model_id, map2_node, map2_distance)"
            " FROM STDIN (FORMAT BINARY)"
        ) as cp,
    ):
        cp.set_types(
            [
                "uuid",
                "int4",
                "text",
                "timestamp",
                "vector",
                "int4[]",
                "int4",
                "int4",
                "int4",
                "int2",
                "float4",
            ]
        )
        for r in fp_rows:
            cp.write_row(r)
