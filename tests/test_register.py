"""`caomai register`: CAOM2 rows that match the files, for simulated and real archives."""

from __future__ import annotations

import csv
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from caomai_db import cli
from caomai_loaders.register import footprint, is_proprietary, register_paths
from caomai_loaders.selection import select_planes

from .realframes import real_frames
from .simarchive import SMALL, archive


@pytest.fixture(scope="module")
def small() -> Path:
    return archive("small", **SMALL)


def fetch(dsn: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchall()


def test_rows_match_the_simulated_files(db: str, small: Path) -> None:
    # both registrations count the proprietary releases from one day (a run across midnight
    # moved them by a day between the two)
    today = datetime.now(UTC)
    report = register_paths(
        db, [small / "images"], collection="CAOMAISIM", proprietary_fraction=0.25, today=today
    )
    assert report.ok and len(report.registered) == 24
    with open(small / "truth" / "exposures.csv", newline="") as fh:
        truth = {r["exposure_id"]: r for r in csv.DictReader(fh)}
    rows = fetch(
        db,
        "SELECT o.observationid, o.collection, o.instrument_name, o.telescope_name, o.type,"
        " o.intent, p.productid, p.planeuri, p.publisherid, p.energy_bandpassname,"
        " p.energy_bounds_lower, p.energy_bounds_upper, p.time_bounds_lower,"
        " p.time_bounds_upper, p.time_exposure, p.position_bounds, p.position_bounds_center,"
        " p.position_samplesize, p.calibrationlevel, p.dataproducttype, p.metarelease,"
        " p.metarelease > now(), a.uri, a.contentlength, a.contentchecksum, a.producttype,"
        " a.contenttype, p.position_bounds_area"
        " FROM caom2.observation o JOIN caom2.plane p USING (obsid)"
        " JOIN caom2.artifact a USING (planeid) ORDER BY 1",
    )
    assert [r[0] for r in rows] == sorted(truth)
    n_proprietary = 0
    for r in rows:
        (oid, coll, inst, tel, typ, intent, prod, puri, pid, band, elo, ehi, t0, t1, texp,
         poly, centre, sample, level, dpt, release, proprietary, uri, length, checksum,
         ptype, ctype, area) = r  # fmt: skip
        t = truth[oid]
        path = small / t["file"]
        assert (coll, inst, tel, typ, intent) == (
            "CAOMAISIM",
            "MegaPrime",
            "CFHT 3.6m",
            "OBJECT",
            "science",
        )
        assert prod == oid + "p" and puri == f"caom:CAOMAISIM/{oid}/{oid}p"
        assert pid == f"ivo://caomai.example/CAOMAISIM?{oid}/{oid}p"
        assert band == t["filter"] and elo < ehi and 3e-7 < elo < 1.1e-6
        assert t0 == pytest.approx(float(t["mjd_obs"]), abs=1e-7)
        assert (t1 - t0) * 86400 == pytest.approx(float(t["exptime"]), rel=1e-6)
        assert texp == pytest.approx(float(t["exptime"]))
        assert (level, dpt, ptype, ctype) == (2, "image", "science", "application/fits")
        assert uri == path.resolve().as_uri()
        assert length == path.stat().st_size
        assert checksum == "md5:" + hashlib.md5(path.read_bytes()).hexdigest()
        assert sample == pytest.approx(0.187, rel=1e-3)
        # the polygon is the outline of the CCDs: its vertices are CCD corners (the outer
        # ones), and every CCD corner lies inside it or on its edge
        vx, vy = np.array(poly[0::2]), np.array(poly[1::2])
        corners = []
        with fits.open(path) as hdul:
            for ext in hdul[1:]:
                w = WCS(ext.header)
                ny, nx = ext.data.shape
                ra, dec = w.all_pix2world(
                    [-0.5, nx - 0.5, nx - 0.5, -0.5], [-0.5, -0.5, ny - 0.5, ny - 0.5], 0
                )
                corners += list(zip(ra, dec, strict=True))
        assert len(vx) == 4  # two CCDs one above the other: a rectangle
        for a, d in zip(vx, vy, strict=True):
            assert (
                min(np.hypot((a - ca) * np.cos(np.radians(d)), d - cd) for ca, cd in corners) < 1e-6
            )
        cosd = np.cos(np.radians(float(t["dec"])))
        for a, d in corners:
            ex, ey = (np.roll(vx, -1) - vx) * cosd, np.roll(vy, -1) - vy
            px, py = (a - vx) * cosd, d - vy
            # inside a polygon counter-clockwise seen from inside the sphere (east left):
            # every cross product is <= 0 in (ra, dec) axes
            assert np.all(ex * py - ey * px <= 1e-9)
        assert centre[0] == pytest.approx(float(t["ra"]), abs=2e-4)
        assert centre[1] == pytest.approx(float(t["dec"]), abs=2e-4)
        # two 512-pixel CCDs with a 100-pixel gap
        assert area == pytest.approx(512 * 1124 * (0.187 / 3600) ** 2, rel=0.01)
        assert proprietary == is_proprietary(f"caom:CAOMAISIM/{oid}", 0.25)
        n_proprietary += proprietary
        if not proprietary:
            assert (
                abs(
                    (
                        release
                        - (
                            np.datetime64("1858-11-17") + np.timedelta64(int(t0 * 86400e6), "us")
                        ).astype(object)
                    ).total_seconds()
                )
                < 1
            )
    assert 0 < n_proprietary < 24

    # idempotent: again, the same rows
    before = fetch(db, "SELECT planeid, obsid, metarelease FROM caom2.plane ORDER BY 1")
    again = register_paths(
        db, [small / "images"], collection="CAOMAISIM", proprietary_fraction=0.25, today=today
    )
    assert again.ok
    assert fetch(db, "SELECT planeid, obsid, metarelease FROM caom2.plane ORDER BY 1") == before
    assert fetch(db, "SELECT count(*) FROM caom2.artifact")[0][0] == 24
    # ObsCore sees them (public ones) as CADC's would
    n = fetch(db, "SELECT count(*) FROM ivoa.obscore WHERE obs_collection = 'CAOMAISIM'")[0][0]
    assert n == 24


def test_real_frames_get_rows_or_a_clear_error(db: str, tmp_path: Path) -> None:
    frames = real_frames()
    broken = tmp_path / "broken.fits"
    broken.write_bytes(frames["a370II"].read_bytes()[: 2880 * 3])
    report = register_paths(db, [*frames.values(), broken])
    by_name = {r.path.name: r for r in report.results}
    assert not report.ok
    assert [r.path.name for r in report.failed] == ["broken.fits"]
    assert "broken.fits" in report.failed[0].error
    rows = {
        r[0]: r[1:]
        for r in fetch(
            db,
            "SELECT o.observationid, o.collection, o.instrument_name, p.energy_bandpassname,"
            " p.time_bounds_lower, p.position_bounds_center, a.contenttype, p.calibrationlevel"
            " FROM caom2.observation o JOIN caom2.plane p USING (obsid)"
            " JOIN caom2.artifact a USING (planeid)",
        )
    }
    assert len(rows) == len(frames)
    # FOCAM at CFHT: EXPNUM is the observation id, the telescope comes from the instrument
    coll, inst, band, t0, centre, ctype, level = rows["133200"]
    assert (coll, inst, ctype, level) == ("CFHT", "focam", "application/fits", 2)
    assert centre[0] == pytest.approx(39.97, abs=0.2) and centre[1] == pytest.approx(-1.57, abs=0.2)
    assert any("TELESCOP" in w for w in by_name["a370II.fits"].warnings)
    # HST WFPC2: FILTNAM1, DATE-OBS + TIME-OBS
    coll, inst, band, t0, centre, *_ = rows["a478hst-cutout"]
    assert (coll, inst, band) == ("HST", "WFPC2", "F814W")
    assert t0 == pytest.approx(51408.8862, abs=1e-3)
    # compressed copies: the same sky
    c1, c2 = rows["m13"][4], rows["m13_rice"][4]
    assert c1 == pytest.approx(c2, abs=1e-6)
    # B1950 SIN projection ends up in ICRS
    assert rows["comp"][4] is not None
    # a JPEG: registered, no position, a raster content type
    coll, inst, band, t0, centre, ctype, level = rows["hubble_deep_field"]
    assert centre is None and ctype == "image/jpeg" and level == 1
    assert any("position left empty" in w for w in by_name["hubble_deep_field.jpg"].warnings)


def test_cli_exit_status_says_some_failed(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    good = tmp_path / "ok.fits"
    fits.HDUList([fits.PrimaryHDU(np.ones((64, 64), np.float32))]).writeto(good)
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"not a FITS file" * 300)
    assert cli.main(["--dsn", db, "register", "-q", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "registered 1 file(s), 1 failed" in err and "bad.fits" in err
    assert "no TELESCOP" in err
    assert cli.main(["--dsn", db, "register", "-q", str(good)]) == 0
    assert cli.main(["--dsn", db, "register", "-q", str(tmp_path / "empty-dir-xyz")]) == 1
    (tmp_path / "nothing").mkdir()
    assert cli.main(["--dsn", db, "register", "-q", str(tmp_path / "nothing")]) == 2


def test_footprint_of_a_square_field() -> None:
    ra = np.array([10.0, 10.1, 10.1, 10.0])
    dec = np.array([0.0, 0.0, 0.1, 0.1])
    fp = footprint(ra, dec)
    assert len(fp.polygon) == 8
    assert fp.centre == pytest.approx((10.05, 0.05), abs=1e-6)
    assert fp.area == pytest.approx(0.01, rel=1e-3)
    assert fp.size == pytest.approx(0.1 * np.sqrt(2), rel=1e-3)
    # counter-clockwise seen from inside the sphere (east to the left): signed area in
    # (ra, dec) with ra increasing to the right is negative
    x, y = np.array(fp.polygon[0::2]), np.array(fp.polygon[1::2])
    assert (x * np.roll(y, -1) - np.roll(x, -1) * y).sum() < 0


def test_header_poor_files_get_defaults_and_say_so(db: str, tmp_path: Path) -> None:
    # an image and nothing else: every default, and a warning for each
    bare = tmp_path / "night42.fits"
    fits.HDUList([fits.PrimaryHDU(np.zeros((80, 120), np.int16))]).writeto(bare)
    # a header with an exposure number, an old DD/MM/YY date, a numeric FILTER (a wheel
    # position, not a band) and a WCS without a celestial part
    odd = tmp_path / "odd.fits"
    h = fits.Header()
    h["EXPNUM"] = 700123
    h["INSTRUME"] = "MegaPrime"
    h["DATE-OBS"] = "21/03/98"
    h["TIME-OBS"] = "10:15:00"
    h["EXPTIME"] = 120.0
    h["FILTER"] = "3"
    h["CTYPE1"], h["CTYPE2"] = "LINEAR", "LINEAR"
    fits.HDUList([fits.PrimaryHDU(np.zeros((64, 64), np.float32), header=h)]).writeto(odd)
    # a file with only a table: nothing to register, and the reason
    table = tmp_path / "catalogue.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("x", "E", array=[1.0])])]
    ).writeto(table)
    report = register_paths(db, [tmp_path])
    by_name = {r.path.name: r for r in report.results}
    assert not by_name["catalogue.fits"].ok
    assert "no 2-D image" in by_name["catalogue.fits"].error
    warns = " | ".join(by_name["night42.fits"].warnings)
    for what in ("TELESCOP", "INSTRUME", "DATE-OBS", "EXPTIME", "FILTER", "position left empty"):
        assert what in warns, what
    warns = " | ".join(by_name["odd.fits"].warnings)
    assert "'CFHT 3.6m' assumed from INSTRUME" in warns and "position left empty" in warns
    assert "DATE-OBS" not in warns and "EXPTIME" not in warns
    rows = {
        r[0]: r[1:]
        for r in fetch(
            db,
            "SELECT o.observationid, o.collection, p.productid, p.energy_bandpassname,"
            " p.time_bounds_lower, p.time_exposure, p.position_bounds, p.calibrationlevel,"
            " p.position_dimension_naxis1, p.position_dimension_naxis2, p.metarelease"
            " FROM caom2.observation o JOIN caom2.plane p USING (obsid)",
        )
    }
    assert set(rows) == {"night42", "700123"}
    coll, prod, band, t0, texp, poly, level, nx, ny, release = rows["night42"]
    assert (coll, prod, band, t0, texp, poly, level, nx, ny) == (
        "UNKNOWN",
        "night42p",
        None,
        None,
        None,
        None,
        1,
        120,
        80,
    )
    assert release is not None  # released as of the registration: public, not lost
    coll, prod, band, t0, texp, *_ = rows["700123"]
    assert (coll, prod, band, texp) == ("CFHT", "700123p", None, 120.0)
    assert t0 == pytest.approx(50893.427083, abs=1e-5)  # 1998-03-21T10:15:00


def test_simulate_register_from_the_command_line(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "sim"
    args = ["--dsn", db, "simulate", "--out", str(out), "--exposures", "3", "--seed", "42"]
    args += ["--ccds", "2", "--ccd-size", "128x96", "--workers", "1", "--register", "-q"]
    assert cli.main(args) == 0
    assert "registered 3 file(s), 0 failed" in capsys.readouterr().out
    rows = fetch(
        db,
        "SELECT o.observationid, o.collection, p.position_dimension_naxis1,"
        " p.position_dimension_naxis2, a.uri FROM caom2.observation o"
        " JOIN caom2.plane p USING (obsid) JOIN caom2.artifact a USING (planeid) ORDER BY 1",
    )
    assert [r[0] for r in rows] == ["sim0042-00000", "sim0042-00001", "sim0042-00002"]
    for oid, coll, nx, ny, uri in rows:
        assert coll == "CAOMAISIM"
        # two 128x96 CCDs, one above the other with MegaCam's 100-pixel gap between rows
        assert (nx, ny) == (128, 96 + 100 + 96)
        assert uri == (out / "images" / f"{oid}.fits").resolve().as_uri()
    # `caomai register` of the same directory changes nothing
    assert cli.main(["--dsn", db, "register", "-q", "--collection", "CAOMAISIM", str(out)]) == 0
    assert fetch(db, "SELECT count(*) FROM caom2.plane")[0][0] == 3
    # bad arguments are refused with the reason
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--out", str(out), "--exposures", "1", "--ccd-size", "big"])
    assert "expected WIDTHxHEIGHT" in capsys.readouterr().err


def test_a_registered_directory_selects_its_files(db: str, tmp_path: Path) -> None:
    # `caomai load --files DIR` / `caomai train ... --files DIR` take what `register DIR` took
    images = tmp_path / "night"
    (images / "ccd").mkdir(parents=True)
    names = [images / "a.fits", images / "ccd" / "b.fits"]
    for i, path in enumerate(names):
        fits.HDUList([fits.PrimaryHDU(np.full((64, 64), i, np.float32))]).writeto(path)
    (images / "notes.txt").write_text("not an image")
    with psycopg.connect(db) as conn:
        with pytest.raises(ValueError, match="2 file\\(s\\) are not registered"):
            select_planes(conn, files=[str(images)])
        conn.rollback()
        assert cli.main(["--dsn", db, "register", "-q", str(images)]) == 0
        chosen = select_planes(conn, files=[str(images)])
        assert sorted(p.path for p in chosen) == sorted(p.resolve() for p in names)
        # a file and its directory together select it once
        both = select_planes(conn, files=[str(names[0]), str(images)])
        assert sorted(p.path for p in both) == sorted(p.resolve() for p in names)
        (tmp_path / "empty").mkdir()
        with pytest.raises(ValueError, match="no image files under"):
            select_planes(conn, files=[str(tmp_path / "empty")])
