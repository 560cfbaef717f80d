"""Never a 500, never a hang, never a wrong status: the requests of the issue-14 probe, each sent
to a running ``caomai serve``. Oversized or pathological input is refused before any work
starts, with a 400 VOTable error that names the limit, fast; the service answers afterwards."""

from __future__ import annotations

import io
import time
import xml.etree.ElementTree as ET

import httpx
import pytest
from astropy.io.votable import parse_single_table

from .tapserver import running_service, synthetic_database

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"
#: a refusal must come back this fast (the probe waited 43 s to minutes for each)
FAST_S = 5.0
PLANE = "SELECT TOP 1 p.planeID FROM caom2.Plane AS p WHERE "


@pytest.fixture(scope="module")
def archive(cluster_dsn: str):
    with synthetic_database(cluster_dsn, 120, seed=3) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def tap(archive: str):
    with running_service(archive) as url:
        yield url


def post(tap: str, timeout: float = 30, **fields: str) -> httpx.Response:
    return httpx.post(f"{tap}/sync", data={"LANG": "ADQL", **fields}, timeout=timeout)


def error_message(reply: httpx.Response) -> str:
    assert "votable" in reply.headers["content-type"], reply.text[:300]
    root = ET.fromstring(reply.content)
    for info in root.iter(f"{VOT}INFO"):
        if info.get("name") == "QUERY_STATUS":
            assert info.get("value") == "ERROR"
            return (info.text or "").strip()
    raise AssertionError(f"no QUERY_STATUS in {reply.text[:300]}")


def still_answers(tap: str) -> None:
    reply = post(tap, QUERY="SELECT COUNT(*) AS n FROM caom2.Plane", timeout=10)
    assert reply.status_code == 200, reply.text


def refused(tap: str, query: str, *words: str) -> str:
    """POST the query; it must be a fast 400 VOTable error whose message holds ``words``."""
    started = time.monotonic()
    reply = post(tap, QUERY=query, timeout=3 * FAST_S)
    elapsed = time.monotonic() - started
    assert reply.status_code == 400, reply.text[:500]
    text = error_message(reply)
    for w in words:
        assert w in text, text
    assert elapsed < FAST_S, f"{elapsed:.1f} s"
    still_answers(tap)
    return text


def test_binary_votables_carry_polygons(tap: str) -> None:
    """Probe: s_region (double[*], variable length) in BINARY2 was a 500 (TypeError)."""
    q = "SELECT TOP 5 o.obs_id, o.s_region FROM ivoa.ObsCore AS o ORDER BY o.obs_id"
    tables = {}
    for fmt in ("votable", "votable/b2", "votable/b"):
        reply = post(tap, QUERY=q, RESPONSEFORMAT=fmt)
        assert reply.status_code == 200, reply.text[:500]
        tables[fmt] = parse_single_table(io.BytesIO(reply.content)).to_table()
    want = [list(map(float, r)) for r in tables["votable"]["s_region"]]
    assert len(want) == 5 and all(len(r) >= 6 for r in want)
    for fmt in ("votable/b2", "votable/b"):
        assert [list(map(float, r)) for r in tables[fmt]["s_region"]] == want
