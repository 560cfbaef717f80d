"""The wheel: ``python -m build --wheel`` carries the migrations, the SQL and the TAP_SCHEMA/DaCHS
files, and a caomai installed from it alone (no checkout anywhere on the path) migrates a new
embedded database, serves TAP and runs a small demo.

The wheel goes into a fresh virtual environment that holds nothing but it; the dependencies
(torch, astropy, the PostgreSQL binaries, ...) come from this interpreter's site-packages,
listed by a .pth file *after* the new environment's own, so that `caomai_db` and
`caomai_loaders` can only come from the wheel (checked) without reinstalling torch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from caomai_db import dbadmin

from .tapserver import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: what the wheel is built from: the two packages' folders and the folders it carries as data
SOURCES = (
    "pyproject.toml",
    "README.md",
    "caomai_db",
    "loaders",
    "web",
    "alembic",
    "alembic.ini",
    "sql",
    "tap_schema",
)


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    site: Path
    home: Path
    """CAOMAI_HOME of the installed caomai (its own embedded cluster)."""
    cwd: Path
    """A directory outside the checkout to run in."""

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CAOMAI_DSN")}
        env["CAOMAI_HOME"] = str(self.home)
        return env

    def caomai(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.venv / "bin" / "caomai"), *args],
            cwd=self.cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("wheel")
    # build from a copy of the sources, so the checkout gets no build/ or *.egg-info
    src = work / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    # --no-isolation: build with this environment's setuptools instead of fetching one
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(work), "."],
        cwd=src,
        check=True,
        capture_output=True,
    )
    wheel = next(work.glob("caomai-*.whl"))

    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    ours = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "caomai-dependencies.pth").write_text("\n".join(ours) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q"]
        + ["--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    (work / "home").mkdir()
    (work / "run").mkdir()
    inst = Installed(wheel, venv, site, work / "home", work / "run")
    yield inst
    inst.caomai("db", "stop")


def test_the_wheel_carries_migrations_sql_and_tap_schema(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    data = "caomai_db/_data/"
    expected = {data + "alembic.ini", data + "alembic/env.py", data + "alembic/script.py.mako"}
    for folder in ("alembic/versions", "sql", "tap_schema"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                expected.add(data + str(path.relative_to(ROOT)))
    assert expected <= names, sorted(expected - names)
    # three import names, none of them generic
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"caomai_db", "caomai_loaders", "caomai_web"}


def test_the_installed_copy_is_the_wheels(installed: Installed) -> None:
    code = (
        "import caomai_db, caomai_loaders\n"
        "from caomai_db.paths import ALEMBIC_INI, SQL_DIR\n"
        "print(caomai_db.__file__, caomai_loaders.__file__, ALEMBIC_INI, SQL_DIR, sep='\\n')\n"
        "import importlib.util\n"
        "print(importlib.util.find_spec('loaders'))\n"
    )
    out = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", code],
        cwd=installed.cwd,
        env=installed.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    *files, loaders = out.stdout.strip().splitlines()
    for f in files:
        assert Path(f).is_relative_to(installed.site), f
        assert Path(f).exists(), f
    assert loaders == "None"


def test_installed_caomai_migrates_serves_and_runs_a_demo(installed: Installed) -> None:
    up = installed.caomai("db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert f"database at {dbadmin.head_revision()}" in up.stdout

    port = free_port()
    server = subprocess.Popen(
        [str(installed.venv / "bin" / "caomai"), "serve", "--port", str(port)],
        cwd=installed.cwd,
        env=installed.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/tap/availability", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "caomai serve did not answer"
                time.sleep(0.5)
        assert r.status_code == 200 and "<vosi:available>true</vosi:available>" in r.text
        # the web page and its files come from the installed package too
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200 and 'src="/static/app.js"' in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/static/app.js", timeout=10).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)

    # the smallest demo that goes through every step (tests/test_demo.py's sizes), as a run
    # that ends (a plain `caomai demo` serves until Ctrl-C)
    demo = installed.caomai(
        "demo",
        *("--exposures", "12", "--cutouts", "300", "--epochs", "1", "--max-objects", "60"),
        *("--workers", "1", "--no-progress", "--no-serve"),
        timeout=300,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "demo done" in demo.stdout
    assert len(list((installed.home / "demo" / "images").glob("*.fits"))) == 12
