"""The TAP service's core, without HTTP: connections, catalog, running one query.

Two connection pools, two roles:

- ``caomai_reader`` (read-only, SELECT on what TAP_SCHEMA publishes) runs every query;
- ``caomai_uws`` writes the asynchronous jobs into ``caomai_uws.job`` and can touch nothing else.

The service never connects with the administrator's DSN (except to find or start the
embedded cluster) and never writes archive tables.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass

import psycopg
from pglast import ast
from pglast.visitors import Visitor
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool, PoolTimeout

from .. import database
from ..access import public
from ..adql import catalog as catalog_mod
from ..adql import plan as plan_mod
from ..adql.parse import ADQLError, adql_to_postgresql
from ..adql.rewrite import Translated, translate
from ..config import UWS_ROLE, Settings
from . import formats, votable

log = logging.getLogger(__name__)

LANGS = {"ADQL", "ADQL-2.0", "ADQL-2.1"}
CATALOG_TTL_S = 60.0
WARMUP_QUERY = (
    "SELECT TOP 10 p.publisherID, fp_similar(f.fp, 'x') AS sim FROM caom2.Plane AS p"
    " JOIN caomai.fingerprint AS f ON f.planeID = p.planeID WHERE p.calibrationLevel >= 2"
    " AND in_node(f.map2_node, '1', 1) = 1 AND has_object_node(p.planeID, '1', 2) = 1"
    " AND 1 = CONTAINS(POINT('ICRS', 10.0, 20.0), CIRCLE('ICRS', 10.0, 20.0, 1.0))"
    " ORDER BY sim DESC"
)


@dataclass
class Output:
    """What goes back to the client (sync) or into the job (async)."""

    body: bytes
    content_type: str
    status: int = 200
    rows: int = 0
    overflow: bool = False
    error: str | None = None
    plan: str | None = None


def error_output(message: str, status: int = 400) -> Output:
    return Output(
        votable.error_votable(message), "application/x-votable+xml", status, error=message
    )


class Cancellable:
    """The connection a query is running on, so that another thread can cancel it in
    PostgreSQL (a sync query whose client hung up; the probe saw such queries run on to the
    statement timeout). Pass :meth:`hook` as ``cancel_hook`` to :meth:`TapService.run_query`.

    The lock makes a cancel and the connection's return to the pool exclusive: a late cancel
    can never reach the next query that runs on the same connection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None

    def hook(self, conn: psycopg.Connection | None) -> None:
        with self._lock:
            self._conn = conn

    def cancel(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(psycopg.Error):  # the query may just have ended
                    self._conn.cancel()


def _configure(conn: psycopg.Connection) -> None:
    register_vector(conn)
    conn.commit()


class TapService:
    """Shared by the HTTP app and the job runner; thread-safe."""

    def __init__(
        self, settings: Settings, *, pool_size: int | None = None, job_workers: int = 2
    ) -> None:
        """``pool_size``: query connections (default: the query slots plus the job runners)."""
        self.settings = settings
        dsn = database.resolve_dsn(settings)
        self.reader_dsn = database.reader_dsn(settings, dsn)
        self.uws_dsn = settings.uws_dsn or database.with_user(dsn, UWS_ROLE)
        self.plan_settings = plan_mod.PlanSettings(
            exact_max_rows=settings.exact_max_rows, ef_search_min=settings.ef_search_min
        )
        # queries: the sync slots and the asynchronous job runners
        self.pool = ConnectionPool(
            self.reader_dsn,
            min_size=1,
            max_size=pool_size or settings.query_slots + job_workers,
            configure=_configure,
            open=True,
            name="caomai-reader",
        )
        # cheap work on connections of its own, so a full query pool never starves it:
        # availability, TAP_SCHEMA, the catalog, queries planned under cheap_cost
        self.cheap_pool = ConnectionPool(
            self.reader_dsn,
            min_size=1,
            max_size=settings.cheap_slots,
            configure=_configure,
            open=True,
            name="caomai-reader-cheap",
        )
        self.uws_pool = ConnectionPool(
            self.uws_dsn, min_size=1, max_size=4, open=True, name="caomai-uws"
        )
        # the ADQL parser (ANTLR, pure Python) fills its prediction caches on the first
        # queries: do it now, not on a user's query (~250 ms once, then ~2 ms a query)
        adql_to_postgresql(WARMUP_QUERY)
        self._catalog: catalog_mod.Catalog | None = None
        self._catalog_at = 0.0
        self._lock = threading.Lock()

    def close(self) -> None:
        self.pool.close()
        self.cheap_pool.close()
        self.uws_pool.close()

    def catalog(self, refresh: bool = False) -> catalog_mod.Catalog:
        """TAP_SCHEMA and the relations behind it, re-read at most once a minute."""
        with self._lock:
            if (
                refresh
                or self._catalog is None
                or time.monotonic() - self._catalog_at > CATALOG_TTL_S
            ):
                with self.cheap_pool.connection() as conn:
                    self._catalog = catalog_mod.load(conn)
                    conn.rollback()
                self._catalog_at = time.monotonic()
            return self._catalog

    def example_references(self) -> list[str]:
        """Two public images with fingerprints of the active model (for /examples)."""
        try:
            with self.cheap_pool.connection(timeout=5) as conn:
                rows = conn.execute(
                    "SELECT publisherid FROM caomai.fingerprint"
                    " WHERE model_id = caomai.active_model('map1') AND map2_node IS NOT NULL"
                    f" AND {public()}"
                    " ORDER BY planeid LIMIT 2"
                ).fetchall()
                conn.rollback()
            return [r[0] for r in rows]
        except psycopg.Error:
            return []

    def available(self) -> tuple[bool, str]:
        try:
            with self.cheap_pool.connection(timeout=5) as conn:
                conn.execute("SELECT 1")
                conn.rollback()
            return True, "the service accepts queries"
        except Exception as exc:  # noqa: BLE001 - reported as unavailability
            return False, f"the database does not answer: {exc}"

    def maxrec(self, raw: str | None) -> int:
        if raw is None or raw.strip() == "":
            return min(self.settings.default_maxrec, self.settings.max_rows)
        try:
            value = int(raw)
        except ValueError:
            raise ADQLError(f"MAXREC must be a non-negative integer, got {raw!r}") from None
        if value < 0:
            raise ADQLError(f"MAXREC must be a non-negative integer, got {raw!r}")
        return min(value, self.settings.max_rows)

    def check_params(self, params: dict[str, str]) -> None:
        request = params.get("REQUEST")
        if request is not None and request.lower() != "doquery":
            raise ADQLError(f"REQUEST={request} is not supported; use REQUEST=doQuery")
        lang = params.get("LANG", "ADQL")
        if lang.upper() not in LANGS:
            raise ADQLError(f"LANG={lang} is not supported; this service speaks ADQL (2.0, 2.1)")
        if params.get("UPLOAD"):
            raise ADQLError("UPLOAD is not supported by this service")
        if not (params.get("QUERY") or "").strip():
            raise ADQLError("the QUERY parameter is missing or empty")

    def run_query(self, params: dict[str, str], *, timeout_s: float, cancel_hook=None) -> Output:  # noqa: ANN001
        """Run the query of a TAP request; every failure is an error VOTable, never an exception.

        ``cancel_hook(conn)`` receives the connection while the query runs (async abort).
        """
        prepared = self.prepare(params, classify=False)
        if isinstance(prepared, Output):
            return prepared
        return self.execute(prepared, timeout_s=timeout_s, cancel_hook=cancel_hook)

    def prepare(self, params: dict[str, str], *, classify: bool = True) -> Prepared | Output:
        """Check and translate a request (no query slot needed: CPU only, plus one EXPLAIN on
        the cheap connections to tell a cheap query from a heavy one)."""
        try:
            self.check_params(params)
            fmt = formats.lookup(params.get("RESPONSEFORMAT") or params.get("FORMAT"))
            maxrec = self.maxrec(params.get("MAXREC"))
            cat = self.catalog()
            translated = translate(params["QUERY"], cat, maxrec, self.settings.limits)
            prepared = Prepared(translated, cat, fmt, maxrec)
            if classify:
                prepared.cheap = self._is_cheap(translated)
            return prepared
        except ADQLError as exc:
            return error_output(str(exc))
        except Exception as exc:  # noqa: BLE001 - same reporting as execute()
            return self._failure(exc)

    def _is_cheap(self, translated: Translated) -> bool:
        """TAP_SCHEMA only, or a plan PostgreSQL costs under ``cheap_cost``."""
        if schemas_of(translated.tree) <= {"tap_schema"}:
            return True
        if translated.similarity is not None:
            return False
        try:
            with self.cheap_pool.connection(timeout=5) as conn:
                plan = conn.execute(
                    "EXPLAIN (FORMAT JSON) " + translated.sql(), prepare=False
                ).fetchone()[0]
                conn.rollback()
        except (psycopg.Error, PoolTimeout):
            return False  # the query will say what is wrong when it runs
        return float(plan[0]["Plan"]["Total Cost"]) < self.settings.cheap_cost

    def execute(self, p: Prepared, *, timeout_s: float, cancel_hook=None) -> Output:  # noqa: ANN001
        """Run a prepared query on its lane's connections and write the response."""
        try:
            pool = self.cheap_pool if p.cheap else self.pool
            with pool.connection(timeout=self.settings.queue_wait_s) as conn:
                if cancel_hook is not None:
                    cancel_hook(conn)
                try:
                    result = plan_mod.run(
                        conn,
                        p.translated,
                        p.catalog,
                        maxrec=p.maxrec,
                        timeout_s=timeout_s,
                        plan_settings=self.plan_settings,
                        max_bytes=self.settings.max_response_bytes,
                    )
                finally:
                    if cancel_hook is not None:
                        cancel_hook(None)
            specs = votable.field_specs(result.names, result.type_oids, result.origins, p.catalog)
            if p.fmt.key in ("csv", "tsv"):
                body = votable.delimited(specs, result.rows, "," if p.fmt.key == "csv" else "\t")
            else:
                serialization = {"votable": "tabledata", "binary": "binary", "binary2": "binary2"}
                body = votable.votable(
                    specs,
                    result.rows,
                    overflow=result.overflow,
                    serialization=serialization[p.fmt.key],
                )
            log.info(
                "query: %d rows in %.1f ms, plan %s%s%s",
                len(result.rows),
                result.elapsed_s * 1000,
                result.plan.name,
                " (fallback)" if result.plan.fallback else "",
                " (stopped at the response-size limit)" if result.truncated_bytes else "",
            )
            return Output(
                body,
                p.fmt.content_type,
                rows=len(result.rows),
                overflow=result.overflow,
                plan=result.plan.name,
            )
        except ADQLError as exc:
            return error_output(str(exc))
        except Exception as exc:  # noqa: BLE001 - see _failure
            return self._failure(exc)

    def _failure(self, exc: Exception) -> Output:
        if isinstance(exc, plan_mod.QueryFailed):
            return error_output(str(exc), exc.status)
        if isinstance(exc, PoolTimeout):
            return error_output(
                "the service is busy: every database connection is running a query; try again",
                503,
            )
        if isinstance(exc, psycopg.OperationalError):
            return error_output(f"the database is not available: {exc}", 503)
        # a bug: logged with its traceback, reported without it
        log.error("query failed", exc_info=exc)
        return error_output(f"internal error ({type(exc).__name__}): {exc}", 500)


@dataclass
class Prepared:
    """A request checked and translated, waiting for a slot on its lane."""

    translated: Translated
    catalog: catalog_mod.Catalog
    fmt: formats.Format
    maxrec: int
    #: runs on the cheap lane (see TapService._is_cheap)
    cheap: bool = False


class _Schemas(Visitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_RangeVar(self, ancestors, node: ast.RangeVar) -> None:  # noqa: ANN001, N802
        self.names.add((node.schemaname or "").lower())


def schemas_of(tree: ast.Node) -> set[str]:
    """The schemas of every table a statement reads."""
    v = _Schemas()
    v(tree)
    return v.names
