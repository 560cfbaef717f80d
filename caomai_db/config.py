"""Configuration, in one place.

Every setting has a default that works out of the box on a laptop; the environment overrides it.
Commands read `Settings.from_env()` once and pass the object on, so nothing else reads os.environ.

Every variable is listed once, in :data:`VARIABLES` (name, default, meaning): the README's
configuration table is generated from it (:func:`markdown_reference`), and a test checks that
every ``CAOMAI_*`` name this module reads is listed there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

#: Name of the database created inside the embedded cluster.
EMBEDDED_DB_NAME = "caomai"
#: Read-only role the TAP layer runs queries as (created by the migrations).
READER_ROLE = "caomai_reader"
#: Role the TAP service writes its asynchronous (UWS) jobs as (created by the migrations).
UWS_ROLE = "caomai_uws"
#: Map geometry fixed by the design: 20x20 nodes, 400-value fingerprints.
GRID_ROWS = 20
GRID_COLS = 20
N_NODES = GRID_ROWS * GRID_COLS
#: Similarity queries whose filter leaves at most this many rows (planner estimate) are
#: answered exactly. At 1M rows on 2 cores the exact plan costs ~6-8 us per surviving row
#: (10k rows: 60-80 ms) and the HNSW plan 40-140 ms whatever the filter: they cross near
#: 15-20k rows (bench/query_bench.py).
EXACT_MAX_ROWS = 15_000
#: Smallest hnsw.ef_search of the HNSW plan (pgvector's maximum: recall@50 >= 0.99 at 1M).
EF_SEARCH_MIN = 1000


@dataclass(frozen=True)
class QueryLimits:
    """What one TAP request may ask for; with the defaults the ADQL parser (pure Python)
    takes at most a few seconds on a loaded 2-core machine, whatever the input
    (bench/fuzz.py).

    queryparser's time grows with the tokens of a query, and steeply with nested parentheses
    (400 levels took 43 s and 262 MB); PostgreSQL parses a node list per row."""

    max_body_bytes: int = 1 << 20
    max_query_bytes: int = 64 << 10
    max_query_tokens: int = 5000
    max_nesting: int = 30
    max_select_items: int = 500
    max_list_items: int = 1000
    max_node_list_items: int = N_NODES
    max_refs: int = 100

    @classmethod
    def from_env(cls) -> QueryLimits:
        d = cls()
        return cls(
            max_body_bytes=_env_int("CAOMAI_MAX_BODY_BYTES", d.max_body_bytes),
            max_query_bytes=_env_int("CAOMAI_MAX_QUERY_BYTES", d.max_query_bytes),
            max_query_tokens=_env_int("CAOMAI_MAX_QUERY_TOKENS", d.max_query_tokens),
            max_nesting=_env_int("CAOMAI_MAX_NESTING", d.max_nesting),
            max_select_items=_env_int("CAOMAI_MAX_SELECT_ITEMS", d.max_select_items),
            max_list_items=_env_int("CAOMAI_MAX_LIST_ITEMS", d.max_list_items),
            max_node_list_items=_env_int("CAOMAI_MAX_NODE_LIST_ITEMS", d.max_node_list_items),
            max_refs=_env_int("CAOMAI_MAX_REFS", d.max_refs),
        )


#: Queries one server runs at once by default: one per core. On 2 cores, 4 slots gave the same
#: throughput as 2 and cheap requests a p95 of 304 ms instead of 190 ms (bench/load_test.py).
DEFAULT_QUERY_SLOTS = max(2, os.cpu_count() or 2)


@dataclass(frozen=True)
class Variable:
    """One environment variable: its name, its default in words, what it sets."""

    name: str
    default: str
    meaning: str


VARIABLES: tuple[Variable, ...] = (
    Variable("CAOMAI_HOME", "~/.caomai", "the embedded PostgreSQL cluster, models, job files"),
    Variable(
        "CAOMAI_DSN",
        "(embedded)",
        "an external PostgreSQL >= 15 with pgvector >= 0.8; when set, the embedded cluster is"
        " never started and every command works on that server",
    ),
    Variable(
        "CAOMAI_READER_DSN",
        "DSN as caomai_reader",
        "how the TAP service connects for queries (the read-only role)",
    ),
    Variable(
        "CAOMAI_UWS_DSN",
        "DSN as caomai_uws",
        "how the TAP service stores asynchronous jobs (a role that may write caomai_uws.job only)",
    ),
    Variable(
        "CAOMAI_QUERY_TIMEOUT", "60", "statement timeout of a sync query, s (fetching included)"
    ),
    Variable("CAOMAI_MAX_ROWS", "1000000", "hard row limit of a query (MAXREC cannot exceed it)"),
    Variable("CAOMAI_DEFAULT_MAXREC", "100000", "MAXREC when the client gives none"),
    Variable(
        "CAOMAI_MAX_RESPONSE_BYTES",
        "33554432 (32 MiB)",
        "largest result of one query; past it the rows stop, marked as an overflow",
    ),
    Variable("CAOMAI_ASYNC_MAX_DURATION", "3600", "longest EXECUTIONDURATION of an async job, s"),
    Variable("CAOMAI_JOB_RETENTION_DAYS", "7", "how long async jobs and their results are kept"),
    Variable(
        "CAOMAI_EXACT_MAX_ROWS",
        str(EXACT_MAX_ROWS),
        "a similarity query whose filter leaves at most this many rows (planner estimate) is"
        " answered exactly, above through the HNSW index",
    ),
    Variable(
        "CAOMAI_EF_SEARCH_MIN", str(EF_SEARCH_MIN), "smallest hnsw.ef_search of the index plan"
    ),
    Variable(
        "CAOMAI_QUERY_SLOTS",
        "the cores, at least 2",
        "queries one server runs at once; the rest wait in line without a thread or connection",
    ),
    Variable(
        "CAOMAI_CHEAP_SLOTS",
        "2",
        "cheap requests beside them on connections of their own (availability, tables,"
        " TAP_SCHEMA, queries planned under CAOMAI_CHEAP_COST)",
    ),
    Variable("CAOMAI_CHEAP_COST", "2000", "planner cost under which a query counts as cheap"),
    Variable("CAOMAI_QUEUE_WAIT", "30", "how long a query waits for a slot before a 503 busy, s"),
    Variable(
        "CAOMAI_UWS_LEASE",
        "60",
        "a server's claim on a running async job lasts this long unless renewed, s",
    ),
    Variable("CAOMAI_UWS_HEARTBEAT", "5", "how often a server renews its leases, s"),
    Variable(
        "CAOMAI_UWS_OWNER_HEADER",
        "(unset: a cookie)",
        "request header an authenticating proxy sets to the user (e.g. X-Remote-User): the"
        " owner of async jobs; enable only behind a proxy that sets or strips it",
    ),
    Variable("CAOMAI_UWS_MAX_PARAM_BYTES", "262144", "size of one async job's parameters, bytes"),
    Variable("CAOMAI_UWS_MAX_JOBS", "100", "async jobs one owner may keep"),
    Variable("CAOMAI_MAX_BODY_BYTES", "1048576 (1 MiB)", "a request body (the form of a POST)"),
    Variable("CAOMAI_MAX_QUERY_BYTES", "65536 (64 KiB)", "the ADQL text, UTF-8"),
    Variable("CAOMAI_MAX_QUERY_TOKENS", "5000", "ADQL tokens (words, numbers, strings, symbols)"),
    Variable("CAOMAI_MAX_NESTING", "30", "levels of nested parentheses"),
    Variable("CAOMAI_MAX_SELECT_ITEMS", "500", "items of one select list"),
    Variable("CAOMAI_MAX_LIST_ITEMS", "1000", "items of any other list (IN, arguments)"),
    Variable(
        "CAOMAI_MAX_NODE_LIST_ITEMS",
        str(N_NODES),
        "items of a node list (in_node, has_object_node)",
    ),
    Variable("CAOMAI_MAX_REFS", "100", "images in one reference of fp_similar or in_node (a|b|c)"),
)

README_BEGIN = "<!-- BEGIN configuration (generated from caomai_db/config.py) -->"
README_END = "<!-- END configuration -->"


def markdown_reference() -> str:
    """The README's configuration table (a test keeps them equal)."""
    lines = [README_BEGIN, "| variable | default | what it sets |", "| --- | --- | --- |"]
    lines += [f"| `{v.name}` | {v.default} | {v.meaning} |" for v in VARIABLES]
    lines.append(README_END)
    return "\n".join(lines)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of one caomai command."""

    home: Path
    dsn: str | None = None
    reader_dsn: str | None = None
    #: statement timeout of TAP queries, seconds
    query_timeout_s: int = 60
    #: hard row limit of TAP queries (MAXREC cannot go above it)
    max_rows: int = 1_000_000
    #: default MAXREC when the client gives none
    default_maxrec: int = 100_000
    #: how the TAP service writes its asynchronous jobs (default: the main DSN as caomai_uws)
    uws_dsn: str | None = None
    #: longest EXECUTIONDURATION an asynchronous TAP job may ask for, seconds
    async_max_duration_s: int = 3600
    #: how long asynchronous TAP jobs and their results are kept, seconds
    job_retention_s: int = 7 * 86400
    #: a similarity query whose filter leaves at most this many rows (planner estimate) is
    #: answered exactly (filter, then sort by distance); above it through the HNSW index
    exact_max_rows: int = EXACT_MAX_ROWS
    #: smallest hnsw.ef_search of a similarity query through the index (recall vs. speed)
    ef_search_min: int = EF_SEARCH_MIN
    #: a server's claim (lease) on a running job lasts this long unless renewed, seconds; a job
    #: whose lease ran out (its server died) is queued again once, by whichever server sees it
    uws_lease_s: int = 60
    #: how often a server renews the leases of the jobs it runs and looks for work, seconds
    uws_heartbeat_s: int = 5
    #: header an authenticating proxy sets to the user's name (e.g. X-Remote-User); it names
    #: the owner of asynchronous jobs. None: anonymous owners, told apart by a cookie. Enable
    #: it only behind a proxy that sets or strips it, otherwise clients can claim any name.
    uws_owner_header: str | None = None
    #: total size of one job's parameters (the query included), bytes; jobs are kept for days
    uws_max_param_bytes: int = 256 * 1024
    #: how many jobs (in any phase, until destroyed or deleted) one owner may keep
    uws_max_jobs: int = 100
    #: what one TAP request may ask for (sizes, nesting, list lengths)
    limits: QueryLimits = QueryLimits()
    #: queries that run at once on one server (more only make 2 cores thrash); the rest wait
    #: in line without holding a thread or a connection
    query_slots: int = DEFAULT_QUERY_SLOTS
    #: cheap work at once beside them, on connections of its own: availability, TAP_SCHEMA,
    #: and queries PostgreSQL plans under ``cheap_cost``
    cheap_slots: int = 2
    #: planner cost (EXPLAIN's total cost) under which a query counts as cheap
    cheap_cost: int = 2000
    #: how long a query may wait in line for a slot before it gets a 503 "busy", seconds
    queue_wait_s: int = 30
    #: largest result one query returns (PostgreSQL's text size of its values), bytes; past it
    #: the rows stop there, marked as an overflow like MAXREC
    max_response_bytes: int = 32 << 20

    @classmethod
    def from_env(cls, dsn: str | None = None) -> Settings:
        """Read the environment; an explicit ``dsn`` (``--dsn``) wins over ``CAOMAI_DSN``."""
        home = Path(os.environ.get("CAOMAI_HOME") or Path.home() / ".caomai").expanduser()
        return cls(
            home=home.resolve(),
            dsn=dsn or os.environ.get("CAOMAI_DSN") or None,
            reader_dsn=os.environ.get("CAOMAI_READER_DSN") or None,
            query_timeout_s=_env_int("CAOMAI_QUERY_TIMEOUT", 60),
            max_rows=_env_int("CAOMAI_MAX_ROWS", 1_000_000),
            default_maxrec=_env_int("CAOMAI_DEFAULT_MAXREC", 100_000),
            uws_dsn=os.environ.get("CAOMAI_UWS_DSN") or None,
            async_max_duration_s=_env_int("CAOMAI_ASYNC_MAX_DURATION", 3600),
            job_retention_s=_env_int("CAOMAI_JOB_RETENTION_DAYS", 7) * 86400,
            exact_max_rows=_env_int("CAOMAI_EXACT_MAX_ROWS", EXACT_MAX_ROWS),
            ef_search_min=_env_int("CAOMAI_EF_SEARCH_MIN", EF_SEARCH_MIN),
            uws_lease_s=_env_int("CAOMAI_UWS_LEASE", 60),
            uws_heartbeat_s=_env_int("CAOMAI_UWS_HEARTBEAT", 5),
            uws_owner_header=os.environ.get("CAOMAI_UWS_OWNER_HEADER") or None,
            uws_max_param_bytes=_env_int("CAOMAI_UWS_MAX_PARAM_BYTES", 256 * 1024),
            uws_max_jobs=_env_int("CAOMAI_UWS_MAX_JOBS", 100),
            limits=QueryLimits.from_env(),
            query_slots=max(1, _env_int("CAOMAI_QUERY_SLOTS", DEFAULT_QUERY_SLOTS)),
            cheap_slots=max(1, _env_int("CAOMAI_CHEAP_SLOTS", 2)),
            cheap_cost=_env_int("CAOMAI_CHEAP_COST", 2000),
            queue_wait_s=_env_int("CAOMAI_QUEUE_WAIT", 30),
            max_response_bytes=_env_int("CAOMAI_MAX_RESPONSE_BYTES", 32 << 20),
        )

    def with_dsn(self, dsn: str | None) -> Settings:
        return replace(self, dsn=dsn) if dsn else self

    @property
    def embedded(self) -> bool:
        """True when commands use the private embedded cluster under ``home``."""
        return self.dsn is None

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"
