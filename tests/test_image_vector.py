"""The image vector (caomai.fingerprint.image_vec, issue 17): its fixed layout, fp_similar on it
through SQL and through the TAP service, its HNSW index, its TAP_SCHEMA description, and the
access rule. Expected similarities are numpy cosines of the stored vectors."""

from __future__ import annotations

import httpx
import numpy as np
import psycopg
import pytest
import torch
from astropy.io import fits
from pgvector.psycopg import register_vector

from caomai_db import database
from caomai_db.adql.rewrite import translate
from caomai_db.config import IMAGE_VEC_DIM, READER_ROLE, Settings
from caomai_db.tap.service import TapService
from caomai_loaders import encoder, image_vector, register_keywords
from caomai_loaders.detect import DetectParams
from caomai_loaders.load_pipeline import finish_plane
from caomai_loaders.maps import Map1
from caomai_loaders.objects import file_objects
from caomai_loaders.som import SOM

from .factories import add_model, add_plane, counts_at
from .load_helpers import make_archive
from .tapserver import error_message, running_service


def test_layout_is_fixed_and_a_vector_depends_on_its_plane_only() -> None:
    assert image_vector.DIM == IMAGE_VEC_DIM == 400 + len(image_vector.NAMES)
    assert set(image_vector.CENTER) == set(image_vector.SCALE) == set(image_vector.NAMES)
    fp = np.zeros(400)
    fp[[3, 9]] = [0.6, 0.8]
    stats = {n: image_vector.CENTER[n] for n in image_vector.NAMES}
    # every statistic at its centre: the vector is the fingerprint, padded with zeros
    v = image_vector.image_vector(fp, stats)
    assert v.dtype == np.float32 and np.linalg.norm(v) == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(v[:400], fp, atol=1e-6) and not v[400:].any()
    # unknown statistics sit at the centre; a wild one is clipped, never swamps fp
    assert not image_vector.scaled({"log_psf": float("nan")}).any()
    wild = image_vector.image_vector(fp, stats | {"psf_rho4": 1e9})
    i = 400 + image_vector.NAMES.index("psf_rho4")
    assert wild[i] / np.linalg.norm(wild[:400]) == pytest.approx(
        image_vector.CLIP * image_vector.weights()[i - 400], rel=1e-5
    )
    assert image_vector.weights()[i - 400] > 0


def test_statistics_read_sky_depth_and_psf() -> None:
    rng = np.random.default_rng(1)
    n = 300
    columns = {
        "snr": rng.uniform(5, 200, n),
        "m_sigma": np.full(n, 2.0),
        "m_e1": np.full(n, 0.2),
        "m_e2": np.zeros(n),
        "m_rho4": np.full(n, 2.0),
        "flag": np.zeros(n, np.int64),
        "x": rng.uniform(0, 1000, n),
        "y": rng.uniform(0, 1000, n),
        "extension": rng.integers(1, 3, n),
    }
    sky = {"sky_e": 2000.0, "exptime": 200.0, "structure": 0.5, "saturated_share": 0.0}
    s = image_vector.statistics(sky, columns, n_detected=600, pixels=2_000_000)
    assert s["log_sky_e"] == pytest.approx(np.log10(2000))
    # 10 e-/s/px, read against the fixed rate a band without a reference gets
    assert s["log_sky_rate"] == pytest.approx(1.0 - image_vector.SKY_RATE_FALLBACK)
    assert image_vector.statistics(sky, columns, 600, 2_000_000, sky_reference=0.7)[
        "log_sky_rate"
    ] == pytest.approx(0.3)
    assert s["log_density"] == pytest.approx(np.log10(300))
    assert s["log_psf"] == pytest.approx(np.log(2.0))
    assert s["psf_e"] == pytest.approx(0.2) and s["psf_e_coherent"] == pytest.approx(0.2)
    assert s["unmeasured"] == 0.0
    # no star-like object: the PSF figures are unknown (0 on their scale), not made up
    faint = columns | {"snr": np.full(n, 3.0)}
    s = image_vector.statistics(sky, faint, n_detected=600, pixels=2_000_000)
    assert np.isnan(s["log_psf"]) and np.isnan(s["psf_e"])


def test_one_sided_statistics_count_only_past_their_threshold() -> None:
    """A bright moon or a bright band is no fault: a sky rate above the threshold reads 0, a
    clouded one (ten times dimmer than the threshold) reads below it; more saturation than
    a normal field's stars reads above, less reads 0. Two-sided statistics keep both sides."""
    i_rate = image_vector.NAMES.index("log_sky_rate")
    i_sat = image_vector.NAMES.index("saturated_pixels")
    i_psf = image_vector.NAMES.index("log_psf")
    c = image_vector.CENTER
    moon = image_vector.scaled({"log_sky_rate": c["log_sky_rate"] + 2.0})
    clouds = image_vector.scaled({"log_sky_rate": c["log_sky_rate"] - 1.0})
    assert moon[i_rate] == 0.0 and clouds[i_rate] < -1.0
    assert image_vector.scaled({"saturated_pixels": -6.0})[i_sat] == 0.0
    assert image_vector.scaled({"saturated_pixels": -2.0})[i_sat] > 1.0
    assert image_vector.scaled({"log_psf": c["log_psf"] - 1.0})[i_psf] < 0
    assert image_vector.scaled({"log_psf": c["log_psf"] + 1.0})[i_psf] > 0
    # every one-sided statistic is used
    w = image_vector.weights()
    for name in image_vector.ONE_SIDED:
        assert w[image_vector.NAMES.index(name)] > 0


def test_a_clouded_sky_is_read_against_its_bands_usual_sky() -> None:
    """A clear i-band sky is several times brighter per second than a clear g-band one: a
    clouded i exposure (5x dimmer than its band's clear sky) is still brighter than a clear
    g one, so a fixed threshold reads it as clear; against its band's usual sky it reads
    clouded, and a clear g exposure stays clear."""
    rng = np.random.default_rng(3)

    def sky(band: str | None, rate: float) -> dict:
        return {"sky_e": 10**rate * 100.0, "exptime": 100.0, "band": band}

    training = [sky("MegaPrime i.MP9703", 1.0 + d) for d in rng.normal(0, 0.05, 15)]
    training += [sky("MegaPrime i.MP9703", 0.2)] * 3  # clouded nights do not move a median
    training += [sky("MegaPrime g.MP9402", 0.2 + d) for d in rng.normal(0, 0.05, 12)]
    training += [sky("MegaPrime z.MP9801", 1.3)] * 4  # too few to tell a usual sky
    training += [sky(None, 0.5)] * 20 + [{"sky_e": 0.0, "exptime": 100.0, "band": "x"}] * 20
    ref = image_vector.sky_rate_reference(training)
    assert set(ref) == {"MegaPrime i.MP9703", "MegaPrime g.MP9402"}
    assert ref["MegaPrime i.MP9703"] == pytest.approx(1.0, abs=0.05)
    assert ref["MegaPrime g.MP9402"] == pytest.approx(0.2, abs=0.05)

    i_rate = image_vector.NAMES.index("log_sky_rate")
    columns = {
        k: np.zeros(0) for k in ("snr", "m_sigma", "m_e1", "m_e2", "m_rho4", "x", "y", "extension")
    } | {"flag": np.zeros(0, np.int64)}

    def read(s: dict, reference: float | None) -> float:
        stats = image_vector.statistics(s, columns, 0, 1_000_000, sky_reference=reference)
        return float(image_vector.scaled(stats)[i_rate])

    clouded_i = sky("MegaPrime i.MP9703", 0.3)
    assert read(clouded_i, None) == 0.0  # a fixed threshold: as clear as a g-band sky
    assert read(clouded_i, ref["MegaPrime i.MP9703"]) < -0.5
    assert read(sky("MegaPrime g.MP9402", 0.2), ref["MegaPrime g.MP9402"]) == 0.0
    assert read(sky("MegaPrime i.MP9703", 1.1), ref["MegaPrime i.MP9703"]) == 0.0


def test_sky_band_names_camera_and_filter() -> None:
    """The key of a usual sky: instrument and filter; a filter wheel slot number or CLEAR
    names no passband."""
    h = fits.Header({"INSTRUME": "MegaPrime", "FILTER": "r.MP9602"})
    assert register_keywords.sky_band(h) == "MegaPrime r.MP9602"
    assert register_keywords.sky_band(fits.Header({"FILTNAM1": "F814W"})) == "F814W"
    assert register_keywords.sky_band(fits.Header({"INSTRUME": "X", "FILTER": "3"})) is None
    assert register_keywords.sky_band(fits.Header({"FILTER": "Clear"})) is None


def test_double_images_find_a_jump_of_the_telescope() -> None:
    """Every star imaged twice at one offset (a jump during the exposure) against the same
    field imaged once: the share of bright objects at the most common offset goes from a few
    per cent (chance pairs) to about a half (each pair counts once), whatever the offset."""
    rng = np.random.default_rng(3)
    for offset in ((12.0, 5.0), (-30.0, 22.0), (0.0, 7.5)):
        x, y = rng.uniform(0, 1024, (2, 60))
        image = rng.integers(1, 3, 60)
        bright = np.ones(60, bool)
        single = image_vector.double_images(x, y, image, bright)
        x2 = np.concatenate([x, x + offset[0] + rng.normal(0, 0.2, 60)])
        y2 = np.concatenate([y, y + offset[1] + rng.normal(0, 0.2, 60)])
        double = image_vector.double_images(
            x2, y2, np.concatenate([image, image]), np.ones(120, bool)
        )
        assert single < image_vector.CENTER["double_images"] < 0.4 < double
    # pairs on different CCDs are no pairs; faint objects do not count; too few is unknown
    x, y = rng.uniform(0, 1024, (2, 40))
    double = image_vector.double_images(
        np.concatenate([x, x + 12]),
        np.concatenate([y, y]),
        np.repeat([1, 2], 40),
        np.ones(80, bool),
    )
    assert double < image_vector.CENTER["double_images"]
    faint = np.concatenate([np.ones(40, bool), np.zeros(40, bool)])
    assert (
        image_vector.double_images(
            np.concatenate([x, x + 12]), np.concatenate([y, y]), np.ones(80, int), faint
        )
        < image_vector.CENTER["double_images"]
    )
    assert np.isnan(image_vector.double_images(x[:3], y[:3], np.ones(3, int), np.ones(3, bool)))


def _locus_columns(rng: np.random.Generator, star_e1: float) -> dict[str, np.ndarray]:
    """A 2-Mpix exposure's bright objects as the loader measures them: 6 stars (sigma 1.8 px,
    ellipticity ``star_e1``) among more cosmic rays (sharp, elongated, flat-topped) and
    galaxies (larger, every shape), all above the candidates' S/N."""
    stars = dict(
        m_sigma=1.8 * np.exp(rng.normal(0, 0.01, 6)),
        m_e1=star_e1 + rng.normal(0, 0.01, 6),
        m_e2=rng.normal(0, 0.01, 6),
        m_rho4=2.15 + rng.normal(0, 0.02, 6),
    )
    rays = dict(
        m_sigma=rng.uniform(0.95, 1.4, 10),
        m_e1=rng.uniform(-0.95, 0.95, 10),
        m_e2=rng.uniform(-0.3, 0.3, 10),
        m_rho4=rng.uniform(1.45, 1.9, 10),
    )
    galaxies = dict(
        m_sigma=rng.uniform(2.1, 5.0, 15),
        m_e1=rng.uniform(-0.5, 0.5, 15),
        m_e2=rng.uniform(-0.5, 0.5, 15),
        m_rho4=rng.uniform(2.0, 2.4, 15),
    )
    columns = {k: np.concatenate([stars[k], rays[k], galaxies[k]]) for k in stars}
    columns["snr"] = rng.uniform(10, 200, 31)
    columns["flag"] = np.zeros(31, np.int64)
    columns["x"], columns["y"] = rng.uniform(0, 1000, (2, 31))
    columns["extension"] = np.ones(31, np.int32)
    return columns


def test_psf_figures_come_from_the_stellar_locus_not_the_cosmic_rays() -> None:
    """Cosmic rays outnumber the stars and sit below them in size; galaxies above. The PSF
    size and elongation are the stars' (a percentile over every compact object, the first
    version, read the cosmic rays' size here)."""
    rng = np.random.default_rng(7)
    sky = {"sky_e": 2000.0, "exptime": 200.0, "structure": 0.5, "saturated_share": 0.0}
    for star_e1 in (0.0, 0.4):
        columns = _locus_columns(rng, star_e1)
        locus = image_vector.star_locus(
            columns["snr"],
            columns["m_sigma"],
            columns["m_e1"],
            columns["m_e2"],
            columns["m_rho4"],
            np.zeros(31, bool),
        )
        assert locus is not None and set(locus.tolist()) == set(range(6))
        s = image_vector.statistics(sky, columns, n_detected=31, pixels=2_000_000)
        assert s["log_psf"] == pytest.approx(np.log(1.8), abs=0.02)
        assert s["psf_e_coherent"] == pytest.approx(star_e1, abs=0.02)
        assert s["psf_rho4"] == pytest.approx(2.15, abs=0.03)
    # saturated stars are no candidates
    saturated = np.zeros(31, bool)
    saturated[:6] = True
    locus = image_vector.star_locus(
        *(columns[k] for k in ("snr", "m_sigma", "m_e1", "m_e2", "m_rho4")), saturated
    )
    assert locus is not None and not set(locus.tolist()) & set(range(6))
    # two candidates are too few to tell a locus
    assert (
        image_vector.star_locus(
            *(columns[k][:2] for k in ("snr", "m_sigma", "m_e1", "m_e2", "m_rho4")),
            np.zeros(2, bool),
        )
        is None
    )


def _vec(seed: int) -> np.ndarray:
    """A unit image vector with a signed statistics block, as the loader writes them."""
    rng = np.random.default_rng(seed)
    fp = rng.random(400) ** 4
    fp /= np.linalg.norm(fp)
    stats = {
        n: image_vector.CENTER[n] + rng.normal() * image_vector.SCALE[n] for n in image_vector.NAMES
    }
    return image_vector.image_vector(fp, stats)


@pytest.fixture
def archive(db: str):
    """40 public planes with image vectors, one loaded before them (NULL), one proprietary."""
    vectors: dict[str, np.ndarray] = {}
    with psycopg.connect(db) as conn:
        register_vector(conn)
        m1 = add_model(conn, "map1")
        planes = {}
        for i in range(42):
            name = f"p{i:02d}"
            planes[name] = add_plane(
                conn, m1, counts_at({i: 5, i + 50: 3}), name=name, proprietary=(i == 41)
            )
            if i != 40:
                vectors[name] = _vec(i)
                conn.execute(
                    "UPDATE caomai.fingerprint SET image_vec = %s WHERE planeid = %s",
                    (vectors[name], planes[name].planeid),
                )
        conn.commit()
    return db, planes, vectors


def q(dsn: str, sql: str, *params):
    with psycopg.connect(database.with_user(dsn, READER_ROLE)) as conn:
        return conn.execute(sql, params).fetchall()


def cosine(u: np.ndarray, v: np.ndarray) -> float:
    return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))


def test_fp_similar_on_image_vec_is_the_cosine_of_the_stored_vectors(archive) -> None:
    dsn, p, vec = archive
    ref = p["p03"]
    got = dict(
        q(
            dsn,
            "SELECT publisherid, fp_similar(image_vec, %s) FROM caomai.fingerprint"
            " WHERE image_vec IS NOT NULL AND metarelease <= now()",
            ref.publisherid,
        )
    )
    assert len(got) == 40  # p40 has none; p41 is proprietary (TAP hides it: test_through_tap)
    for name, v in vec.items():
        if name != "p41":
            want = max(0.0, cosine(vec["p03"], v))
            assert got[p[name].publisherid] == pytest.approx(want, abs=1e-5), name
    # the same reference on fp resolves to fp: the two columns never mix
    ((sim_fp,),) = q(
        dsn,
        "SELECT fp_similar(fp, %s) FROM caomai.fingerprint WHERE planeid = %s",
        ref.planeuri,
        p["p04"].planeid,
    )
    assert sim_fp == pytest.approx(cosine(ref.counts, p["p04"].counts), abs=1e-6)
    # several references: the mean of their image vectors
    mean = vec["p01"] + vec["p02"]
    ((sim,),) = q(
        dsn,
        "SELECT caomai_fp_similar(image_vec, %s) FROM caomai.fingerprint WHERE planeid = %s",
        f"{p['p01'].publisherid}|{p['p02'].planeid}",
        p["p05"].planeid,
    )
    assert sim == pytest.approx(max(0.0, cosine(mean, vec["p05"])), abs=1e-5)
    # an explicit image vector may hold negative values (it is not a histogram)
    explicit = "[" + ",".join(f"{x:.7g}" for x in vec["p07"]) + "]"
    ((sim,),) = q(
        dsn,
        "SELECT fp_similar(image_vec, %s) FROM caomai.fingerprint WHERE planeid = %s",
        explicit,
        p["p07"].planeid,
    )
    assert (vec["p07"] < 0).any() and sim == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("column", "ref", "message"),
    [
        ("image_vec", "[" + ",".join(["0.1"] * 400) + "]", "416 values, this one has 400"),
        ("fp", "[" + ",".join(["0.1"] * 416) + "]", "400 values, this one has 416"),
        ("image_vec", "[" + ",".join(["0"] * 416) + "]", "all zeros"),
        ("image_vec", "ivo://test.example/TEST?p40/p40p", "has no image vector yet"),
        ("image_vec", "ivo://test.example/TEST?p41/p41p", "not found"),
    ],
)
def test_bad_image_vector_references_are_clear_errors(archive, column, ref, message) -> None:
    dsn, _, _ = archive
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        q(dsn, f"SELECT fp_similar({column}, %s) FROM caomai.fingerprint", ref)


def test_order_by_image_vec_similarity_uses_its_hnsw_index(archive) -> None:
    dsn, p, _ = archive
    svc = TapService(Settings.from_env(dsn), pool_size=1)
    try:
        t = translate(
            "SELECT TOP 5 publisherID FROM caomai.fingerprint AS f"
            f" ORDER BY fp_similar(f.image_vec, '{p['p03'].publisherid}') DESC",
            svc.catalog(),
            1000,
        )
        sql = t.sql("default")
        assert "ref_vector('" in sql and "'image_vec')" in sql, sql
        with svc.pool.connection() as conn:
            # 42 rows: tell the planner scans cost what they would on an archive
            conn.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, prepare=False))
            conn.rollback()
    finally:
        svc.close()
    assert "Index Scan using ix_fingerprint_image_vec_hnsw" in plan, plan
    assert "InitPlan" in plan and "SubPlan" not in plan, plan


def test_through_tap(archive) -> None:
    dsn, p, vec = archive
    ref = p["p03"].publisherid
    with running_service(dsn) as tap:

        def sync(query: str) -> httpx.Response:
            return httpx.post(
                f"{tap}/sync",
                data={"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv"},
                timeout=60,
            )

        # the ten most similar public images, in cosine order of the stored vectors
        r = sync(
            f"SELECT TOP 10 f.publisherID, fp_similar(f.image_vec, '{ref}') AS sim"
            " FROM caomai.fingerprint AS f ORDER BY sim DESC"
        )
        assert r.status_code == 200, r.text
        lines = r.text.strip().splitlines()[1:]
        got = [line.split(",")[0] for line in lines]
        public = {n: v for n, v in vec.items() if n != "p41"}
        want = sorted(public, key=lambda n: -cosine(vec["p03"], public[n]))[:10]
        assert got == [p[n].publisherid for n in want]
        assert p["p41"].publisherid not in r.text
        # a threshold becomes a distance bound on the same column
        r = sync(
            "SELECT COUNT(*) AS n FROM caomai.fingerprint AS f"
            f" WHERE fp_similar(f.image_vec, '{ref}') > 0.5"
        )
        n_want = sum(cosine(vec["p03"], v) > 0.5 for v in public.values())
        assert int(r.text.strip().splitlines()[1]) == n_want
        # a wrong-length explicit vector and an image without one are error VOTables
        bad = "[" + ",".join(["0.1"] * 400) + "]"
        r = sync(f"SELECT TOP 1 fp_similar(f.image_vec, '{bad}') FROM caomai.fingerprint AS f")
        assert "416 values, this one has 400" in error_message(r)
        r = sync(
            "SELECT TOP 1 publisherID FROM caomai.fingerprint AS f"
            f" ORDER BY fp_similar(f.image_vec, '{p['p40'].publisherid}') DESC"
        )
        assert "has no image vector yet" in error_message(r)
        # a proprietary plane is no reference on this column either
        r = sync(
            f"SELECT TOP 1 fp_similar(f.image_vec, '{p['p41'].publisherid}')"
            " FROM caomai.fingerprint AS f"
        )
        assert "not found" in error_message(r)
        # TAP_SCHEMA publishes the column with its description
        r = sync(
            "SELECT datatype, arraysize, description FROM TAP_SCHEMA.columns"
            " WHERE table_name = 'caomai.fingerprint' AND column_name = 'image_vec'"
        )
        assert r.status_code == 200 and "image vector" in r.text and "416" in r.text, r.text


def test_statistics_of_loaded_files_show_seeing_and_tracking(tmp_path) -> None:
    """On the files test_load renders, the PSF statistics the loader measures tell the bad
    seeing (Gaussian sigma 2.8 px against 1.3) and tracking (3.5 x 1.2 px) exposures apart."""
    kinds = make_archive(tmp_path, per_kind=2)
    stats: dict[str, list[dict[str, float]]] = {}
    for name, kind in sorted(kinds.items()):
        fo = file_objects(tmp_path / f"{name}.fits", max_objects=400, preview=False)
        assert fo.sky["exptime"] is None or fo.sky["exptime"] > 0
        s = image_vector.statistics(fo.sky, fo.columns, fo.n_detected, fo.pixels)
        stats.setdefault(kind, []).append(s)
        v = image_vector.image_vector(np.full(400, 0.05), s)
        assert np.isfinite(v).all()

    def mean(kind: str, name: str) -> float:
        return float(np.mean([s[name] for s in stats[kind]]))

    assert mean("seeing", "log_psf") > mean("good", "log_psf") + 0.5, stats
    assert mean("tracking", "psf_e_coherent") > mean("good", "psf_e_coherent") + 0.3, stats
    assert all(s["log_sky_e"] > 0 for ss in stats.values() for s in ss), stats


def test_seeing_is_the_stars_fwhm_in_arcseconds_from_the_wcs() -> None:
    """The same stars read the same seeing on any pixel scale; without a WCS it is unknown.
    One-sided: a good night's PSF reads 0, a wide one counts."""
    rng = np.random.default_rng(5)
    columns = _locus_columns(rng, 0.0)  # stars of sigma 1.8 px
    sky = {"sky_e": 2000.0, "exptime": 200.0, "structure": 0.5, "saturated_share": 0.0}
    for scale in (0.187, 0.05):
        s = image_vector.statistics(
            sky | {"pixel_scale": scale}, columns, n_detected=31, pixels=2_000_000
        )
        assert np.exp(s["seeing"]) == pytest.approx(2.3548 * 1.8 * scale, rel=0.02)
    s = image_vector.statistics(sky, columns, n_detected=31, pixels=2_000_000)
    assert np.isnan(s["seeing"]) and np.isfinite(s["log_psf"])
    # trailed stars (|e| 0.6): sigma sqrt(ab) grows with the trail, the seeing does not
    trailed = _locus_columns(rng, 0.6)
    b = 1.8 * (0.4 / 1.6) ** 0.25
    s = image_vector.statistics(sky | {"pixel_scale": 0.187}, trailed, 31, 2_000_000)
    assert np.exp(s["seeing"]) == pytest.approx(2.3548 * b * 0.187, rel=0.03)
    i = image_vector.NAMES.index("seeing")
    assert image_vector.scaled({"seeing": np.log(0.7)})[i] == 0.0
    assert image_vector.scaled({"seeing": np.log(1.5)})[i] == image_vector.CLIP


def test_a_plane_is_read_against_the_usual_sky_its_map1_knows(tmp_path) -> None:
    """The loader and the upload page (``finish_plane``) read a plane's sky rate against the
    usual sky Map 1 keeps for the plane's camera and filter, and against the fixed rate for a
    band Map 1 has not seen: one plane, three Map 1s that differ only in that table."""
    make_archive(tmp_path, per_kind=1)
    path = sorted(tmp_path.glob("*.fits"))[0]
    fits.setval(path, "FILTER", value="i.MP9703")
    fits.setval(path, "EXPTIME", value=100.0)
    fo = file_objects(path, max_objects=100, preview=False)
    assert fo.sky["band"] == "TESTCAM i.MP9703"
    rate = image_vector.log_sky_rate(fo.sky)
    torch.manual_seed(0)
    net = encoder.Encoder(encoder.EncoderConfig(dim=8, width=4))
    codebook = np.random.default_rng(0).normal(size=(400, 8)).astype(np.float32)
    i_rate = image_vector.DIM - len(image_vector.NAMES) + image_vector.NAMES.index("log_sky_rate")

    def vector(sky_rate: dict[str, float]) -> np.ndarray:
        map1 = Map1(encoder=net, som=SOM(20, 20, codebook), detect=DetectParams())
        map1.sky_rate = sky_rate
        return finish_plane(fo, map1, None, previews=False).image_vec

    unseen = vector({"TESTCAM r": rate})
    assert np.array_equal(unseen, vector({}))  # a band Map 1 has not seen: the fixed rate
    assert vector({"TESTCAM i.MP9703": rate})[i_rate] == 0.0  # as bright as usual
    clouded = vector({"TESTCAM i.MP9703": rate + 1.0})  # ten times dimmer than usual
    assert clouded[i_rate] < 0.0
    fp = finish_plane(
        fo,
        Map1(encoder=net, som=SOM(20, 20, codebook), detect=DetectParams()),
        None,
        previews=False,
    ).fp
    for vec, reference in ((unseen, None), (clouded, rate + 1.0)):
        stats = image_vector.statistics(
            fo.sky, fo.columns, fo.n_detected, fo.pixels, sky_reference=reference
        )
        assert np.allclose(vec, image_vector.image_vector(fp, stats))
