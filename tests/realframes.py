"""Real image files that ship inside installed packages (no download): paths for the tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise LookupError(f"package {name} is not installed")
    return Path(spec.origin).parent


def real_frames() -> dict[str, Path]:
    """name -> path of each real frame the design lists (DESIGN.md §7)."""
    astropy = package_dir("astropy")
    return {
        "a370II": package_dir("mpdaf")
        / "data"
        / "obj"
        / "a370II.fits",  # CFHT 3.6m FOCAM, Abell 370
        "a478hst": package_dir("mpdaf") / "data" / "sdetect" / "a478hst-cutout.fits",  # HST WFPC2
        "m13": astropy
        / "io"
        / "fits"
        / "hdu"
        / "compressed"
        / "tests"
        / "data"
        / "m13.fits",  # DSS
        "m13_rice": astropy
        / "io"
        / "fits"
        / "hdu"
        / "compressed"
        / "tests"
        / "data"
        / "m13_rice.fits",
        "m13_gzip": astropy
        / "io"
        / "fits"
        / "hdu"
        / "compressed"
        / "tests"
        / "data"
        / "m13_gzip.fits",
        "comp": astropy / "io" / "fits" / "tests" / "data" / "comp.fits",
        "hubble_deep_field": package_dir("skimage") / "data" / "hubble_deep_field.jpg",
    }
