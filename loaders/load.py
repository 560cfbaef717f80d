"""`caomai load`: planes -> objects -> Map-1 nodes -> fingerprints (+ Map-2 node) -> database.

How a run works
---------------
A *run* (``caomai.load_run``) is a set of planes to load with one Map-1 model; its queue
(``caomai.load_queue``) holds one row per plane. Any number of loader processes, on one
machine or many, work on a run at once: each claims planes with ``FOR UPDATE SKIP LOCKED``
(status ``running``, its worker id, ``attempts + 1``, committed at once), so no two processes
ever take the same plane, and writes each plane in ONE transaction: the old rows of that
(plane, model) are deleted, the objects are COPYed into ``caomai.object_annotation``, the
fingerprint is upserted, and the queue row becomes ``done`` - only if this worker still owns
it. A crash therefore loses at most the planes in flight, and the result of a plane does not
depend on which process or which attempt loaded it (sampling is seeded by the planeID, encoding
runs in fixed-size batches), so a run killed with SIGKILL and resumed ends with exactly the rows
a clean run gives.

Worker identity and crashed workers: a worker is named by its PostgreSQL session
(``host:pid pg<backend pid>@<backend start>``) and keeps that session open for its whole life.
A ``running`` plane whose session no longer exists in ``pg_stat_activity`` belongs to a dead
worker; any loader puts it back to ``pending`` (or ``failed`` after ``max_attempts``: a file
that kills its loader every time is recorded, not retried forever). That works across
machines without clocks or heartbeats.

Inside one process: ``workers`` processes read files, detect, sample and cut out (CPU-bound);
the main process encodes the cutouts (on CUDA when present: pinned memory, bfloat16 autocast),
assigns nodes, computes fingerprints and writes.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import socket
import sys
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import torch
from tqdm import tqdm

from caomai_db import database
from caomai_db.config import Settings
from caomai_db.errors import LostPlane

from . import fingerprint as fpmod
from . import modelstore, moments
from .detect import DetectionError, DetectParams
from .device import cpu_threads, pick_device
from .images import ImageError
from .maps import Map1, Map2
from .objects import FileObjects, NoObjectsError, file_objects
from .selection import select_planes

log = logging.getLogger(__name__)

ANNOTATION_COLUMNS = (
    "planeid",
    "model_id",
    "object_id",
    "publisherid",
    "metarelease",
    "metareadgroups",
    "extension",
    "extname",
    "x",
    "y",
    "ra",
    "dec",
    "flux",
    "a",
    "b",
    "theta",
    "peak",
    "flag",
    "map1_node",
    "map1_distance",
    *moments.NAMES,
)


@dataclass
class PlaneJob:
    planeid: uuid.UUID
    path: str
    publisherid: str
    metarelease: Any
    metareadgroups: str | None


@dataclass
class PlaneResult:
    """Everything one plane writes."""

    objects: FileObjects
    nodes: np.ndarray
    distances: np.ndarray
    counts: np.ndarray
    fp: np.ndarray
    map2_node: int | None = None
    map2_distance: float | None = None
    encode_s: float = 0.0


@dataclass
class LoadSummary:
    run_id: int
    model: str
    worker: str
    planes_done: int = 0
    planes_failed: int = 0
    objects: int = 0
    detected: int = 0
    pixels: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    run_counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        rate = self.planes_done / self.seconds if self.seconds else 0.0
        lines = [
            f"run {self.run_id} (map1 {self.model!r}): this loader wrote {self.planes_done} planes, "
            f"{self.objects} objects ({self.detected} detected) in {self.seconds:.1f} s "
            f"({rate:.2f} planes/s, {self.objects / max(self.seconds, 1e-9):.0f} objects/s); "
            f"{self.planes_failed} failed",
        ]
        if self.run_counts:
            lines.append(
                "run queue: " + ", ".join(f"{k} {v}" for k, v in sorted(self.run_counts.items()))
            )
        for failure in self.failures[:20]:
            lines.append(f"  failed: {failure}")
        if len(self.failures) > 20:
            lines.append(f"  ... and {len(self.failures) - 20} more (caomai.load_queue.error)")
        return "\n".join(lines)


# -- the per-plane pipeline (no database) -----------------------------------------------------


def plane_seed(planeid: uuid.UUID) -> int:
    """The sampling seed of a plane: the same sample on every run, process and machine."""
    return planeid.int & 0xFFFFFFFFFFFFFFFF


def detect_plane(job: tuple[str, str, int, dict, str]) -> tuple[str, Any]:
    """Worker: (planeid, path, max_objects, detect params, cutout background) -> FileObjects or
    an error text."""
    planeid, path, max_objects, params, background = job
    try:
        fo = file_objects(
            Path(path),
            max_objects=max_objects,
            seed=plane_seed(uuid.UUID(planeid)),
            params=DetectParams(**params),
            background=background,
        )
        return planeid, fo
    except (ImageError, NoObjectsError, DetectionError) as exc:
        return planeid, str(exc)
    except MemoryError:
        return planeid, f"{Path(path).name}: out of memory while reading or detecting"
    except Exception as exc:  # never let one file end the run; record what happened
        log.exception("unexpected error on %s", path)
        return planeid, f"{Path(path).name}: unexpected {type(exc).__name__}: {exc}"


def finish_plane(fo: FileObjects, map1: Map1, map2: Map2 | None) -> PlaneResult:
    """Encode, assign Map-1 nodes, fingerprint, place on Map 2."""
    t0 = time.perf_counter()
    nodes, dist = map1.assign(fo.cutouts, fo.columns)
    encode_s = time.perf_counter() - t0
    counts = fpmod.counts_of(nodes, map1.som.n_nodes)
    fp = fpmod.fingerprint(
        counts,
        fo.n_detected,
        fo.n_sampled,
        map1.transform,
        map1.som.rows,
        map1.som.cols,
        pixels=fo.pixels,
    )
    result = PlaneResult(fo, nodes, dist, counts, fp, encode_s=encode_s)
    if map2 is not None:
        node2, dist2 = map2.assign(fp[None, :])
        result.map2_node, result.map2_distance = int(node2[0]), float(dist2[0])
    return result


# -- database side ----------------------------------------------------------------------------


def write_plane(
    conn: psycopg.Connection,
    *,
    run_id: int | None,
    worker: str | None,
    job: PlaneJob,
    model_id: int,
    map2_model_id: int | None,
    result: PlaneResult,
) -> None:
    """One transaction: annotations (COPY), fingerprint, queue row -> done."""
    fo = result.objects
    cols = fo.columns
    with conn.transaction():
        if run_id is not None:
            cur = conn.execute(
                "UPDATE caomai.load_queue SET status = 'done', finished_at = now(),"
                " n_detected = %s, n_sampled = %s, error = %s"
                " WHERE run_id = %s AND planeid = %s AND worker = %s AND status = 'running'",
                (
                    fo.n_detected,
                    fo.n_sampled,
                    ("warning: " + "; ".join(fo.notes))[:4000] if fo.notes else None,
                    run_id,
                    job.planeid,
                    worker,
                ),
            )
            if cur.rowcount != 1:
                raise LostPlane(str(job.planeid))
        conn.execute(
            "DELETE FROM caomai.object_annotation WHERE planeid = %s AND model_id = %s",
            (job.planeid, model_id),
        )
        with (
            conn.cursor() as cur,
            cur.copy(
                f"COPY caomai.object_annotation ({', '.join(ANNOTATION_COLUMNS)}) FROM STDIN"
            ) as copy,
        ):
            for i in range(fo.n_sampled):
                ra, dec = float(cols["ra"][i]), float(cols["dec"][i])
                copy.write_row(
                    (
                        job.planeid,
                        model_id,
                        i,
                        job.publisherid,
                        job.metarelease,
                        job.metareadgroups,
                        int(cols["extension"][i]),
                        fo.extnames[i],
                        float(cols["x"][i]),
                        float(cols["y"][i]),
                        ra if np.isfinite(ra) else None,
                        dec if np.isfinite(dec) else None,
                        _finite(cols["flux"][i]),
                        _finite(cols["a"][i]),
                        _finite(cols["b"][i]),
                        _finite(cols["theta"][i]),
                        _finite(cols["peak"][i]),
                        int(cols["flag"][i]),
                        int(result.nodes[i]),
                        float(result.distances[i]),
                        *(_finite(cols[name][i]) for name in moments.NAMES),
                    )
                )
        conn.execute(
            "INSERT INTO caomai.fingerprint (planeid, model_id, publisherid, metarelease,"
            " metareadgroups, fp, counts, n_detected, n_sampled, map2_model_id, map2_node,"
            " map2_distance, computed_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())"
            " ON CONFLICT (planeid, model_id) DO UPDATE SET publisherid = EXCLUDED.publisherid,"
            " metarelease = EXCLUDED.metarelease, metareadgroups = EXCLUDED.metareadgroups,"
            " fp = EXCLUDED.fp, counts = EXCLUDED.counts, n_detected = EXCLUDED.n_detected,"
            " n_sampled = EXCLUDED.n_sampled, map2_model_id = EXCLUDED.map2_model_id,"
            " map2_node = EXCLUDED.map2_node, map2_distance = EXCLUDED.map2_distance,"
            " computed_at = now()",
            (
                job.planeid,
                model_id,
                job.publisherid,
                job.metarelease,
                job.metareadgroups,
                result.fp,
                [int(c) for c in result.counts],
                fo.n_detected,
                fo.n_sampled,
                map2_model_id if result.map2_node is not None else None,
                result.map2_node,
                result.map2_distance,
            ),
        )


def _finite(value: Any) -> float | None:
    v = float(value)
    return v if np.isfinite(v) else None


def fail_plane(conn: psycopg.Connection, run_id: int, worker: str, planeid, error: str) -> None:
    with conn.transaction():
        conn.execute(
            "UPDATE caomai.load_queue SET status = 'failed', finished_at = now(), error = %s"
            " WHERE run_id = %s AND planeid = %s AND worker = %s AND status = 'running'",
            (error[:4000], run_id, planeid, worker),
        )


def worker_identity(lease: psycopg.Connection) -> str:
    """This loader's name: host, OS pid and its PostgreSQL session (pid + start time)."""
    pid, start = lease.execute(
        "SELECT pid, (extract(epoch FROM backend_start) * 1000000)::bigint"
        " FROM pg_stat_activity WHERE pid = pg_backend_pid()"
    ).fetchone()
    return f"{socket.gethostname()}:{os.getpid()} pg{pid}@{start}"


def _session_of(worker: str) -> tuple[int, int] | None:
    try:
        pg = worker.rsplit(" pg", 1)[1]
        pid, start = pg.split("@")
        return int(pid), int(start)
    except (IndexError, ValueError):
        return None


def reclaim_dead(conn: psycopg.Connection, run_id: int, max_attempts: int) -> int:
    """Planes 'running' under a PostgreSQL session that no longer exists go back to the queue."""
    running = conn.execute(
        "SELECT planeid, worker, attempts FROM caomai.load_queue"
        " WHERE run_id = %s AND status = 'running'",
        (run_id,),
    ).fetchall()
    if not running:
        conn.commit()
        return 0
    live = {
        (r[0], r[1])
        for r in conn.execute(
            "SELECT pid, (extract(epoch FROM backend_start) * 1000000)::bigint"
            " FROM pg_stat_activity WHERE backend_start IS NOT NULL"
        ).fetchall()
    }
    n = 0
    for planeid, worker, attempts in running:
        session = _session_of(worker or "")
        if session is not None and session in live:
            continue
        if attempts >= max_attempts:
            conn.execute(
                "UPDATE caomai.load_queue SET status = 'failed', finished_at = now(), error = %s"
                " WHERE run_id = %s AND planeid = %s AND status = 'running' AND worker = %s",
                (
                    f"the loader died {attempts} times while loading this plane (killed, out of"
                    " memory or crashed); last worker " + (worker or "?"),
                    run_id,
                    planeid,
                    worker,
                ),
            )
        else:
            conn.execute(
                "UPDATE caomai.load_queue SET status = 'pending', worker = NULL"
                " WHERE run_id = %s AND planeid = %s AND status = 'running' AND worker = %s",
                (run_id, planeid, worker),
            )
        n += 1
    conn.commit()
    if n:
        log.warning("run %s: %d plane(s) of dead loaders put back in the queue", run_id, n)
    return n


def claim(conn: psycopg.Connection, run_id: int, worker: str, limit: int) -> list[PlaneJob]:
    """Take up to ``limit`` pending planes of the run; nobody else can take them."""
    rows = conn.execute(
        "WITH picked AS ("
        "  SELECT run_id, planeid FROM caomai.load_queue"
        "   WHERE run_id = %s AND status = 'pending'"
        "   ORDER BY planeid LIMIT %s FOR UPDATE SKIP LOCKED)"
        " UPDATE caomai.load_queue AS q SET status = 'running', worker = %s,"
        "        attempts = q.attempts + 1, started_at = now(), finished_at = NULL, error = NULL"
        "   FROM picked WHERE q.run_id = picked.run_id AND q.planeid = picked.planeid"
        " RETURNING q.planeid",
        (run_id, limit, worker),
    ).fetchall()
    conn.commit()
    if not rows:
        return []
    ids = [r[0] for r in rows]
    info = conn.execute(
        "SELECT p.planeid, p.publisherid, p.metarelease, p.metareadgroups,"
        "       (SELECT min(a.uri) FROM caom2.artifact AS a"
        "         WHERE a.planeid = p.planeid AND a.producttype = 'science') AS uri"
        "  FROM caom2.plane AS p WHERE p.planeid = ANY(%s)",
        (ids,),
    ).fetchall()
    conn.commit()
    by_id = {r[0]: r for r in info}
    jobs = []
    for pid in ids:
        r = by_id.get(pid)
        if r is None:
            fail_plane(conn, run_id, worker, pid, "the plane no longer exists in caom2.Plane")
            continue
        uri = r[4] or ""
        path = uri[len("file://") :] if uri.startswith("file://") else ""
        jobs.append(PlaneJob(pid, path, r[1], r[2], r[3]))
    return jobs


def release(conn: psycopg.Connection, run_id: int, worker: str, planeids: list) -> None:
    """Give claimed, unwritten planes back (on Ctrl-C); the attempt does not count."""
    if not planeids:
        return
    conn.execute(
        "UPDATE caomai.load_queue SET status = 'pending', worker = NULL,"
        " attempts = greatest(attempts - 1, 0)"
        " WHERE run_id = %s AND planeid = ANY(%s) AND worker = %s AND status = 'running'",
        (run_id, planeids, worker),
    )
    conn.commit()


def queue_counts(conn: psycopg.Connection, run_id: int) -> dict[str, int]:
    rows = conn.execute(
        "SELECT status, count(*) FROM caomai.load_queue WHERE run_id = %s GROUP BY status",
        (run_id,),
    ).fetchall()
    conn.commit()
    return {r[0]: int(r[1]) for r in rows}


# -- runs -------------------------------------------------------------------------------------


def create_run(
    conn: psycopg.Connection,
    *,
    model: modelstore.ModelRow,
    map2: modelstore.ModelRow | None,
    planeids: list,
    params: dict[str, Any],
    reload: bool,
) -> tuple[int, int, int]:
    """A new run with its queue; planes already loaded with this model are skipped unless
    ``reload``. Returns (run_id, queued, skipped)."""
    with conn.transaction():
        run_id = conn.execute(
            "INSERT INTO caomai.load_run (model_id, map2_model_id, params, status)"
            " VALUES (%s, %s, %s, 'open') RETURNING run_id",
            (model.model_id, map2.model_id if map2 else None, json.dumps(params)),
        ).fetchone()[0]
        skip_done = (
            ""
            if reload
            else (
                " AND NOT EXISTS (SELECT 1 FROM caomai.fingerprint AS f"
                "  WHERE f.planeid = u.planeid AND f.model_id = %(model)s)"
            )
        )
        cur = conn.execute(
            "INSERT INTO caomai.load_queue (run_id, planeid)"
            " SELECT %(run)s, u.planeid FROM unnest(%(ids)s::uuid[]) AS u(planeid)"
            " WHERE true" + skip_done + " ON CONFLICT DO NOTHING",
            {"run": run_id, "ids": planeids, "model": model.model_id},
        )
        queued = cur.rowcount
    return run_id, queued, len(set(planeids)) - queued


def find_run(conn: psycopg.Connection, run_id: int | None) -> tuple[int, int, dict[str, Any]]:
    """(run_id, model_id, params) of the given run, else of the latest open one."""
    if run_id is not None:
        row = conn.execute(
            "SELECT run_id, model_id, params FROM caomai.load_run WHERE run_id = %s", (run_id,)
        ).fetchone()
        if row is None:
            raise ValueError(f"no load run {run_id}")
    else:
        row = conn.execute(
            "SELECT run_id, model_id, params FROM caomai.load_run WHERE status = 'open'"
            " ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            raise ValueError("no open load run to resume; start one with `caomai load`")
    conn.commit()
    return int(row[0]), int(row[1]), row[2] or {}


def finish_run(conn: psycopg.Connection, run_id: int) -> dict[str, int]:
    counts = queue_counts(conn, run_id)
    if not counts.get("pending") and not counts.get("running"):
        conn.execute(
            "UPDATE caomai.load_run SET status = 'finished', finished_at = now()"
            " WHERE run_id = %s AND status = 'open'",
            (run_id,),
        )
        conn.commit()
    return counts


@dataclass
class LoadOptions:
    max_objects: int = 1000
    workers: int | None = None
    device: str = "auto"
    threads: int | None = None
    max_attempts: int = 3
    progress: bool = True
    #: planes claimed ahead of the one being written (keeps the detection workers busy)
    prefetch: int | None = None
    #: stop after this many planes (tests and benchmarks; None = until the queue is empty)
    limit: int | None = None


def load(
    settings: Settings,
    *,
    planes: str | None = None,
    files: list[str] | None = None,
    resume: bool = False,
    run_id: int | None = None,
    reload: bool = False,
    retry_failed: bool = False,
    enqueue_only: bool = False,
    options: LoadOptions | None = None,
) -> LoadSummary:
    """Create a run (or resume one) and work on its queue until it is empty."""
    options = options or LoadOptions()
    dsn = database.resolve_dsn(settings)
    with database.connect(dsn) as conn:
        if resume or run_id is not None:
            if planes or files:
                raise ValueError(
                    "--resume continues a run with its own planes; drop --planes/--files"
                )
            run_id, model_id, params = find_run(conn, run_id)
            model = modelstore.get_model(conn, model_id)
            max_objects = int(params.get("max_objects", options.max_objects))
            if retry_failed:
                conn.execute(
                    "UPDATE caomai.load_queue SET status = 'pending', worker = NULL, attempts = 0"
                    " WHERE run_id = %s AND status = 'failed'",
                    (run_id,),
                )
                conn.execute(
                    "UPDATE caomai.load_run SET status = 'open', finished_at = NULL"
                    " WHERE run_id = %s",
                    (run_id,),
                )
                conn.commit()
        else:
            model = modelstore.active_model(conn, "map1")
            map2_row = _map2_for(conn, model)
            chosen = select_planes(conn, planes, files)
            conn.commit()
            if not chosen:
                raise ValueError("no planes selected (check --planes/--files, or register files)")
            max_objects = options.max_objects
            params = {
                "max_objects": max_objects,
                "planes": planes,
                "files": len(files or []),
                "reload": reload,
            }
            run_id, queued, skipped = create_run(
                conn,
                model=model,
                map2=map2_row,
                planeids=[p.planeid for p in chosen],
                params=params,
                reload=reload,
            )
            print(
                f"run {run_id}: {queued} planes queued with map1 {model.name!r}"
                + (
                    f", {skipped} already loaded with it (skipped; --reload redoes them)"
                    if skipped
                    else ""
                ),
                file=sys.stderr,
            )
    if enqueue_only:
        return LoadSummary(run_id=run_id, model=model.name, worker="")
    return work(settings, dsn, run_id, model, max_objects, options)


def _map2_for(conn: psycopg.Connection, model: modelstore.ModelRow) -> modelstore.ModelRow | None:
    """The active Map 2 if it was trained on this Map 1's fingerprints."""
    m2 = modelstore.active_model(conn, "map2", required=False)
    return m2 if m2 is not None and m2.parent_id == model.model_id else None


def work(
    settings: Settings,
    dsn: str,
    run_id: int,
    model: modelstore.ModelRow,
    max_objects: int,
    options: LoadOptions,
) -> LoadSummary:
    """Take planes of a run from the queue until none is left; returns what this process did."""
    device = pick_device(options.device)
    n_cpu = cpu_threads()
    workers = options.workers if options.workers is not None else max(1, n_cpu - 1)
    # One intra-op thread unless asked: a convolution's float sums depend on how many threads
    # split it, and a plane must get the same bits whatever the number of detection workers
    # (re-running a load changes nothing). The default workers leave one core for this anyway.
    torch.set_num_threads(cpu_threads(options.threads) if options.threads else 1)
    prefetch = options.prefetch or max(2, 2 * workers)

    payload = modelstore.load_payload(settings, model)
    map1 = Map1.from_payload(payload, device)
    with database.connect(dsn) as conn:
        m2row = _map2_for(conn, model)
        conn.commit()
    map2 = Map2.from_payload(modelstore.load_payload(settings, m2row)) if m2row else None
    detect_params = asdict(map1.detect)

    summary = LoadSummary(run_id=run_id, model=model.name, worker="")
    # detect: read + detect + cut out, summed over the worker processes (CPU seconds);
    # wait: time the main process waited for them; encode and write: main process
    stage = {"detect": 0.0, "wait": 0.0, "encode": 0.0, "write": 0.0}
    lease = database.connect(dsn, autocommit=True)
    conn = database.connect(dsn)
    for c in (lease, conn):
        c.execute("SET application_name = 'caomai-load'")
        c.commit()
    pool = None
    in_flight: deque[tuple[PlaneJob, Any]] = deque()
    try:
        worker = worker_identity(lease)
        summary.worker = worker
        reclaim_dead(conn, run_id, options.max_attempts)
        counts = queue_counts(conn, run_id)
        total = counts.get("pending", 0) + counts.get("running", 0)
        if options.limit:
            total = min(total, options.limit)
        if workers > 0:
            pool = mp.get_context("spawn").Pool(workers)
        bar = tqdm(
            total=total,
            desc=f"load run {run_id}",
            unit="plane",
            disable=not options.progress,
            file=sys.stderr,
            smoothing=0.1,
        )
        t_start = time.perf_counter()
        claimed = 0
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < prefetch:
                want = prefetch - len(in_flight)
                if options.limit:
                    want = min(want, options.limit - claimed)
                if want <= 0:
                    exhausted = True
                    break
                jobs = claim(conn, run_id, worker, want)
                if not jobs:
                    # dead loaders' planes come back; then we may find more
                    if reclaim_dead(conn, run_id, options.max_attempts):
                        continue
                    exhausted = True
                    break
                claimed += len(jobs)
                for job in jobs:
                    args = (
                        str(job.planeid),
                        job.path,
                        max_objects,
                        detect_params,
                        map1.background,
                    )
                    handle = pool.apply_async(detect_plane, (args,)) if pool else args
                    in_flight.append((job, handle))
            if not in_flight:
                break
            job, handle = in_flight.popleft()
            t0 = time.perf_counter()
            _, got = handle.get() if pool else detect_plane(handle)
            stage["wait"] += time.perf_counter() - t0
            if isinstance(got, str):
                fail_plane(conn, run_id, worker, job.planeid, got)
                summary.planes_failed += 1
                summary.failures.append(got)
            else:
                stage["detect"] += sum(got.timings.values())
                result = finish_plane(got, map1, map2)
                stage["encode"] += result.encode_s
                t1 = time.perf_counter()
                try:
                    write_plane(
                        conn,
                        run_id=run_id,
                        worker=worker,
                        job=job,
                        model_id=model.model_id,
                        map2_model_id=m2row.model_id if m2row else None,
                        result=result,
                    )
                except LostPlane:
                    log.warning("plane %s was reclaimed by another loader; skipped", job.planeid)
                    continue
                stage["write"] += time.perf_counter() - t1
                summary.planes_done += 1
                summary.objects += got.n_sampled
                summary.detected += got.n_detected
                summary.pixels += got.pixels
            bar.update(1)
            elapsed = time.perf_counter() - t_start
            bar.set_postfix(
                objects_s=f"{summary.objects / max(elapsed, 1e-9):.0f}",
                failed=summary.planes_failed,
                refresh=False,
            )
        bar.close()
        summary.seconds = round(time.perf_counter() - t_start, 3)
        summary.stage_seconds = {k: round(v, 3) for k, v in stage.items()}
        summary.run_counts = finish_run(conn, run_id)
    except BaseException:
        # Ctrl-C or an error of ours: planes we claimed but did not write go back at once
        try:
            conn.rollback()
            release(conn, run_id, summary.worker, [job.planeid for job, _ in in_flight])
        except Exception:
            pass
        raise
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        conn.close()
        lease.close()
    return summary
