"""Configuration, in one place.

Every setting has a default that works out of the box on a laptop; the environment overrides it.
Commands read `Settings.from_env()` once and pass the object on, so nothing else reads os.environ.

Every variable is listed once, in :data:`VARIABLES` (name, default, meaning), and its default
is written there only: the fields of :class:`Settings` and :class:`QueryLimits` and
``from_env`` read it from there. The README's configuration table is generated from the list
(:func:`markdown_reference`), and a test checks that every ``CAOMAI_*`` name this module reads
is listed there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

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
#: length of caomai.fingerprint.image_vec: the 400 values of fp, then 16 image statistics
#: (the layout is loaders/image_vector.py's, which checks it against this)
IMAGE_VEC_DIM = N_NODES + 16
#: Similarity queries whose filter leaves at most this many rows (planner estimate) are
#: answered exactly. At 1M rows on 2 cores the exact plan costs ~6-8 us per surviving row
#: (10k rows: 60-80 ms) and the HNSW plan 40-140 ms whatever the filter: they cross near
#: 15-20k rows (bench/query_bench.py).
EXACT_MAX_ROWS = 15_000
#: Smallest hnsw.ef_search of the HNSW plan (pgvector's maximum: recall@50 >= 0.99 at 1M).
EF_SEARCH_MIN = 1000
#: Seconds in a day (CAOMAI_JOB_RETENTION_DAYS is in days, the settings in seconds).
DAY_S = 86400


#: Queries one server runs at once by default: one per core. On 2 cores, 4 slots gave the same
#: throughput as 2 and cheap requests a p95 of 304 ms instead of 190 ms (bench/load_test.py).
DEFAULT_QUERY_SLOTS = max(2, os.cpu_count() or 2)


@dataclass(frozen=True)
class Variable:
    """One environment variable: its name, its default (the value itself, which the settings
    read), what it sets."""

    name: str
    default: int | str | None
    meaning: str
    #: the default in words, where the value does not say it (unset, per machine)
    shown: str | None = None
    #: a size in bytes: the table adds it in KiB or MiB
    size: bool = False

    def default_text(self) -> str:
        """The default as the README's table shows it."""
        if self.shown is not None:
            return self.shown
        if self.size and isinstance(self.default, int):
            mib, kib = divmod(self.default, 1 << 20)
            human = f"{mib} MiB" if kib == 0 else f"{self.default >> 10} KiB"
            return f"{self.default} ({human})"
        return str(self.default)


VARIABLES: tuple[Variable, ...] = (
    Variable("CAOMAI_HOME", "~/.caomai", "the embedded PostgreSQL cluster, models, job files"),
    Variable(
        "CAOMAI_DSN",
        None,
        "an external PostgreSQL >= 15 with pgvector >= 0.8; when set, the embedded cluster is"
        " never started and every command works on that server",
        shown="(embedded)",
    ),
    Variable(
        "CAOMAI_READER_DSN",
        None,
        "how the TAP service connects for queries (the read-only role)",
        shown="DSN as caomai_reader",
    ),
    Variable(
        "CAOMAI_UWS_DSN",
        None,
        "how the TAP service stores asynchronous jobs (a role that may write caomai_uws.job only)",
        shown="DSN as caomai_uws",
    ),
    Variable(
        "CAOMAI_QUERY_TIMEOUT", 60, "statement timeout of a sync query, s (fetching included)"
    ),
    Variable("CAOMAI_MAX_ROWS", 1_000_000, "hard row limit of a query (MAXREC cannot exceed it)"),
    Variable("CAOMAI_DEFAULT_MAXREC", 100_000, "MAXREC when the client gives none"),
    Variable(
        "CAOMAI_MAX_RESPONSE_BYTES",
        32 << 20,
        "largest result of one query; past it the rows stop, marked as an overflow",
        size=True,
    ),
    Variable("CAOMAI_ASYNC_MAX_DURATION", 3600, "longest EXECUTIONDURATION of an async job, s"),
    Variable("CAOMAI_JOB_RETENTION_DAYS", 7, "how long async jobs and their results are kept"),
    Variable(
        "CAOMAI_EXACT_MAX_ROWS",
        EXACT_MAX_ROWS,
        "a similarity query whose filter leaves at most this many rows (planner estimate) is"
        " answered exactly, above through the HNSW index",
    ),
    Variable("CAOMAI_EF_SEARCH_MIN", EF_SEARCH_MIN, "smallest hnsw.ef_search of the index plan"),
    Variable(
        "CAOMAI_QUERY_SLOTS",
        DEFAULT_QUERY_SLOTS,
        "queries one server runs at once; the rest wait in line without a thread or connection",
        shown="the cores, at least 2",
    ),
    Variable(
        "CAOMAI_CHEAP_SLOTS",
        2,
        "cheap requests beside them on connections of their own (availability, tables,"
        " TAP_SCHEMA, queries planned under CAOMAI_CHEAP_COST)",
    ),
    Variable("CAOMAI_CHEAP_COST", 2000, "planner cost under which a query counts as cheap"),
    Variable("CAOMAI_QUEUE_WAIT", 30, "how long a query waits for a slot before a 503 busy, s"),
    Variable(
        "CAOMAI_UWS_LEASE",
        60,
        "a server's claim on a running async job lasts this long unless renewed, s",
    ),
    Variable("CAOMAI_UWS_HEARTBEAT", 5, "how often a server renews its leases, s"),
    Variable(
        "CAOMAI_UWS_OWNER_HEADER",
        None,
        "request header an authenticating proxy sets to the user (e.g. X-Remote-User): the"
        " owner of async jobs; enable only behind a proxy that sets or strips it",
        shown="(unset: a cookie)",
    ),
    Variable("CAOMAI_UWS_MAX_PARAM_BYTES", 256 * 1024, "size of one async job's parameters, bytes"),
    Variable("CAOMAI_UWS_MAX_JOBS", 100, "async jobs one owner may keep"),
    Variable("CAOMAI_MAX_BODY_BYTES", 1 << 20, "a request body (the form of a POST)", size=True),
    Variable("CAOMAI_MAX_QUERY_BYTES", 64 << 10, "the ADQL text, UTF-8", size=True),
    Variable("CAOMAI_MAX_QUERY_TOKENS", 5000, "ADQL tokens (words, numbers, strings, symbols)"),
    Variable("CAOMAI_MAX_NESTING", 30, "levels of nested parentheses"),
    Variable("CAOMAI_MAX_SELECT_ITEMS", 500, "items of one select list"),
    Variable("CAOMAI_MAX_LIST_ITEMS", 1000, "items of any other list (IN, arguments)"),
    Variable(
        "CAOMAI_MAX_NODE_LIST_ITEMS",
        N_NODES,
        "items of a node list (in_node, has_object_node)",
    ),
    Variable("CAOMAI_MAX_REFS", 100, "images in one reference of fp_similar or in_node (a|b|c)"),
    Variable(
        "CAOMAI_MAX_UPLOAD_BYTES",
        64 << 20,
        "an image uploaded to the web page's /api/fingerprint",
        size=True,
    ),
)

README_BEGIN = "<!-- BEGIN configuration (generated from caomai_db/config.py) -->"
README_END = "<!-- END configuration -->"


def markdown_reference() -> str:
    """The README's configuration table (a test keeps them equal)."""
    lines = [README_BEGIN, "| variable | default | what it sets |", "| --- | --- | --- |"]
    lines += [f"| `{v.name}` | {v.default_text()} | {v.meaning} |" for v in VARIABLES]
    lines.append(README_END)
    return "\n".join(lines)


_BY_NAME: dict[str, Variable] = {v.name: v for v in VARIABLES}


def _default(name: str) -> Any:
    """The default of a variable, from :data:`VARIABLES` (the one place it is written)."""
    return _BY_NAME[name].default


def _env_text(name: str) -> str | None:
    """A text variable; unset or empty means its default."""
    return os.environ.get(name) or _default(name)


def _env_int(name: str) -> int:
    """An integer variable; unset or blank means its default."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return _default(name)
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class QueryLimits:
    """What one TAP request may ask for; with the defaults the ADQL parser (pure Python)
    takes at most a few seconds on a loaded 2-core machine, whatever the input
    (bench/fuzz.py).

    queryparser's time grows with the tokens of a query, and steeply with nested parentheses
    (400 levels took 43 s and 262 MB); PostgreSQL parses a node list per row."""

    max_body_bytes: int = _default("CAOMAI_MAX_BODY_BYTES")
    max_query_bytes: int = _default("CAOMAI_MAX_QUERY_BYTES")
    max_query_tokens: int = _default("CAOMAI_MAX_QUERY_TOKENS")
    max_nesting: int = _default("CAOMAI_MAX_NESTING")
    max_select_items: int = _default("CAOMAI_MAX_SELECT_ITEMS")
    max_list_items: int = _default("CAOMAI_MAX_LIST_ITEMS")
    max_node_list_items: int = _default("CAOMAI_MAX_NODE_LIST_ITEMS")
    max_refs: int = _default("CAOMAI_MAX_REFS")

    @classmethod
    def from_env(cls) -> QueryLimits:
        return cls(
            max_body_bytes=_env_int("CAOMAI_MAX_BODY_BYTES"),
            max_query_bytes=_env_int("CAOMAI_MAX_QUERY_BYTES"),
            max_query_tokens=_env_int("CAOMAI_MAX_QUERY_TOKENS"),
            max_nesting=_env_int("CAOMAI_MAX_NESTING"),
            max_select_items=_env_int("CAOMAI_MAX_SELECT_ITEMS"),
            max_list_items=_env_int("CAOMAI_MAX_LIST_ITEMS"),
            max_node_list_items=_env_int("CAOMAI_MAX_NODE_LIST_ITEMS"),
            max_refs=_env_int("CAOMAI_MAX_REFS"),
        )


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of one caomai command."""

    home: Path
    dsn: str | None = None
    reader_dsn: str | None = None
    #: statement timeout of TAP queries, seconds
    query_timeout_s: int = _default("CAOMAI_QUERY_TIMEOUT")
    #: hard row limit of TAP queries (MAXREC cannot go above it)
    max_rows: int = _default("CAOMAI_MAX_ROWS")
    #: default MAXREC when the client gives none
    default_maxrec: int = _default("CAOMAI_DEFAULT_MAXREC")
    #: how the TAP service writes its asynchronous jobs (default: the main DSN as caomai_uws)
    uws_dsn: str | None = None
    #: longest EXECUTIONDURATION an asynchronous TAP job may ask for, seconds
    async_max_duration_s: int = _default("CAOMAI_ASYNC_MAX_DURATION")
    #: how long asynchronous TAP jobs and their results are kept, seconds
    job_retention_s: int = _default("CAOMAI_JOB_RETENTION_DAYS") * DAY_S
    #: a similarity query whose filter leaves at most this many rows (planner estimate) is
    #: answered exactly (filter, then sort by distance); above it through the HNSW index
    exact_max_rows: int = _default("CAOMAI_EXACT_MAX_ROWS")
    #: smallest hnsw.ef_search of a similarity query through the index (recall vs. speed)
    ef_search_min: int = _default("CAOMAI_EF_SEARCH_MIN")
    #: a server's claim (lease) on a running job lasts this long unless renewed, seconds; a job
    #: whose lease ran out (its server died) is queued again once, by whichever server sees it
    uws_lease_s: int = _default("CAOMAI_UWS_LEASE")
    #: how often a server renews the leases of the jobs it runs and looks for work, seconds
    uws_heartbeat_s: int = _default("CAOMAI_UWS_HEARTBEAT")
    #: header an authenticating proxy sets to the user's name (e.g. X-Remote-User); it names
    #: the owner of asynchronous jobs. None: anonymous owners, told apart by a cookie. Enable
    #: it only behind a proxy that sets or strips it, otherwise clients can claim any name.
    uws_owner_header: str | None = None
    #: total size of one job's parameters (the query included), bytes; jobs are kept for days
    uws_max_param_bytes: int = _default("CAOMAI_UWS_MAX_PARAM_BYTES")
    #: how many jobs (in any phase, until destroyed or deleted) one owner may keep
    uws_max_jobs: int = _default("CAOMAI_UWS_MAX_JOBS")
    #: what one TAP request may ask for (sizes, nesting, list lengths)
    limits: QueryLimits = QueryLimits()
    #: queries that run at once on one server (more only make 2 cores thrash); the rest wait
    #: in line without holding a thread or a connection
    query_slots: int = _default("CAOMAI_QUERY_SLOTS")
    #: cheap work at once beside them, on connections of its own: availability, TAP_SCHEMA,
    #: and queries PostgreSQL plans under ``cheap_cost``
    cheap_slots: int = _default("CAOMAI_CHEAP_SLOTS")
    #: planner cost (EXPLAIN's total cost) under which a query counts as cheap
    cheap_cost: int = _default("CAOMAI_CHEAP_COST")
    #: how long a query may wait in line for a slot before it gets a 503 "busy", seconds
    queue_wait_s: int = _default("CAOMAI_QUEUE_WAIT")
    #: largest result one query returns (PostgreSQL's text size of its values), bytes; past it
    #: the rows stop there, marked as an overflow like MAXREC
    max_response_bytes: int = _default("CAOMAI_MAX_RESPONSE_BYTES")
    #: largest image the web page's upload (/api/fingerprint) takes, bytes
    max_upload_bytes: int = _default("CAOMAI_MAX_UPLOAD_BYTES")

    @classmethod
    def from_env(cls, dsn: str | None = None) -> Settings:
        """Read the environment; an explicit ``dsn`` (``--dsn``) wins over ``CAOMAI_DSN``."""
        home = Path(_env_text("CAOMAI_HOME")).expanduser()
        return cls(
            home=home.resolve(),
            dsn=dsn or _env_text("CAOMAI_DSN"),
            reader_dsn=_env_text("CAOMAI_READER_DSN"),
            query_timeout_s=_env_int("CAOMAI_QUERY_TIMEOUT"),
            max_rows=_env_int("CAOMAI_MAX_ROWS"),
            default_maxrec=_env_int("CAOMAI_DEFAULT_MAXREC"),
            uws_dsn=_env_text("CAOMAI_UWS_DSN"),
            async_max_duration_s=_env_int("CAOMAI_ASYNC_MAX_DURATION"),
            job_retention_s=_env_int("CAOMAI_JOB_RETENTION_DAYS") * DAY_S,
            exact_max_rows=_env_int("CAOMAI_EXACT_MAX_ROWS"),
            ef_search_min=_env_int("CAOMAI_EF_SEARCH_MIN"),
            uws_lease_s=_env_int("CAOMAI_UWS_LEASE"),
            uws_heartbeat_s=_env_int("CAOMAI_UWS_HEARTBEAT"),
            uws_owner_header=_env_text("CAOMAI_UWS_OWNER_HEADER"),
            uws_max_param_bytes=_env_int("CAOMAI_UWS_MAX_PARAM_BYTES"),
            uws_max_jobs=_env_int("CAOMAI_UWS_MAX_JOBS"),
            limits=QueryLimits.from_env(),
            query_slots=max(1, _env_int("CAOMAI_QUERY_SLOTS")),
            cheap_slots=max(1, _env_int("CAOMAI_CHEAP_SLOTS")),
            cheap_cost=_env_int("CAOMAI_CHEAP_COST"),
            queue_wait_s=_env_int("CAOMAI_QUEUE_WAIT"),
            max_response_bytes=_env_int("CAOMAI_MAX_RESPONSE_BYTES"),
            max_upload_bytes=_env_int("CAOMAI_MAX_UPLOAD_BYTES"),
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
