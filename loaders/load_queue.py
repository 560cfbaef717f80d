"""The load queue: runs (caomai.load_run) and their planes (caomai.load_queue), claimed by
any number of loader processes with ``FOR UPDATE SKIP LOCKED``; a plane whose worker's
PostgreSQL session is gone goes back to pending (see the docstring of ``load.py``)."""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from caomai_db.errors import UsageError

from . import modelstore

log = logging.getLogger(__name__)


@dataclass
class PlaneJob:
    planeid: uuid.UUID
    path: str
    publisherid: str
    metarelease: Any
    metareadgroups: str | None


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
            raise UsageError(f"no load run {run_id}")
    else:
        row = conn.execute(
            "SELECT run_id, model_id, params FROM caomai.load_run WHERE status = 'open'"
            " ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            raise UsageError("no open load run to resume; start one with `caomai load`")
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
