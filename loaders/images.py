"""Reading image artifacts: every 2-D image in a file, as float32 with its WCS when usable.

Shared by registration (footprints, dimensions) and loading (pixels). Real archive files bring
int16 data with BZERO/BSCALE, tile-compressed HDUs, NaNs, missing or partial WCS and odd
headers; some "images" are not FITS at all (a JPEG from a press release). Everything that can
be read becomes an ``ImageHDU``; anything that cannot raises ``ImageError`` with a message a
person can act on, so callers record it and go on.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS, FITSFixedWarning

from caomai_db.errors import ImageError

log = logging.getLogger(__name__)

#: Suffixes read through Pillow as single-plane images without WCS.
RASTER_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff"}
#: Header keywords that give the saturation level, in order of preference.
SATURATION_KEYS = ("SATURATE", "SATLEVEL", "MAXLIN")


@dataclass
class ImageHDU:
    """One 2-D image of a file."""

    index: int
    """HDU index in the file (0 = primary); 0 for non-FITS images."""
    extname: str | None
    data: np.ndarray
    """2-D float32, native byte order; NaN where the file marks pixels invalid."""
    header: fits.Header
    wcs: WCS | None
    """Celestial WCS, or None when the header has no usable one."""
    saturation: float | None
    gain: float | None

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape  # type: ignore[return-value]


def is_raster(path: Path) -> bool:
    return path.suffix.lower() in RASTER_SUFFIXES


def primary_header(path: Path) -> fits.Header:
    """The exposure-level header (primary HDU); an empty one for non-FITS images."""
    path = Path(path)
    if is_raster(path):
        return fits.Header()
    try:
        with _quiet(), fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            return hdul[0].header.copy()
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise ImageError(f"{path.name}: not a readable FITS file ({exc})") from exc


def celestial_wcs(header: fits.Header) -> WCS | None:
    """The header's celestial WCS if it has one that converts pixels to sky, else None."""
    if "CTYPE1" not in header and "CTYPE2" not in header:
        return None
    try:
        with _quiet():
            wcs = WCS(header, naxis=2, fix=True)
            if not wcs.has_celestial:
                return None
            wcs = wcs.celestial
            ny, nx = header.get("NAXIS2", 1), header.get("NAXIS1", 1)
            world = wcs.pixel_to_world_values([0, nx - 1], [0, ny - 1])
        if not np.all(np.isfinite(np.asarray(world, dtype=float))):
            return None
        return wcs
    except Exception as exc:  # astropy raises many kinds for broken WCS keywords
        log.warning("ignoring unusable WCS (%s)", exc)
        return None


def read_images(path: Path) -> Iterator[ImageHDU]:
    """Yield every 2-D image in the file, one at a time (a full mosaic never sits in memory).

    Raises ImageError when the file cannot be opened, is truncated, or holds no image.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if is_raster(path):
        yield _read_raster(path)
        return
    found = 0
    try:
        with _quiet(), fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            primary = hdul[0].header
            for index, hdu in enumerate(hdul):
                if not isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU):
                    continue
                if hdu.header.get("NAXIS", 0) == 0 and not isinstance(hdu, fits.CompImageHDU):
                    continue
                data = hdu.data
                if data is None:
                    continue
                data = _as_2d(np.asarray(data), path, index)
                header = _merged_header(primary, hdu.header) if index else hdu.header.copy()
                found += 1
                yield ImageHDU(
                    index=index,
                    extname=hdu.header.get("EXTNAME") if index else None,
                    data=data,
                    header=header,
                    wcs=celestial_wcs(hdu.header),
                    saturation=_first_float(header, SATURATION_KEYS),
                    gain=_first_float(header, ("GAIN",)),
                )
    except ImageError:
        raise
    except (OSError, ValueError, TypeError, IndexError, EOFError) as exc:
        raise ImageError(f"{path.name}: cannot read FITS data ({exc})") from exc
    if found == 0:
        raise ImageError(f"{path.name}: no 2-D image in this file")


def _as_2d(data: np.ndarray, path: Path, index: int) -> np.ndarray:
    """float32 in native byte order; a cube with one plane is that plane."""
    data = np.squeeze(data)
    if data.ndim != 2:
        raise ImageError(
            f"{path.name}[{index}]: image has {data.ndim} dimensions {data.shape}; caomai reads 2-D images"
        )
    if data.shape[0] < 8 or data.shape[1] < 8:
        raise ImageError(f"{path.name}[{index}]: image of {data.shape} pixels is too small")
    out = data.astype(np.float32, copy=True)
    if not out.dtype.isnative:
        out = out.byteswap().view(out.dtype.newbyteorder())
    out[~np.isfinite(out)] = np.nan
    return out


def _read_raster(path: Path) -> ImageHDU:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            gray = img.convert("F")
            data = np.asarray(gray, dtype=np.float32)[::-1].copy()  # FITS y axis points up
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(f"{path.name}: not a readable image ({exc})") from exc
    header = fits.Header()
    header["NAXIS"] = 2
    header["NAXIS1"], header["NAXIS2"] = data.shape[1], data.shape[0]
    return ImageHDU(0, None, data, header, None, 255.0, None)


def _merged_header(primary: fits.Header, ext: fits.Header) -> fits.Header:
    """Extension keywords over the primary's (MEF convention: exposure keywords live in HDU 0).

    Built from the cards' 80-character images in one parse: assigning card by card made
    astropy re-validate the header at every step, 18 ms an extension, a tenth of a small
    plane's whole detection time."""
    skip = {"SIMPLE", "EXTEND", "BITPIX", "COMMENT", "HISTORY", ""}
    # keyword -> card image: a later card replaces an earlier one of the same keyword (the
    # extension's over the primary's) and keeps its place, as assigning one by one did
    cards: dict[str, str] = {}
    for card in primary.cards:
        if card.keyword not in skip and not card.keyword.startswith("NAXIS"):
            cards[card.keyword] = card.image
    for card in ext.cards:
        if card.keyword not in ("COMMENT", "HISTORY", ""):
            cards[card.keyword] = card.image
    return fits.Header.fromstring("".join(cards.values()))


def _first_float(header: fits.Header, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = header.get(key)
        try:
            if value is not None and np.isfinite(float(value)):
                return float(value)
        except (TypeError, ValueError):
            continue
    return None


class _quiet(warnings.catch_warnings):
    """Astropy warns at length about non-standard headers; callers report what matters."""

    def __enter__(self):  # type: ignore[override]
        out = super().__enter__()
        warnings.simplefilter("ignore", AstropyWarning)
        warnings.simplefilter("ignore", FITSFixedWarning)
        return out
