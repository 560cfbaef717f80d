"""`caomai register`: CAOM2 Observation/Plane/Artifact rows for an archive's own files.

The path every file takes into the archive's metadata, simulated or real: one Observation, one
Plane and one Artifact per file, from ordinary FITS keywords (TELESCOP, INSTRUME, FILTER,
EXPTIME, DATE-OBS/MJD-OBS, EXPNUM/OBSID, OBJECT, OBSTYPE) and the celestial WCS of each image
extension, read through ``caomai_loaders.images`` (the same reader the loaders use, so what is
registered is what will be loaded).

- Identifiers: ``observationID`` = EXPNUM or OBSID, else the file stem; ``productID`` =
  observationID + 'p' (CFHT style; a stem that is observationID plus a one-letter CFHT suffix,
  '1032210o', keeps its own letter so raw and processed files become two planes);
  ``planeURI`` = caom:{collection}/{observationID}/{productID}; ``publisherID`` =
  ivo://{authority}/{collection}?{observationID}/{productID}; ids are uuid5 of the URIs, so
  registering again updates the same rows.
- Position: the convex hull of the corners of all image extensions (ICRS, DALI polygon
  ra1, dec1, ..., counter-clockwise as seen from inside the sphere, i.e. with east to the
  left), its centroid, spherical area and size (largest vertex separation), the mosaic's pixel
  extent and the median pixel size.
- Release: metaRelease = dataRelease = the observation date for public planes. A share
  ``proprietary_fraction`` of the observations, chosen by a hash of the observation URI (the
  same ones every time), get metaRelease and dataRelease ``release_after_days`` after today.

Missing keywords get a default and a warning (summarised per kind of warning); a file that
cannot be read is reported with the reason and the run goes on.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .caom2_rows import Artifact, Observation, Plane, upsert, uri_id
from .images import ImageError, is_raster, primary_header, read_images

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

#: Default authority of publisherIDs (ivo://{authority}/{collection}?...).
DEFAULT_AUTHORITY = "caomai.example"
#: Days after today that proprietary planes become public, unless told otherwise.
DEFAULT_RELEASE_AFTER_DAYS = 365
#: File name endings registration picks up from a directory.
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.fz", ".fits.gz", ".fz")
#: Keywords holding the observation identifier, in order of preference.
OBSID_KEYS = ("EXPNUM", "OBSID")
#: Keywords that may hold the filter name, in order of preference.
FILTER_KEYS = ("FILTER", "FILTNAM1", "FILTNAME", "FILTER1", "FILTER2", "FILTNAM2")
EXPTIME_KEYS = ("EXPTIME", "EXPOSURE", "ITIME", "TEXPTIME", "EXP_TIME")
#: OBSTYPE values of calibration exposures.
CALIBRATION_TYPES = {"BIAS", "ZERO", "DARK", "FLAT", "DOMEFLAT", "SKYFLAT", "TWILIGHT", "ARC"}
#: Telescope of instruments whose files often lack TELESCOP.
INSTRUMENT_TELESCOPES = {
    "MEGAPRIME": "CFHT 3.6m",
    "MEGACAM": "CFHT 3.6m",
    "WIRCAM": "CFHT 3.6m",
    "FOCAM": "CFHT 3.6m",
    "CFH12K": "CFHT 3.6m",
    "CFH12K MOSAIC": "CFHT 3.6m",
    "ESPADONS": "CFHT 3.6m",
    "WFPC2": "HST",
    "ACS": "HST",
    "WFC3": "HST",
    "NICMOS": "HST",
}
#: Collection names for telescopes whose first word is not the usual name.
TELESCOPE_COLLECTIONS = {"CFHT 3.6M": "CFHT", "CFHT": "CFHT", "HST": "HST"}
#: CFHT geocentric position (m), for Observation.telescope_geoLocation.
GEOLOCATIONS = {"CFHT": (-5464301.77, -2493489.8, 2151085.16)}
#: MegaCam filters: bandpass (m) between the half-transmission wavelengths (approximate,
#: from CFHT's published curves), for Plane.energy_bounds.
MEGACAM_BANDS = {
    "u.MP9301": (3.37e-7, 4.11e-7),
    "u.MP9302": (3.36e-7, 3.98e-7),
    "g.MP9401": (4.14e-7, 5.59e-7),
    "g.MP9402": (3.98e-7, 5.50e-7),
    "r.MP9601": (5.63e-7, 6.85e-7),
    "r.MP9602": (5.38e-7, 6.95e-7),
    "i.MP9701": (6.90e-7, 8.49e-7),
    "i.MP9702": (7.00e-7, 8.48e-7),
    "i.MP9703": (6.95e-7, 8.55e-7),
    "z.MP9801": (8.27e-7, 1.10e-6),
    "z.MP9901": (8.21e-7, 1.03e-6),
}
RASTER_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}


@dataclass
class FileResult:
    path: Path
    ok: bool
    observation_id: str | None = None
    plane_uri: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class RegisterReport:
    results: list[FileResult] = field(default_factory=list)

    @property
    def registered(self) -> list[FileResult]:
        return [r for r in self.results if r.ok]

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failed and bool(self.results)

    def warning_counts(self) -> Counter[str]:
        return Counter(w for r in self.results for w in r.warnings)

    def summary(self) -> str:
        lines = [
            f"registered {len(self.registered)} file(s), {len(self.failed)} failed"
            + ("" if self.results else " (no files found)")
        ]
        for text, n in sorted(self.warning_counts().items(), key=lambda kv: -kv[1]):
            lines.append(f"  warning ({n} file{'s' if n > 1 else ''}): {text}")
        for r in self.failed:
            lines.append(f"  FAILED {r.path}: {r.error}")
        return "\n".join(lines)


# -- reading a file's metadata ----------------------------------------------------------------


def find_files(paths: list[Path]) -> list[Path]:
    """Files to register: the files given, and image files found under the directories given."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                name = f.name.lower()
                if f.is_file() and (name.endswith(FITS_SUFFIXES) or is_raster(f)):
                    out.append(f)
        else:
            out.append(p)
    return out


def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(FITS_SUFFIXES + tuple(RASTER_TYPES), key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _clean_id(value: object) -> str:
    text = str(value).strip()
    if isinstance(value, float) and float(value).is_integer():
        text = str(int(value))
    return re.sub(r"[\s/?#]+", "_", text)[:256]


def _text(header, key: str) -> str | None:  # noqa: ANN001 - astropy Header
    value = header.get(key)
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None


def parse_start_mjd(header) -> tuple[float | None, str | None]:  # noqa: ANN001
    """MJD of the exposure start and the keyword(s) it came from."""
    from astropy.time import Time

    for key in ("MJD-OBS", "EXPSTART", "MJDATE", "MJD-BEG", "MJD_OBS"):
        value = header.get(key)
        try:
            if value is not None and not isinstance(value, bool) and math.isfinite(float(value)):
                mjd = float(value)
                if 15000 < mjd < 100000:
                    return mjd, key
        except (TypeError, ValueError):
            continue
    for key in ("DATE-OBS", "DATE-BEG", "DATE_OBS"):
        date = _text(header, key)
        if not date:
            continue
        m = re.fullmatch(r"(\d\d)/(\d\d)/(\d\d)", date)  # pre-2000 FITS: DD/MM/YY
        if m:
            date = f"19{m.group(3)}-{m.group(2)}-{m.group(1)}"
        if "T" not in date:
            for tkey in ("TIME-OBS", "UTC-OBS", "UT", "UTSTART", "UT-START"):
                t = _text(header, tkey)
                if t and re.fullmatch(r"\d{1,2}:\d\d(:\d\d(\.\d*)?)?", t):
                    date = f"{date}T{t}"
                    break
        try:
            return float(Time(date, format="isot" if "T" in date else None, scale="utc").mjd), key
        except ValueError:
            try:
                return float(Time(date, scale="utc").mjd), key
            except ValueError:
                continue
    return None, None


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _radec_to_xyz(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def _xyz_to_radec(v: np.ndarray) -> tuple[float, float]:
    v = _unit(v)
    return float(np.degrees(np.arctan2(v[1], v[0])) % 360.0), float(
        np.degrees(np.arcsin(np.clip(v[2], -1, 1)))
    )


@dataclass
class Footprint:
    polygon: list[float]
    centre: tuple[float, float]
    area: float
    size: float


def footprint(ra: np.ndarray, dec: np.ndarray) -> Footprint:
    """Convex hull of sky points: DALI polygon (counter-clockwise seen from inside the
    sphere), centroid, spherical area (deg^2) and size (largest vertex separation, deg)."""
    from scipy.spatial import ConvexHull

    pts = _radec_to_xyz(np.asarray(ra, float), np.asarray(dec, float))
    c = _unit(pts.mean(axis=0))
    # gnomonic projection about c: xi to the east, eta to the north
    north = np.array([0.0, 0.0, 1.0])
    east = np.cross(north, c)
    if np.linalg.norm(east) < 1e-12:  # pointing at a pole
        east = np.array([0.0, 1.0, 0.0])
    east = _unit(east)
    up = np.cross(c, east)
    d = pts @ c
    xy = np.stack([(pts @ east) / d, (pts @ up) / d], axis=1)
    hull = ConvexHull(xy)
    # scipy gives the hull counter-clockwise with east to the right (seen from outside the
    # sphere); seen from inside, east is to the left: reverse
    idx = _drop_collinear(xy, list(hull.vertices[::-1]))
    verts = pts[idx]
    poly: list[float] = []
    for v in verts:
        r, de = _xyz_to_radec(v)
        poly += [round(r, 8), round(de, 8)]
    # area-weighted centroid in the projection, back to the sphere
    hx, hy = xy[idx, 0], xy[idx, 1]
    cross = hx * np.roll(hy, -1) - np.roll(hx, -1) * hy
    a2 = cross.sum()
    cx = ((hx + np.roll(hx, -1)) * cross).sum() / (3 * a2)
    cy = ((hy + np.roll(hy, -1)) * cross).sum() / (3 * a2)
    centre = _xyz_to_radec(c + cx * east + cy * up)
    # spherical area: triangles fanned from the centre (Van Oosterom & Strackee)
    cv = _unit(c + cx * east + cy * up)
    area = 0.0
    for i in range(len(verts)):
        a, b = verts[i], verts[(i + 1) % len(verts)]
        num = abs(np.dot(cv, np.cross(a, b)))
        den = 1 + np.dot(cv, a) + np.dot(a, b) + np.dot(b, cv)
        area += 2 * math.atan2(num, den)
    dots = np.clip(verts @ verts.T, -1, 1)
    size = float(np.degrees(np.arccos(dots.min())))
    return Footprint(
        poly, (round(centre[0], 8), round(centre[1], 8)), area * (180.0 / math.pi) ** 2, size
    )


def _drop_collinear(xy: np.ndarray, idx: list[int]) -> list[int]:
    """Hull vertices without those lying on the line between their neighbours (CCD gaps)."""
    keep = []
    n = len(idx)
    for i in range(n):
        a, b, c = xy[idx[i - 1]], xy[idx[i]], xy[idx[(i + 1) % n]]
        cross = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        if abs(cross) > 1e-7 * np.linalg.norm(c - a) ** 2:
            keep.append(idx[i])
    return keep if len(keep) >= 3 else idx


def _md5(path: Path) -> tuple[str, int]:
    h = hashlib.md5()
    n = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            n += len(chunk)
    return "md5:" + h.hexdigest(), n


def is_proprietary(observation_uri: str, fraction: float) -> bool:
    """Deterministic choice of the proprietary share, by a hash of the observation URI."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(observation_uri.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def collection_for(telescope: str | None) -> str:
    if not telescope:
        return "UNKNOWN"
    key = telescope.strip().upper()
    if key in TELESCOPE_COLLECTIONS:
        return TELESCOPE_COLLECTIONS[key]
    first = re.sub(r"[^A-Z0-9_-]", "", key.split()[0]) if key.split() else ""
    return first or "UNKNOWN"


def describe(
    path: Path,
    *,
    collection: str | None,
    authority: str,
    proprietary_fraction: float,
    release_after_days: int,
    calibration_level: int | None,
    today: datetime,
) -> tuple[Observation, Plane, Artifact, list[str]]:
    """The Observation, Plane and Artifact rows of one file, and the warnings about it.

    Raises ImageError when the file cannot be read.
    """
    path = Path(path).resolve()
    warnings: list[str] = []
    primary = primary_header(path)
    shapes: list[tuple[int, int]] = []
    corners_ra: list[np.ndarray] = []
    corners_dec: list[np.ndarray] = []
    scales: list[float] = []
    pix_extent: list[np.ndarray] = []
    first_wcs = None
    first_header = None
    n_images = n_without_wcs = 0
    for img in read_images(path):
        n_images += 1
        ny, nx = img.shape
        shapes.append((nx, ny))
        if first_header is None:
            first_header = img.header
        if img.wcs is None:
            n_without_wcs += 1
            continue
        px = np.array([-0.5, nx - 0.5, nx - 0.5, -0.5])
        py = np.array([-0.5, -0.5, ny - 0.5, ny - 0.5])
        sky = img.wcs.pixel_to_world(px, py)
        if not hasattr(sky, "icrs"):
            n_without_wcs += 1
            continue
        icrs = sky.icrs
        ra, dec = np.asarray(icrs.ra.deg, float), np.asarray(icrs.dec.deg, float)
        if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec))):
            n_without_wcs += 1
            continue
        corners_ra.append(ra)
        corners_dec.append(dec)
        from astropy.wcs.utils import proj_plane_pixel_scales

        scales.append(float(np.mean(proj_plane_pixel_scales(img.wcs))) * 3600.0)
        if first_wcs is None:
            first_wcs = img.wcs
        # the image's corners in the first image's pixel grid: the mosaic's pixel extent
        fx, fy = first_wcs.world_to_pixel(sky)
        pix_extent.append(np.stack([np.asarray(fx), np.asarray(fy)]))
    header = first_header if first_header is not None else primary
    # exposure keywords from the primary, falling back on the first image's header
    merged = primary.copy()
    for card in header.cards:
        if card.keyword and card.keyword not in merged:
            merged[card.keyword] = card.value

    # identity
    obs_value = next((merged.get(k) for k in OBSID_KEYS if _text(merged, k)), None)
    stem = _stem(path)
    observation_id = _clean_id(obs_value) if obs_value is not None else _clean_id(stem)
    if re.fullmatch(re.escape(observation_id) + r"[a-z]", stem):
        product_id = stem
    else:
        product_id = observation_id + "p"
    telescope = _text(merged, "TELESCOP")
    instrument = _text(merged, "INSTRUME") or _text(merged, "DETECTOR")
    if not telescope:
        guess = INSTRUMENT_TELESCOPES.get((instrument or "").upper())
        if guess:
            warnings.append(f"no TELESCOP keyword: '{guess}' assumed from INSTRUME")
            telescope = guess
        else:
            warnings.append("no TELESCOP keyword: telescope left empty, collection 'UNKNOWN'")
    if not instrument:
        warnings.append("no INSTRUME keyword: instrument left empty")
    coll = collection or collection_for(telescope)
    obs_uri = f"caom:{coll}/{observation_id}"
    plane_uri = f"{obs_uri}/{product_id}"
    publisher_id = f"ivo://{authority}/{coll}?{observation_id}/{product_id}"
    artifact_uri = path.as_uri()

    # time
    mjd, _ = parse_start_mjd(merged)
    exptime = None
    for key in EXPTIME_KEYS:
        try:
            v = merged.get(key)
            if v is not None and not isinstance(v, bool) and float(v) >= 0:
                exptime = float(v)
                break
        except (TypeError, ValueError):
            continue
    if mjd is None:
        warnings.append("no DATE-OBS/MJD-OBS: time bounds left empty, released as of today")
    if exptime is None:
        warnings.append("no EXPTIME keyword: exposure time left empty")

    # energy
    band = None
    for key in FILTER_KEYS:
        text = _text(merged, key)
        if text and not re.fullmatch(r"[-+]?\d+(\.\d*)?", text) and text.upper() != "CLEAR":
            band = text[:64]
            break
    if band is None and not is_raster(path):
        warnings.append("no FILTER keyword: energy_bandpassName left empty")
    bounds = MEGACAM_BANDS.get(band or "")

    # type and intent
    obstype = (_text(merged, "OBSTYPE") or _text(merged, "IMAGETYP") or "OBJECT").upper()
    intent = "calibration" if obstype in CALIBRATION_TYPES else "science"

    # release
    obs_date = (
        datetime(1858, 11, 17) + timedelta(days=mjd)
        if mjd is not None
        else today.replace(tzinfo=None)
    )
    proprietary = is_proprietary(obs_uri, proprietary_fraction)
    if proprietary:
        release = today.replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0) + timedelta(
            days=release_after_days
        )
    else:
        release = obs_date

    # position
    pos: dict[str, object] = {}
    if corners_ra:
        fp = footprint(np.concatenate(corners_ra), np.concatenate(corners_dec))
        ext = np.concatenate(pix_extent, axis=1)
        pos = dict(
            position_bounds=fp.polygon,
            position_bounds_center=list(fp.centre),
            position_bounds_area=fp.area,
            position_bounds_size=fp.size,
            position_dimension_naxis1=int(round(ext[0].max() - ext[0].min())),
            position_dimension_naxis2=int(round(ext[1].max() - ext[1].min())),
            position_samplesize=float(np.median(scales)),
        )
        if n_without_wcs:
            warnings.append(
                "some image extensions have no usable celestial WCS: footprint from the others"
            )
    else:
        what = "a raster image (no WCS)" if is_raster(path) else "no usable celestial WCS"
        warnings.append(f"{what}: position left empty")
        nx, ny = shapes[0]
        pos = dict(position_dimension_naxis1=nx, position_dimension_naxis2=ny)

    level = calibration_level if calibration_level is not None else (2 if corners_ra else 1)
    checksum, length = _md5(path)
    if is_raster(path):
        content_type = RASTER_TYPES.get(path.suffix.lower(), "application/octet-stream")
    else:
        content_type = "application/fits"

    geo = GEOLOCATIONS.get(coll) or GEOLOCATIONS.get(collection_for(telescope))
    airmass = merged.get("AIRMASS")
    elevation = None
    try:
        if airmass is not None and float(airmass) >= 1.0:
            elevation = 90.0 - math.degrees(math.acos(1.0 / float(airmass)))
    except (TypeError, ValueError):
        pass
    seq = merged.get("EXPNUM")
    proposal_id = _text(merged, "RUNID") or _text(merged, "PROPID") or _text(merged, "PROPOSID")
    proposal_pi = _text(merged, "PI_NAME") or _text(merged, "PI")
    observation = Observation(
        obsid=uri_id(obs_uri),
        observationuri=obs_uri,
        collection=coll,
        observationid=observation_id,
        algorithm_name="exposure",
        type=obstype[:32],
        intent=intent,
        sequencenumber=int(seq) if isinstance(seq, int) and not isinstance(seq, bool) else None,
        metarelease=release,
        proposal_id=proposal_id[:64] if proposal_id else None,
        proposal_pi=proposal_pi[:64] if proposal_pi else None,
        target_name=(_text(merged, "OBJECT") or "")[:64] or None,
        telescope_name=telescope[:64] if telescope else None,
        telescope_geolocationx=geo[0] if geo else None,
        telescope_geolocationy=geo[1] if geo else None,
        telescope_geolocationz=geo[2] if geo else None,
        instrument_name=instrument[:64] if instrument else None,
        environment_elevation=elevation,
    )
    plane = Plane(
        planeid=uri_id(plane_uri),
        obsid=observation.obsid,
        planeuri=plane_uri,
        publisherid=publisher_id,
        productid=product_id[:64],
        metarelease=release,
        datarelease=release,
        dataproducttype="image",
        calibrationlevel=level,
        energy_emband="Optical" if bounds else None,
        energy_bounds_lower=bounds[0] if bounds else None,
        energy_bounds_upper=bounds[1] if bounds else None,
        energy_bounds_width=(bounds[1] - bounds[0]) if bounds else None,
        energy_bandpassname=band,
        time_bounds_lower=mjd,
        time_bounds_upper=(mjd + (exptime or 0.0) / 86400.0) if mjd is not None else None,
        time_bounds_width=(exptime / 86400.0)
        if (mjd is not None and exptime is not None)
        else None,
        time_exposure=exptime,
        time_dimension=1 if mjd is not None else None,
        **pos,
    )
    artifact = Artifact(
        artifactid=uri_id(artifact_uri),
        planeid=plane.planeid,
        uri=artifact_uri,
        producttype="science",
        releasetype="data",
        contenttype=content_type,
        contentlength=length,
        contentchecksum=checksum,
        metarelease=release,
    )
    return observation, plane, artifact, warnings


# -- writing ---------------------------------------------------------------------------------


def write_rows(
    conn: psycopg.Connection, observation: Observation, plane: Plane, artifact: Artifact
) -> None:
    """Upsert the three rows (in the caller's transaction): registering a file again updates
    its rows (same uuid5 ids) and marks them modified."""
    upsert(conn, [observation], "update")
    upsert(conn, [plane], "update")
    upsert(conn, [artifact], "update")


def register_paths(
    dsn: str,
    paths: list[Path],
    *,
    collection: str | None = None,
    authority: str = DEFAULT_AUTHORITY,
    proprietary_fraction: float = 0.0,
    release_after_days: int = DEFAULT_RELEASE_AFTER_DAYS,
    calibration_level: int | None = None,
    progress: bool = False,
) -> RegisterReport:
    """Register every file (directories are searched) as CAOM2 rows; never stops on a bad file."""
    import psycopg
    from tqdm import tqdm

    from caomai_db.database import connect

    files = find_files([Path(p) for p in paths])
    report = RegisterReport()
    today = datetime.now(UTC)
    seen: dict[str, Path] = {}
    with connect(dsn, vector=False) as conn:
        for path in tqdm(files, unit="file", desc="registering", disable=not progress):
            try:
                obs, plane, art, warns = describe(
                    path,
                    collection=collection,
                    authority=authority,
                    proprietary_fraction=proprietary_fraction,
                    release_after_days=release_after_days,
                    calibration_level=calibration_level,
                    today=today,
                )
            except ImageError as exc:
                report.results.append(FileResult(path, False, error=str(exc)))
                continue
            except Exception as exc:  # a header no reader foresaw: report it, go on
                log.debug("registering %s", path, exc_info=True)
                report.results.append(FileResult(path, False, error=f"{type(exc).__name__}: {exc}"))
                continue
            other = seen.get(plane.planeuri)
            if other is not None and other != path:
                warns.append("two files give the same plane; both are its artifacts")
            seen[plane.planeuri] = path
            try:
                with conn.transaction():
                    write_rows(conn, obs, plane, art)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                report.results.append(
                    FileResult(path, False, error=f"database refused the rows: {exc}".strip())
                )
                continue
            report.results.append(
                FileResult(path, True, obs.observationid, plane.planeuri, warnings=warns)
            )
    for r in report.results:
        for w in r.warnings:
            log.info("%s: %s", r.path.name, w)
    return report


# -- command line ----------------------------------------------------------------------------


def cmd_register(args: argparse.Namespace, settings) -> int:  # noqa: ANN001 - Settings
    from caomai_db import database

    report = register_paths(
        database.resolve_dsn(settings),
        [Path(p) for p in args.paths],
        collection=args.collection,
        authority=args.authority,
        proprietary_fraction=args.proprietary_fraction,
        release_after_days=args.release_after,
        calibration_level=args.calibration_level,
        progress=not args.quiet,
    )
    print(report.summary(), file=sys.stdout if report.ok else sys.stderr)
    if not report.results:
        return 2
    return 0 if report.ok else 1


def add_command(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "register",
        help="write CAOM2 Observation/Plane/Artifact rows for FITS (or JPEG/PNG) files",
        description="Register an archive's files as caom2 rows (idempotent: registering again "
        "updates the same rows). Exit status 1 when some files failed, 2 when none was found.",
    )
    p.add_argument("paths", nargs="+", metavar="DIR|FILE", help="files, or directories to search")
    p.add_argument(
        "--collection", help="collection name (default: from TELESCOP, e.g. 'CFHT 3.6m' -> CFHT)"
    )
    p.add_argument(
        "--authority",
        default=DEFAULT_AUTHORITY,
        help=f"authority of the publisherIDs (default {DEFAULT_AUTHORITY})",
    )
    p.add_argument(
        "--proprietary-fraction",
        type=float,
        default=0.0,
        help="share of observations made proprietary (chosen by a hash of their URI; default 0)",
    )
    p.add_argument(
        "--release-after",
        type=int,
        default=DEFAULT_RELEASE_AFTER_DAYS,
        metavar="DAYS",
        help=f"proprietary planes become public DAYS after today (default {DEFAULT_RELEASE_AFTER_DAYS})",
    )
    p.add_argument(
        "--calibration-level",
        type=int,
        choices=range(0, 5),
        help="Plane.calibrationLevel (default: 2 for files with a celestial WCS, else 1)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_register)
