"""The simulated archive: layout, headers, WCS and truth as the contract says; determinism."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from caomai_loaders.images import read_images
from caomai_loaders.sim.conditions import CLASSES, assign_classes
from caomai_loaders.simulate import parse_classes, simulate_archive

from .simarchive import SMALL, archive

KINDS = {"star", "galaxy", "merger", "cosmic_ray", "trail", "bleed"}


@pytest.fixture(scope="module")
def small() -> Path:
    return archive("small", **SMALL)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_layout_and_truth_follow_the_contract(small: Path) -> None:
    exposures = rows(small / "truth" / "exposures.csv")
    assert [e["exposure_id"] for e in exposures] == [f"sim0007-{i:05d}" for i in range(24)]
    assert {e["quality_class"] for e in exposures} == set(CLASSES)
    for e in exposures:
        assert (small / e["file"]).is_file()
        assert e["file"] == f"images/{e['exposure_id']}.fits"
        assert 0.0 <= float(e["strength"]) <= 1.0
        assert int(e["seed"]) >= 0
    objects = rows(small / "truth" / "objects.csv")
    assert {"exposure_id", "extension", "x", "y", "ra", "dec", "kind", "flux"} <= set(objects[0])
    assert {o["kind"] for o in objects} <= KINDS
    assert {"star", "galaxy", "cosmic_ray"} <= {o["kind"] for o in objects}
    per_exp = {e["exposure_id"]: 0 for e in exposures}
    for o in objects:
        per_exp[o["exposure_id"]] += 1
        assert o["extension"] in ("1", "2")
        assert -0.5 <= float(o["x"]) < 511.5 and -0.5 <= float(o["y"]) < 511.5
    # counts in the manifest are the catalogue's
    for e in exposures:
        n = sum(int(e[f"n_{k}"]) for k in KINDS)
        assert n == per_exp[e["exposure_id"]]


def test_files_carry_megacam_keywords_and_a_working_wcs(small: Path) -> None:
    exposures = rows(small / "truth" / "exposures.csv")
    objects = rows(small / "truth" / "objects.csv")
    for e in exposures[:6]:
        path = small / e["file"]
        with fits.open(path) as hdul:
            assert len(hdul) == 3 and hdul[0].data is None
            h = hdul[0].header
            assert h["TELESCOP"] == "CFHT 3.6m" and h["INSTRUME"] == "MegaPrime"
            assert h["FILTER"] == e["filter"] and h["EXPNUM"] == e["exposure_id"]
            assert h["EXPTIME"] == pytest.approx(float(e["exptime"]))
            assert h["MJD-OBS"] == pytest.approx(float(e["mjd_obs"]), abs=1e-7)
            for key in ("DATE-OBS", "AIRMASS", "OBJECT", "RA", "DEC", "OBSTYPE"):
                assert key in h
            for k in (1, 2):
                ext = hdul[k]
                assert ext.header["EXTNAME"] == f"ccd{k - 1:02d}"
                assert ext.data.dtype == np.uint16 or ext.header["BITPIX"] == 16
                for key in ("GAIN", "RDNOISE", "SATURATE"):
                    assert ext.header[key] > 0
                assert ext.data.max() <= ext.header["SATURATE"]
                w = WCS(ext.header)
                assert w.has_celestial
                scale = np.sqrt(abs(np.linalg.det(w.pixel_scale_matrix))) * 3600
                assert scale == pytest.approx(0.187, rel=1e-3)
                mine = [
                    o
                    for o in objects
                    if o["exposure_id"] == e["exposure_id"] and o["extension"] == str(k)
                ]
                x = np.array([float(o["x"]) for o in mine])
                y = np.array([float(o["y"]) for o in mine])
                ra, dec = w.all_pix2world(x, y, 0)
                cosd = np.cos(np.radians(dec))
                dra = (ra - np.array([float(o["ra"]) for o in mine])) * cosd * 3600
                ddec = (dec - np.array([float(o["dec"]) for o in mine])) * 3600
                assert np.all(np.hypot(dra, ddec) < 0.01)
        # the shared reader sees the same thing the loaders will
        images = list(read_images(path))
        assert [i.extname for i in images] == ["ccd00", "ccd01"]
        assert all(i.wcs is not None and i.saturation and i.gain for i in images)


def test_bright_stars_sit_where_the_truth_says(small: Path) -> None:
    import sep

    exposures = rows(small / "truth" / "exposures.csv")
    # exposures with round PSFs (sep's centroid of a trail or donut is not its centre)
    sharp = [e for e in exposures if e["quality_class"] in ("good", "bad_seeing", "background")]
    objects = rows(small / "truth" / "objects.csv")
    offsets = []
    for e in sharp:
        for ext in (1, 2):
            stars = [
                o
                for o in objects
                if o["exposure_id"] == e["exposure_id"]
                and o["kind"] == "star"
                and o["extension"] == str(ext)
                and o["saturated"] != "true"
                and 20 < float(o["x"]) < 490
                and 20 < float(o["y"]) < 490
            ]
            data = fits.getdata(small / e["file"], ext).astype(np.float64)
            bkg = sep.Background(data)
            det = sep.extract(data - bkg, 5.0, err=bkg.globalrms)
            for s in sorted(stars, key=lambda o: float(o["flux"]))[-3:]:
                d = np.hypot(det["x"] - float(s["x"]), det["y"] - float(s["y"]))
                if d.size and d.min() < 3:
                    offsets.append(d.min())
    assert len(offsets) >= 5
    # sep's windowless centroid of an isolated star: within a few hundredths of a pixel
    assert np.median(offsets) < 0.3


def test_same_seed_same_bytes_on_any_number_of_workers(tmp_path: Path) -> None:
    kw = dict(exposures=3, seed=11, ccds=2, ccd_size=(256, 192), progress=False)
    simulate_archive(tmp_path / "a", workers=1, **kw)
    simulate_archive(tmp_path / "b", workers=2, **kw)
    files_a = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    files_b = sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    assert files_a == files_b and len(files_a) == 3 + 3

    def digest(p: Path) -> str:
        return hashlib.sha256(p.read_bytes()).hexdigest()

    for rel in files_a:
        assert digest(tmp_path / "a" / rel) == digest(tmp_path / "b" / rel), rel
    simulate_archive(tmp_path / "c", workers=1, **{**kw, "seed": 12})
    a0 = tmp_path / "a" / "images" / "sim0011-00000.fits"
    c0 = tmp_path / "c" / "images" / "sim0012-00000.fits"
    assert fits.getdata(a0, 1).tobytes() != fits.getdata(c0, 1).tobytes()


def test_class_shares_are_exact_and_every_class_appears() -> None:
    labels = assign_classes(40, parse_classes(None), seed=3)
    counts = {c: labels.count(c) for c in CLASSES}
    assert all(counts[c] >= 1 for c in CLASSES)
    assert max(counts, key=counts.get) == "good"
    assert assign_classes(40, parse_classes(None), seed=3) == labels
    assert set(assign_classes(5, parse_classes(["good", "crowded=3"]), 1)) == {"good", "crowded"}
    with pytest.raises(ValueError, match="unknown quality class"):
        parse_classes(["bad_weather"])


def test_bad_arguments_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        simulate_archive(tmp_path, 0, progress=False)
    with pytest.raises(ValueError, match="between 0 and 9999"):
        simulate_archive(tmp_path, 1, seed=10000, progress=False)
    with pytest.raises(ValueError, match="too small"):
        simulate_archive(tmp_path, 1, ccd_size=(32, 32), progress=False)
    with pytest.raises(ValueError, match="no quality class"):
        simulate_archive(tmp_path, 1, classes={"good": 0.0}, progress=False)
    assert not list(tmp_path.rglob("*.fits"))
