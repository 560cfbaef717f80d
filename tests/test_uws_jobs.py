"""Asynchronous (UWS) jobs against a live ``caomai serve`` and its real database."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from caomai_db import dbadmin

from .tapserver import running_service, synthetic_database

N_PLANES = 400
QUICK = "SELECT COUNT(*) AS n FROM caom2.Plane"


@pytest.fixture(scope="module")
def archive(cluster_dsn: str) -> Iterator[str]:
    with synthetic_database(cluster_dsn, N_PLANES, seed=5) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def tap(archive: str) -> Iterator[str]:
    with running_service(archive) as url:
        yield url


def create(client: httpx.Client, tap: str, query: str = QUICK, **params: str) -> str:
    """POST a job; its URL."""
    r = client.post(f"{tap}/async", data={"LANG": "ADQL", "QUERY": query, **params})
    assert r.status_code == 303, r.text
    return r.headers["location"]


def test_an_unexpected_error_keeps_the_connection_open(tap: str, archive: str) -> None:
    """A 500 ends the request, not the keep-alive connection (uvicorn closed it when the
    exception was raised again after the error document, and the next request was reset)."""
    with httpx.Client() as client:
        job_id = create(client, tap).rsplit("/", 1)[1]
    host, port = tap.split("//")[1].split("/")[0].split(":")
    with psycopg.connect(archive, autocommit=True) as admin:
        admin.execute("REVOKE SELECT ON caomai_uws.job FROM caomai_uws")
        try:
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                first = http_exchange(sock, f"/tap/async/{job_id}/phase")
                time.sleep(0.5)  # the old server closed the connection about now
                admin.execute("GRANT SELECT ON caomai_uws.job TO caomai_uws")
                second = http_exchange(sock, "/tap/availability")
        finally:
            admin.execute("GRANT SELECT ON caomai_uws.job TO caomai_uws")
    assert first.startswith(b"HTTP/1.1 500") and b"internal error" in first
    assert second.startswith(b"HTTP/1.1 200"), second


def http_exchange(sock: socket.socket, path: str) -> bytes:
    """One GET on an open connection; the whole response (Content-Length framed)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


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
