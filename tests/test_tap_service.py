"""The TAP service with real clients (pyvo sync and async, STILTS tapquery and taplint) against
a running ``caomai serve`` over a synthetic archive; answers checked against numpy."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import xml.etree.ElementTree as ET

import httpx
import numpy as np
import psycopg
import pytest
import pyvo

from caomai_db import database
from caomai_db.adql import udfs
from caomai_db.config import Settings
from caomai_loaders import synthetic

from .system import needs, require
from .tapserver import VOT, Truth, error_message, running_service, synthetic_database

N_PLANES = 400


@pytest.fixture(scope="module")
def archive(cluster_dsn: str):
    with synthetic_database(cluster_dsn, N_PLANES, seed=11) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def truth(archive: str) -> Truth:
    return Truth.load(archive)


@pytest.fixture(scope="module")
def tap(archive: str):
    with running_service(archive) as url:
        yield url


@pytest.fixture(scope="module")
def case(truth: Truth):
    """One ADQL query that mixes metadata predicates with all three functions, and its answer."""
    public = np.flatnonzero(~truth.proprietary)
    ref = truth.publisherid[public[3]]
    i = truth.index(ref)
    nodes = [int(n) for n in np.argsort(-truth.counts[i])[:6]]
    cut = synthetic.time_cut(0.7)
    k = 12
    keep = (
        ~truth.proprietary
        & (truth.time_lo < cut)
        & (truth.instrument != "ESPaDOnS")
        & truth.in_node([ref], 3)
        & truth.has_object_node(nodes, 4)
    )
    sim = truth.similarity([ref])
    order = [j for j in np.argsort(-sim) if keep[j]]
    assert k < len(order) < 0.6 * N_PLANES, "the filters must keep some rows and drop others"
    node_list = ",".join(map(str, nodes))
    adql = (
        f"SELECT TOP {k} p.publisherID, o.instrument_name, f.map2_node,"
        f" fp_similar(f.fp, '{ref}') AS sim"
        " FROM caom2.Plane AS p JOIN caom2.Observation AS o ON o.obsID = p.obsID"
        " JOIN caomai.fingerprint AS f ON f.planeID = p.planeID"
        f" WHERE p.time_bounds_lower < {cut} AND o.instrument_name <> 'ESPaDOnS'"
        f" AND in_node(f.map2_node, '{ref}', 3) = 1"
        f" AND has_object_node(p.planeID, '{node_list}', 4) = 1"
        " ORDER BY sim DESC"
    )
    return adql, list(truth.publisherid[order[:k]]), sim[order[:k]], sim[order[k]]


def check(ids: list[str], sims: list[float], case) -> None:  # noqa: ANN001
    _, want_ids, want_sims, next_sim = case
    np.testing.assert_allclose(sims, want_sims, atol=1e-5)
    if want_sims[-1] - next_sim > 1e-5:  # no tie at the edge: the same images, same order
        assert ids == want_ids


def test_pyvo_sync_combines_metadata_and_the_three_functions(tap: str, case) -> None:
    result = pyvo.dal.TAPService(tap).run_sync(case[0])
    table = result.to_table()
    assert len(table) == len(case[1])
    check([str(x) for x in table["publisherID"]], list(table["sim"]), case)
    assert result.getdesc("publisherID").ucd  # metadata from TAP_SCHEMA
    assert result.getdesc("sim").datatype == "double"


def test_pyvo_async_gives_the_same_answer(tap: str, case) -> None:
    job = pyvo.dal.TAPService(tap).submit_job(case[0])
    job.run()
    job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
    assert job.phase == "COMPLETED", job.phase
    table = job.fetch_result().to_table()
    check([str(x) for x in table["publisherID"]], list(table["sim"]), case)
    job.delete()


@needs(shutil.which("stilts") is not None, "stilts")
def test_stilts_tapquery_gives_the_same_answer(tap: str, case) -> None:
    require(shutil.which("stilts") is not None, "stilts")
    out = subprocess.run(
        ["stilts", "tapquery", f"tapurl={tap}", f"adql={case[0]}", "ofmt=csv", "out=-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    check([r["publisherID"] for r in rows], [float(r["sim"]) for r in rows], case)


def test_similarity_threshold_and_prefixed_names(tap: str, truth: Truth) -> None:
    ref = truth.publisherid[np.flatnonzero(~truth.proprietary)[10]]
    sim = truth.similarity([ref])
    want = int(((sim > 0.6) & ~truth.proprietary).sum())
    q = (
        "SELECT COUNT(*) AS n FROM caomai.fingerprint AS f"
        f" WHERE caomai_fp_similar(f.fp, '{ref}') > 0.6"
    )
    got = pyvo.dal.TAPService(tap).run_sync(q).to_table()["n"][0]
    assert got == want and 1 < want < N_PLANES
    # several references: their mean fingerprint; in_node radius as a value in the select list
    refs = list(truth.publisherid[np.flatnonzero(~truth.proprietary)[[1, 2]]])
    q = (
        "SELECT TOP 5 f.publisherID, caomai_in_node(f.map2_node, '" + "|".join(refs) + "', 1)"
        " AS near, fp_similar(f.fp, '" + "|".join(refs) + "') AS s FROM caomai.fingerprint AS f"
        " ORDER BY 3 DESC"
    )
    table = pyvo.dal.TAPService(tap).run_sync(q).to_table()
    sim = truth.similarity(refs)
    idx = [truth.index(str(p)) for p in table["publisherID"]]
    np.testing.assert_allclose(list(table["s"]), sim[idx], atol=1e-5)
    assert list(table["near"]) == [int(x) for x in truth.in_node(refs, 1)[idx]]


def test_proprietary_planes_are_invisible(tap: str, truth: Truth) -> None:
    assert truth.proprietary.any()
    svc = pyvo.dal.TAPService(tap)
    n = svc.run_sync("SELECT COUNT(*) AS n FROM caom2.Plane").to_table()["n"][0]
    assert n == int((~truth.proprietary).sum())
    n = svc.run_sync("SELECT COUNT(*) AS n FROM ivoa.ObsCore").to_table()["n"][0]
    assert n == int((~truth.proprietary).sum())
    secret = truth.publisherid[np.flatnonzero(truth.proprietary)[0]]
    reply = sync(
        tap,
        f"SELECT TOP 3 publisherID FROM caomai.fingerprint WHERE fp_similar(fp, '{secret}') > 0",
    )
    assert reply.status_code == 400 and "not found" in error_message(reply)
    # nor as an answer: top-k over everything returns public planes only
    ref = truth.publisherid[np.flatnonzero(~truth.proprietary)[0]]
    t = svc.run_sync(
        f"SELECT TOP {N_PLANES} publisherID FROM caomai.fingerprint"
        f" ORDER BY fp_similar(fp, '{ref}') DESC"
    ).to_table()
    assert set(map(str, t["publisherID"])) == set(truth.publisherid[~truth.proprietary])


def test_maxrec_overflow_is_signalled(tap: str) -> None:
    reply = sync(tap, "SELECT publisherID FROM caom2.Plane", MAXREC="3")
    assert reply.status_code == 200
    root = ET.fromstring(reply.content)
    assert len(root.findall(f".//{VOT}TR")) == 3
    statuses = [i.get("value") for i in root.iter(f"{VOT}INFO") if i.get("name") == "QUERY_STATUS"]
    assert statuses == ["OK", "OVERFLOW"]
    csv_reply = sync(
        tap, "SELECT TOP 2 publisherID, time_bounds_lower FROM caom2.Plane", RESPONSEFORMAT="csv"
    )
    assert csv_reply.text.splitlines()[0] == "publisherID,time_bounds_lower"
    assert len(csv_reply.text.splitlines()) == 3


def test_capabilities_advertise_the_functions(tap: str) -> None:
    root = ET.fromstring(httpx.get(f"{tap}/capabilities").content)
    forms = [
        f.findtext("form")
        for lf in root.iter("languageFeatures")
        if lf.get("type") == "ivo://ivoa.net/std/TAPRegExt#features-udf"
        for f in lf.iter("feature")
    ]
    want = [s for u in udfs.UDFS for name in u.names for s in u.signatures(name)]
    assert sorted(forms) == sorted(want)
    versions = [v.get("ivo-id") for v in root.iter("version")]
    assert "ivo://ivoa.net/std/ADQL#v2.0" in versions and "ivo://ivoa.net/std/ADQL#v2.1" in versions


def sync(tap: str, query: str, **params: str) -> httpx.Response:
    return httpx.post(f"{tap}/sync", data={"LANG": "ADQL", "QUERY": query, **params}, timeout=60)


BAD = [
    ("SELEC TOP 1 * FROM caom2.Plane", "syntax error"),
    ("SELECT TOP 1 * FROM caom2.Plane WHERE", "ends too early"),
    ("SELECT TOP 1 publisherid_x FROM caom2.Plane", "publisherid_x"),
    ("SELECT TOP 1 * FROM caom2.Planes", "did you mean caom2.Plane"),
    ("SELECT TOP 1 fp_simliar(fp, 'x') FROM caomai.fingerprint", "did you mean fp_similar"),
    ("SELECT TOP 1 pg_sleep(1) FROM caom2.Plane", "unknown function pg_sleep"),
    ("SELECT TOP 1 fp_similar(fp, 42) FROM caomai.fingerprint", "must be a string"),
    ("SELECT TOP 1 fp_similar(map2_node, 'x') FROM caomai.fingerprint", "fingerprint column"),
    (
        "SELECT TOP 1 * FROM caomai.fingerprint WHERE in_node(map2_node, '1,2', 'x') = 1",
        "whole number",
    ),
    ("SELECT TOP 1 * FROM caomai.fingerprint WHERE in_node(map2_node) = 1", "arguments"),
    (
        "SELECT TOP 1 * FROM caomai.fingerprint WHERE in_node(map2_node, '1,999') = 1",
        "outside the map",
    ),
    (
        "SELECT TOP 1 * FROM caom2.Plane AS p WHERE has_object_node(p.planeID, 'a,b') = 1",
        "malformed node list",
    ),
    (
        "SELECT TOP 1 * FROM caomai.fingerprint ORDER BY fp_similar(fp, 'ivo://nowhere/none?x') DESC",
        "not found",
    ),
    (
        "SELECT TOP 1 * FROM caomai.fingerprint WHERE fp_similar(fp, 'x''); DROP TABLE caom2.plane; --') > 0.5",
        "not found",
    ),
    ("SELECT TOP 1 * FROM caomai.fingerprint WHERE fp_similar(fp, '[1, 2') > 0.5", "fingerprint"),
    ("DELETE FROM caom2.Plane", "syntax error"),
    ("SELECT * FROM caom2.Plane; DROP TABLE caom2.Plane", "one query per request"),
    ("DROP TABLE caom2.Plane", "syntax error"),
    ("SELECT * INTO caom2.copy FROM caom2.Plane", "syntax error"),
    ("SELECT TOP 1 * FROM caomai.load_queue", "not published"),
    ("SELECT TOP 1 * FROM pg_catalog.pg_authid", "not published"),
    ("SELECT TOP 1 * FROM caomai_uws.job", "not published"),
    ("SELECT TOP 1 POINT('ICRS', 1, exec('import os')) FROM caom2.Plane", "exec"),
]


@pytest.mark.parametrize(("query", "message"), BAD, ids=[b[0][:40] for b in BAD])
def test_bad_input_is_a_clear_votable_error(tap: str, query: str, message: str) -> None:
    reply = sync(tap, query)
    assert reply.status_code == 400, reply.text
    assert "votable" in reply.headers["content-type"]
    text = error_message(reply)
    assert message.lower() in text.lower(), text
    assert "Traceback" not in text and "internal error" not in text


def test_bad_input_changed_nothing(tap: str, archive: str, truth: Truth) -> None:
    for query, _ in BAD:
        sync(tap, query)
    with psycopg.connect(archive) as conn:
        n = conn.execute("SELECT count(*) FROM caom2.plane").fetchone()[0]
        fps = conn.execute("SELECT count(*) FROM caomai.fingerprint").fetchone()[0]
        copy = conn.execute("SELECT to_regclass('caom2.copy')").fetchone()[0]
    assert n == fps == len(truth.publisherid) and copy is None


def test_parameter_errors(tap: str) -> None:
    assert "LANG=SQL" in error_message(sync(tap, "SELECT 1", LANG="SQL"))
    assert "MAXREC" in error_message(sync(tap, "SELECT TOP 1 * FROM caom2.Plane", MAXREC="x"))
    r = httpx.post(f"{tap}/sync", data={"LANG": "ADQL"})
    assert r.status_code == 400 and "QUERY" in error_message(r)


def test_async_jobs_live_in_the_database_and_survive_a_restart(archive: str, truth: Truth) -> None:
    """A job created on one service is found, run and deleted by the next one."""
    q = "SELECT COUNT(*) AS n FROM caom2.Plane"
    with running_service(archive) as url:
        r = httpx.post(f"{url}/async", data={"LANG": "ADQL", "QUERY": q}, follow_redirects=False)
        assert r.status_code == 303
        job_url = r.headers["location"]
        job_id = job_url.rsplit("/", 1)[1]
        assert httpx.get(f"{job_url}/phase").text == "PENDING"
    with running_service(archive) as url:
        job_url = f"{url}/async/{job_id}"
        assert httpx.get(f"{job_url}/phase").text == "PENDING"
        assert int(httpx.get(f"{job_url}/executionduration").text) > 0
        assert httpx.get(f"{job_url}/destruction").text.endswith("Z")
        httpx.post(f"{job_url}/phase", data={"PHASE": "RUN"})
        xml = httpx.get(f"{job_url}?WAIT=30&PHASE=QUEUED").text
        for _ in range(60):
            if httpx.get(f"{job_url}/phase").text in ("COMPLETED", "ERROR"):
                break
            xml = httpx.get(f"{job_url}?WAIT=1").text
        assert httpx.get(f"{job_url}/phase").text == "COMPLETED", xml
        body = httpx.get(f"{job_url}/results/result").content
        assert f"<TD>{int((~truth.proprietary).sum())}</TD>".encode() in body
        # an error job: the error document says why
        r = httpx.post(
            f"{url}/async",
            data={"LANG": "ADQL", "QUERY": "SELECT nope FROM caom2.Plane", "PHASE": "RUN"},
        )
        err_url = r.headers["location"]
        for _ in range(60):
            if httpx.get(f"{err_url}/phase").text == "ERROR":
                break
            httpx.get(f"{err_url}?WAIT=1")
        assert "nope" in error_message(httpx.get(f"{err_url}/error"))
        assert httpx.delete(job_url).status_code in (200, 303)
        assert httpx.get(f"{job_url}/phase").status_code == 404


@needs(shutil.which("stilts") is not None, "stilts")
def test_taplint_reports_no_errors(tap: str) -> None:
    require(shutil.which("stilts") is not None, "stilts")
    out = subprocess.run(
        ["stilts", "taplint", f"tapurl={tap}", "report=EW", "maxrepeat=3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    totals = [line for line in out.stdout.splitlines() if line.startswith("Totals:")]
    assert totals, out.stdout[-2000:] + out.stderr[-2000:]
    errors = [line for line in out.stdout.splitlines() if line.startswith("E-")]
    assert "Errors: 0;" in totals[0], "\n".join(errors)


# -- ADQL geometry on the embedded database (no pg_sphere) ---------------------------------------


@pytest.fixture(scope="module")
def sky(archive: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """obs_publisher_did, s_ra, s_dec of the public ObsCore rows (read as the administrator)."""
    with psycopg.connect(archive) as conn:
        rows = conn.execute(
            "SELECT publisherid, position_bounds_center[1], position_bounds_center[2]"
            " FROM caom2.plane WHERE metarelease <= now()"
        ).fetchall()
    ids, ra, dec = zip(*rows, strict=True)
    return np.array(ids), np.array(ra, dtype=float), np.array(dec, dtype=float)


def separation(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> np.ndarray:
    """Great-circle distance in degrees (numpy, haversine)."""
    r, d, r0, d0 = map(np.radians, (ra, dec, ra0, dec0))
    h = np.sin((d - d0) / 2) ** 2 + np.cos(d) * np.cos(d0) * np.sin((r - r0) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(h)))


def test_contains_point_in_circle_and_distance(tap: str, sky) -> None:
    ids, ra, dec = sky
    ra0, dec0, radius = 150.0, 20.0, 40.0
    sep = separation(ra, dec, ra0, dec0)
    t = (
        pyvo.dal.TAPService(tap)
        .run_sync(
            "SELECT obs_publisher_did, DISTANCE(POINT('ICRS', s_ra, s_dec),"
            f" POINT('ICRS', {ra0}, {dec0})) AS d FROM ivoa.ObsCore WHERE"
            f" CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {ra0}, {dec0}, {radius})) = 1"
        )
        .to_table()
    )
    assert set(map(str, t["obs_publisher_did"])) == set(ids[sep < radius])
    assert 10 < len(t) < len(ids)
    got = dict(zip(map(str, t["obs_publisher_did"]), t["d"], strict=True))
    np.testing.assert_allclose([got[i] for i in ids[sep < radius]], sep[sep < radius], atol=1e-7)


def test_box_polygon_intersects_and_coords(tap: str, sky) -> None:
    ids, ra, dec = sky
    svc = pyvo.dal.TAPService(tap)
    # a polygon well away from the poles, compared with numpy away from its edges
    # (edges are great circles: the northern one bulges to dec 31.6 between the vertices)
    poly = "POLYGON('ICRS', 130.0, 0.0, 170.0, 0.0, 170.0, 30.0, 130.0, 30.0)"
    t = svc.run_sync(
        f"SELECT obs_publisher_did FROM ivoa.ObsCore WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), {poly}) = 1"
    ).to_table()
    got = set(map(str, t["obs_publisher_did"]))
    inside = (ra > 131) & (ra < 169) & (dec > 1) & (dec < 29)
    outside = (ra < 129) | (ra > 171) | (dec < -1) | (dec > 33)
    assert set(ids[inside]) <= got and not (set(ids[outside]) & got) and inside.sum() > 5
    # BOX: centre and full widths
    t = svc.run_sync(
        "SELECT obs_publisher_did FROM ivoa.ObsCore WHERE"
        " CONTAINS(POINT('ICRS', s_ra, s_dec), BOX('ICRS', 150.0, 15.0, 40.0, 30.0)) = 1"
    ).to_table()
    got = set(map(str, t["obs_publisher_did"]))
    assert set(ids[inside]) <= got and not (set(ids[outside]) & got)
    # footprints (s_region polygons, ~1 deg) that touch a circle
    ra0, dec0, r = 200.0, 10.0, 30.0
    sep = separation(ra, dec, ra0, dec0)
    t = svc.run_sync(
        "SELECT obs_publisher_did FROM ivoa.ObsCore WHERE"
        f" INTERSECTS(s_region, CIRCLE('ICRS', {ra0}, {dec0}, {r})) = 1"
    ).to_table()
    got = set(map(str, t["obs_publisher_did"]))
    assert set(ids[sep < r]) <= got and not (set(ids[sep > r + 1.5]) & got)
    # COORD1/COORD2 of a point
    t = svc.run_sync(
        "SELECT TOP 5 obs_publisher_did, COORD1(POINT('ICRS', s_ra, s_dec)) AS a,"
        " COORD2(POINT('ICRS', s_ra, s_dec)) AS b FROM ivoa.ObsCore"
    ).to_table()
    where = {p: i for i, p in enumerate(ids)}
    idx = [where[str(p)] for p in t["obs_publisher_did"]]
    np.testing.assert_allclose(list(t["a"]), ra[idx]) and np.testing.assert_allclose(
        list(t["b"]), dec[idx]
    )


def test_statement_timeout_and_the_read_only_role(archive: str) -> None:
    slow = (
        "SELECT COUNT(*) AS n FROM caom2.Plane AS a, caom2.Plane AS b, caom2.Plane AS c,"
        " caom2.Plane AS d"
    )
    with running_service(archive, query_timeout_s=1) as url:
        reply = sync(url, slow)
    assert reply.status_code == 400
    assert "cancelled after the 1 s limit" in error_message(reply)
    # the role queries run as cannot write, even past the translator
    reader = database.reader_dsn(Settings.from_env(archive), archive)
    with psycopg.connect(reader) as conn:
        with pytest.raises(psycopg.Error):
            conn.execute("DELETE FROM caom2.plane")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM caomai.load_queue")


@pytest.mark.parametrize("fmt", ["votable/b2", "votable/b", "votable"])
def test_votable_serializations_carry_the_same_values(tap: str, truth: Truth, fmt: str) -> None:
    from astropy.io.votable import parse_single_table

    q = "SELECT TOP 3 publisherID, fp, counts, n_detected, map2_distance FROM caomai.fingerprint ORDER BY publisherID"
    reply = sync(tap, q, RESPONSEFORMAT=fmt)
    assert reply.status_code == 200, reply.text
    if fmt != "votable":
        assert b"BINARY" in reply.content
    table = parse_single_table(io.BytesIO(reply.content)).to_table()
    for row in table:
        i = truth.index(str(row["publisherID"]))
        c = truth.counts[i]
        np.testing.assert_allclose(
            np.asarray(row["fp"], dtype=float), truth.unit_fingerprints[i], atol=1e-6
        )
        assert list(np.asarray(row["counts"])) == list(c.astype(int))
        assert row["n_detected"] == truth.n_detected[i]
