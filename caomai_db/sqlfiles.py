"""Apply the plain SQL files under sql/ (functions, views, roles) from migrations.

``sql/NNNN/`` holds the files migration NNNN applies, frozen once that migration is released
(``tests/test_migrations.py`` pins their checksums): an old database upgraded today must get
what it would have got then. A change to a function or a view goes into a new folder, applied
by a new migration."""

from __future__ import annotations

import psycopg

from .errors import SetupError, UsageError
from .paths import SQL_DIR


def vector_schema(conn: psycopg.Connection) -> str:
    """The schema the pgvector extension lives in (public unless the site chose otherwise)."""
    row = conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'vector'"
    ).fetchone()
    if row is None:
        raise SetupError("the pgvector extension is not installed in this database")
    return row[0]


def render(name: str, conn: psycopg.Connection) -> str:
    text = (SQL_DIR / name).read_text()
    database = conn.execute("SELECT current_database()").fetchone()[0]
    if '"' in database:
        raise UsageError(f"unsupported database name {database!r}")
    return text.replace("@vector@", vector_schema(conn)).replace("@database@", database)


def apply(conn: psycopg.Connection, name: str) -> None:
    """Run one file as a single multi-statement query inside the caller's transaction."""
    conn.execute(render(name, conn).encode())
