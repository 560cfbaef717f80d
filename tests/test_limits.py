"""Never a 500, never a hang, never a wrong status: the requests of the issue-14 probe, each sent
to a running ``caomai serve``. Oversized or pathological input is refused before any work
starts, with a 400 VOTable error that names the limit, fast; the service answers afterwards."""

from __future__ import annotations

import io
import time

import httpx
import psycopg
import pytest
from astropy.io.votable import parse_single_table

from caomai_db.config import QueryLimits

from .tapserver import error_message, running_service, synthetic_database

LIMITS = QueryLimits()
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


@pytest.mark.parametrize("fmt", ["votable/b", "votable/b2", "votable"])
def test_nulls_in_every_serialization(tap: str, fmt: str) -> None:
    """Found by the fuzzer: a NULL integer in BINARY (W31) and a NULL fixed-size array in any
    serialization (a shape mismatch) were 500s."""
    q = "SELECT m.model_id, m.parent_id, m.grid_rows FROM caomai.model AS m ORDER BY m.model_id"
    reply = post(tap, QUERY=q, RESPONSEFORMAT=fmt)
    assert reply.status_code == 200, reply.text[:500]
    table = parse_single_table(io.BytesIO(reply.content)).to_table()
    assert table["parent_id"].mask.any() and not table["model_id"].mask.any()
    q = (
        "SELECT TOP 3 p.publisherID, f.counts, f.fp, f.n_detected FROM caom2.Plane AS p"
        " LEFT OUTER JOIN caomai.fingerprint AS f ON f.planeID = p.planeID AND f.n_detected < 0"
    )
    reply = post(tap, QUERY=q, RESPONSEFORMAT=fmt)
    assert reply.status_code == 200, reply.text[:500]
    table = parse_single_table(io.BytesIO(reply.content)).to_table()
    assert len(table) == 3 and table["n_detected"].mask.all() and table["counts"].mask.all()


def test_thirty_thousand_select_items(tap: str) -> None:
    """Probe: 503 'the database is not available' after 66 s."""
    q = "SELECT " + ", ".join(["o.obs_id"] * 30_000) + " FROM ivoa.ObsCore AS o"
    refused(tap, q, f"{LIMITS.max_query_bytes} bytes")
    q = (
        "SELECT "
        + ", ".join(["o.obs_id"] * (LIMITS.max_select_items + 1))
        + " FROM ivoa.ObsCore AS o"
    )
    assert len(q) < LIMITS.max_query_bytes
    refused(tap, q, f"{LIMITS.max_select_items} select items")


def test_huge_in_list(tap: str) -> None:
    """Probe: a 300 KB IN (1,1,...) list got no answer in 75 s."""
    q = PLANE + "p.calibrationLevel IN (" + ",".join(["1"] * 150_000) + ")"
    assert len(q) > 300_000
    refused(tap, q, f"{LIMITS.max_query_bytes} bytes")
    q = PLANE + "p.calibrationLevel IN (" + ",".join(["1"] * (LIMITS.max_list_items + 1)) + ")"
    refused(tap, q, f"{LIMITS.max_list_items} items")


@pytest.mark.parametrize("depth", [400, 2000])
def test_deeply_nested_parentheses(tap: str, depth: int) -> None:
    """Probe: 400 levels (849 bytes) took 43 s of CPU and 262 MB; 2000 levels never answered."""
    q = "SELECT TOP 1 o.obs_id FROM ivoa.ObsCore AS o WHERE " + "(" * depth + "1=1" + ")" * depth
    refused(tap, q, f"{LIMITS.max_nesting} levels")
    # brackets inside string literals and comments do not count
    q = (
        "SELECT TOP 1 o.obs_id -- " + "(" * depth + "\n FROM ivoa.ObsCore AS o"
        " WHERE o.obs_id <> '" + "(" * depth + "'"
    )
    assert post(tap, QUERY=q).status_code == 200


@pytest.mark.parametrize("kb", [100, 500])
def test_huge_node_lists(tap: str, kb: int) -> None:
    """Probe: a 100-500 KB node list in has_object_node ran to the statement timeout."""
    nodes = ",".join(str(i % 400) for i in range(kb * 300))[: kb * 1000].rstrip(",")
    q = PLANE + f"has_object_node(p.planeID, '{nodes}') = 1"
    refused(tap, q, f"{LIMITS.max_query_bytes} bytes")


def test_node_list_and_reference_counts(tap: str) -> None:
    many = ",".join(str(i % 400) for i in range(LIMITS.max_node_list_items + 1))
    refused(tap, PLANE + f"has_object_node(p.planeID, '{many}', 2) = 1", "node list", "400 items")
    refused(
        tap,
        "SELECT TOP 1 f.publisherID FROM caomai.fingerprint AS f"
        f" WHERE in_node(f.map2_node, '{many}') = 1",
        "node list",
        "400 items",
    )
    refs = "|".join(f"ivo://x/y?{i}" for i in range(LIMITS.max_refs + 1))
    refused(
        tap,
        f"SELECT TOP 1 f.publisherID FROM caomai.fingerprint AS f ORDER BY fp_similar(f.fp, '{refs}') DESC",
        f"{LIMITS.max_refs} reference",
    )


def test_form_field_over_the_multipart_limit(tap: str) -> None:
    """Probe: a form field over 1 MiB got a JSON body (Starlette's multipart limit)."""
    big = "SELECT TOP 1 * FROM caom2.Plane WHERE 1 = 1" + " " * (1 << 20)
    reply = httpx.post(
        f"{tap}/sync", files={"LANG": (None, "ADQL"), "QUERY": (None, big)}, timeout=30
    )
    assert reply.status_code == 400
    assert f"{LIMITS.max_body_bytes} bytes" in error_message(reply)
    # the same body as an urlencoded form; and sent in chunks, without a Content-Length
    reply = post(tap, QUERY=big)
    assert reply.status_code == 400
    assert f"{LIMITS.max_body_bytes} bytes" in error_message(reply)
    chunks = (b"QUERY=" + b"+" * 65536 for _ in range(32))
    reply = httpx.post(
        f"{tap}/sync",
        content=chunks,
        headers={"content-type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert reply.status_code == 400
    assert f"{LIMITS.max_body_bytes} bytes" in error_message(reply)
    still_answers(tap)


BODY = "cannot read the request body"


@pytest.mark.parametrize(
    ("content_type", "body", "words"),
    [
        (
            "multipart/form-data; boundary=xyz",
            b"--xyz\r\nContent-Disposition: form-data\r\n\r\nx",
            BODY,
        ),
        ("multipart/form-data", b"QUERY=SELECT", BODY),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\ngarbage\r\n\r\n--xyz--\r\n", BODY),
        ("application/x-www-form-urlencoded", b"QUERY=%ZZ%00&LANG=ADQL", "NUL"),
    ],
)
def test_malformed_bodies_are_400_votable_errors(
    tap: str, content_type: str, body: bytes, words: str
) -> None:
    reply = httpx.post(
        f"{tap}/sync", content=body, headers={"content-type": content_type}, timeout=30
    )
    assert reply.status_code == 400, reply.text
    assert words in error_message(reply)
    still_answers(tap)


def test_nul_characters_are_refused(tap: str) -> None:
    reply = post(tap, QUERY="SELECT TOP 1 * FROM caom2.Plane WHERE publisherID = 'a\x00b'")
    assert reply.status_code == 400 and "NUL" in error_message(reply)
    reply = httpx.get(f"{tap}/sync", params={"LANG": "ADQL", "QUERY": "SELECT\x00 1"})
    assert reply.status_code == 400 and "NUL" in error_message(reply)


def test_unknown_paths_and_methods_are_not_json(tap: str) -> None:
    reply = httpx.get(f"{tap}/nowhere")
    assert reply.status_code == 404 and error_message(reply)
    reply = httpx.put(f"{tap}/sync", content=b"x")
    assert reply.status_code == 405 and error_message(reply)


def test_a_sync_query_stops_when_the_client_goes(tap: str, archive: str) -> None:
    """A query whose client hung up is cancelled in the database, not run to the timeout."""
    slow = (
        "SELECT COUNT(*) AS n FROM caom2.Plane AS p1, caom2.Plane AS p2, caom2.Plane AS p3,"
        " caom2.Plane AS p4, caom2.Plane AS p5"
    )

    def running() -> int:
        with psycopg.connect(archive, autocommit=True) as conn:
            return conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                " AND usename = 'caomai_reader' AND query ILIKE '%count(%'"
            ).fetchone()[0]

    with pytest.raises(httpx.TimeoutException):
        post(tap, QUERY=slow, timeout=2)
    deadline = time.monotonic() + 5
    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert running() == 0, "the query still runs after its client went away"
    still_answers(tap)


def test_limits_follow_the_settings_and_are_advertised(archive: str) -> None:
    small = QueryLimits(max_nesting=3, max_query_bytes=200)
    with running_service(archive, limits=small) as url:
        text = refused(url, PLANE + "((((1=1))))", "3 levels")
        assert "nest" in text
        refused(url, PLANE + "1=1" + " " * 200, "200 bytes")
        caps = httpx.get(f"{url}/capabilities").text
    assert "200 bytes" in caps and "3 levels" in caps
