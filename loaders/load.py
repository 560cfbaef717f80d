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

import logging
import multiprocessing as mp
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from tqdm import tqdm

from caomai_db import database
from caomai_db.config import Settings
from caomai_db.errors import LostPlane, UsageError

from . import modelstore
from .device import cpu_threads, pick_device
from .maps import Map1, Map2
from .selection import select_planes
from .simulate import ignore_sigint

log = logging.getLogger(__name__)

# the parts, re-exported: tests and benchmarks use them by these names
from .load_pipeline import PlaneResult, detect_plane, finish_plane, plane_seed  # noqa: E402
from .load_queue import (  # noqa: E402
    PlaneJob,
    claim,
    create_run,
    fail_plane,
    find_run,
    finish_run,
    queue_counts,
    reclaim_dead,
    release,
    worker_identity,
)
from .load_write import ANNOTATION_COLUMNS, write_plane  # noqa: E402

__all__ = [
    "ANNOTATION_COLUMNS",
    "LoadOptions",
    "LoadSummary",
    "PlaneJob",
    "PlaneResult",
    "claim",
    "create_run",
    "detect_plane",
    "fail_plane",
    "find_run",
    "finish_plane",
    "finish_run",
    "load",
    "plane_seed",
    "queue_counts",
    "reclaim_dead",
    "release",
    "worker_identity",
    "write_plane",
]


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
    #: write each plane's preview and its Map-1 node cutouts (caomai.preview, object_cutout)
    previews: bool = True


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
    say: Callable[[str], None] | None = None,
) -> LoadSummary:
    """Create a run (or resume one) and work on its queue until it is empty. The run it
    created is reported through ``say`` (the CLI prints it; default: the log)."""
    options = options or LoadOptions()
    dsn = database.resolve_dsn(settings)
    with database.connect(dsn) as conn:
        if resume or run_id is not None:
            if planes or files:
                raise UsageError(
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
            map2_row = modelstore.active_map2_for(conn, model)
            chosen = select_planes(conn, planes, files)
            conn.commit()
            if not chosen:
                raise UsageError("no planes selected (check --planes/--files, or register files)")
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
            (say or log.info)(
                f"run {run_id}: {queued} planes queued with map1 {model.name!r}"
                + (
                    f", {skipped} already loaded with it (skipped; --reload redoes them)"
                    if skipped
                    else ""
                )
            )
    if enqueue_only:
        return LoadSummary(run_id=run_id, model=model.name, worker="")
    return work(settings, dsn, run_id, model, max_objects, options)


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
    workers = options.workers if options.workers is not None else n_cpu
    # One intra-op thread unless asked: a convolution's float sums depend on how many threads
    # split it, and a plane must get the same bits whatever the number of detection workers
    # (re-running a load changes nothing). The default is one worker per core: the main
    # process's encoding and writing take a fifth of a plane's CPU, and on 2 cores one worker
    # left the second half idle (300 seed-11 planes: two workers loaded 1.3-1.6x what one
    # did; bench/results/load_compare-runs.txt).
    torch.set_num_threads(cpu_threads(options.threads) if options.threads else 1)
    prefetch = options.prefetch or max(2, 2 * workers)

    payload = modelstore.load_payload(settings, model)
    map1 = Map1.from_payload(payload, device)
    with database.connect(dsn) as conn:
        m2row = modelstore.active_map2_for(conn, model)
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
            pool = mp.get_context("spawn").Pool(workers, initializer=ignore_sigint)
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
                        options.previews,
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
                result = finish_plane(got, map1, map2, options.previews)
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
                        previews=options.previews,
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
