"""32x32 normalised cutouts around detected objects, and their PNG thumbnails.

Normalisation (what the encoder sees, identical in training and loading):

1. take the background-subtracted pixels (``detect.py``) in a 32x32 box centred on the
   object's centroid (nearest pixel);
2. divide by the local background noise at the object (``rms`` map): pixel values become
   signal-to-noise ratios, so the same star on a deep and a shallow exposure differs only in
   how much noise surrounds it;
3. compress with ``asinh(snr / SOFTENING)``: linear near the noise, logarithmic for bright
   cores, so faint wings, trails and saturated plateaus all stay visible;
4. divide by the box's maximum (at least ``asinh(FLOOR / SOFTENING)``): the brightest pixel is
   1, so the code sees shape and the noise texture (a proxy for signal-to-noise) rather than
   flux. A noise peak (snr ~ 3) keeps its noise visible; a bright star is smooth;
5. invalid pixels (NaN, outside the image) are 0 = the background, and flagged.

Step 1 has two variants (``BACKGROUNDS``), recorded with each Map-1 model: ``local`` subtracts
sep's local background mesh; ``image`` (the default) subtracts only the image's median
background, so what the mesh would have taken away - gradients, scattered light, amplifier
steps - stays in the cutout as a pedestal. Objects look normal on a clean sky and different on
a troubled one, which is how background problems reach the fingerprint (the paper's main
source of false positives: "the objects alone appear good; however, the background does not").

The result is float32 in about [-0.3, 1].
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np

from .detect import FLAG_EDGE, FLAG_MASKED

SIZE = 32
#: asinh softening, in units of the background noise
SOFTENING = 3.0
#: a box whose brightest pixel is below FLOOR sigma is scaled as if it reached FLOOR
FLOOR = 5.0
#: what step 1 subtracts
BACKGROUNDS = ("image", "local")
DEFAULT_BACKGROUND = "image"


def snr_boxes(
    data_sub: np.ndarray,
    rms: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    size: int = SIZE,
    offset: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1, 2 and 5 above: the boxes (N, size, size) in signal-to-noise units, before the
    stretch, and flag bits (edge, masked) per object.

    With ``offset`` (the local background minus the image's median background), the box keeps
    the pedestal the local background subtraction removed: an object sitting in scattered
    light, on one side of a gradient or on a bright amplifier shows it (``BACKGROUNDS``).

    ``moments.py`` measures shapes on these (a linear scale); ``normalise`` makes the cutouts.
    """
    n = len(x)
    if n == 0:
        return np.zeros((0, size, size), np.float32), np.zeros(0, np.int32)
    half = size // 2
    ny, nx = data_sub.shape
    xc = np.rint(np.asarray(x)).astype(np.int64)
    yc = np.rint(np.asarray(y)).astype(np.int64)
    offsets = np.arange(size) - half
    rows = yc[:, None] + offsets[None, :]  # (N, size)
    cols = xc[:, None] + offsets[None, :]
    inside_r = (rows >= 0) & (rows < ny)
    inside_c = (cols >= 0) & (cols < nx)
    r = np.clip(rows, 0, ny - 1)
    c = np.clip(cols, 0, nx - 1)
    boxes = data_sub[r[:, :, None], c[:, None, :]].astype(np.float32)  # (N, size, size)
    if offset is not None:
        boxes += offset[r[:, :, None], c[:, None, :]]
    inside = inside_r[:, :, None] & inside_c[:, None, :]
    boxes[~inside] = np.nan
    flags = np.zeros(n, np.int32)
    flags[~inside.all(axis=(1, 2))] |= FLAG_EDGE
    invalid = ~np.isfinite(boxes)
    flags[invalid.any(axis=(1, 2)) & inside.all(axis=(1, 2))] |= FLAG_MASKED
    noise = rms[np.clip(yc, 0, ny - 1), np.clip(xc, 0, nx - 1)].astype(np.float32)
    noise = np.where(np.isfinite(noise) & (noise > 0), noise, np.float32(1.0))
    snr = np.where(invalid, np.float32(0.0), boxes) / noise[:, None, None]
    return snr.astype(np.float32), flags


def normalise(snr: np.ndarray) -> np.ndarray:
    """Steps 3-4 above, on boxes already in units of the background noise."""
    stretched = np.arcsinh(snr / SOFTENING)
    top = np.maximum(stretched.reshape(len(snr), -1).max(axis=1), np.arcsinh(FLOOR / SOFTENING))
    return (stretched / top[:, None, None]).astype(np.float32)


def to_png(cutout: np.ndarray, scale: int = 2) -> bytes:
    """A grey-scale PNG of a normalised cutout (0 -> black... 1 -> white), enlarged ``scale``x.

    Encoded by ``grey_png`` (50 us for 32x32, a quarter of Pillow's time): the loader makes
    one per Map-1 node present in every plane it loads.
    """
    grey = np.clip(cutout, 0.0, 1.0)
    pixels = (255 * grey[::-1]).astype(np.uint8)  # FITS y up -> image rows down
    if scale > 1:
        pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
    return grey_png(pixels)


def grey_png(pixels: np.ndarray) -> bytes:
    """An 8-bit grey-scale PNG of a 2-D uint8 array (row 0 at the top), written directly:
    signature, IHDR, one zlib IDAT (filter 0 on every row), IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    height, width = pixels.shape
    raw = np.zeros((height, width + 1), np.uint8)
    raw[:, 1:] = pixels
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def image_png(data: np.ndarray, max_side: int = 160) -> bytes:
    """A small preview of a whole image (asinh stretch around the sky), for Map-2 prototypes."""
    from PIL import Image

    finite = data[np.isfinite(data)]
    if finite.size == 0:
        finite = np.zeros(1, np.float32)
    sky = float(np.median(finite))
    spread = float(np.median(np.abs(finite - sky))) * 1.4826 or float(np.std(finite)) or 1.0
    step = max(1, int(np.ceil(max(data.shape) / max_side)))
    ny, nx = (data.shape[0] // step) * step, (data.shape[1] // step) * step
    small = np.nanmean(
        np.where(np.isfinite(data[:ny, :nx]), data[:ny, :nx], sky).reshape(
            ny // step, step, nx // step, step
        ),
        axis=(1, 3),
    )
    stretched = np.arcsinh((small - sky) / (3 * spread / np.sqrt(step * step)))
    lo, hi = -1.0, max(float(np.percentile(stretched, 99.5)), 1.0)
    grey = np.clip((stretched - lo) / (hi - lo), 0, 1)
    img = Image.fromarray((255 * grey[::-1]).astype(np.uint8), mode="L")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
