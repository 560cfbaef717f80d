"""The SQL functions behind fp_similar, in_node and has_object_node, on hand-made fingerprints.

Expected values are computed independently here (numpy cosine, grid geometry by hand)."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from caomai_db import database
from caomai_db.config import READER_ROLE

from .factories import add_model, add_plane, counts_at


@pytest.fixture
def archive(db: str):
    """Five public planes and one proprietary plane with known fingerprints under an active model."""
    with psycopg.connect(db) as conn:
        m1 = add_model(conn, "map1")
        add_model(conn, "map2", parent=m1)
        planes = {
            "a": add_plane(conn, m1, counts_at({0: 10, 1: 5}), name="a", map2_node=0),
            "b": add_plane(conn, m1, counts_at({0: 9, 1: 6, 7: 1}), name="b", map2_node=21),
            "c": add_plane(conn, m1, counts_at({200: 30}), name="c", map2_node=399),
            # 100 detected, 20 sampled: 4 sampled in node 101 stand for 20 detected
            "d": add_plane(
                conn,
                m1,
                counts_at({101: 4, 144: 1, 300: 15}),
                name="d",
                n_detected=100,
                map2_node=210,
            ),
            "e": add_plane(conn, m1, counts_at({5: 3}), name="e", map2_node=None),
            "secret": add_plane(
                conn, m1, counts_at({0: 10, 1: 5}), name="secret", map2_node=0, proprietary=True
            ),
        }
        conn.commit()
    return db, planes


def cosine(u: np.ndarray, v: np.ndarray) -> float:
    return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))


def q(dsn: str, sql: str, *params):
    with psycopg.connect(database.with_user(dsn, READER_ROLE)) as conn:
        return conn.execute(sql, params).fetchall()


def test_fp_similar_is_cosine_similarity(archive) -> None:
    dsn, p = archive
    rows = q(
        dsn,
        "SELECT f.publisherid, fp_similar(f.fp, %s) FROM caomai.fingerprint f"
        " WHERE f.metarelease <= now()",
        p["a"].publisherid,
    )
    got = dict(rows)
    for name in "abcde":
        want = cosine(p["a"].counts, p[name].counts)
        assert got[p[name].publisherid] == pytest.approx(want, abs=1e-6), name
    assert got[p["a"].publisherid] == pytest.approx(1.0, abs=1e-6)
    assert got[p["c"].publisherid] == pytest.approx(0.0, abs=1e-6)


def test_fp_similar_accepts_caom_uri_planeid_and_prefixed_name(archive) -> None:
    dsn, p = archive
    want = cosine(p["a"].counts, p["b"].counts)
    for ref in (p["a"].planeuri, str(p["a"].planeid), "  " + p["a"].publisherid + " "):
        ((sim,),) = q(
            dsn,
            "SELECT fp_similar(fp, %s) FROM caomai.fingerprint WHERE planeid = %s",
            ref,
            p["b"].planeid,
        )
        assert sim == pytest.approx(want, abs=1e-6)
    ((sim,),) = q(
        dsn,
        "SELECT caomai_fp_similar(fp, %s) FROM caomai.fingerprint WHERE planeid = %s",
        p["a"].publisherid,
        p["b"].planeid,
    )
    assert sim == pytest.approx(want, abs=1e-6)


def test_fp_similar_of_several_images_uses_their_mean(archive) -> None:
    dsn, p = archive
    unit = lambda c: c / np.linalg.norm(c)  # noqa: E731
    mean = unit(p["a"].counts) + unit(p["c"].counts)
    ref = f"{p['a'].publisherid}|{p['c'].planeuri}"
    for name in "abd":
        ((sim,),) = q(
            dsn,
            "SELECT fp_similar(fp, %s) FROM caomai.fingerprint WHERE planeid = %s",
            ref,
            p[name].planeid,
        )
        assert sim == pytest.approx(cosine(mean, p[name].counts), abs=1e-6)


def test_fp_similar_with_an_explicit_fingerprint(archive) -> None:
    dsn, p = archive
    v = np.zeros(400)
    v[1], v[7] = 2.0, 1.0
    ref = "[" + ", ".join(f"{x:g}" for x in v) + "]"
    ((sim,),) = q(
        dsn,
        "SELECT fp_similar(fp, %s) FROM caomai.fingerprint WHERE planeid = %s",
        ref,
        p["b"].planeid,
    )
    assert sim == pytest.approx(cosine(v, p["b"].counts), abs=1e-6)
    # the real[] overload used by TAP services without pgvector support (the view is not
    # published by our own service, so this runs as the owner)
    with psycopg.connect(dsn) as conn:
        (sim2,) = conn.execute(
            "SELECT caomai.fp_similar(fp, %s) FROM caomai.fingerprint_real WHERE planeid = %s",
            (p["a"].publisherid, p["b"].planeid),
        ).fetchone()
    assert sim2 == pytest.approx(cosine(p["a"].counts, p["b"].counts), abs=1e-5)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("ivo://test.example/TEST?nothing/nothingp", "not found"),
        ("caom:TEST/nothing/nothingp", "not found"),
        ("00000000-0000-0000-0000-000000000000", "not found"),
        ("", "empty reference"),
        ("   ", "empty reference"),
        ("[1, 2, 3]", "400 values"),
        ("[1, 2, oops]", "malformed fingerprint"),
        ("[" + ", ".join(["-1"] * 400) + "]", "cannot be negative"),
        ("[" + ", ".join(["0"] * 400) + "]", "all zeros"),
        ("ivo://x|", "empty image identifier"),
    ],
)
def test_fp_similar_bad_references_are_clear_errors(archive, ref: str, message: str) -> None:
    dsn, p = archive
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        q(dsn, "SELECT fp_similar(fp, %s) FROM caomai.fingerprint", ref)


def test_proprietary_planes_are_never_references(archive) -> None:
    dsn, p = archive
    for ref in (p["secret"].publisherid, str(p["secret"].planeid), p["secret"].planeuri):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="not found"):
            q(dsn, "SELECT fp_similar(fp, %s) FROM caomai.fingerprint", ref)
    # nor can its object counts be probed
    assert q(dsn, "SELECT has_object_node(%s, '0', 1)", p["secret"].planeid) == [(0,)]


def grid_neighbours(node: int, radius: int, cols: int = 20) -> set[int]:
    r0, c0 = divmod(node, cols)
    return {
        r * cols + c
        for r in range(20)
        for c in range(cols)
        if max(abs(r - r0), abs(c - c0)) <= radius
    }


@pytest.mark.parametrize("radius", [0, 1, 2])
def test_in_node_with_a_node_list_and_radius(archive, radius: int) -> None:
    dsn, _ = archive
    for ref, base in [
        ("12,13,40", {12, 13, 40}),
        ("0", {0}),
        ("399", {399}),
        ("100-102, 7", {100, 101, 102, 7}),
    ]:
        want = set().union(*(grid_neighbours(b, radius) for b in base))
        got = {
            n
            for (n,) in q(
                dsn,
                "SELECT n FROM generate_series(0, 399) n WHERE in_node(n, %s, %s) = 1",
                ref,
                radius,
            )
        }
        assert got == want, (ref, radius)


def test_in_node_default_radius_and_corner(archive) -> None:
    dsn, _ = archive
    assert q(
        dsn,
        "SELECT in_node(13, '12,13,40'), in_node(14, '12,13,40'), caomai_in_node(14, '12,13,40', 1)",
    ) == [(1, 0, 1)]
    # node 19 is the end of the first row: 20 (start of the second row) is not its neighbour
    assert q(dsn, "SELECT in_node(20, '19', 1), in_node(39, '19', 1), in_node(NULL, '19')") == [
        (0, 1, 0)
    ]


def test_in_node_with_image_references(archive) -> None:
    dsn, p = archive
    rows = q(
        dsn,
        "SELECT publisherid FROM caomai.fingerprint WHERE in_node(map2_node, %s, 1) = 1"
        " ORDER BY publisherid",
        p["a"].publisherid,
    )
    # a sits at node 0; b at 21 (row 1, col 1) is one diagonal step away; the proprietary twin is
    # at node 0 too, and the function itself does not hide rows (the TAP layer does)
    assert {r[0] for r in rows} == {p["a"].publisherid, p["b"].publisherid, p["secret"].publisherid}
    rows = q(
        dsn,
        "SELECT publisherid FROM caomai.fingerprint WHERE in_node(map2_node, %s) = 1",
        f"{p['c'].publisherid}|{p['d'].publisherid}",
    )
    assert {r[0] for r in rows} == {p["c"].publisherid, p["d"].publisherid}
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="no Map-2 node"):
        q(dsn, "SELECT in_node(1, %s)", p["e"].publisherid)


@pytest.mark.parametrize(
    ("ref", "radius", "message"),
    [
        ("400", 0, "outside the map"),
        ("12,,13", 0, "malformed node list"),
        ("12;13", 0, "malformed node list"),
        ("5-3", 0, "backwards"),
        ("1", -1, "non-negative"),
        ("[0.1, 0.2]", 0, "not an explicit fingerprint"),
        ("ivo://nowhere?x/y", 0, "not found"),
        ("1); DROP TABLE caomai.fingerprint; --", 0, "malformed node list"),
    ],
)
def test_in_node_bad_references(archive, ref: str, radius: int, message: str) -> None:
    dsn, _ = archive
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        q(dsn, "SELECT in_node(1, %s, %s)", ref, radius)


def test_has_object_node_counts_and_min_count(archive) -> None:
    dsn, p = archive
    d = p["d"].planeid
    # d: 20 of 100 detections sampled -> each sampled object stands for 5 detected ones
    cases = [
        ("101", 1, 1),
        ("101", 20, 1),
        ("101", 21, 0),
        ("101,144", 25, 1),
        ("101,144", 26, 0),
        ("144", 5, 1),
        ("144", 6, 0),
        ("0-99", 1, 0),
        ("300", 75, 1),
    ]
    for nodes, k, want in cases:
        assert q(dsn, "SELECT has_object_node(%s, %s, %s)", d, nodes, k) == [(want,)], (nodes, k)
    assert q(
        dsn,
        "SELECT has_object_node(%s, '101'), caomai_has_object_node(%s, '7', 1)",
        d,
        p["b"].planeid,
    ) == [(1, 1)]
    # an image without fingerprint holds nothing
    assert q(dsn, "SELECT has_object_node('00000000-0000-0000-0000-000000000000', '1')") == [(0,)]
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="min_count"):
        q(dsn, "SELECT has_object_node(%s, '1', -2)", d)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="malformed node list"):
        q(dsn, "SELECT has_object_node(%s, 'galaxies', 1)", d)


def test_functions_follow_the_active_model(archive) -> None:
    """A new Map-1 model beside the old one: references resolve under whichever is active."""
    dsn, p = archive
    with psycopg.connect(dsn) as conn:
        m_new = add_model(conn, "map1", name="map1-new")
        conn.commit()
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="not found"):
        q(dsn, "SELECT fp_similar(fp, %s) FROM caomai.fingerprint", p["a"].publisherid)
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE caomai.model SET active = false WHERE kind = 'map1'")
        conn.execute(
            "UPDATE caomai.model SET active = true WHERE kind = 'map1' AND model_id <> %s", (m_new,)
        )
        conn.commit()
    assert q(
        dsn,
        "SELECT count(*) FROM caomai.fingerprint WHERE fp_similar(fp, %s) > 0.99",
        p["a"].publisherid,
    ) == [(2,)]
