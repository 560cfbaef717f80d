"""Shared fixtures: one real embedded PostgreSQL for the whole run, a fresh database per test.

The cluster lives in a temporary CAOMAI_HOME, so the suite never touches ~/.caomai, and is
stopped at the end. Each test that needs a database gets its own (created and dropped here),
so tests do not see each other's rows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from caomai_db import database, dbadmin
from caomai_db.config import Settings
from caomai_db.embedded import EmbeddedCluster

from . import databases


@pytest.fixture(scope="session")
def caomai_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="caomai-test-"))
    old = os.environ.get("CAOMAI_HOME")
    os.environ["CAOMAI_HOME"] = str(home)
    os.environ.pop("CAOMAI_DSN", None)
    yield home
    EmbeddedCluster(home / "pgdata").stop()
    if old is None:
        os.environ.pop("CAOMAI_HOME", None)
    else:
        os.environ["CAOMAI_HOME"] = old
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster_dsn(caomai_home: Path) -> str:
    """DSN of the embedded cluster's default caomai database (started once per run)."""
    return database.resolve_dsn(Settings.from_env())


@pytest.fixture
def fresh_dsn(cluster_dsn: str) -> Iterator[str]:
    """An empty database of its own."""
    with databases.scratch(cluster_dsn, migrate=False) as dsn:
        yield dsn


@pytest.fixture
def db(fresh_dsn: str) -> str:
    """A database migrated to head."""
    dbadmin.upgrade(fresh_dsn, "head")
    return fresh_dsn
