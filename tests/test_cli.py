"""The `caomai` command as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

from caomai_db import dbadmin
from caomai_db.paths import TAP_SCHEMA_DIR
from caomai_db.tapschema import export_sql

CAOMAI = [sys.executable, "-m", "caomai_db.cli"]


def run(*args: str, dsn: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if dsn:
        env["CAOMAI_DSN"] = dsn
    return subprocess.run([*CAOMAI, *args], env=env, capture_output=True, text=True, timeout=300)


def test_upgrade_and_status_through_the_cli(fresh_dsn: str) -> None:
    before = run("db", "status", dsn=fresh_dsn)
    assert before.returncode == 0, before.stderr
    assert (
        "empty" in before.stdout
        and "vector" not in before.stdout.split("extensions:")[1].split("\n")[0]
    )
    up = run("db", "upgrade", dsn=fresh_dsn)
    assert up.returncode == 0, up.stderr
    status = run("db", "status", dsn=fresh_dsn)
    assert f"{dbadmin.head_revision()} (head {dbadmin.head_revision()}, at head)" in status.stdout
    assert "vector 0.8" in status.stdout
    assert "caomai.fingerprint" in status.stdout
    down = run("db", "downgrade", "base", dsn=fresh_dsn)
    assert down.returncode == 0 and "database at base" in down.stdout


def test_dsn_flag_beats_the_environment(fresh_dsn: str) -> None:
    out = run("--dsn", fresh_dsn, "db", "dsn", dsn="postgresql://nobody@/nowhere")
    assert out.stdout.strip() == fresh_dsn
    reader = run("--dsn", fresh_dsn, "db", "dsn", "--reader")
    assert reader.stdout.strip().startswith("postgresql://caomai_reader@")


def test_unreachable_server_is_a_clear_error() -> None:
    out = run("db", "upgrade", dsn="postgresql://nobody@/nowhere?host=/nonexistent")
    assert out.returncode == 1
    assert out.stderr.startswith("caomai:") and "Traceback" not in out.stderr


def test_committed_tap_schema_file_is_current() -> None:
    committed = (TAP_SCHEMA_DIR / "caomai.tap_schema.sql").read_text()
    assert committed == export_sql(), "run `caomai tap-schema` and commit tap_schema/"


def test_exported_tap_schema_loads_into_a_tap_schema_database(db: str) -> None:
    """An archive's TAP_SCHEMA (standard 1.1 tables) accepts the file, twice."""
    sql = export_sql()
    with psycopg.connect(db) as conn:
        conn.execute(sql.encode())
        conn.execute(sql.encode())
        described = conn.execute(
            "SELECT count(*) FROM tap_schema.columns WHERE table_name = 'caomai.fingerprint_real'"
        ).fetchone()[0]
        assert described >= 8
        fp = conn.execute(
            "SELECT datatype, arraysize FROM tap_schema.columns"
            " WHERE table_name = 'caomai.fingerprint_real' AND column_name = 'fp'"
        ).fetchone()
        assert fp == ("float", "400")
