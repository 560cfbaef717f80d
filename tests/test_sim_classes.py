"""The quality classes are what they claim, measured on the rendered pixels with sep.

The truth catalogue says only *where* the isolated, bright, unsaturated stars are (a real
pipeline would pick them from a star catalogue); every number compared is measured on the
pixels: sep's shape moments (elongation, orientation), the half-maximum area of the stars
(FWHM), sep's circular apertures and annuli (the donut's central dip), sep's detections and
their S/N, and sep's background map (large-scale structure). The manifest's PSF parameters are
used only to check that what the pixels show is what the simulator meant to draw.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import sep
from astropy.io import fits
from scipy import ndimage

from caomai_loaders.sim.conditions import CLASSES, PIXEL_SCALE

from .simarchive import archive

#: Three exposures of each class, one CCD big enough to hold several bright stars at high
#: Galactic latitude (~100 Mpix, ~20 s on two cores).
CLASS_ARCHIVE = dict(
    exposures=3 * len(CLASSES),
    seed=5,
    ccds=1,
    ccd_size=(2048, 2048),
    classes={c: 1.0 for c in CLASSES},
    workers=2,
)


@dataclass
class Measured:
    quality_class: str
    truth: dict[str, str]
    n_stars: int
    elongation: float
    orientation_coherence: float
    orientation_deg: float
    fwhm_arcsec: float
    dip: float
    n_detected: int
    snr10: float
    structure: float


def _isolated_stars(objects: list[dict[str, str]], gain: float, shape: tuple[int, int]):
    """(x, y) of bright (> 3e4 e-), unsaturated stars with no comparable neighbour."""
    if not objects:
        return []
    xy = np.array([[float(o["x"]), float(o["y"])] for o in objects])
    flux = np.array([float(o["flux"]) for o in objects])
    out = []
    for i, o in enumerate(objects):
        if o["kind"] != "star" or o["saturated"] == "true" or flux[i] * gain < 3.0e4:
            continue
        x, y = xy[i]
        if not (40 < x < shape[1] - 40 and 40 < y < shape[0] - 40):
            continue
        near = (np.hypot(*(xy - xy[i]).T) < 30) & (flux > 0.03 * flux[i])
        near[i] = False
        if not near.any():
            out.append((x, y))
    return out


def _fwhm(sub: np.ndarray, x: float, y: float) -> float:
    """FWHM (arcsec) from the area of the connected pixels above half the peak."""
    ix, iy = int(round(x)), int(round(y))
    stamp = sub[iy - 25 : iy + 26, ix - 25 : ix + 26]
    peak = stamp[22:29, 22:29].max()
    labels, _ = ndimage.label(stamp > peak / 2)
    core = labels[np.unravel_index(np.argmax(np.where(labels > 0, stamp, -np.inf)), stamp.shape)]
    return 2.0 * math.sqrt((labels == core).sum() / math.pi) * PIXEL_SCALE


def _dip(sub: np.ndarray, x: float, y: float) -> float:
    """Mean surface brightness within 1.5 px of the centre over the brightest annulus's."""
    xs, ys = np.array([x]), np.array([y])
    centre = sep.sum_circle(sub, xs, ys, np.array([1.5]))[0][0] / (math.pi * 1.5**2)
    rings = []
    for r in np.arange(1.5, 15.0, 1.0):
        s = sep.sum_circann(sub, xs, ys, np.array([r]), np.array([r + 1.5]))[0][0]
        rings.append(s / (math.pi * ((r + 1.5) ** 2 - r**2)))
    return centre / max(max(rings), 1e-9)


def measure(path: Path, truth: dict[str, str], objects: list[dict[str, str]]) -> Measured:
    header = fits.getheader(path, 1)
    data = fits.getdata(path, 1).astype(np.float64)
    gain = float(header["GAIN"])
    bkg = sep.Background(data, bw=128, bh=128)
    sub = data - bkg
    # no deblending: a trailed or doubled star stays one object
    det = sep.extract(sub, 10.0, err=bkg.globalrms, minarea=9, deblend_cont=1.0)
    elong, theta, fwhm, dip = [], [], [], []
    stars = _isolated_stars(objects, gain, data.shape)
    for x, y in stars:
        d = np.hypot(det["x"] - x, det["y"] - y)
        if d.size and d.min() < 4:
            j = int(np.argmin(d))
            elong.append(det["a"][j] / det["b"][j])
            theta.append(det["theta"][j])
        fwhm.append(_fwhm(sub, x, y))
        dip.append(_dip(sub, x, y))
    mean2 = np.mean(np.exp(2j * np.array(theta))) if theta else 0j

    # blind: sources on the 3x3 median-filtered image (cosmic rays, sharper than any PSF,
    # go away), and the S/N of the tenth brightest
    smooth = ndimage.median_filter(data, 3)
    bkg_s = sep.Background(smooth, bw=128, bh=128)
    found = sep.extract(smooth - bkg_s, 5.0, err=bkg_s.globalrms, minarea=5)
    snr = np.sort(
        found["flux"] / np.sqrt(found["flux"] / gain + found["npix"] * bkg_s.globalrms**2)
    )
    # blind: large-scale structure of the sky, relative to its level
    back = sep.Background(data, bw=64, bh=64, fw=3, fh=3).back()
    structure = float((np.percentile(back, 99) - np.percentile(back, 1)) / np.median(back))
    return Measured(
        quality_class=truth["quality_class"],
        truth=truth,
        n_stars=len(stars),
        elongation=float(np.median(elong)) if elong else math.nan,
        orientation_coherence=float(abs(mean2)),
        orientation_deg=float(np.degrees(np.angle(mean2)) / 2.0) % 180.0,
        fwhm_arcsec=float(np.median(fwhm)) if fwhm else math.nan,
        dip=float(np.median(dip)) if dip else math.nan,
        n_detected=len(found),
        snr10=float(snr[-10]) if snr.size >= 10 else 0.0,
        structure=structure,
    )


@pytest.fixture(scope="module")
def measured() -> dict[str, list[Measured]]:
    root = archive("classes", **CLASS_ARCHIVE)
    with open(root / "truth" / "objects.csv", newline="") as fh:
        objects: dict[str, list[dict[str, str]]] = defaultdict(list)
        for o in csv.DictReader(fh):
            objects[o["exposure_id"]].append(o)
    out: dict[str, list[Measured]] = defaultdict(list)
    with open(root / "truth" / "exposures.csv", newline="") as fh:
        for e in csv.DictReader(fh):
            m = measure(root / e["file"], e, objects[e["exposure_id"]])
            out[m.quality_class].append(m)
    return out


def with_stars(ms: list[Measured], need: int = 2) -> list[Measured]:
    """The exposures with at least two measured stars; there must be ``need`` of them."""
    got = [m for m in ms if m.n_stars >= 2]
    assert len(got) >= need, [(m.truth["exposure_id"], m.n_stars) for m in ms]
    return got


def show(ms: list[Measured], attr: str) -> list[tuple[str, float]]:
    return [(m.truth["exposure_id"], round(getattr(m, attr), 3)) for m in ms]


def test_bad_tracking_stretches_every_star_the_same_way(measured) -> None:
    good = with_stars(measured["good"])
    assert all(m.elongation < 1.07 for m in good), show(good, "elongation")
    for cls, least in (("bad_tracking", 1.10), ("really_bad_tracking", 1.6)):
        trailed = with_stars(measured[cls])
        assert all(m.elongation > least for m in trailed), show(trailed, "elongation")
        assert all(m.orientation_coherence > 0.95 for m in trailed), show(
            trailed, "orientation_coherence"
        )
        # along the drift the manifest says the telescope made
        for m in trailed:
            diff = (m.orientation_deg - float(m.truth["direction_deg"])) % 180.0
            assert min(diff, 180.0 - diff) < 10.0, (m.truth["exposure_id"], m.orientation_deg)
    really = np.median([m.elongation for m in with_stars(measured["really_bad_tracking"])])
    assert really > np.median([m.elongation for m in with_stars(measured["bad_tracking"])])


def test_bad_seeing_widens_the_psf(measured) -> None:
    good = with_stars(measured["good"])
    bad = with_stars(measured["bad_seeing"])
    assert max(m.fwhm_arcsec for m in good) < 1.1, show(good, "fwhm_arcsec")
    assert min(m.fwhm_arcsec for m in bad) > 1.05, show(bad, "fwhm_arcsec")
    # the FWHM on the pixels is the seeing the simulator drew (pixel response included)
    for cls in ("good", "bad_seeing", "background", "crowded", "low_exposure"):
        for m in with_stars(measured[cls], need=0):
            assert m.fwhm_arcsec == pytest.approx(float(m.truth["fwhm"]), rel=0.15), (
                m.truth["exposure_id"],
                m.fwhm_arcsec,
                m.truth["fwhm"],
            )


def test_bad_focus_makes_donuts(measured) -> None:
    donuts = with_stars(measured["bad_focus"])
    assert all(m.dip < 0.8 for m in donuts), show(donuts, "dip")
    for cls in CLASSES:
        if cls != "bad_focus":
            for m in with_stars(measured[cls], need=0):
                assert m.dip > 1.0, (cls, m.truth["exposure_id"], m.dip)


def test_low_exposure_detects_fewer_sources_at_lower_snr(measured) -> None:
    good, low = measured["good"], measured["low_exposure"]
    n_good = np.median([m.n_detected for m in good])
    assert np.median([m.n_detected for m in low]) < 0.6 * n_good, (
        show(good, "n_detected"),
        show(low, "n_detected"),
    )
    assert max(m.snr10 for m in low) < min(m.snr10 for m in good), (
        show(good, "snr10"),
        show(low, "snr10"),
    )
    # and crowded fields the opposite: many more sources
    crowded = measured["crowded"]
    assert np.median([m.n_detected for m in crowded]) > 2 * n_good, show(crowded, "n_detected")
    assert min(m.n_detected for m in crowded) > max(m.n_detected for m in good)


def test_background_problems_show_large_scale_structure(measured) -> None:
    good, bad = measured["good"], measured["background"]
    assert max(m.structure for m in good) < 0.04, show(good, "structure")
    assert min(m.structure for m in bad) > max(m.structure for m in good), (
        show(good, "structure"),
        show(bad, "structure"),
    )
    assert np.median([m.structure for m in bad]) > 0.1, show(bad, "structure")
