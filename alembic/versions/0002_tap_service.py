"""TAP service: ADQL geometry functions, UWS job store and its role.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

- ``caomai.adql_*``: POINT, CIRCLE, BOX, POLYGON, CONTAINS, INTERSECTS, DISTANCE, COORD1/2 and
  AREA over DALI arrays (sql/0002/geometry.sql, plain SQL); where the database has pg_sphere,
  sql/0002/geometry_pgsphere.sql re-defines the predicates, distances and areas on pg_sphere.
- ``caomai_uws.job``: the asynchronous (UWS) jobs of the TAP service, so that they survive a
  restart. It is not published (no TAP_SCHEMA row, no grant to the reader).
- the role ``caomai_uws`` (unless it exists): the one role that writes job rows; it may
  read and write ``caomai_uws.job`` and nothing else. Queries themselves run as the read-only
  ``caomai_reader``; the TAP service never writes archive tables.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from caomai_db import sqlfiles, tapschema
from caomai_db.config import UWS_ROLE

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _raw():
    return op.get_bind().connection.driver_connection


def _scalar(query: str, *params):
    return _raw().execute(query, params).fetchone()[0]


def apply_geometry(raw) -> bool:  # noqa: ANN001 - psycopg connection
    """(Re)create the geometry functions; True when they are pg_sphere-backed."""
    sqlfiles.apply(raw, "0002/geometry.sql")
    row = raw.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_sphere'"
    ).fetchone()
    if row is None:
        return False
    text = sqlfiles.render("0002/geometry_pgsphere.sql", raw).replace("@pgsphere@", row[0])
    raw.execute(text.encode())
    return True


def upgrade() -> None:
    raw = _raw()
    apply_geometry(raw)
    # TAP_SCHEMA rows as taplint wants them: "size" delimited, size = arraysize's length
    tapschema.sync(raw)
    op.execute("CREATE SCHEMA caomai_uws")
    op.execute(
        """
        CREATE TABLE caomai_uws.job (
            job_id text PRIMARY KEY,
            run_id text,
            owner_id text,
            phase text NOT NULL DEFAULT 'PENDING' CHECK (phase IN ('PENDING', 'QUEUED',
                'EXECUTING', 'COMPLETED', 'ERROR', 'ABORTED', 'UNKNOWN', 'HELD', 'SUSPENDED',
                'ARCHIVED')),
            parameters jsonb NOT NULL DEFAULT '{}'::jsonb,
            creation_time timestamptz NOT NULL DEFAULT now(),
            start_time timestamptz,
            end_time timestamptz,
            execution_duration integer NOT NULL,
            destruction_time timestamptz NOT NULL,
            error_summary text,
            result_mime text,
            result_rows bigint,
            result_overflow boolean,
            result bytea,
            worker text,
            plan text
        )
        """
    )
    op.execute("CREATE INDEX ix_job_phase ON caomai_uws.job (phase)")
    op.execute("CREATE INDEX ix_job_destruction_time ON caomai_uws.job (destruction_time)")
    op.execute(
        "COMMENT ON TABLE caomai_uws.job IS 'asynchronous TAP jobs (UWS 1.1) of caomai serve;"
        " written only by the role caomai_uws, never published'"
    )
    if _scalar("SELECT count(*) FROM pg_roles WHERE rolname = %s", UWS_ROLE) == 0:
        op.execute(f"CREATE ROLE {UWS_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
        op.execute("INSERT INTO caomai.meta (key, value) VALUES ('created_role_uws', '1')")
    op.execute(f"GRANT USAGE ON SCHEMA caomai_uws TO {UWS_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON caomai_uws.job TO {UWS_ROLE}")
    database = _scalar("SELECT current_database()")
    op.execute(f"ALTER ROLE {UWS_ROLE} IN DATABASE \"{database}\" SET statement_timeout = '60s'")


def downgrade() -> None:
    created = _scalar("SELECT count(*) FROM caomai.meta WHERE key = 'created_role_uws'")
    database = _scalar("SELECT current_database()")
    op.execute("DROP SCHEMA caomai_uws CASCADE")
    if _scalar("SELECT count(*) FROM pg_roles WHERE rolname = %s", UWS_ROLE):
        op.execute(f'ALTER ROLE {UWS_ROLE} IN DATABASE "{database}" RESET ALL')
    if created:
        op.execute("DELETE FROM caomai.meta WHERE key = 'created_role_uws'")
        op.execute(
            f"DO $$ BEGIN DROP ROLE {UWS_ROLE}; "
            "EXCEPTION WHEN dependent_objects_still_exist THEN "
            f"RAISE NOTICE 'role {UWS_ROLE} kept: other databases use it'; END $$"
        )
    for (signature,) in (
        _raw()
        .execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n"
            " ON n.oid = p.pronamespace WHERE n.nspname = 'caomai' AND p.proname LIKE 'adql\\_%'"
        )
        .fetchall()
    ):
        op.execute(f"DROP FUNCTION {signature}")
