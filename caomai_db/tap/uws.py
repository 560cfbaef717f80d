"""Asynchronous TAP: UWS 1.1 jobs kept in the database (``caomai_uws.job``).

Jobs, their parameters, phases, times, errors and results are rows written by the role
``caomai_uws`` (migrations 0002 and 0005), so they survive a restart of the service and
several ``caomai serve`` processes may share one database:

- a server claims a QUEUED job with ``FOR UPDATE SKIP LOCKED`` (no two servers run it) and
  holds a lease on it (``lease_expires``) that it renews every heartbeat while the query runs;
  it writes the result only while the job is still its own;
- a job whose lease ran out (its server died) is queued again by whichever server sees it,
  once: a second death puts it in ERROR, so a query that kills servers does not loop;
- a server that stops cleanly hands its running jobs back to the queue; start-up touches no
  job (other servers' jobs are alive; dead ones are found by their leases);
- ABORT or DELETE on any server: the server running the job sees at its next heartbeat that
  the job is no longer its own and cancels the statement.

Every job has an owner (``owner_id``): the user an authenticating proxy names in a header, or
an anonymous client told apart by a cookie. Reads and changes are filtered by it; someone
else's job answers exactly like no job (404). Queries run on the reader pool like sync
queries, with the job's execution duration as statement timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import secrets
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from ..errors import JobError
from .service import TapService
from .xmldocs import render

log = logging.getLogger(__name__)

PHASES = ("PENDING", "QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED", "UNKNOWN", "HELD")
PHASES += ("SUSPENDED", "ARCHIVED")
FINAL = {"COMPLETED", "ERROR", "ABORTED", "ARCHIVED"}
ACTIVE = {"QUEUED", "EXECUTING"}
DEFAULT_DURATION_S = 600
#: a job is claimed at most this often: once, and once more if its server died running it
MAX_ATTEMPTS = 2
#: the longest blocking wait (WAIT=) a request gets, seconds
MAX_WAIT_S = 60.0
#: how often a waiting request re-reads its job: changes made by other servers are not
#: signalled to this one
WAIT_POLL_S = 1.0
#: the largest LAST a job list accepts (PostgreSQL's LIMIT stops at bigint)
MAX_LAST = 2**31 - 1
#: how often expired jobs are deleted, seconds
SWEEP_EVERY_S = 30.0
#: job ids as this service makes them (secrets.token_urlsafe; older ones were 16 hex digits):
#: anything else is no job, and is not even looked up
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: the cookie that tells anonymous clients apart
OWNER_COOKIE = "caomai_uws_owner"
_OWNER_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")
_WHY_TWICE = (
    "the service stopped twice while running this job (its server was killed or crashed);"
    " it is not run a third time"
)


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
    """An ISO 8601 time as UWS clients send it (with or without Z / offset), in UTC."""
    t = text.strip().replace("Z", "+00:00")
    try:
        value = datetime.fromisoformat(t)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise JobError(
            f"cannot read the time {text[:100]!r}; use ISO 8601, e.g. 2030-01-01T00:00:00Z"
        ) from None


def _not_found(job_id: str) -> JobError:
    """The one answer for a job that does not exist *and* for someone else's job."""
    return JobError(
        f"no job {job_id[:64]!r} (it never existed, was deleted or destroyed,"
        " or was created by another client)",
        404,
    )


def _check_text(params: dict[str, str]) -> None:
    """PostgreSQL stores no NUL character in text or jsonb: refuse it here (400), not there."""
    for k, v in params.items():
        if "\x00" in k or "\x00" in v:
            name = k.replace("\x00", "\\0")[:64]
            raise JobError(f"parameter {name!r} contains a NUL character (\\0): not allowed")


def _mine(who: str | None) -> tuple[str, tuple[str, ...]]:
    """SQL condition (and its parameters) for "a job this requester may see and change".

    A requester with an identity sees its own jobs. One without (a client that sends no
    cookie, such as STILTS) reaches, by their unguessable URL, only the jobs created by a
    request without a cookie whose owner never came back with it (``url_access``).
    """
    if who is None:
        return "url_access", ()
    return "owner_id = %s", (who,)


def anonymous_owner(token: str) -> str | None:
    """The owner id of an anonymous client's cookie; a hash, so ownerId never shows the
    cookie (which is what proves ownership). None for a cookie this service did not make."""
    if not _OWNER_TOKEN.fullmatch(token):
        return None
    return "anonymous-" + hashlib.sha256(token.encode()).hexdigest()[:24]


def new_owner_token() -> str:
    """A fresh anonymous owner cookie value (192 random bits)."""
    return secrets.token_urlsafe(24)


def user_owner(value: str, header: str) -> str:
    """The owner named by the authenticating proxy's header."""
    name = value.strip()
    if len(name) > 256 or not name.isprintable():
        raise JobError(f"the {header} header does not hold a user name")
    return name


class ChangeSignal:
    """Tells the coroutines waiting for it, from any thread, that a job changed on this server,
    so that a blocking UWS wait holds no thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the server's event loop (from that loop, at start-up)."""
        self._loop = loop
        self._event = asyncio.Event()

    def fire(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._fire)

    def _fire(self) -> None:
        event, self._event = self._event, asyncio.Event()
        if event is not None:
            event.set()

    async def wait(self, timeout: float) -> None:
        """Return at the next change or after ``timeout`` seconds, whichever comes first."""
        event = self._event
        if event is None:
            await asyncio.sleep(timeout)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


class JobStore:
    """Job rows in ``caomai_uws.job``, and this server's threads that run them."""

    def __init__(self, service: TapService, workers: int = 2) -> None:
        self.service = service
        self.settings = service.settings
        self.pool = service.uws_pool
        #: names this server in the ``worker`` column (host and process id, for people)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.workers = workers
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="uws")
        self.changed = ChangeSignal()
        #: jobs this server runs -> the connection their query runs on (None between queries)
        self._mine: dict[str, psycopg.Connection | None] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._keeper = threading.Thread(target=self._keep, name="uws-keeper", daemon=True)

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the housekeeping thread; no job is touched here (see the module docstring)."""
        self._keeper.start()

    def stop(self) -> None:
        """Hand the jobs this server runs back to the queue, then stop their queries."""
        self._stop.set()
        self._wake.set()
        if self._keeper.is_alive():
            self._keeper.join(30)
        try:
            with self.pool.connection() as conn:
                rows = conn.execute(
                    "UPDATE caomai_uws.job SET phase = 'QUEUED', start_time = NULL,"
                    " worker = NULL, lease_expires = NULL, attempts = greatest(attempts - 1, 0)"
                    " WHERE worker = %s AND phase = 'EXECUTING' RETURNING job_id",
                    (self.worker_id,),
                ).fetchall()
            for (job_id,) in rows:
                log.info("job %s handed back to the queue at shutdown", job_id)
        except psycopg.Error:  # the database is away: the leases will run out instead
            log.warning("could not hand the running jobs back at shutdown", exc_info=True)
        with self._lock:
            running = list(self._mine)
        for job_id in running:
            self._cancel(job_id)
        self.executor.shutdown(wait=True, cancel_futures=True)

    def _keep(self) -> None:
        """Every heartbeat (and whenever woken): renew this server's leases, queue again the
        jobs of dead servers, delete expired jobs, claim queued jobs while workers are free."""
        next_sweep = 0.0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self._renew()
                self._expire()
                if time.monotonic() >= next_sweep:
                    self.sweep()
                    next_sweep = time.monotonic() + SWEEP_EVERY_S
                self._claim()
            except Exception:  # noqa: BLE001 - the database may be away; try again later
                log.exception("asynchronous job housekeeping failed")
            self._wake.wait(self.settings.uws_heartbeat_s)

    def _renew(self) -> None:
        with self._lock:
            ids = list(self._mine)
        if not ids:
            return
        with self.pool.connection() as conn:
            rows = conn.execute(
                "UPDATE caomai_uws.job SET lease_expires = now() + %s * interval '1 second'"
                " WHERE job_id = ANY(%s) AND worker = %s AND phase = 'EXECUTING'"
                " RETURNING job_id",
                (self.settings.uws_lease_s, ids, self.worker_id),
            ).fetchall()
        kept = {r[0] for r in rows}
        for job_id in ids:
            if job_id not in kept:  # aborted, deleted or taken over by another server
                self._cancel(job_id)

    def _expire(self) -> None:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "UPDATE caomai_uws.job SET"
                " phase = CASE WHEN attempts >= %(max)s THEN 'ERROR' ELSE 'QUEUED' END,"
                " error_summary = CASE WHEN attempts >= %(max)s THEN %(why)s END,"
                " end_time = CASE WHEN attempts >= %(max)s THEN now() END,"
                " start_time = CASE WHEN attempts >= %(max)s THEN start_time END,"
                " worker = CASE WHEN attempts >= %(max)s THEN worker END,"
                " lease_expires = NULL"
                " WHERE phase = 'EXECUTING' AND lease_expires < now()"
                " RETURNING job_id, phase",
                {"max": MAX_ATTEMPTS, "why": _WHY_TWICE},
            ).fetchall()
        for job_id, phase in rows:
            log.warning("job %s: its server stopped renewing its lease; now %s", job_id, phase)
        if rows:
            self.changed.fire()

    def _claim(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if len(self._mine) >= self.workers:
                    return
            with self.pool.connection() as conn:
                row = conn.execute(
                    "UPDATE caomai_uws.job SET phase = 'EXECUTING', start_time = now(),"
                    " worker = %s, lease_expires = now() + %s * interval '1 second',"
                    " attempts = attempts + 1"
                    " WHERE job_id = (SELECT job_id FROM caomai_uws.job WHERE phase = 'QUEUED'"
                    " AND destruction_time >= now() ORDER BY creation_time LIMIT 1"
                    " FOR UPDATE SKIP LOCKED)"
                    " RETURNING job_id, parameters, execution_duration",
                    (self.worker_id, self.settings.uws_lease_s),
                ).fetchone()
            if row is None:
                return
            with self._lock:
                self._mine[row[0]] = None
            self.changed.fire()
            self.executor.submit(self._run, *row)

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

    def get(self, job_id: str, who: str | None) -> Job:
        """The job, if ``who`` may see it (else 404, as for no job).

        The job's owner coming back with the cookie ends the job's access by URL alone.
        """
        if not JOB_ID.fullmatch(job_id):
            raise _not_found(job_id)
        cond, args = _mine(who)
        with self.pool.connection() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS}, url_access FROM caomai_uws.job WHERE job_id = %s"
                f" AND destruction_time >= now() AND {cond}",
                (job_id, *args),
            ).fetchone()
            if row is None:
                raise _not_found(job_id)
            if who is not None and row[-1]:
                conn.execute(
                    "UPDATE caomai_uws.job SET url_access = false WHERE job_id = %s", (job_id,)
                )
        return Job(*row[:-1])

    def result(self, job_id: str, who: str | None) -> tuple[bytes, str]:
        job = self.get(job_id, who)
        if job.phase != "COMPLETED":
            raise JobError(f"job {job_id} has no result: its phase is {job.phase}", 404)
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT result, result_mime FROM caomai_uws.job WHERE job_id = %s", (job_id,)
            ).fetchone()
        if row is None or row[0] is None:
            raise JobError(f"job {job_id} has no result", 404)
        return bytes(row[0]), row[1]

    def list(
        self, who: str | None, phases: list[str], after: datetime | None, last: int | None
    ) -> list[Job]:
        """The requester's jobs (none for a requester without an identity)."""
        bad = [p for p in phases if p not in PHASES]
        if bad:
            raise JobError(f"unknown PHASE {bad[0][:20]!r}; phases are {', '.join(PHASES)}")
        if who is None:
            return []
        where = ["destruction_time >= now()", "owner_id = %s"]
        params: list[object] = [who]
        if phases:
            where.append("phase = ANY(%s)")
            params.append(phases)
        else:
            where.append("phase <> 'ARCHIVED'")
        if after is not None:
            where.append("creation_time > %s")
            params.append(after)
        sql = f"SELECT {_COLUMNS} FROM caomai_uws.job WHERE {' AND '.join(where)}"
        if last is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY creation_time DESC LIMIT %s) AS j"
            params.append(last)
        sql += " ORDER BY creation_time"
        with self.pool.connection() as conn:
            return [Job(*r) for r in conn.execute(sql, params).fetchall()]

    async def wait(self, job_id: str, who: str | None, seconds: float, phase: str | None) -> Job:
        """UWS 1.1 blocking: return when the phase changes (from ``phase``) or time is up.

        A coroutine that sleeps on :class:`ChangeSignal`, so waiting requests hold no thread
        (each database read borrows one for a moment); it re-reads the job at least every
        ``WAIT_POLL_S``, since other servers' changes are not signalled here.
        """
        job = await asyncio.to_thread(self.get, job_id, who)
        if phase is None and job.phase not in ("PENDING", "QUEUED", "EXECUTING"):
            return job
        start_phase = phase or job.phase
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max(0.0, seconds), MAX_WAIT_S)
        while job.phase == start_phase and job.phase not in FINAL:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await self.changed.wait(min(remaining, WAIT_POLL_S))
            job = await asyncio.to_thread(self.get, job_id, who)
        return job

    # -- writing ---------------------------------------------------------------------------

    def create(self, params: dict[str, str], owner: str, *, url_access: bool = False) -> str:
        """A new PENDING job (QUEUED with PHASE=RUN); its id. Everything is checked before
        the row is written, so a refused request leaves no job behind."""
        _check_text(params)
        params = dict(params)
        duration = self._duration(params.pop("EXECUTIONDURATION", None))
        destruction = self._destruction(params.pop("DESTRUCTION", None))
        run_id = params.pop("RUNID", None)
        action = params.pop("PHASE", None)
        if action is not None:
            action = self._action(action)
        self._check_size(params, run_id)
        job_id = secrets.token_urlsafe(18)
        with self.pool.connection() as conn:
            # one owner's creations one at a time: two cannot both take the last place
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('caomai_uws.job'), hashtext(%s))",
                (owner,),
            )
            n = conn.execute(
                "SELECT count(*) FROM caomai_uws.job WHERE owner_id = %s"
                " AND destruction_time >= now()",
                (owner,),
            ).fetchone()[0]
            if n >= self.settings.uws_max_jobs:
                raise JobError(
                    f"you have {n} jobs, the most this service keeps for one owner; delete"
                    " finished ones (DELETE on the job's URL) or wait until they expire",
                    429,
                )
            conn.execute(
                "INSERT INTO caomai_uws.job (job_id, run_id, owner_id, phase, parameters,"
                " execution_duration, destruction_time, url_access)"
                " VALUES (%s, %s, %s, 'PENDING', %s, %s, %s, %s)",
                (job_id, run_id, owner, json.dumps(params), duration, destruction, url_access),
            )
        if action is not None:
            self._apply(job_id, action)
        return job_id

    def _check_size(self, params: dict[str, str], run_id: str | None = None) -> None:
        size = sum(len(k.encode()) + len(v.encode()) for k, v in params.items())
        size += len((run_id or "").encode())
        limit = self.settings.uws_max_param_bytes
        if size > limit:
            raise JobError(
                f"the job's parameters take {size:,} bytes; this service keeps at most"
                f" {limit:,} bytes of parameters (the query included) per job"
            )

    def _duration(self, raw: str | None) -> int:
        hard = self.settings.async_max_duration_s
        if raw is None or raw.strip() == "":
            return min(DEFAULT_DURATION_S, hard)
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise JobError(
                f"EXECUTIONDURATION must be a number of seconds, got {raw[:40]!r}"
                f" (0 asks for the longest this service allows: {hard} s)"
            )
        if value < 0:
            raise JobError("EXECUTIONDURATION cannot be negative")
        return hard if int(value) == 0 else min(int(value), hard)

    def _destruction(self, raw: str | None) -> datetime:
        """DESTRUCTION as asked, but in the future and no later than the retention allows."""
        hard = datetime.now(UTC) + timedelta(seconds=self.settings.job_retention_s)
        if raw is None:
            return hard
        value = parse_time(raw)
        if value <= datetime.now(UTC):
            raise JobError(
                f"DESTRUCTION {raw[:40]!r} is in the past; give a later time, or DELETE the job"
            )
        return min(value, hard)

    @staticmethod
    def _action(raw: str) -> str:
        action = raw.strip().upper()
        if action in ("RUN", "ABORT"):
            return action
        if action == "SUSPEND":
            raise JobError("SUSPEND is not supported by this service")
        raise JobError(f"PHASE={raw[:20]} is not a phase change; use RUN or ABORT")

    def set_parameters(self, job_id: str, who: str | None, params: dict[str, str]) -> None:
        _check_text(params)
        job = self.get(job_id, who)
        if job.phase != "PENDING":
            raise JobError(
                f"job {job_id} is {job.phase}: parameters can change only while PENDING", 409
            )
        merged = dict(job.parameters) | params
        self._check_size(merged, job.run_id)
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE caomai_uws.job SET parameters = %s WHERE job_id = %s",
                (json.dumps(merged), job_id),
            )

    def set_duration(self, job_id: str, who: str | None, raw: str) -> None:
        job = self.get(job_id, who)
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

    def set_destruction(self, job_id: str, who: str | None, raw: str) -> None:
        self.get(job_id, who)
        value = self._destruction(raw)
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE caomai_uws.job SET destruction_time = %s WHERE job_id = %s",
                (value, job_id),
            )

    def phase(self, job_id: str, who: str | None, action: str) -> None:
        self.get(job_id, who)
        self._apply(job_id, self._action(action))

    def _apply(self, job_id: str, action: str) -> None:
        if action == "RUN":
            with self.pool.connection() as conn:
                row = conn.execute(
                    "UPDATE caomai_uws.job SET phase = 'QUEUED' WHERE job_id = %s"
                    " AND phase IN ('PENDING', 'HELD') RETURNING job_id",
                    (job_id,),
                ).fetchone()
                now = conn.execute(
                    "SELECT phase FROM caomai_uws.job WHERE job_id = %s", (job_id,)
                ).fetchone()
            if row is None and now is not None and now[0] not in ACTIVE | FINAL:
                raise JobError(f"job {job_id} is {now[0]} and cannot be run", 409)
            self._wake.set()  # claim it now rather than at the next heartbeat
        else:  # ABORT: the server running it cancels it at its next heartbeat (here: now)
            with self.pool.connection() as conn:
                conn.execute(
                    "UPDATE caomai_uws.job SET phase = 'ABORTED', end_time = now(),"
                    " lease_expires = NULL WHERE job_id = %s AND phase IN ('PENDING', 'QUEUED',"
                    " 'EXECUTING', 'HELD', 'SUSPENDED')",
                    (job_id,),
                )
            self._cancel(job_id)
        self.changed.fire()

    def delete(self, job_id: str, who: str | None) -> None:
        if not JOB_ID.fullmatch(job_id):
            raise _not_found(job_id)
        cond, args = _mine(who)
        with self.pool.connection() as conn:
            row = conn.execute(
                f"DELETE FROM caomai_uws.job WHERE job_id = %s AND {cond} RETURNING job_id",
                (job_id, *args),
            ).fetchone()
        if row is None:
            raise _not_found(job_id)
        self._cancel(job_id)
        self.changed.fire()

    def _cancel(self, job_id: str) -> None:
        with self._lock:
            conn = self._mine.get(job_id)
        if conn is not None:
            try:
                conn.cancel()
            except Exception:  # noqa: BLE001 - the query may just have finished
                log.debug("cancel of %s failed", job_id, exc_info=True)

    # -- running ---------------------------------------------------------------------------

    def _run(self, job_id: str, parameters: dict[str, str], duration: int) -> None:
        """Run one claimed job; its result is written only while the job is still ours."""

        def hook(conn: psycopg.Connection | None) -> None:
            with self._lock:
                if job_id in self._mine:
                    self._mine[job_id] = conn

        ours = "WHERE job_id = %s AND phase = 'EXECUTING' AND worker = %s"
        try:
            params = {k.upper(): str(v) for k, v in parameters.items()}
            out = self.service.run_query(params, timeout_s=duration, cancel_hook=hook)
            with self.pool.connection() as conn:
                if out.error is None:
                    conn.execute(
                        "UPDATE caomai_uws.job SET phase = 'COMPLETED', end_time = now(),"
                        " result = %s, result_mime = %s, result_rows = %s,"
                        " result_overflow = %s, plan = %s, lease_expires = NULL " + ours,
                        (out.body, out.content_type, out.rows, out.overflow, out.plan)
                        + (job_id, self.worker_id),
                    )
                else:
                    conn.execute(
                        "UPDATE caomai_uws.job SET phase = 'ERROR', end_time = now(),"
                        " error_summary = %s, lease_expires = NULL " + ours,
                        (out.error, job_id, self.worker_id),
                    )
        except Exception as exc:  # noqa: BLE001 - a bug or the database: the job says so
            log.exception("job %s failed", job_id)
            with contextlib.suppress(psycopg.Error), self.pool.connection() as conn:
                conn.execute(
                    "UPDATE caomai_uws.job SET phase = 'ERROR', end_time = now(),"
                    " error_summary = %s, lease_expires = NULL " + ours,
                    (f"internal error ({type(exc).__name__}): {exc}", job_id, self.worker_id),
                )
        finally:
            with self._lock:
                self._mine.pop(job_id, None)
            self._wake.set()  # a worker is free
            self.changed.fire()


# -- XML (caomai_db/tap/templates/uws.xml.j2) --------------------------------------------------


def job_xml(job: Job, base: str) -> str:
    return render("uws.xml.j2", doc="job", job=job, url=f"{base}/async/{job.job_id}", iso=_iso)


def results_xml(job: Job, base: str) -> str:
    return render("uws.xml.j2", doc="results", job=job, url=f"{base}/async/{job.job_id}", iso=_iso)


def parameters_xml(job: Job) -> str:
    return render("uws.xml.j2", doc="parameters", job=job, iso=_iso)


def jobs_xml(jobs: list[Job], base: str) -> str:
    return render("uws.xml.j2", doc="jobs", jobs=jobs, base=base, iso=_iso)
