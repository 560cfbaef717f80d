"""Helpers for the TAP tests: a synthetic archive in a database of its own, a running service,
and the exact answers of the ADQL functions computed with numpy from the stored counts."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import httpx
import numpy as np
import psycopg
import uvicorn

from caomai_db.config import GRID_COLS, Settings
from caomai_db.tap.app import create_app
from caomai_loaders import synthetic
from caomai_loaders.fingerprint import fingerprint

from . import databases

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"


def error_message(reply: httpx.Response) -> str:
    """The reason of a TAP error answer: the text of its QUERY_STATUS=ERROR INFO (an answer
    that is no VOTable, or has no such INFO, fails the test)."""
    assert "votable" in reply.headers["content-type"], reply.text[:300]
    root = ET.fromstring(reply.content)
    for info in root.iter(f"{VOT}INFO"):
        if info.get("name") == "QUERY_STATUS":
            assert info.get("value") == "ERROR"
            return (info.text or "").strip()
    raise AssertionError(f"no QUERY_STATUS in {reply.text[:300]}")


@contextmanager
def synthetic_database(
    cluster_dsn: str, n: int, seed: int, proprietary_fraction: float = 0.01
) -> Iterator[str]:
    """A database migrated to head holding ``n`` synthetic planes; dropped afterwards."""
    with databases.scratch(cluster_dsn, "tap_") as dsn:
        synthetic.generate(dsn, n, seed=seed, proprietary_fraction=proprietary_fraction)
        yield dsn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_service(dsn: str, **settings: object) -> Iterator[str]:
    """``caomai serve`` in a thread (uvicorn, the real app); yields the TAP base URL."""
    port = free_port()
    s = dataclasses.replace(Settings.from_env(dsn), **settings)
    app = create_app(s, workers=2)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the TAP service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/tap"
    finally:
        server.should_exit = True
        thread.join(30)


@dataclass
class Truth:
    """Every plane with its fingerprint, read as the administrator (numpy does the rest)."""

    publisherid: np.ndarray
    planeid: np.ndarray
    time_lo: np.ndarray
    instrument: np.ndarray
    counts: np.ndarray  # (n, 400)
    n_detected: np.ndarray
    n_sampled: np.ndarray
    map2_node: np.ndarray
    proprietary: np.ndarray

    @classmethod
    def load(cls, dsn: str) -> Truth:
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(
                "SELECT p.publisherid, p.planeid::text, p.time_bounds_lower, o.instrument_name,"
                " f.counts, f.n_detected, f.n_sampled, f.map2_node, p.metarelease > now()"
                " FROM caom2.plane p JOIN caom2.observation o USING (obsid)"
                " JOIN caomai.fingerprint f USING (planeid) ORDER BY p.publisherid"
            ).fetchall()
        cols = list(zip(*rows, strict=True))
        return cls(
            publisherid=np.array(cols[0]),
            planeid=np.array(cols[1]),
            time_lo=np.array(cols[2], dtype=float),
            instrument=np.array(cols[3]),
            counts=np.array(cols[4], dtype=float),
            n_detected=np.array(cols[5], dtype=float),
            n_sampled=np.array(cols[6], dtype=float),
            map2_node=np.array(cols[7], dtype=int),
            proprietary=np.array(cols[8], dtype=bool),
        )

    @cached_property
    def unit_fingerprints(self) -> np.ndarray:
        """The fingerprints recomputed from the stored counts, one image at a time, by the
        loaders' own function (the synthetic archive uses its ``smooth-sqrt`` transform)."""
        return np.array(
            [
                fingerprint(c, int(d), int(s), "smooth-sqrt")
                for c, d, s in zip(self.counts, self.n_detected, self.n_sampled, strict=True)
            ],
            dtype=float,
        )

    def index(self, publisherid: str) -> int:
        return int(np.flatnonzero(self.publisherid == publisherid)[0])

    def similarity(self, refs: list[str]) -> np.ndarray:
        """Cosine similarity of every plane to the mean fingerprint of ``refs``."""
        unit = self.unit_fingerprints
        ref = unit[[self.index(r) for r in refs]].mean(axis=0)
        return unit @ (ref / np.linalg.norm(ref))

    def in_node(self, refs: list[str], radius: int) -> np.ndarray:
        """in_node(map2_node, refs, radius): Chebyshev distance on the 20x20 grid."""
        nodes = self.map2_node[[self.index(r) for r in refs]]
        r, c = np.divmod(self.map2_node, GRID_COLS)
        hit = np.zeros(len(r), dtype=bool)
        for n in nodes:
            nr, nc = divmod(int(n), GRID_COLS)
            hit |= (np.abs(r - nr) <= radius) & (np.abs(c - nc) <= radius)
        return hit

    def has_object_node(self, nodes: list[int], min_count: int) -> np.ndarray:
        found = self.counts[:, nodes].sum(axis=1) * self.n_detected / self.n_sampled
        return found >= min_count
