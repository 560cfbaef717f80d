"""Asynchronous (UWS) jobs against a live ``caomai serve`` and its real database."""

from __future__ import annotations

import psycopg

from caomai_db import dbadmin

# -- the migration ----------------------------------------------------------------------------------


def test_0005_gives_running_jobs_an_expired_lease_and_goes_back_down(fresh_dsn: str) -> None:
    dbadmin.upgrade(fresh_dsn, "0003")
    with psycopg.connect(fresh_dsn) as conn:
        conn.execute(
            "INSERT INTO caomai_uws.job (job_id, phase, execution_duration, destruction_time,"
            " owner_id) VALUES ('run', 'EXECUTING', 60, now() + interval '1 day', 'x'),"
            " ('old', 'PENDING', 60, now() + interval '1 day', NULL)"
        )
    dbadmin.upgrade(fresh_dsn, "0005")
    with psycopg.connect(fresh_dsn) as conn:
        rows = dict(
            (r[0], r[1:])
            for r in conn.execute(
                "SELECT job_id, lease_expires <= now(), attempts, url_access FROM caomai_uws.job"
            ).fetchall()
        )
        assert rows == {"run": (True, 0, False), "old": (None, 0, True)}
    dbadmin.downgrade(fresh_dsn, "-1")
    with psycopg.connect(fresh_dsn) as conn:
        cols = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'caomai_uws' AND table_name = 'job'"
            ).fetchall()
        }
        assert not cols & {"lease_expires", "attempts", "url_access"} and "worker" in cols
        assert conn.execute("SELECT count(*) FROM caomai_uws.job").fetchone()[0] == 2
    dbadmin.upgrade(fresh_dsn, "head")
