"""Source detection on one image: background, noise and objects, with sep (SExtractor's core).

Why these choices:

- the background and its noise come from sep's mesh estimate (``bw`` x ``bh`` pixel boxes,
  3x3 median filter), with invalid pixels (NaN: masked, gaps, bad columns) masked out, so a
  chip gap or a dead amplifier neither biases the background nor becomes a "source";
- objects are groups of at least ``minarea`` connected pixels above the local background, at
  ``thresh`` times the noise of the image after sep's 3x3 matched filter. The filter lowers the
  noise to ~0.38 of a pixel's, so 3 (the default) is ~1.1 sigma per pixel, like SExtractor's
  usual 1.5 sigma with its own filter (the paper: "five connected pixels 2 sigma above the
  background"); on pure noise it finds ~10 spurious objects per Mpix, where 2.5 finds ~150
  and 2 floods a frame with thousands;
- saturated pixels (at or above the header's SATURATE, or the image maximum when a large flat
  plateau shows the detector clipped) are flagged on the objects that touch them, not removed:
  saturation and bleed trails are content the maps must see;
- long straight features (satellite and aircraft trails) are found whole by a second pass
  (``segments``): a trail a few tenths of the noise per pixel breaks, at full resolution, into
  dozens of noise-like fragments no map can tell from noise. Averaged over ``segment_bin`` x
  ``segment_bin`` pixels its signal-to-noise grows that many times, and sep finds it as one
  long thin object. Such an object (at least ``segment_min_length`` pixels of major axis,
  ``segment_min_elongation`` times longer than wide) becomes one detection flagged
  ``FLAG_SEGMENT`` at its centroid, and the full-resolution fragments lying on it are dropped:
  the trail counts once, as a trail. Two kinds of line are left to the first pass: saturated
  ones (a bleed trail, detected whole with its star) and lines within ``segment_max_column_deg``
  of the columns near an amplifier boundary or the CCD's sides (``column_zones``: the step
  between two amplifiers' levels is column-aligned by construction, and the background mesh
  extrapolates at the sides), or every column-aligned line when the header does not say where
  the amplifiers meet (a satellite crossing along the columns is then lost, 1 in 18). A line
  is saturated when more than ``segment_max_saturated`` of its axis is: a trail crossing a
  saturated star stays;
- trails too faint for any threshold (about 1 sigma per binned pixel) are found by summing
  the binned image along every line (``lines``, ``loaders/lines.py``); a line neither pass
  found before becomes one more ``FLAG_SEGMENT`` detection, its fragments dropped the same way.

The result keeps the background-subtracted pixels and the noise map, so cutouts can be
normalised in units of the local noise (see ``cutouts.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import sep

from caomai_db.errors import DetectionError

from . import lines
from .images import ImageHDU

#: Flag bits added to sep's own (sep uses bits 0..7).
FLAG_SATURATED = 1 << 8
FLAG_MASKED = 1 << 9
FLAG_EDGE = 1 << 10
#: a long straight feature found by the binned second pass (``_segments``)
FLAG_SEGMENT = 1 << 11

#: Catalogue columns kept per object (sep names).
CATALOG_FIELDS = ("x", "y", "a", "b", "theta", "flux", "peak", "flag", "npix")


@dataclass(frozen=True)
class DetectParams:
    thresh: float = 3.0
    minarea: int = 5
    bw: int = 64
    bh: int = 64
    deblend_cont: float = 0.005
    #: at most this many objects per image are kept from sep (a pathological frame can hold
    #: hundreds of thousands of noise "objects"); the total is still counted
    max_per_image: int = 200_000
    #: the second pass for trails (see the module's docstring); False in model files from
    #: before it, so an older Map 1 loads what it was trained on
    segments: bool = True
    segment_bin: int = 4
    segment_thresh: float = 2.0
    segment_min_length: float = 40.0
    segment_min_elongation: float = 8.0
    segment_max_column_deg: float = 5.0
    #: a line with more of its axis saturated is a bleed or a bright star's spike, not a trail
    segment_max_saturated: float = 0.05
    #: the line search for trails too faint for any pass that thresholds pixels (see the
    #: module's docstring); False in model files from before it
    lines: bool = True
    line_bin: int = 8
    #: signal-to-noise of a line over its whole length, in units of the clipped noise. 9:
    #: since the column and saturation guards, 10 was more than the false lines need (trail
    #: bench: trailed exposures found 0.836 -> 0.873 on seed 11, 0.727 -> 0.773 on seed 12;
    #: untrailed with a line 0.009 -> 0.009 of 700, 0.003 -> 0.005 of 378); 8 found more
    #: but added false lines on both. Model files keep the value they were trained with
    line_thresh: float = 9.0
    #: a found line's own signal-to-noise is measured above its neighbours' level, as the
    #: search's is (``lines.find``); False in model files from before it
    line_baseline: bool = True
    #: the line sums' spread above which they are scaled down (``lines.find``); 0 (off) in
    #: model files from before it. 0.95: pure noise reads 0.81-0.89, crowded fields 1.1-1.5
    line_spread_ref: float = 0.95
    #: a line search's line is a bleed or a spike when its longest saturated run (not all its
    #: saturated positions) is over ``segment_max_saturated`` of it: a trail across a crowded
    #: field crosses several saturated stars. False in model files from before it
    line_saturated_run: bool = True
    #: binned pixels are clipped at this many sigma, so stars and galaxies on a line weigh
    #: no more than the noise does
    line_clip: float = 1.0
    line_min_length: float = 128.0
    line_max_column_deg: float = 3.0
    line_max: int = 3
    #: where the header says where the amplifiers meet (``amplifier_boundaries``), a line
    #: along the columns is left out only within this many pixels of a boundary (an
    #: amplifier step, smeared by the 64-pixel background mesh over three mesh cells a side)
    #: or ``edge_margin`` of the CCD's sides (where the mesh extrapolates); elsewhere it is a
    #: trail (bleeds are told by saturation). Without such a header every column-aligned line
    #: is left out, as before
    amp_margin: float = 192.0
    edge_margin: float = 32.0


@dataclass
class Detections:
    """Objects found on one image, with what cutouts need."""

    catalog: dict[str, np.ndarray]
    """Per-object arrays: x, y (0-based, FITS axis 1/2), a, b, theta, flux, peak, flag, npix."""
    data_sub: np.ndarray
    """Background-subtracted pixels, float32, NaN where invalid."""
    back_offset: np.ndarray
    """The local background minus its median over the image: what local subtraction removed
    beyond a flat sky (gradients, scattered light, amplifier steps)."""
    rms: np.ndarray
    """Background noise per pixel (float32)."""
    background_level: float
    background_rms: float
    saturation: float | None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.catalog["x"])


def detect(image: ImageHDU, params: DetectParams | None = None) -> Detections:
    """Background-subtract and extract the objects of one 2-D image."""
    params = params or DetectParams()
    data = np.ascontiguousarray(image.data, dtype=np.float32)
    valid = np.isfinite(data)
    n_valid = int(valid.sum())
    if n_valid < 0.01 * data.size or n_valid < 64:
        raise DetectionError("all or nearly all pixels are invalid (NaN or masked)")
    if n_valid == data.size:
        # nothing to mask (most frames): sep gives the same numbers without a mask, a little
        # faster, and the pixels need no filled copy (sep and the subtraction only read them)
        mask = None
        filled = data
        finite_values = data.reshape(-1)
    else:
        mask = ~valid
        filled = np.where(valid, data, np.float32(0.0)).astype(np.float32, copy=False)
        finite_values = data[valid]
    if float(np.ptp(finite_values)) == 0.0:
        raise DetectionError("the image is constant: nothing to detect")

    bw = int(min(params.bw, max(8, data.shape[1] // 2)))
    bh = int(min(params.bh, max(8, data.shape[0] // 2)))
    try:
        bkg = sep.Background(filled, mask=mask, bw=bw, bh=bh, fw=3, fh=3)
    except Exception as exc:  # sep raises plain Exception subclasses with C messages
        raise DetectionError(f"background estimation failed: {exc}") from exc
    back = bkg.back(dtype=np.float32)
    rms = bkg.rms(dtype=np.float32)
    global_rms = float(bkg.globalrms)
    if not np.isfinite(global_rms) or global_rms <= 0:
        # a noiseless image (simulated, or a rendered JPEG): use a robust spread instead
        mad = float(np.median(np.abs(finite_values - np.median(finite_values))))
        global_rms = 1.4826 * mad if mad > 0 else float(np.std(finite_values)) or 1.0
    bad_rms = ~np.isfinite(rms) | (rms <= 0)
    if bad_rms.any():
        rms[bad_rms] = global_rms
    data_sub = filled - back
    if mask is not None:
        data_sub[mask] = 0.0

    objects = _extract(data_sub, rms, mask, params)
    if params.segments or params.lines:
        objects = _with_segments(objects, data_sub, rms, mask, data, image, params)
    n_total = len(objects)
    if n_total > params.max_per_image:
        # keep the brightest; the count is what the fingerprint weight needs
        keep = np.argsort(-objects["flux"], kind="stable")[: params.max_per_image]
        objects = objects[np.sort(keep)]

    saturation = _saturation_level(image, finite_values)
    catalog = {name: np.asarray(objects[name]) for name in CATALOG_FIELDS}
    catalog["x"] = catalog["x"].astype(np.float64)
    catalog["y"] = catalog["y"].astype(np.float64)
    catalog["flag"] = catalog["flag"].astype(np.int32)
    if saturation is not None and len(objects):
        # a peak within 0.1% of saturation (peak is background-subtracted; add it back)
        level = back[
            np.clip(objects["ycpeak"], 0, data.shape[0] - 1),
            np.clip(objects["xcpeak"], 0, data.shape[1] - 1),
        ]
        saturated = objects["cpeak"] + level >= 0.999 * saturation
        catalog["flag"][saturated] |= FLAG_SATURATED
    if mask is not None:
        data_sub[mask] = np.nan
    return Detections(
        catalog=catalog,
        data_sub=data_sub,
        back_offset=back - np.float32(np.median(back)),
        rms=rms,
        background_level=float(bkg.globalback),
        background_rms=global_rms,
        saturation=saturation,
        extra={"n_total": float(n_total)},
    )


def _extract(data_sub: np.ndarray, rms: np.ndarray, mask: np.ndarray | None, params: DetectParams):
    """sep.extract, growing sep's buffers when a crowded or broken frame overflows them."""
    pixstack = 300_000
    for _ in range(4):
        sep.set_extract_pixstack(pixstack)
        sep.set_sub_object_limit(4096)
        try:
            return sep.extract(
                data_sub,
                params.thresh,
                err=rms,
                mask=mask,
                minarea=params.minarea,
                deblend_cont=params.deblend_cont,
            )
        except Exception as exc:
            message = str(exc)
            if "pixel buffer full" in message or "pixstack" in message.lower():
                pixstack *= 8
                continue
            if "deblending overflow" in message or "sub_object" in message:
                # too many blends: extract without deblending rather than fail the image
                return sep.extract(
                    data_sub,
                    params.thresh,
                    err=rms,
                    mask=mask,
                    minarea=params.minarea,
                    deblend_cont=1.0,
                )
            raise DetectionError(f"source extraction failed: {message}") from exc
    raise DetectionError("source extraction failed: the frame is too crowded or too noisy")


def _with_segments(objects, data_sub, rms, mask, data, image, params: DetectParams):
    """``objects`` with the long straight features of the binned pass and the line search
    added (flagged ``FLAG_SEGMENT``) and the full-resolution fragments lying on them removed."""
    found = []
    # where a column-aligned line is an amplifier step (read from the header once per image)
    zones = column_zones(image, params)
    if params.segments:
        found.append(_segments(data_sub, rms, mask, data, image, params, zones))
    if params.lines:
        found.append(_lines(data_sub, rms, mask, data, image, params, found, objects.dtype, zones))
    found = [f.astype(objects.dtype) for f in found if f is not None and len(f)]
    if not found:
        return objects
    segs = np.concatenate(found)
    x, y = objects["x"], objects["y"]
    drop = np.zeros(len(objects), bool)
    for s in segs:
        ux, uy = np.cos(s["theta"]), np.sin(s["theta"])
        across = np.abs(-(x - s["x"]) * uy + (y - s["y"]) * ux)
        # a fragment: its centre on the line, smaller than the segment. Along the whole line,
        # not only the part the binned pass found: a trail crosses the image, and its faint
        # stretches break into fragments the binned pass may find as separate pieces or not
        drop |= (across <= max(3.0, 1.5 * s["b"])) & (objects["npix"] < s["npix"])
    return np.concatenate([objects[~drop], segs])


def _lines(data_sub, rms, mask, data, image, params: DetectParams, found, dtype: np.dtype, zones):
    """The faint lines of ``lines.find`` as rows of sep's dtype (flag ``FLAG_SEGMENT``),
    less those the binned pass found already (``found``) and those saturated along their
    axis (a bright star's spike); ``zones``: ``column_zones`` of the image."""
    k = int(params.line_bin)
    binned_image = binned(data_sub, rms, mask, k)
    if binned_image is None:
        return None
    pixels, noise, bmask = binned_image
    known = [
        (float(r["x"]), float(r["y"]), float(r["theta"])) for f in found if f is not None for r in f
    ]
    level = 0.999 * float(image.saturation) if image.saturation and image.saturation > 0 else None
    rows = []
    for line in lines.find(
        pixels / noise,
        bmask,
        k,
        thresh=params.line_thresh,
        clip=params.line_clip,
        min_length=params.line_min_length,
        max_column_deg=params.line_max_column_deg,
        max_lines=params.line_max,
        column_zones=zones,
        baseline=params.line_baseline,
        spread_ref=params.line_spread_ref,
    ):
        if any(line.covers(x, y, t, k) for x, y, t in known):
            continue
        half = line.length / 2.0
        if level is not None and (
            lines.saturated_share(
                data,
                line.x,
                line.y,
                line.theta,
                half,
                level,
                width=k / 2.0 + 1.0,
                longest_run=params.line_saturated_run,
            )
            > params.segment_max_saturated
        ):
            continue
        rows.append(line.row(pixels, k))
    if not rows:
        return None
    out = np.zeros(len(rows), dtype=dtype)
    for i, values in enumerate(rows):
        for name, value in values.items():
            out[name][i] = value
    out["flag"] |= FLAG_SEGMENT
    return out


def _segments(data_sub, rms, mask, data, image, params: DetectParams, zones):
    """Long thin objects of the ``segment_bin``-binned image, in full-resolution units, as
    rows of sep's dtype (flag ``FLAG_SEGMENT``); saturated ones left out, and column-aligned
    ones within ``zones`` (``column_zones``; all of them when None).

    ``data_sub`` is 0 where ``mask`` (None: nothing masked) marks invalid pixels; a binned
    pixel is the mean of its valid pixels, masked when fewer than half are. The noise map is
    sep's smooth mesh, read at each binned pixel's centre."""
    k = int(params.segment_bin)
    binned_image = binned(data_sub, rms, mask, k)
    if binned_image is None:
        return None
    binned_pixels, noise, bmask = binned_image
    try:
        found = sep.extract(
            binned_pixels,
            params.segment_thresh,
            err=noise,
            mask=bmask,
            minarea=max(5, int(params.segment_min_length / k / 4)),
            deblend_cont=1.0,
        )
    except Exception:  # the binned pass is an extra: a failure leaves the first pass's objects
        return None
    a, b = found["a"] * k, found["b"] * k
    column = np.abs(np.abs(np.degrees(found["theta"])) - 90.0) < params.segment_max_column_deg
    if zones is not None:
        x = found["x"] * k + (k - 1) / 2.0
        column &= np.array([any(abs(xi - z) < m for z, m in zones) for xi in x], bool)
    keep = (
        (a >= params.segment_min_length)
        & (a >= params.segment_min_elongation * np.maximum(b, 1e-3))
        & ~column
    )
    if image.saturation is not None and image.saturation > 0:
        level = 0.999 * float(image.saturation)
        for j in np.flatnonzero(keep):
            keep[j] = _saturated_share(data, found[j], k, level) <= params.segment_max_saturated
    segs = found[keep].copy()
    # binned pixel i covers full-resolution pixels k i .. k i + k - 1: its centre is k i + (k-1)/2
    for name in ("x", "y"):
        segs[name] = segs[name] * k + (k - 1) / 2.0
    for name in ("a", "b", "xpeak", "ypeak", "xcpeak", "ycpeak", "xmin", "xmax", "ymin", "ymax"):
        segs[name] *= k
    for name in ("x2", "y2", "xy", "npix", "flux"):
        segs[name] *= k * k
    segs["flag"] |= FLAG_SEGMENT
    return segs


def binned(data_sub: np.ndarray, rms: np.ndarray, mask: np.ndarray | None, k: int):
    """``(pixels, noise, mask)`` of the image averaged over ``k`` x ``k`` pixels, or None
    for an image under 8 binned pixels a side.

    ``data_sub`` is 0 where ``mask`` (None: nothing masked) marks invalid pixels; a binned
    pixel is the mean of its valid pixels, masked (and 0) when fewer than half are. The noise
    is sep's smooth mesh read at each binned pixel's centre, over the root of the pixels."""
    ny, nx = (data_sub.shape[0] // k) * k, (data_sub.shape[1] // k) * k
    if ny < 8 * k or nx < 8 * k:
        return None
    total = _block_sums(data_sub[:ny, :nx], k)
    centre = rms[k // 2 : ny : k, k // 2 : nx : k]
    if mask is None:
        # the mean of k*k pixels has 1/k of their noise
        return total / np.float32(k * k), (centre / np.float32(k)).astype(np.float32), None
    n_ok = np.float32(k * k) - _block_sums(mask[:ny, :nx].astype(np.float32), k)
    pixels = total / np.maximum(n_ok, 1)
    noise = (centre / np.sqrt(np.maximum(n_ok, 1))).astype(np.float32)
    bmask = n_ok < (k * k) // 2
    pixels[bmask] = 0.0
    return pixels, noise, bmask


def _block_sums(pixels: np.ndarray, k: int) -> np.ndarray:
    """Sums over ``k`` x ``k`` blocks (float32) of an image whose sides are multiples of
    ``k``: ``k`` strided row additions, then ``k`` strided column ones. numpy's sum over
    the two block axes of a 4-D view does the same arithmetic several times slower
    (4.3 ms against 0.7 ms for a 1-Mpix CCD at k = 4)."""
    rows = pixels[0::k].astype(np.float32, copy=True)
    for i in range(1, k):
        rows += pixels[i::k]
    total = rows[:, 0::k].copy()
    for i in range(1, k):
        total += rows[:, i::k]
    return total


def _saturated_share(data: np.ndarray, row, k: int, level: float) -> float:
    """Share of the pixels along a binned-pass object's major axis at or above ``level``."""
    # a uniform line of length L has a second-moment semi-axis a = L / sqrt(12)
    return lines.saturated_share(
        data,
        float(row["x"]) * k + (k - 1) / 2.0,
        float(row["y"]) * k + (k - 1) / 2.0,
        float(row["theta"]),
        np.sqrt(3.0) * float(row["a"]) * k,
        level,
        width=k / 2.0 + 1.0,
    )


#: header keywords of an amplifier's section of the CCD (CFHT: ASECA, ASECB; others: AMPSEC)
_AMP_KEY = re.compile(r"^(ASEC|AMPSEC)[A-Z0-9]*$")
_SECTION = re.compile(r"^\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]$")


def amplifier_boundaries(image: ImageHDU) -> list[float] | None:
    """x (0-based pixel coordinates) of the column edges where two amplifiers of the CCD meet,
    from the header's amplifier sections; None when the header has none (nothing says where
    an amplifier step could be), [] for a CCD read by one amplifier."""
    nx = image.shape[1]
    edges: list[float] = []
    found = False
    for key in image.header:
        if not _AMP_KEY.match(str(key)):
            continue
        m = _SECTION.match(str(image.header[key]).strip())
        if not m:
            continue
        found = True
        x1, x2 = sorted((int(m.group(1)), int(m.group(2))))
        # FITS sections are 1-based and inclusive: pixel i (1-based) is x = i - 1
        edges += [x1 - 1.5, x2 - 0.5]
    if not found:
        return None
    inside = sorted(e for e in edges if 0.0 < e < nx - 1.0)
    return [e for i, e in enumerate(inside) if i == 0 or e - inside[i - 1] > 2.0]


def column_zones(image: ImageHDU, params: DetectParams) -> list[tuple[float, float]] | None:
    """(x, margin) of the places where a column-aligned line is not a trail: around the
    amplifier boundaries and along the CCD's sides; None when the header does not say where
    the amplifiers meet (then no column-aligned line is)."""
    boundaries = amplifier_boundaries(image)
    if boundaries is None:
        return None
    sides = [(0.0, params.edge_margin), (image.shape[1] - 1.0, params.edge_margin)]
    return [(b, params.amp_margin) for b in boundaries] + sides


def _saturation_level(image: ImageHDU, finite_values: np.ndarray) -> float | None:
    """The header's saturation level; else the maximum if many pixels sit exactly on it."""
    if image.saturation is not None and image.saturation > 0:
        return float(image.saturation)
    top = float(finite_values.max())
    n_top = int(np.count_nonzero(finite_values == top))
    if n_top >= 10:
        return top
    return None
