"""What `caomai register` reads from FITS headers: the keyword tables (filters, exposure times,
observation ids, calibration types, telescopes, MegaCam's bands) and the small readers of
identifiers and dates."""

from __future__ import annotations

import math
import re
from pathlib import Path

from astropy.time import Time

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


def filter_name(header) -> str | None:  # noqa: ANN001 - astropy Header
    """The filter a header names (``FILTER_KEYS`` in order), None when it names none: a
    number (a filter wheel slot) or CLEAR says nothing about the passband."""
    for key in FILTER_KEYS:
        text = _text(header, key)
        if text and not re.fullmatch(r"[-+]?\d+(\.\d*)?", text) and text.upper() != "CLEAR":
            return text[:64]
    return None


def sky_band(header) -> str | None:  # noqa: ANN001 - astropy Header
    """ "INSTRUME FILTER" of an exposure, the key of a clear sky's brightness per pixel (the
    same filter name on two cameras with other pixels or throughput is another sky); None
    without a filter."""
    band = filter_name(header)
    if band is None:
        return None
    instrument = _text(header, "INSTRUME") or _text(header, "DETECTOR") or ""
    return f"{instrument} {band}".strip()


def parse_start_mjd(header) -> tuple[float | None, str | None]:  # noqa: ANN001
    """MJD of the exposure start and the keyword(s) it came from."""

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


def collection_for(telescope: str | None) -> str:
    if not telescope:
        return "UNKNOWN"
    key = telescope.strip().upper()
    if key in TELESCOPE_COLLECTIONS:
        return TELESCOPE_COLLECTIONS[key]
    first = re.sub(r"[^A-Z0-9_-]", "", key.split()[0]) if key.split() else ""
    return first or "UNKNOWN"
