"""Tiny synthetic exposures and a minimal registration for the loader and training tests.

The images are numpy Gaussians with noise: "good" (round, sharp), "seeing" (round, wide) and
"tracking" (elongated along a random direction per exposure), a few cosmic rays, written as
multi-extension FITS with a TAN WCS. They are registered with CAOM rows shaped like
``caomai register`` writes (uuid5 of the URIs, a science artifact with a file:// URI), so the
loaders see what they see in production without depending on the simulator.
"""

from __future__ import annotations

import csv
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from astropy.io import fits

from caomai_loaders import caom2_rows
from caomai_loaders.caom2_rows import uri_id

KINDS = ("good", "seeing", "tracking")


def render(
    kind: str,
    seed: int,
    shape: tuple[int, int] = (200, 200),
    n_stars: int = 60,
    cosmic_rays: int | tuple[int, int] = 3,
) -> np.ndarray:
    """One CCD: sky 100 +- 5 (Gaussian noise), stars of the exposure's kind, a few cosmic rays."""
    return render_with_truth(kind, seed, shape, n_stars, cosmic_rays)[0]


def render_with_truth(
    kind: str,
    seed: int,
    shape: tuple[int, int] = (200, 200),
    n_stars: int = 60,
    cosmic_rays: int | tuple[int, int] = 3,
) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """The CCD and its truth: (kind, x, y) of every star and cosmic ray, in pixels from 0.

    ``cosmic_rays`` is a count, or a range [lo, hi) drawn per CCD (after the stars, so the
    stars of a seed are the same either way).
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    img = rng.normal(100.0, 5.0, size=shape)
    yy, xx = np.mgrid[0:ny, 0:nx]
    angle = rng.uniform(0, np.pi)
    sx, sy = {"good": (1.3, 1.3), "seeing": (2.8, 2.8), "tracking": (3.5, 1.2)}[kind]
    ca, sa = np.cos(angle), np.sin(angle)
    objects: list[tuple[str, float, float]] = []
    for _ in range(n_stars):
        x0, y0 = rng.uniform(10, nx - 10), rng.uniform(10, ny - 10)
        flux = 10 ** rng.uniform(3.0, 4.5)
        dx, dy = xx - x0, yy - y0
        u, v = dx * ca + dy * sa, -dx * sa + dy * ca
        img += flux / (2 * np.pi * sx * sy) * np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))
        objects.append(("star", float(x0), float(y0)))
    n_rays = cosmic_rays if isinstance(cosmic_rays, int) else int(rng.integers(*cosmic_rays))
    for _ in range(n_rays):
        iy, ix = rng.integers(5, ny - 5), rng.integers(5, nx - 5)
        img[iy, ix] += rng.uniform(300, 1000)
        objects.append(("cosmic_ray", float(ix), float(iy)))
    return img.astype(np.float32), objects


def write_exposure(
    path: Path,
    kind: str,
    seed: int,
    n_ccds: int = 2,
    shape: tuple[int, int] = (200, 200),
    cosmic_rays: int | tuple[int, int] = 3,
    truth: list[dict] | None = None,
) -> Path:
    """A multi-extension FITS file; the truth rows of its objects are appended to ``truth``
    (columns of the simulator's objects.csv: exposure_id, extension, kind, x, y)."""
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = "SYNTH"
    primary.header["INSTRUME"] = "TESTCAM"
    primary.header["OBJECT"] = kind
    primary.header["EXPNUM"] = path.stem
    hdus = [primary]
    for i in range(n_ccds):
        data, objects = render_with_truth(kind, seed * 100 + i, shape, cosmic_rays=cosmic_rays)
        if truth is not None:
            truth += [
                dict(exposure_id=path.stem, extension=i + 1, kind=k, x=x, y=y)
                for k, x, y in objects
            ]
        h = fits.ImageHDU(data, name=f"ccd{i:02d}")
        h.header["CTYPE1"], h.header["CTYPE2"] = "RA---TAN", "DEC--TAN"
        h.header["CRVAL1"], h.header["CRVAL2"] = 150.0 + 0.1 * i, 2.0
        h.header["CRPIX1"], h.header["CRPIX2"] = shape[1] / 2, shape[0] / 2
        h.header["CD1_1"], h.header["CD2_2"] = -5e-5, 5e-5
        h.header["CD1_2"], h.header["CD2_1"] = 0.0, 0.0
        h.header["SATURATE"] = 60000.0
        h.header["GAIN"] = 1.5
        hdus.append(h)
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def make_archive(directory: Path, per_kind: int, **kwargs) -> dict[str, str]:
    """per_kind exposures of each kind, and their objects in ``objects.csv`` (the simulator's
    truth catalogue columns that matter to ``caomai evaluate``); returns file stem -> kind."""
    directory.mkdir(parents=True, exist_ok=True)
    truth = {}
    objects: list[dict] = []
    for k, kind in enumerate(KINDS):
        for i in range(per_kind):
            name = f"syn-{kind}-{i:03d}"
            write_exposure(
                directory / f"{name}.fits", kind, seed=1000 * k + i, truth=objects, **kwargs
            )
            truth[name] = kind
    with open(directory / "objects.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["exposure_id", "extension", "kind", "x", "y"])
        w.writeheader()
        w.writerows(objects)
    return truth


def register_files(
    conn: psycopg.Connection, paths: list[Path], collection: str = "SYNTH"
) -> list[uuid.UUID]:
    """Observation + plane + science artifact per file, idempotent (uuid5 of the URIs)."""
    ids = []
    release = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)
    for path in paths:
        path = Path(path).resolve()
        obs_id = path.stem
        obs_uri = f"caom:{collection}/{obs_id}"
        plane_uri = f"{obs_uri}/{obs_id}p"
        art_uri = path.as_uri()
        obsid, planeid = uri_id(obs_uri), uri_id(plane_uri)
        data = path.read_bytes()
        caom2_rows.upsert(
            conn,
            [
                caom2_rows.Observation(
                    obsid=obsid,
                    observationuri=obs_uri,
                    collection=collection,
                    observationid=obs_id,
                    intent="science",
                    type="OBJECT",
                    metarelease=release,
                )
            ],
            "nothing",
        )
        caom2_rows.upsert(
            conn,
            [
                caom2_rows.Plane(
                    planeid=planeid,
                    obsid=obsid,
                    planeuri=plane_uri,
                    publisherid=f"ivo://caomai.example/{collection}?{obs_id}/{obs_id}p",
                    productid=f"{obs_id}p",
                    metarelease=release,
                    datarelease=release,
                    calibrationlevel=1,
                    dataproducttype="image",
                )
            ],
            "nothing",
        )
        caom2_rows.upsert(
            conn,
            [
                caom2_rows.Artifact(
                    artifactid=uri_id(art_uri),
                    planeid=planeid,
                    uri=art_uri,
                    producttype="science",
                    contenttype="image/jpeg"
                    if path.suffix.lower() in (".jpg", ".jpeg")
                    else "application/fits",
                    contentlength=len(data),
                    contentchecksum="md5:" + hashlib.md5(data).hexdigest(),
                )
            ],
            "nothing",
        )
        ids.append(planeid)
    conn.commit()
    return ids
