"""Running a translated query: the plan a similarity query needs, limits, errors.

A top-k similarity query (``ORDER BY fp_similar(...) DESC`` with TOP k) must return the true
top k whatever its metadata filter keeps (0.1 % or 100 % of the rows). Two plans, each with
its own SQL text (a cached generic plan can then never mix them up):

- **index**: ``ORDER BY fp <=> ref`` walks the HNSW index; with the filter in place the scan is
  pgvector's *iterative* scan (``hnsw.iterative_scan = strict_order``), which keeps going
  until k rows pass the filter, with ``hnsw.ef_search`` >= k (LIMIT 50 with the default 40
  silently returns 40 rows) and ``hnsw.max_scan_tuples`` scaled to the filter. Fast when the
  filter keeps many rows;
- **exact**: ``ORDER BY (fp <=> ref) + 0`` no longer matches the index, so PostgreSQL applies
  the filter first (btree, bitmap, joins) and sorts the survivors by exact distance. Exact,
  and fast when the filter keeps few rows.

The choice is made per query from PostgreSQL's own estimate of the rows the FROM and WHERE
leave (``EXPLAIN`` of the query without ORDER BY and LIMIT): at most ``exact_max_rows`` ->
exact, else index. If the index plan still returns fewer than k rows (a filter the estimate
got wrong), the exact plan runs. All settings are ``set_config(..., is_local => true)`` in
the query's read-only transaction, before planning; statements are never prepared.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field

import psycopg
from psycopg import errors as pgerr

from ..config import EF_SEARCH_MIN, EXACT_MAX_ROWS
from ..errors import QueryFailed
from . import udfs
from .catalog import Catalog
from .parse import ADQLError
from .rewrite import Translated

log = logging.getLogger(__name__)

#: pgvector's upper bound of hnsw.ef_search
EF_SEARCH_MAX = 1000


@dataclass(frozen=True)
class PlanSettings:
    """How similarity queries are planned (defaults measured by bench/query_bench.py)."""

    #: estimated surviving rows up to which the exact plan is used
    exact_max_rows: int = EXACT_MAX_ROWS
    #: smallest hnsw.ef_search of the index plan (recall of unfiltered queries)
    ef_search_min: int = EF_SEARCH_MIN
    #: hnsw.ef_search as a multiple of k
    ef_search_per_k: float = 2.0


@dataclass
class Plan:
    name: str  # plain | index | exact
    estimate: float | None = None
    settings: dict[str, str] = field(default_factory=dict)
    fallback: bool = False


@dataclass
class Result:
    names: list[str]
    type_oids: list[int]
    origins: list[tuple[int, int]]
    rows: list[tuple]
    overflow: bool
    plan: Plan
    sql: str
    elapsed_s: float
    #: the rows stopped at the response-size limit (``overflow`` is then set too)
    truncated_bytes: bool = False


def estimate_rows(conn: psycopg.Connection, sql: str) -> float:
    plan = conn.execute("EXPLAIN (FORMAT JSON) " + sql, prepare=False).fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


def choose(conn: psycopg.Connection, t: Translated, catalog: Catalog, ps: PlanSettings) -> Plan:
    """The plan for a translated query (see the module docstring)."""
    if t.similarity is None:
        return Plan("plain")
    k = t.limit
    if k > EF_SEARCH_MAX:
        return Plan("exact")  # beyond what the index can return in order
    estimate = estimate_rows(conn, t.count_sql())
    if estimate <= ps.exact_max_rows:
        return Plan("exact", estimate=estimate)
    total = max(catalog.fingerprint_rows, estimate, 1.0)
    fraction = min(1.0, estimate / total)
    ef = int(min(EF_SEARCH_MAX, max(ps.ef_search_min, math.ceil(k * ps.ef_search_per_k))))
    scan = int(min(2_000_000, max(20_000, 50 * k / fraction)))
    return Plan(
        "index",
        estimate,
        {
            "hnsw.ef_search": str(ef),
            "hnsw.iterative_scan": "strict_order",
            "hnsw.max_scan_tuples": str(scan),
        },
    )


def _set_local(conn: psycopg.Connection, settings: dict[str, str]) -> None:
    if settings:
        calls = ", ".join("set_config(%s, %s, true)" for _ in settings)
        params = [x for kv in settings.items() for x in kv]
        conn.execute(f"SELECT {calls}", params, prepare=False)


def run(
    conn: psycopg.Connection,
    t: Translated,
    catalog: Catalog,
    *,
    maxrec: int,
    timeout_s: float,
    plan_settings: PlanSettings | None = None,
    max_bytes: int | None = None,
) -> Result:
    """Run a translated query in a read-only transaction on ``conn`` (the reader role).

    Rows come through a server-side cursor in chunks, so neither libpq nor Python holds more
    than ``max_bytes`` of result (PostgreSQL's text size of the values): past it the result
    stops there and is marked overflowed, as MAXREC does. ``timeout_s`` bounds the whole
    request, fetching included, not only each statement.

    Raises :class:`ADQLError` for a query the user must change and :class:`QueryFailed`
    for one the database refused or cancelled.
    """
    ps = plan_settings or PlanSettings()
    started = time.perf_counter()
    deadline = started + timeout_s
    truncated = False
    conn.read_only = True
    try:
        with conn.transaction():
            _set_local(conn, {"statement_timeout": str(max(1, int(timeout_s * 1000)))})
            if t.checks:
                sql = "SELECT " + ", ".join(f"({c})" for c, _ in t.checks)
                conn.execute(sql, [p for _, params in t.checks for p in params], prepare=False)
            plan = choose(conn, t, catalog, ps)
            _set_local(conn, plan.settings)
            sql = t.sql("exact" if plan.name == "exact" else "default")
            rows, desc, origins, truncated = _fetch(conn, sql, max_bytes, deadline, timeout_s)
            if plan.name == "index" and len(rows) < t.limit and not truncated:
                plan.fallback = True
                sql = t.sql("exact")
                rows, desc, origins, truncated = _fetch(conn, sql, max_bytes, deadline, timeout_s)
    except psycopg.Error as exc:
        raise _user_error(exc, timeout_s) from None
    finally:
        conn.read_only = False
    overflow = len(rows) > maxrec or truncated
    return Result(
        names=[d.name for d in desc],
        type_oids=[d.type_code for d in desc],
        origins=origins,
        rows=rows[:maxrec],
        overflow=overflow,
        plan=plan,
        sql=sql,
        elapsed_s=time.perf_counter() - started,
        truncated_bytes=truncated,
    )


#: rows per FETCH of the server-side cursor
FETCH_ROWS = 2000


def _fetch(
    conn: psycopg.Connection, sql: str, max_bytes: int | None, deadline: float, timeout_s: float
) -> tuple[list[tuple], list, list[tuple[int, int]], bool]:
    """(rows, description, column origins, stopped at max_bytes) of one statement."""
    rows: list[tuple] = []
    size = 0
    with conn.cursor(name="tap_query") as cur:
        cur.execute(sql)  # DECLARE ... CURSOR: never a prepared statement
        desc: list = []
        origins: list[tuple[int, int]] = []
        while True:
            if time.perf_counter() > deadline:
                raise QueryFailed(
                    f"the query took longer than the {timeout_s:g} s limit while its rows were"
                    " read; add a filter or TOP, ask for fewer columns, or use the asynchronous"
                    " endpoint with a longer EXECUTIONDURATION"
                )
            chunk = cur.fetchmany(FETCH_ROWS)
            res = cur.pgresult
            if not desc and cur.description:
                desc = list(cur.description)
                if res is not None:
                    origins = [(res.ftable(i), res.ftablecol(i)) for i in range(len(desc))]
            if not chunk:
                break
            if max_bytes is not None and res is not None:
                ncols = res.nfields
                for r in range(res.ntuples):
                    size += sum(len(res.get_value(r, c) or b"") for c in range(ncols)) + ncols
                    if size > max_bytes:
                        rows.extend(chunk[:r])
                        return rows, desc, origins, True
            rows.extend(chunk)
            if len(chunk) < FETCH_ROWS:
                break
    return rows, desc, origins, False


def _user_error(exc: psycopg.Error, timeout_s: float) -> Exception:
    """The message a person can act on for a database error (never a traceback)."""
    diag = exc.diag
    primary = (diag.message_primary or str(exc)).strip()
    hint = f" ({diag.message_hint})" if diag.message_hint else ""
    if isinstance(exc, pgerr.QueryCanceled):
        return QueryFailed(
            f"the query was cancelled after the {timeout_s:g} s limit; add a filter or TOP, or"
            " use the asynchronous endpoint with a longer EXECUTIONDURATION"
        )
    if isinstance(exc, pgerr.ReadOnlySqlTransaction | pgerr.InsufficientPrivilege):
        return ADQLError(f"not allowed: {primary}")
    if isinstance(exc, pgerr.UndefinedFunction) and "caomai." in primary:
        return ADQLError(f"wrong argument types: {primary}; use {udfs.usage_hint()}")
    if isinstance(exc, pgerr.UndefinedFunction):
        return ADQLError(f"wrong argument types: {primary}{hint}")
    if isinstance(exc, pgerr.OperationalError | pgerr.AdminShutdown | pgerr.InternalError):
        return QueryFailed(f"the database is not available: {primary}", status=503)
    if diag.sqlstate and diag.sqlstate.startswith(("22", "42", "2F", "P0")):
        return ADQLError(primary + hint)
    return QueryFailed(f"the query failed: {primary}{hint}")
