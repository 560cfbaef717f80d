"""Where the database is, and how to connect to it.

With no DSN configured the embedded cluster is started on demand; with ``CAOMAI_DSN`` or
``--dsn`` every command goes to that server and nothing is started locally.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import sqlalchemy as sa
from pgvector.psycopg import register_vector

from .config import READER_ROLE, Settings
from .embedded import EmbeddedCluster
from .errors import UsageError


def cluster(settings: Settings) -> EmbeddedCluster:
    return EmbeddedCluster(settings.pgdata)


def resolve_dsn(settings: Settings, start: bool = True) -> str:
    """The libpq URI every command uses; starts the embedded cluster when needed."""
    if settings.dsn:
        return settings.dsn
    embedded = cluster(settings)
    if start:
        return embedded.start()
    return embedded.dsn()


def reader_dsn(settings: Settings, dsn: str | None = None) -> str:
    """DSN of the read-only query role: CAOMAI_READER_DSN, else the main DSN with its user swapped."""
    if settings.reader_dsn:
        return settings.reader_dsn
    return with_user(dsn or resolve_dsn(settings), READER_ROLE)


def with_user(dsn: str, user: str) -> str:
    """Replace the user of a postgresql:// URI (and drop its password)."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise UsageError("only postgresql:// URIs can be rewritten for the reader role")
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, parts.fragment))


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def sqlalchemy_url(dsn: str) -> str:
    """SQLAlchemy wants the driver in the scheme and keeps libpq query options as they are."""
    parts = urlsplit(dsn)
    query = urlencode(parse_qsl(parts.query))
    return urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, query, parts.fragment))


def connect(dsn: str, *, autocommit: bool = False, vector: bool = True) -> psycopg.Connection:
    """A psycopg connection; pgvector's types are registered when the extension exists."""
    conn = psycopg.connect(dsn, autocommit=autocommit)
    if vector:
        try:
            register_vector(conn)
        except psycopg.ProgrammingError:
            # the extension is not installed yet (before the first migration)
            if not autocommit:
                conn.rollback()
    return conn


def engine(dsn: str) -> sa.Engine:
    return sa.create_engine(sqlalchemy_url(dsn), future=True, pool_pre_ping=True)
