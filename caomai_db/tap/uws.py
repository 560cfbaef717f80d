"""Asynchronous TAP: UWS 1.1 jobs kept in the database (``caomai_uws.job``).

Jobs, their parameters, phases, times, errors and results are rows written by the role
``caomai_uws`` (migration 0002), so they survive a restart of the service: at start-up jobs
left QUEUED or EXECUTING by a stopped service are queued again (queries are reads; running
one twice changes nothing). Queries run on the reader pool like sync queries, in a small
thread pool, with the job's execution duration as statement timeout. ABORT cancels the
running statement. A sweeper deletes jobs past their destruction time.

One ``caomai serve`` process runs the jobs it owns; run a single process per database.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape, quoteattr

import psycopg
from psycopg.rows import dict_row

from .service import TapService

log = logging.getLogger(__name__)

PHASES = ("PENDING", "QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED", "UNKNOWN", "HELD")
PHASES += ("SUSPENDED", "ARCHIVED")
FINAL = {"COMPLETED", "ERROR", "ABORTED", "ARCHIVED"}
ACTIVE = {"QUEUED", "EXECUTING"}
#: the parameters a TAP job understands (others are kept and shown, never used)
DEFAULT_DURATION_S = 600


class JobError(Exception):
    """A UWS request that cannot be honoured (HTTP status and message)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Job:
    job_id: str
    run_id: str | None
    owner_id: str | None
    phase: str
    parameters: dict[str, str]
    creation_time: datetime
    start_time: datetime | None
    end_time: datetime | None
    execution_duration: int
    destruction_time: datetime
    error_summary: str | None
    result_mime: str | None
    result_rows: int | None
    result_overflow: bool | None
    plan: str | None


_COLUMNS = (
    "job_id, run_id, owner_id, phase, parameters, creation_time, start_time, end_time,"
    " execution_duration, destruction_time, error_summary, result_mime, result_rows,"
    " result_overflow, plan"
)


def _iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    return t.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_time(text: str) -> datetime:
    """An ISO 8601 time as UWS clients send it (with or without Z / offset)."""
    t = text.strip().replace("Z", "+00:00")
    try:
        value = datetime.fromisoformat(t)
    except ValueError:
        raise JobError(
            f"cannot read the time {text!r}; use ISO 8601, e.g. 2030-01-01T00:00:00Z"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


class JobStore:
    """Job rows in ``caomai_uws.job`` and the threads that run them."""

    def __init__(self, service: TapService, workers: int = 2) -> None:
        self.service = service
        self.settings = service.settings
        self.pool = service.uws_pool
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="uws")
        self._running: dict[str, psycopg.Connection] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="uws-sweeper", daemon=True)

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Take over jobs a previous service left queued or running; start the sweeper."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "UPDATE caomai_uws.job SET phase = 'QUEUED', start_time = NULL, worker = NULL"
                " WHERE phase IN ('QUEUED', 'EXECUTING') RETURNING job_id"
            ).fetchall()
        for (job_id,) in rows:
            log.info("resuming job %s after a restart", job_id)
            self.executor.submit(self._execute, job_id)
        self._sweeper.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for conn in self._running.values():
                with contextlib.suppress(Exception):  # best effort at shutdown
                    conn.cancel()
        self.executor.shutdown(wait=True, cancel_futures=True)

    def _sweep_loop(self) -> None:
        while not self._stop.wait(30):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - keep sweeping
                log.exception("job sweep failed")

    def sweep(self) -> int:
        """Delete jobs past their destruction time."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "DELETE FROM caomai_uws.job WHERE destruction_time < now() RETURNING job_id"
            ).fetchall()
        for (job_id,) in rows:
            self._cancel(job_id)
        return len(rows)

    # -- reading ---------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        with self.pool.connection() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM caomai_uws.job WHERE job_id = %s AND destruction_time >= now()",
                (job_id,),
            ).fetchone()
        if row is None:
            raise JobError(f"no job {job_id!r} (it never existed, was deleted or destroyed)", 404)
        return Job(*row)

    def result(self, job_id: str) -> tuple[bytes, str]:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT phase, result, result_mime FROM caomai_uws.job WHERE job_id = %s",
                (job_id,),
            ).fetchone()
        if row is None:
            raise JobError(f"no job {job_id!r}", 404)
        phase, body, mime = row
        if phase != "COMPLETED" or body is None:
            raise JobError(f"job {job_id} has no result: its phase is {phase}", 404)
        return bytes(body), mime

    def list(self, phases: list[str], after: datetime | None, last: int | None) -> list[Job]:
        where = ["destruction_time >= now()"]
        params: list[object] = []
        if phases:
            bad = [p for p in phases if p not in PHASES]
            if bad:
                raise JobError(f"unknown PHASE {bad[0]!r}; phases are {', '.join(PHASES)}")
            where.append("phase = ANY(%s)")
            params.append(phases)
        else:
            where.append("phase <> 'ARCHIVED'")
        if after is not None:
            where.append("creation_time > %s")
            params.append(after)
        sql = f"SELECT {_COLUMNS} FROM caomai_uws.job WHERE {' AND '.join(where)}"
        if last is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY creation_time DESC LIMIT {int(last)}) AS j"
        sql += " ORDER BY creation_time"
        with self.pool.connection() as conn:
            return [Job(*r) for r in conn.execute(sql, params).fetchall()]

    def wait(self, job_id: str, seconds: float, phase: str | None) -> Job:
        """UWS 1.1 blocking: return when the phase changes (from ``phase``) or time is up."""
        job = self.get(job_id)
        deadline = time.monotonic() + max(0.0, seconds)
        start_phase = phase or job.phase
        if phase is None and job.phase not in ("PENDING", "QUEUED", "EXECUTING"):
            return job
        while job.phase == start_phase and job.phase not in FINAL:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with self._changed:
                self._changed.wait(min(remaining, 0.5))
            job = self.get(job_id)
        return job

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # -- writing ---------------------------------------------------------------------------

    def create(self, params: dict[str, str], owner: str | None = None) -> Job:
        duration = self._duration(params.pop("EXECUTIONDURATION", None))
        destruction = datetime.now(UTC) + timedelta(seconds=self.settings.job_retention_s)
        if "DESTRUCTION" in params:
            destruction = min(destruction, parse_time(params.pop("DESTRUCTION")))
        run_id = params.pop("RUNID", None)
        phase_request = params.pop("PHASE", None)
        job_id = uuid.uuid4().hex[:16]
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO caomai_uws.job (job_id, run_id, owner_id, phase, parameters,"
                " execution_duration, destruction_time) VALUES (%s, %s, %s, 'PENDING', %s, %s, %s)",
                (job_id, run_id, owner, json.dumps(params), duration, destruction),
            )
        if phase_request is not None:
            self.phase(job_id, phase_request)
        return self.get(job_id)

    def _duration(self, raw: str | None) -> int:
        hard = self.settings.async_max_duration_s
        if raw is None or raw.strip() == "":
            return min(DEFAULT_DURATION_S, hard)
        try:
            value = int(float(raw))
        except ValueError:
            raise JobError(f"EXECUTIONDURATION must be a number of seconds, got {raw!r}") from None
        if value < 0:
            raise JobError("EXECUTIONDURATION cannot be negative")
        return hard if value == 0 else min(value, hard)

    def set_parameters(self, job_id: str, params: dict[str, str]) -> Job:
        job = self.get(job_id)
        if job.phase != "PENDING":
            raise JobError(
                f"job {job_id} is {job.phase}: parameters can change only while PENDING", 409
            )
        merged = dict(job.parameters) | params
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE caomai_uws.job SET parameters = %s WHERE job_id = %s",
                (json.dumps(merged), job_id),
            )
        return self.get(job_id)

    def set_duration(self, job_id: str, raw: str) -> Job:
        job = self.get(job_id)
        value = self._duration(raw)
        if job.phase != "PENDING":
            raise JobError(
                f"job {job_id} is {job.phase}: its duration can change only while PENDING", 409
            )
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE caomai_uws.job SET execution_duration = %s WHERE job_id = %s",
                (value, job_id),
            )
        return self.get(job_id)

    def set_destruction(self, job_id: str, raw: str) -> Job:
        self.get(job_id)
        value = parse_time(raw)
        hard = datetime.now(UTC) + timedelta(seconds=self.settings.job_retention_s)
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE caomai_uws.job SET destruction_time = %s WHERE job_id = %s",
                (min(value, hard), job_id),
            )
        return self.get(job_id)

    def phase(self, job_id: str, action: str) -> Job:
        action = action.strip().upper()
        if action == "RUN":
            with self.pool.connection() as conn:
                row = conn.execute(
                    "UPDATE caomai_uws.job SET phase = 'QUEUED' WHERE job_id = %s"
                    " AND phase IN ('PENDING', 'HELD') RETURNING job_id",
                    (job_id,),
                ).fetchone()
            if row is None:
                job = self.get(job_id)
                if job.phase in ACTIVE | FINAL:
                    return job  # running or done already: RUN again changes nothing
                raise JobError(f"job {job_id} is {job.phase} and cannot be run", 409)
            self.executor.submit(self._execute, job_id)
            self._notify()
        elif action == "ABORT":
            with self.pool.connection() as conn:
                conn.execute(
                    "UPDATE caomai_uws.job SET phase = 'ABORTED', end_time = now()"
                    " WHERE job_id = %s AND phase IN ('PENDING', 'QUEUED', 'EXECUTING', 'HELD',"
                    " 'SUSPENDED')",
                    (job_id,),
                )
            self._cancel(job_id)
            self._notify()
        elif action == "SUSPEND":
            raise JobError("SUSPEND is not supported by this service", 400)
        else:
            raise JobError(f"PHASE={action} is not a phase change; use RUN or ABORT")
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "DELETE FROM caomai_uws.job WHERE job_id = %s RETURNING job_id", (job_id,)
            ).fetchone()
        if row is None:
            raise JobError(f"no job {job_id!r}", 404)
        self._cancel(job_id)
        self._notify()

    def _cancel(self, job_id: str) -> None:
        with self._lock:
            conn = self._running.get(job_id)
        if conn is not None:
            try:
                conn.cancel()
            except Exception:  # noqa: BLE001 - the query may just have finished
                log.debug("cancel of %s failed", job_id, exc_info=True)

    # -- running ---------------------------------------------------------------------------

    def _execute(self, job_id: str) -> None:
        if self._stop.is_set():
            return
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "UPDATE caomai_uws.job SET phase = 'EXECUTING', start_time = now(), worker = %s"
                " WHERE job_id = %s AND phase = 'QUEUED'"
                " RETURNING parameters, execution_duration",
                (self.worker_id, job_id),
            ).fetchone()
        if row is None:
            return  # aborted or deleted meanwhile
        self._notify()

        def hook(conn: psycopg.Connection | None) -> None:
            with self._lock:
                if conn is None:
                    self._running.pop(job_id, None)
                else:
                    self._running[job_id] = conn

        params = {k.upper(): str(v) for k, v in row["parameters"].items()}
        out = self.service.run_query(params, timeout_s=row["execution_duration"], cancel_hook=hook)
        with self.pool.connection() as conn:
            if out.error is None:
                conn.execute(
                    "UPDATE caomai_uws.job SET phase = 'COMPLETED', end_time = now(), result = %s,"
                    " result_mime = %s, result_rows = %s, result_overflow = %s, plan = %s"
                    " WHERE job_id = %s AND phase = 'EXECUTING'",
                    (out.body, out.content_type, out.rows, out.overflow, out.plan, job_id),
                )
            else:
                conn.execute(
                    "UPDATE caomai_uws.job SET phase = 'ERROR', end_time = now(),"
                    " error_summary = %s WHERE job_id = %s AND phase = 'EXECUTING'",
                    (out.error, job_id),
                )
        self._notify()


# -- XML --------------------------------------------------------------------------------------

_NS = (
    'xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" xmlns:xlink="http://www.w3.org/1999/xlink"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)


def _el(name: str, value: object | None) -> str:
    if value is None:
        return f'  <uws:{name} xsi:nil="true"/>'
    return f"  <uws:{name}>{escape(str(value))}</uws:{name}>"


def job_xml(job: Job, base: str) -> str:
    url = f"{base}/async/{job.job_id}"
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<uws:job {_NS} version="1.1">']
    lines.append(_el("jobId", job.job_id))
    if job.run_id is not None:
        lines.append(_el("runId", job.run_id))
    lines.append(_el("ownerId", job.owner_id))
    lines.append(_el("phase", job.phase))
    lines.append(_el("quote", None))
    lines.append(_el("creationTime", _iso(job.creation_time)))
    lines.append(_el("startTime", _iso(job.start_time)))
    lines.append(_el("endTime", _iso(job.end_time)))
    lines.append(_el("executionDuration", job.execution_duration))
    lines.append(_el("destruction", _iso(job.destruction_time)))
    lines.append("  <uws:parameters>")
    for k, v in sorted(job.parameters.items()):
        lines.append(f"    <uws:parameter id={quoteattr(k)}>{escape(str(v))}</uws:parameter>")
    lines.append("  </uws:parameters>")
    lines.append("  <uws:results>")
    if job.phase == "COMPLETED":
        size = ""
        lines.append(
            f'    <uws:result id="result" xlink:type="simple" xlink:href={quoteattr(url + "/results/result")}'
            f"{size} mime-type={quoteattr(job.result_mime or '')}/>"
        )
    lines.append("  </uws:results>")
    if job.phase == "ERROR":
        lines.append('  <uws:errorSummary type="fatal" hasDetail="true">')
        lines.append(f"    <uws:message>{escape(job.error_summary or '')}</uws:message>")
        lines.append("  </uws:errorSummary>")
    if job.plan:
        lines.append(f"  <uws:jobInfo><plan>{escape(job.plan)}</plan></uws:jobInfo>")
    lines.append("</uws:job>")
    return "\n".join(lines) + "\n"


def results_xml(job: Job, base: str) -> str:
    url = f"{base}/async/{job.job_id}/results/result"
    inner = ""
    if job.phase == "COMPLETED":
        inner = (
            f'  <uws:result id="result" xlink:type="simple" xlink:href={quoteattr(url)}'
            f" mime-type={quoteattr(job.result_mime or '')}/>\n"
        )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<uws:results {_NS}>\n{inner}</uws:results>\n'


def parameters_xml(job: Job) -> str:
    lines = [f'<?xml version="1.0" encoding="UTF-8"?>\n<uws:parameters {_NS}>']
    for k, v in sorted(job.parameters.items()):
        lines.append(f"  <uws:parameter id={quoteattr(k)}>{escape(str(v))}</uws:parameter>")
    lines.append("</uws:parameters>")
    return "\n".join(lines) + "\n"


def jobs_xml(jobs: list[Job], base: str) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<uws:jobs {_NS} version="1.1">']
    for j in jobs:
        lines.append(
            f'  <uws:jobref id={quoteattr(j.job_id)} xlink:type="simple"'
            f" xlink:href={quoteattr(f'{base}/async/{j.job_id}')}>"
        )
        lines.append("  " + _el("phase", j.phase))
        if j.run_id is not None:
            lines.append("  " + _el("runId", j.run_id))
        lines.append("  " + _el("ownerId", j.owner_id))
        lines.append("  " + _el("creationTime", _iso(j.creation_time)))
        lines.append("  </uws:jobref>")
    lines.append("</uws:jobs>")
    return "\n".join(lines) + "\n"
