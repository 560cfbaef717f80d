"""A database of its own in the tests' embedded cluster, dropped afterwards; the one way the
tests make one (fixtures of every scope use it)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from caomai_db import database, dbadmin


def create(cluster_dsn: str, prefix: str = "t_", *, migrate: bool = True) -> str:
    """A new database (migrated to head unless ``migrate`` is False); its DSN."""
    name = prefix + uuid.uuid4().hex[:12]
    with psycopg.connect(database.with_database(cluster_dsn, "postgres"), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    dsn = database.with_database(cluster_dsn, name)
    if migrate:
        dbadmin.upgrade(dsn, "head")
    return dsn


def drop(dsn: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(database.with_database(dsn, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch(cluster_dsn: str, prefix: str = "t_", *, migrate: bool = True) -> Iterator[str]:
    """:func:`create`, then :func:`drop` however the block ends."""
    dsn = create(cluster_dsn, prefix, migrate=migrate)
    try:
        yield dsn
    finally:
        drop(dsn)
