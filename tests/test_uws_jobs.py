"""Asynchronous (UWS) jobs against a live ``caomai serve`` and its real database: bad input is
a 400 or 404 (never a 500), a job belongs to the client that made it, WAIT holds no thread,
jobs are bounded, and several servers on one database run each job once (a killed server's
job is run again once, elsewhere)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from caomai_db import dbadmin
from caomai_db.tap.uws import OWNER_COOKIE

from .tapserver import free_port, running_service, synthetic_database

ROOT = Path(__file__).resolve().parents[1]
N_PLANES = 400
QUICK = "SELECT COUNT(*) AS n FROM caom2.Plane"
#: about 4 s here (64 M rows counted)
SLOW = "SELECT COUNT(*) AS n FROM caom2.Plane AS a, caom2.Plane AS b, caom2.Plane AS c"
#: runs until its EXECUTIONDURATION (2.6e10 rows)
ENDLESS = SLOW + ", caom2.Plane AS d"
#: leases of the multi-server tests: short, so that a dead server is noticed in seconds
LEASE_S, HEARTBEAT_S = 5, 1


@pytest.fixture(scope="module")
def archive(cluster_dsn: str) -> Iterator[str]:
    with synthetic_database(cluster_dsn, N_PLANES, seed=5) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def solo_archive(cluster_dsn: str) -> Iterator[str]:
    """A database of its own for the tests that start and kill servers: the in-process service
    of ``tap`` (alive for the whole module) would otherwise claim their jobs too."""
    with synthetic_database(cluster_dsn, N_PLANES, seed=5) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def tap(archive: str) -> Iterator[str]:
    with running_service(archive, uws_max_jobs=30) as url:
        yield url


def n_jobs(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM caomai_uws.job").fetchone()[0]


def job_row(dsn: str, job_id: str) -> dict:
    with psycopg.connect(dsn) as conn:
        cur = conn.execute(
            "SELECT phase, worker, start_time, attempts, error_summary, destruction_time,"
            " parameters FROM caomai_uws.job WHERE job_id = %s",
            (job_id,),
        )
        row = cur.fetchone()
        return dict(zip([d.name for d in cur.description], row, strict=True))


def create(client: httpx.Client, tap: str, query: str = QUICK, **params: str) -> str:
    """POST a job; its URL."""
    r = client.post(f"{tap}/async", data={"LANG": "ADQL", "QUERY": query, **params})
    assert r.status_code == 303, r.text
    return r.headers["location"]


def wait_phase(client: httpx.Client, job_url: str, phases: set[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        phase = client.get(f"{job_url}/phase").text
        if phase in phases or time.monotonic() > deadline:
            return phase
        client.get(f"{job_url}?WAIT=2&PHASE={phase}")


# -- A. bad input: 400 or 404 with a reason, never a 500, nothing created ----------------------

#: the probes of issue 14, each a 500 before (the job-creating ones could leave a job behind)
PROBES = {
    "duration-inf": ("post", "/async", {"QUERY": QUICK, "EXECUTIONDURATION": "inf"}, 400),
    "duration-1e400": ("post", "/async", {"QUERY": QUICK, "EXECUTIONDURATION": "1e400"}, 400),
    "nul-in-query": ("post", "/async", {"QUERY": "SELECT TOP 1 * FROM caom2.Plane\x00"}, 400),
    "nul-in-name": ("post", "/async", {"QUERY": QUICK, "MAX\x00REC": "1"}, 400),
    "nul-in-runid": ("post", "/async", {"QUERY": QUICK, "RUNID": "a\x00b"}, 400),
    "destruction-past": (
        "post",
        "/async",
        {"QUERY": QUICK, "DESTRUCTION": "2001-01-01T00:00:00Z"},
        400,
    ),
    "phase-unknown": ("post", "/async", {"QUERY": QUICK, "PHASE": "SPRINT"}, 400),
    "last-huge": ("get", "/async?LAST=99999999999999999999999", None, 400),
    "id-nul": ("get", "/async/%00", None, 404),
    "id-nul-phase": ("get", "/async/%00/phase", None, 404),
    "id-nul-abort": ("post", "/async/%00/phase", {"PHASE": "ABORT"}, 404),
    "id-nul-delete": ("delete", "/async/%00", None, 404),
}
REASONS = {
    "duration": "EXECUTIONDURATION",
    "nul": "NUL",
    "destruction": "in the past",
    "phase": "RUN or ABORT",
    "last": "LAST",
    "id": "no job",
}


@pytest.mark.parametrize("probe", list(PROBES))
def test_bad_input_is_a_400_or_404_and_creates_nothing(tap: str, archive: str, probe: str) -> None:
    method, path, data, status = PROBES[probe]
    reason = REASONS[probe.split("-")[0]]
    before = n_jobs(archive)
    with httpx.Client(timeout=30) as client:
        for _ in range(3):  # the same keep-alive connection serves the next request too
            kwargs = {"data": {"LANG": "ADQL", **data}} if data is not None else {}
            r = client.request(method.upper(), f"{tap}{path}", **kwargs)
            assert r.status_code == status, r.text
            assert reason.lower() in r.text.lower() and "internal error" not in r.text, r.text
            assert client.get(f"{tap}/availability").status_code == 200
    assert n_jobs(archive) == before


def test_bad_changes_to_a_job_are_refused_and_leave_it_as_it_was(tap: str, archive: str) -> None:
    with httpx.Client(timeout=30) as client:
        url = create(client, tap)
        job_id = url.rsplit("/", 1)[1]
        before = job_row(archive, job_id)
        for path, data, reason in [
            ("/destruction", {"DESTRUCTION": "2001-01-01T00:00:00Z"}, "past"),
            ("/destruction", {"DESTRUCTION": "0001-01-01T00:00:00+01:00"}, "ISO 8601"),
            ("/executionduration", {"EXECUTIONDURATION": "1e400"}, "EXECUTIONDURATION"),
            ("/executionduration", {"EXECUTIONDURATION": "-inf"}, "EXECUTIONDURATION"),
            ("/parameters", {"QUERY": "SELECT\x00"}, "NUL"),
            ("", {"MAX\x00REC": "3"}, "NUL"),
            ("/phase", {"PHASE": "SPRINT"}, "RUN or ABORT"),
        ]:
            r = client.post(f"{url}{path}", data=data)
            assert r.status_code == 400 and reason.lower() in r.text.lower(), (path, r.text)
        for query in ("WAIT=nan", "WAIT=x"):
            r = client.get(f"{url}?{query}")
            assert r.status_code == 400 and "WAIT" in r.text, r.text
        assert job_row(archive, job_id) == before


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


# -- bounds -------------------------------------------------------------------------------------


def test_a_jobs_parameters_are_limited_in_size(tap: str, archive: str) -> None:
    before = n_jobs(archive)
    big = "SELECT TOP 1 * FROM caom2.Plane WHERE publisherID <> '" + "x" * 300_000 + "'"
    with httpx.Client(timeout=60) as client:
        r = client.post(f"{tap}/async", data={"LANG": "ADQL", "QUERY": big})
        assert r.status_code == 400 and "262,144 bytes" in r.text, r.text[:300]
        # 25 fields of 20 KB: each small, together too much
        fields = {f"F{i}": "y" * 20_000 for i in range(25)}
        r = client.post(f"{tap}/async", data={"LANG": "ADQL", "QUERY": QUICK, **fields})
        assert r.status_code == 400 and "parameters" in r.text, r.text[:300]
        assert n_jobs(archive) == before
        url = create(client, tap)
        r = client.post(f"{url}/parameters", data={"QUERY": big})
        assert r.status_code == 400 and "262,144 bytes" in r.text
        assert client.get(f"{url}/parameters").text.count("xxxx") == 0


def test_one_owner_keeps_a_limited_number_of_jobs(tap: str) -> None:
    with httpx.Client(timeout=30) as client, httpx.Client(timeout=30) as other:
        urls = [create(client, tap) for _ in range(30)]  # the fixture's uws_max_jobs
        r = client.post(f"{tap}/async", data={"LANG": "ADQL", "QUERY": QUICK})
        assert r.status_code == 429 and "30 jobs" in r.text and "DELETE" in r.text, r.text
        create(other, tap)  # someone else is not concerned
        assert client.delete(urls[0]).status_code == 303
        create(client, tap)
        for url in urls[1:]:
            client.delete(url)


# -- C. ownership --------------------------------------------------------------------------------

JOB_PATHS = [
    "",
    "/phase",
    "/parameters",
    "/owner",
    "/quote",
    "/results",
    "/results/result",
    "/error",
    "/executionduration",
    "/destruction",
]


def test_a_client_sees_and_controls_only_its_own_jobs(tap: str) -> None:
    with httpx.Client(timeout=30) as a, httpx.Client(timeout=30) as b:
        r = a.post(f"{tap}/async", data={"LANG": "ADQL", "QUERY": QUICK})
        job_a = r.headers["location"]
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{OWNER_COOKIE}=") and "httponly" in cookie.lower()
        id_a = job_a.rsplit("/", 1)[1]
        assert len(id_a) >= 22  # unguessable
        assert a.get(job_a).status_code == 200  # the owner, with the cookie
        job_b = create(b, tap)
        unknown = f"{tap}/async/{'Q' * len(id_a)}"
        for path in JOB_PATHS:  # someone else's job answers like no job
            theirs, none = b.get(job_a + path), b.get(unknown + path)
            assert theirs.status_code == 404, (path, theirs.text)
            assert theirs.text.replace(id_a, "?") == none.text.replace("Q" * len(id_a), "?")
        for method, path, data in [
            ("POST", "/phase", {"PHASE": "ABORT"}),
            ("POST", "/phase", {"PHASE": "RUN"}),
            ("POST", "", {"ACTION": "DELETE"}),
            ("DELETE", "", None),
            ("POST", "/parameters", {"QUERY": "SELECT 2"}),
            ("POST", "/destruction", {"DESTRUCTION": "2100-01-01T00:00:00Z"}),
            ("POST", "/executionduration", {"EXECUTIONDURATION": "5"}),
        ]:
            r = b.request(method, job_a + path, data=data)
            assert r.status_code == 404, (method, path, r.text)
        listed_b = b.get(f"{tap}/async").text
        assert job_b.rsplit("/", 1)[1] in listed_b and id_a not in listed_b
        assert id_a in a.get(f"{tap}/async").text
        assert job_b.rsplit("/", 1)[1] not in a.get(f"{tap}/async").text
        # nor without any cookie, now that A came back with its own
        assert httpx.get(job_a).status_code == 404
        # A's job is intact: A runs it and reads the result
        owner = a.get(f"{job_a}/owner").text
        assert owner.startswith("anonymous-") and owner != b.get(f"{job_b}/owner").text
        assert f"<uws:ownerId>{owner}</uws:ownerId>" in a.get(job_a).text
        assert a.post(f"{job_a}/phase", data={"PHASE": "RUN"}).status_code == 303
        assert wait_phase(a, job_a, {"COMPLETED", "ERROR"}) == "COMPLETED"
        assert b"<TD>" in a.get(f"{job_a}/results/result").content


def test_a_client_without_cookies_reaches_its_job_by_url_until_the_cookie_comes_back(
    tap: str,
) -> None:
    """STILTS (tapquery, taplint) never sends cookies: its jobs stay reachable by their
    unguessable URL alone, but never by another client's cookie."""
    r = httpx.post(f"{tap}/async", data={"LANG": "ADQL", "QUERY": QUICK})
    job, token = r.headers["location"], r.cookies[OWNER_COOKIE]
    assert httpx.get(f"{job}/phase").text == "PENDING"
    with httpx.Client() as other:
        create(other, tap)  # a client with a cookie of its own
        assert other.get(f"{job}/phase").status_code == 404
        assert other.delete(job).status_code == 404
    assert httpx.get(f"{job}/phase", cookies={OWNER_COOKIE: token}).text == "PENDING"
    assert httpx.get(f"{job}/phase").status_code == 404  # the owner has the cookie: needed now


def test_a_proxy_header_names_the_owner_only_when_enabled(archive: str, tap: str) -> None:
    with running_service(archive, uws_owner_header="X-Remote-User") as url:
        alice = httpx.Client(headers={"X-Remote-User": "alice"})
        bob = httpx.Client(headers={"X-Remote-User": "bob"})
        with alice, bob:
            r = alice.post(f"{url}/async", data={"LANG": "ADQL", "QUERY": QUICK})
            job = r.headers["location"]
            assert "set-cookie" not in r.headers
            assert alice.get(f"{job}/owner").text == "alice"
            assert "<uws:ownerId>alice</uws:ownerId>" in alice.get(job).text
            for path in JOB_PATHS:
                assert bob.get(job + path).status_code == 404, path
            assert bob.delete(job).status_code == 404
            assert job.rsplit("/", 1)[1] not in bob.get(f"{url}/async").text
            assert httpx.get(f"{job}/phase").status_code == 404  # nobody
            # alice from another machine, without any cookie: still alice's job
            assert httpx.get(f"{job}/phase", headers={"X-Remote-User": "alice"}).text == "PENDING"
            assert job.rsplit("/", 1)[1] in alice.get(f"{url}/async").text
    # without the setting, the header is whatever a client wants it to be: ignored
    with httpx.Client(headers={"X-Remote-User": "alice"}) as c1:
        job = create(c1, tap)
        assert c1.get(f"{job}/owner").text.startswith("anonymous-")
        assert httpx.get(job, headers={"X-Remote-User": "alice"}).status_code == 404


# -- D. WAIT holds no thread -----------------------------------------------------------------------


def test_wait_holds_no_thread(tap: str) -> None:
    """45 clients blocking on WAIT=60 (more than the 40 threads of the pool requests use):
    a sync query still answers at once, and the waits end when the job changes."""
    with httpx.Client(timeout=30) as client:
        job = create(client, tap)  # PENDING: nothing will change it but us
        cookies = dict(client.cookies)
        replies: list[tuple[int, str, float]] = []

        def wait() -> None:
            with httpx.Client(cookies=cookies, timeout=90) as w:
                r = w.get(f"{job}?WAIT=60")
                replies.append((r.status_code, r.text, time.monotonic()))

        threads = [threading.Thread(target=wait, daemon=True) for _ in range(45)]
        for t in threads:
            t.start()
        time.sleep(3)
        assert not replies  # all still waiting
        t0 = time.monotonic()
        r = httpx.post(
            f"{tap}/sync",
            data={"LANG": "ADQL", "QUERY": "SELECT TOP 1 publisherID FROM caom2.Plane"},
            timeout=10,
        )
        took = time.monotonic() - t0
        assert r.status_code == 200 and took < 2, took
        aborted = time.monotonic()
        assert client.post(f"{job}/phase", data={"PHASE": "ABORT"}).status_code == 303
        for t in threads:
            t.join(30)
    assert len(replies) == 45
    assert all(s == 200 and "<uws:phase>ABORTED</uws:phase>" in text for s, text, _ in replies)
    assert max(at for _, _, at in replies) - aborted < 5
    print(f"sync query during 45 WAIT=60: {took * 1000:.0f} ms")


# -- B. several servers on one database ------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    log: Path


@contextmanager
def servers(dsn: str) -> Iterator[list[Server]]:
    """``caomai serve`` processes (started with :func:`start`), stopped at the end."""
    running: list[Server] = []
    try:
        yield running
    finally:
        for s in running:
            if s.proc.poll() is None:
                s.proc.send_signal(signal.SIGTERM)
        for s in running:
            try:
                s.proc.wait(30)
            except subprocess.TimeoutExpired:
                s.proc.kill()
            s.log.unlink(missing_ok=True)


def start(running: list[Server], dsn: str) -> Server:
    """One more ``caomai serve`` process on ``dsn`` (this checkout's code), ready to answer."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="caomai-serve-", suffix=".log")[1])
    env = os.environ | {
        "CAOMAI_DSN": dsn,
        "CAOMAI_UWS_LEASE": str(LEASE_S),
        "CAOMAI_UWS_HEARTBEAT": str(HEARTBEAT_S),
        "PYTHONPATH": str(ROOT),
    }
    cmd = [sys.executable, "-m", "caomai_db.cli", "serve", "--port", str(port)]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*cmd, "--log-level", "warning"], env=env, stdout=out, stderr=out, cwd=ROOT
        )
    server = Server(proc, f"http://127.0.0.1:{port}/tap", log)
    running.append(server)
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{server.url}/availability", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"caomai serve did not start: {log.read_text()[-3000:]}")
        time.sleep(0.2)


def runner(
    running: list[Server], dsn: str, job_id: str, dead: tuple[Server, ...] = (), timeout: float = 60
) -> Server:
    """The server running the job (its pid is in the worker column), once it is none of
    ``dead``."""
    deadline = time.monotonic() + timeout
    while True:
        row = job_row(dsn, job_id)
        if row["phase"] == "EXECUTING":
            pid = int(row["worker"].split(":")[1])
            if pid not in {s.proc.pid for s in dead}:
                return next(s for s in running if s.proc.pid == pid)
        assert time.monotonic() < deadline, row
        time.sleep(0.05)


def kill(server: Server) -> None:
    """``kill -9``: the server gets no chance to hand its jobs back."""
    server.proc.kill()
    server.proc.wait(10)


def reader_queries(dsn: str) -> list[str]:
    """Queries running now as the TAP reader role in this database."""
    with psycopg.connect(dsn) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
                " AND usename = 'caomai_reader' AND state = 'active'"
            ).fetchall()
        ]


def test_several_servers_run_each_job_once_and_start_up_leaves_live_jobs_alone(
    solo_archive: str,
) -> None:
    archive = solo_archive
    with servers(archive) as running, httpx.Client(timeout=30) as client:
        one, two = start(running, archive), start(running, archive)
        endless = create(client, one.url, ENDLESS, EXECUTIONDURATION="60", PHASE="RUN")
        endless_id = endless.rsplit("/", 1)[1]
        owner = runner(running, archive, endless_id)
        before = job_row(archive, endless_id)
        quick = [
            create(client, s.url, QUICK, PHASE="RUN") for s in [one, two] * 5
        ]  # the cookie is the host's: one owner on both servers
        third = start(running, archive)  # a server starting while jobs run
        time.sleep(3 * HEARTBEAT_S)
        assert job_row(archive, endless_id) == before  # same server, same start, one claim
        for url in quick:
            assert wait_phase(client, url, {"COMPLETED", "ERROR", "ABORTED"}) == "COMPLETED"
            row = job_row(archive, url.rsplit("/", 1)[1])
            assert row["attempts"] == 1, row
        # ABORT on a server that does not run the job stops the query where it runs
        assert third is not owner
        r = client.post(f"{third.url}/async/{endless_id}/phase", data={"PHASE": "ABORT"})
        assert r.status_code == 303, r.text
        deadline = time.monotonic() + 4 * HEARTBEAT_S + 5
        while reader_queries(archive) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert reader_queries(archive) == []
        assert job_row(archive, endless_id)["phase"] == "ABORTED"
        assert all(s.proc.poll() is None for s in running)


def test_a_killed_servers_job_runs_again_once_elsewhere_then_fails(
    solo_archive: str, truth_public: int
) -> None:
    archive = solo_archive
    with servers(archive) as running, httpx.Client(timeout=30) as client:
        for _ in range(3):
            start(running, archive)
        # a job whose server is killed is queued again and completes on another
        slow = create(client, running[0].url, SLOW, PHASE="RUN")
        slow_id = slow.rsplit("/", 1)[1]
        victim = runner(running, archive, slow_id)
        kill(victim)
        killed = time.monotonic()
        second = runner(running, archive, slow_id, (victim,), LEASE_S + 4 * HEARTBEAT_S + 10)
        print(f"job queued again and claimed {time.monotonic() - killed:.1f} s after the kill")
        assert second is not victim
        alive = next(s for s in running if s.proc.poll() is None)
        url = f"{alive.url}/async/{slow_id}"
        assert wait_phase(client, url, {"COMPLETED", "ERROR"}, timeout=120) == "COMPLETED"
        assert f"<TD>{truth_public**3}</TD>".encode() in client.get(f"{url}/results/result").content
        assert job_row(archive, slow_id)["attempts"] == 2
        # a job whose servers die twice is not run a third time
        endless = create(client, alive.url, ENDLESS, EXECUTIONDURATION="20", PHASE="RUN")
        endless_id = endless.rsplit("/", 1)[1]
        first = runner(running, archive, endless_id)
        kill(first)
        kill(runner(running, archive, endless_id, (victim, first), LEASE_S + 4 * HEARTBEAT_S + 10))
        assert all(s.proc.poll() is not None for s in running)
        fresh = start(running, archive)
        url = f"{fresh.url}/async/{endless_id}"
        assert wait_phase(client, url, {"ERROR", "COMPLETED"}, timeout=LEASE_S + 10) == "ERROR"
        assert "stopped twice" in client.get(f"{url}/error").text
        assert job_row(archive, endless_id)["attempts"] == 2


@pytest.fixture(scope="module")
def truth_public(solo_archive: str) -> int:
    """How many planes the reader role sees (the public ones)."""
    with psycopg.connect(solo_archive) as conn:
        return conn.execute(
            "SELECT count(*) FROM caom2.plane WHERE metarelease IS NULL OR metarelease <= now()"
        ).fetchone()[0]


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
