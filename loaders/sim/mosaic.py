"""CCD layout, celestial WCS and the FITS headers of a MegaCam-like exposure.

MegaCam is 36 CCDs of 2048x4612 pixels, 9 across and 4 down, at 0.187"/pixel, with narrow
gaps between columns and wider ones between rows. Any number of CCDs of any size is laid out
the same way (columns chosen so the mosaic is about square). All CCDs share one tangent point
(the pointing), so each CCD's TAN WCS differs only by CRPIX: a position in mosaic pixels is a
position in any CCD's pixels after a shift, and the sky has one consistent projection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

from caomai_db.errors import UsageError

from .conditions import (
    CFHT_LAT,
    CFHT_LON,
    PIXEL_SCALE,
    Conditions,
)

#: Gaps between CCDs (pixels), as in MegaCam: ~13" between columns, ~19" between rows.
GAP_X, GAP_Y = 70, 100


@dataclass(frozen=True)
class Geometry:
    """Number and size of the CCDs, and where each lies in the mosaic."""

    ccds: int
    nx: int
    ny: int

    def __post_init__(self) -> None:
        if self.ccds < 1:
            raise UsageError("an exposure needs at least one CCD")
        if self.nx < 64 or self.ny < 64:
            raise UsageError(f"CCDs of {self.nx}x{self.ny} pixels are too small (64x64 at least)")

    @property
    def ncols(self) -> int:
        return max(1, min(self.ccds, round(math.sqrt(self.ccds * self.ny / self.nx))))

    @property
    def nrows(self) -> int:
        return math.ceil(self.ccds / self.ncols)

    @property
    def width(self) -> int:
        return self.ncols * self.nx + (self.ncols - 1) * GAP_X

    @property
    def height(self) -> int:
        return self.nrows * self.ny + (self.nrows - 1) * GAP_Y

    def origin(self, k: int) -> tuple[int, int]:
        """Mosaic pixel of CCD k's pixel (0, 0); ccd00 is top left, numbered along rows."""
        col, row = k % self.ncols, k // self.ncols
        return col * (self.nx + GAP_X), (self.nrows - 1 - row) * (self.ny + GAP_Y)

    @property
    def centre(self) -> tuple[float, float]:
        """Mosaic pixel of the pointing (centre of the CCDs' bounding box)."""
        xs = [self.origin(k)[0] for k in range(self.ccds)]
        ys = [self.origin(k)[1] for k in range(self.ccds)]
        return (min(xs) + max(xs) + self.nx - 1) / 2.0, (min(ys) + max(ys) + self.ny - 1) / 2.0

    @property
    def area_deg2(self) -> float:
        """Sky area of the mosaic's bounding box (gaps included)."""
        return self.width * self.height * (PIXEL_SCALE / 3600.0) ** 2

    @property
    def megapixels(self) -> float:
        return self.ccds * self.nx * self.ny / 1e6


def ccd_wcs(c: Conditions, geo: Geometry, k: int) -> WCS:
    """TAN WCS of CCD k: north up, east left, rotated by the exposure's small rotation."""
    x0, y0 = geo.origin(k)
    uc, vc = geo.centre
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.crval = [c.ra, c.dec]
    w.wcs.crpix = [uc - x0 + 1.0, vc - y0 + 1.0]
    s = PIXEL_SCALE / 3600.0
    t = math.radians(c.rotation_deg)
    w.wcs.cd = [[-s * math.cos(t), s * math.sin(t)], [s * math.sin(t), s * math.cos(t)]]
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    return w


def mosaic_wcs(c: Conditions, geo: Geometry) -> WCS:
    """The WCS of the whole mosaic pixel grid (CCD 0's WCS shifted to mosaic pixels)."""
    w = ccd_wcs(c, geo, 0)
    x0, y0 = geo.origin(0)
    w.wcs.crpix = [w.wcs.crpix[0] + x0, w.wcs.crpix[1] + y0]
    return w


def _sexagesimal(ra: float, dec: float) -> tuple[str, str]:
    h = ra / 15.0
    hh, mm = int(h), int((h - int(h)) * 60)
    ss = ((h - hh) * 60 - mm) * 60
    sign = "-" if dec < 0 else "+"
    d = abs(dec)
    dd, dm = int(d), int((d - int(d)) * 60)
    ds = ((d - dd) * 60 - dm) * 60
    return f"{hh:02d}:{mm:02d}:{ss:05.2f}", f"{sign}{dd:02d}:{dm:02d}:{ds:04.1f}"


def run_id(mjd: float, index: int) -> str:
    """A CFHT-style queue run id: year, semester (A: Feb-Jul), agency, programme."""
    t = Time(mjd, format="mjd").datetime
    year = t.year if t.month > 1 else t.year - 1
    semester = "A" if 2 <= t.month <= 7 else "B"
    agency = "CFHT"[index % 3 + 1] if index % 4 else "C"
    return f"{year % 100:02d}{semester}{agency}{index % 37 + 1:02d}"


def primary_header(c: Conditions, geo: Geometry) -> fits.Header:
    """Exposure-level keywords, as a MegaCam file's primary HDU carries them."""
    t = Time(c.mjd_obs, format="mjd", scale="utc")
    t.precision = 3
    ra_s, dec_s = _sexagesimal(c.ra, c.dec)
    h = fits.Header()
    h["NEXTEND"] = (geo.ccds, "number of image extensions")
    h["FILENAME"] = (c.exposure_id, "base filename at acquisition")
    h["ORIGIN"] = ("CFHT", "Canada-France-Hawaii Telescope")
    h["TELESCOP"] = ("CFHT 3.6m", "telescope name")
    h["INSTRUME"] = ("MegaPrime", "instrument name")
    h["DETECTOR"] = ("MegaCam", "science detector")
    h["OBSERVAT"] = ("CFHT", "observatory")
    h["OBS_LAT"] = (CFHT_LAT, "observatory latitude (deg)")
    h["OBS_LONG"] = (CFHT_LON, "observatory east longitude (deg)")
    h["EXPNUM"] = (c.exposure_id, "exposure identifier")
    h["OBSTYPE"] = ("OBJECT", "observation type")
    h["EXPTYPE"] = ("OBJECT", "exposure type")
    h["RUNID"] = (run_id(c.mjd_obs, c.index), "queue run id")
    h["OBJECT"] = (f"SIM{c.index:05d}", "target name")
    h["FILTER"] = (c.filter, "filter name")
    h["EXPTIME"] = (round(c.exptime, 3), "integration time (s)")
    h["DARKTIME"] = (round(c.exptime + 1.2, 3), "dark current time (s)")
    h["DATE-OBS"] = (t.isot, "UTC start of the exposure")
    h["UTC-OBS"] = (t.isot.split("T")[1], "UTC time at start of exposure")
    h["MJD-OBS"] = (round(c.mjd_obs, 8), "modified Julian date at start of exposure")
    h["RA"] = (ra_s, "telescope right ascension")
    h["DEC"] = (dec_s, "telescope declination")
    h["RA_DEG"] = (round(c.ra, 6), "telescope RA (deg)")
    h["DEC_DEG"] = (round(c.dec, 6), "telescope Dec (deg)")
    h["EQUINOX"] = (2000.0, "equinox of RA and Dec")
    h["RADESYS"] = ("ICRS", "reference frame")
    h["HA"] = (round(c.hour_angle, 4), "hour angle at start (h)")
    h["AIRMASS"] = (round(c.airmass, 4), "airmass at start of exposure")
    h["ZD"] = (round(math.degrees(math.acos(1.0 / c.airmass)), 3), "zenith distance (deg)")
    h["PIXSCAL1"] = (PIXEL_SCALE, "pixel scale, axis 1 (arcsec/pixel)")
    h["PIXSCAL2"] = (PIXEL_SCALE, "pixel scale, axis 2 (arcsec/pixel)")
    h["SIMULATD"] = (True, "rendered by caomai simulate (GalSim)")
    return h


def ccd_header(
    c: Conditions, geo: Geometry, k: int, gain: float, rdnoise: float, saturate: float
) -> fits.Header:
    """Per-CCD keywords: EXTNAME, detector section, gains, read noise, saturation and WCS."""
    x0, y0 = geo.origin(k)
    h = fits.Header()
    h["INHERIT"] = (True, "inherit the primary header")
    h["EXTNAME"] = (f"ccd{k:02d}", "extension name")
    h["CCDNUM"] = (k, "CCD number")
    h["CCDNAME"] = (f"sim-{k:02d}", "CCD name")
    h["CCDSIZE"] = (f"[1:{geo.nx},1:{geo.ny}]", "detector size")
    h["DETSIZE"] = (f"[1:{geo.width},1:{geo.height}]", "mosaic size")
    h["DETSEC"] = (f"[{x0 + 1}:{x0 + geo.nx},{y0 + 1}:{y0 + geo.ny}]", "mosaic section")
    h["DATASEC"] = (f"[1:{geo.nx},1:{geo.ny}]", "data section")
    half = geo.nx // 2
    h["ASECA"] = (f"[1:{half},1:{geo.ny}]", "amplifier A section")
    h["ASECB"] = (f"[{half + 1}:{geo.nx},1:{geo.ny}]", "amplifier B section")
    h["GAIN"] = (round(gain, 4), "gain (e-/ADU)")
    h["GAINA"] = (round(gain, 4), "gain of amplifier A (e-/ADU)")
    h["GAINB"] = (round(gain, 4), "gain of amplifier B (e-/ADU)")
    h["RDNOISE"] = (round(rdnoise, 3), "read noise (e-)")
    h["RDNOISEA"] = (round(rdnoise, 3), "read noise of amplifier A (e-)")
    h["RDNOISEB"] = (round(rdnoise, 3), "read noise of amplifier B (e-)")
    h["SATURATE"] = (round(saturate, 1), "saturation level (ADU)")
    h["MAXLIN"] = (round(0.92 * saturate, 1), "maximum linearity (ADU)")
    h["BUNIT"] = ("ADU", "pixel unit")
    h.extend(ccd_wcs(c, geo, k).to_header(), update=True)
    for key in ("DATEREF", "MJDREF", "MJDREFI", "MJDREFF"):
        h.remove(key, ignore_missing=True)
    return h


def pixel_to_world(w: WCS, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ra, dec = w.all_pix2world(np.asarray(x, float), np.asarray(y, float), 0)
    return np.asarray(ra), np.asarray(dec)
