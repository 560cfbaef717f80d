"""Reading real and broken image files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from caomai_loaders.images import ImageError, primary_header, read_images

from .realframes import real_frames

FRAMES = real_frames()


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_real_frames_read_as_2d_float32(name: str) -> None:
    images = list(read_images(FRAMES[name]))
    assert images, name
    for img in images:
        assert img.data.ndim == 2 and img.data.dtype == np.float32
        assert min(img.shape) >= 8
        finite = img.data[np.isfinite(img.data)]
        assert finite.size > 0.5 * img.data.size
        assert finite.std() > 0


def test_compressed_copies_give_the_same_pixels() -> None:
    plain = next(read_images(FRAMES["m13"])).data
    for name in ("m13_rice", "m13_gzip"):
        data = next(read_images(FRAMES[name])).data
        assert data.shape == plain.shape
        assert np.allclose(data, plain, rtol=0, atol=1e-3 * np.nanmax(np.abs(plain)))


def test_wcs_when_the_header_has_one() -> None:
    a370 = next(read_images(FRAMES["a370II"]))
    assert a370.wcs is not None
    ra, dec = a370.wcs.pixel_to_world_values(a370.shape[1] / 2, a370.shape[0] / 2)
    # Abell 370 lies at RA 02h39m53s, Dec -01d34'
    assert abs(float(ra) - 39.97) < 0.2 and abs(float(dec) + 1.57) < 0.2
    jpeg = next(read_images(FRAMES["hubble_deep_field"]))
    assert jpeg.wcs is None


def test_int16_with_bzero_is_scaled(tmp_path: Path) -> None:
    raw = (np.arange(64 * 64, dtype=np.int32).reshape(64, 64) % 3000).astype(np.int16)
    hdu = fits.PrimaryHDU(raw)
    hdu.header["BZERO"] = 32768
    hdu.header["BSCALE"] = 1
    path = tmp_path / "int16.fits"
    hdu.writeto(path)
    img = next(read_images(path))
    assert img.data.dtype == np.float32
    assert img.data.min() == pytest.approx(32768)


def test_truncated_and_garbage_files_are_clear_errors(tmp_path: Path) -> None:
    good = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((200, 200), np.float32))])
    full = tmp_path / "full.fits"
    good.writeto(full)
    cut = tmp_path / "truncated.fits"
    cut.write_bytes(full.read_bytes()[: 2880 * 5])
    with pytest.raises(ImageError, match="truncated.fits"):
        list(read_images(cut))
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"this is not FITS at all" * 200)
    with pytest.raises(ImageError, match="junk.fits"):
        list(read_images(junk))
    with pytest.raises(ImageError, match="junk.fits"):
        primary_header(junk)
    table = tmp_path / "table.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.BinTableHDU.from_columns([fits.Column(name="x", format="E", array=np.ones(3))]),
        ]
    ).writeto(table)
    with pytest.raises(ImageError, match="no 2-D image"):
        list(read_images(table))
    with pytest.raises(ImageError, match="no such file"):
        list(read_images(tmp_path / "missing.fits"))


def test_cube_with_several_planes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cube.fits"
    fits.PrimaryHDU(np.ones((3, 64, 64), np.float32)).writeto(path)
    with pytest.raises(ImageError, match="3 dimensions"):
        list(read_images(path))


def test_mef_extensions_inherit_exposure_keywords(tmp_path: Path) -> None:
    primary = fits.PrimaryHDU()
    primary.header["FILTER"] = "r.MP9602"
    primary.header["EXPTIME"] = 300.0
    ext = fits.ImageHDU(np.ones((64, 64), np.float32), name="ccd07")
    ext.header["SATURATE"] = 65000
    path = tmp_path / "mef.fits"
    fits.HDUList([primary, ext]).writeto(path)
    (img,) = list(read_images(path))
    assert img.index == 1 and img.extname == "CCD07"
    assert img.header["FILTER"] == "r.MP9602" and img.saturation == 65000
