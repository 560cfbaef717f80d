"""One file -> its CAOM2 Observation, Plane and Artifact rows (``caom2_rows``), from its
headers (``register_keywords``) and the footprint of its image extensions (``footprint``);
missing keywords get a default and a warning."""

from __future__ import annotations

import hashlib
import math
import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from .caom2_rows import Artifact, Observation, Plane, uri_id
from .footprint import footprint
from .images import is_raster, primary_header, read_images
from .register_keywords import (
    CALIBRATION_TYPES,
    EXPTIME_KEYS,
    GEOLOCATIONS,
    INSTRUMENT_TELESCOPES,
    MEGACAM_BANDS,
    OBSID_KEYS,
    RASTER_TYPES,
    _clean_id,
    _stem,
    _text,
    collection_for,
    filter_name,
    parse_start_mjd,
)


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
    band = filter_name(merged)
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
