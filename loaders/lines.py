"""Faint straight lines (satellite and aircraft trails) by summing the image along every line.

Why a line search and not one more threshold: a trail at a fraction of the noise per pixel
has no pixel, and at 4x4 binning no connected group of pixels, above any safe threshold, so
sep (full resolution or binned) finds it in pieces or not at all. Summed along its whole
length it stands out: a trail at 0.8 sigma per binned pixel crossing 128 binned pixels sums
to 9 sigma. That sum over all lines is the Radon transform, here of a binned significance
map, with three guards measured on simulated archives (docs/experiments.md, "Faint trails"):

- the map is high-passed by a 7-pixel median (rows, then columns) first: sep's 64-pixel
  background mesh leaves blotches of a few tenths of the noise on shallow frames, which become
  many sigma summed over a binned line;
- each binned pixel is clipped at ``clip`` sigma, so stars, galaxies and cosmic rays on a
  line weigh no more than noise does and only a long run of faint signal adds up;
- the sums are high-passed along rho (a 9-bin median): broad residuals (gradients, scattered
  light, a crowded field's unresolved light) are wide, a trail is one or two bins.

Lines within ``max_column_deg`` of the columns are not searched: bleeds, bad columns and
amplifier steps are column-aligned (a satellite crossing along the columns is lost, 1 in 30).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import signal, sparse

#: angles searched (0 .. 180 degrees in 1-degree steps): a 128-pixel line off by half a
#: step ends 0.6 pixels away from where it would be
N_ANGLES = 180
#: a line shorter than this many binned pixels is not summed (image corners)
MIN_PIXELS = 40
#: angles and rho bins around a found line not searched again
SUPPRESS_ANGLES = 5
SUPPRESS_RHO = 4
#: angles summed per chunk (memory: chunk x pixels indices)
CHUNK = 30
#: an image size met twice in a row with at most this many (pixel, angle) pairs gets its sums
#: over all lines as one product with a sparse matrix kept in memory (8 bytes a pair: 24 MB
#: for a 1024x1024 CCD, 212 MB for a 2048x4612 one; 3.5x faster than the chunked
#: ``np.bincount``, which makes its indices anew for every image). Twice in a row, because
#: making the matrix costs 3x the chunks (160 ms for 1024x1024): an archive whose image
#: sizes alternate would pay it on every image
CACHE_ENTRIES = 32_000_000


@dataclass(frozen=True)
class Line:
    """A line found on the binned map, in full-resolution pixels (0-based)."""

    x: float
    y: float
    #: direction of the line, radians in (-pi/2, pi/2] as sep's ``theta``
    theta: float
    length: float
    snr: float
    #: binned pixels (row, column) of the stretch the line covers
    iy: np.ndarray
    ix: np.ndarray

    def covers(self, x: float, y: float, theta: float, k: int) -> bool:
        """True when an object at (x, y) with direction ``theta`` lies along this line."""
        dtheta = abs((theta - self.theta + math.pi / 2) % math.pi - math.pi / 2)
        across = abs(-(x - self.x) * math.sin(self.theta) + (y - self.y) * math.cos(self.theta))
        return dtheta < math.radians(3.0) and across < 2.0 * k

    def row(self, pixels: np.ndarray, k: int) -> dict[str, float]:
        """Values for sep's catalogue fields: a uniform line of this length (second-moment
        semi-axis length / sqrt(12)), half a binned pixel wide."""
        values = pixels[self.iy, self.ix].astype(np.float64)
        a, b = self.length / math.sqrt(12.0), k / 2.0
        c, s = math.cos(self.theta), math.sin(self.theta)
        x0, x1 = float(self.ix.min()) * k, float(self.ix.max() + 1) * k - 1
        y0, y1 = float(self.iy.min()) * k, float(self.iy.max() + 1) * k - 1
        flux = float(values.sum()) * k * k
        peak = float(values.max()) if values.size else 0.0
        return {
            "x": self.x,
            "y": self.y,
            "a": a,
            "b": b,
            "theta": self.theta,
            "x2": a * a * c * c + b * b * s * s,
            "y2": a * a * s * s + b * b * c * c,
            "xy": (a * a - b * b) * s * c,
            "npix": len(values) * k * k,
            "tnpix": len(values) * k * k,
            "flux": flux,
            "cflux": flux,
            "peak": peak,
            "cpeak": peak,
            "xmin": x0,
            "xmax": x1,
            "ymin": y0,
            "ymax": y1,
            "xpeak": int(round(self.x)),
            "ypeak": int(round(self.y)),
            "xcpeak": int(round(self.x)),
            "ycpeak": int(round(self.y)),
        }


def clipped_std(clip: float) -> float:
    """Standard deviation of unit Gaussian noise clipped at +-``clip``."""
    inside = math.erf(clip / math.sqrt(2.0))
    density = math.exp(-0.5 * clip * clip) / math.sqrt(2.0 * math.pi)
    return math.sqrt(inside - 2.0 * clip * density + clip * clip * (1.0 - inside))


def find(
    significance: np.ndarray,
    mask: np.ndarray | None,
    k: int,
    *,
    thresh: float,
    clip: float,
    min_length: float,
    max_column_deg: float,
    max_lines: int,
    column_zones: Sequence[tuple[float, float]] | None = None,
    baseline: bool = True,
    spread_ref: float = 0.0,
) -> list[Line]:
    """Lines of a binned significance map (pixel over its noise) summing to ``thresh`` sigma
    or more over at least ``min_length`` full-resolution pixels, strongest first.

    Lines within ``max_column_deg`` of the columns are not searched when ``column_zones`` is
    None (nothing says where an amplifier step could be); with zones (full-resolution x and a
    margin in pixels: ``detect.column_zones``), only those within a zone are not.

    ``baseline``: a line's own signal-to-noise is measured above its neighbours' level, as
    the search's is. ``spread_ref`` (0: off): where the sums over all lines spread wider than
    this (in sigma; pure noise reads 0.81-0.89 after the high-passes), every sum is divided by
    their spread over it. Starlight in a crowded field and structured backgrounds widen it
    to 1.1-1.5, and a sum is then that much less significant than the noise alone would say."""
    h, w = significance.shape
    sig = np.nan_to_num(significance.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if mask is not None:
        sig[mask] = 0.0
    sig = sig - _local_median(sig)
    v = np.clip(sig, -clip, clip) / np.float32(clipped_std(clip))
    if mask is not None:
        v[mask] = 0.0
    xs, ys = _coordinates(h, w)
    theta = np.radians(np.arange(N_ANGLES) * 180.0 / N_ANGLES)
    offset, n_rho = _rho_offset(h, w)
    total = _line_sums(v.ravel(), h, w)
    # a line between two rho bins: sum each bin with the next
    total = total + np.roll(total, -1, axis=1)
    count = _line_pixels(h, w)
    z = np.where(count >= MIN_PIXELS, total / np.sqrt(np.maximum(count, 1.0)), 0.0)
    level = _median(z, (1, 9))
    z -= level
    scale = 1.0
    if spread_ref > 0:
        # the robust spread of the sums (every third angle is enough, at a fifth of the cost)
        valid = count[::3] >= MIN_PIXELS
        spread = 1.4826 * float(np.median(np.abs(z[::3][valid])))
        scale = max(1.0, spread / spread_ref)
        z /= scale
    degrees = np.degrees(theta)
    # theta is the normal: 0 and 180 degrees are lines along the columns
    column = (degrees < max_column_deg) | (degrees > 180.0 - max_column_deg)
    if column_zones is None:
        z[column] = 0.0
    else:
        # a line along the columns lies at rho = x cos(theta), x from the image centre
        rho = np.arange(n_rho) - offset
        for i in np.flatnonzero(column):
            for x_full, margin in column_zones:
                x = ((x_full - (k - 1) / 2.0) / k - (w - 1) / 2.0) * np.cos(theta[i])
                z[i, np.abs(rho - x) < margin / k + 1] = 0.0
    found: list[Line] = []
    for _ in range(max_lines * 3):
        if len(found) >= max_lines:
            break
        i, j = np.unravel_index(int(np.argmax(z)), z.shape)
        if z[i, j] < thresh:
            break
        _suppress(z, i, j, offset)
        # the level the rho median took off the line's sum, per pixel: a crowded field's
        # local medians sit on starlight, so its sky pixels (and lines) sum below zero
        base = float(level[i, j]) / math.sqrt(max(float(count[i, j]), 1.0)) if baseline else 0.0
        line = _stretch(v, xs, ys, float(theta[i]), j - offset, k, h, w, base)
        if line is not None and scale != 1.0:
            line = replace(line, snr=line.snr / scale)
        if line is not None and line.length >= min_length and line.snr >= thresh:
            found.append(line)
    return found


def _suppress(z: np.ndarray, i: int, j: int, offset: int) -> None:
    """Zero the neighbourhood of a found line (angle ``i``, rho bin ``j``) in ``z``, across
    the 0/180-degree seam too: the line at theta + 180 degrees is the same at -rho (a line
    along the columns sits on both sides of the seam)."""
    n_angles, n_rho = z.shape
    for a in range(i - SUPPRESS_ANGLES, i + SUPPRESS_ANGLES + 1):
        # past the seam: bin j holds rho j - offset and the next, so -rho and the one before
        # are bin 2 offset - j - 1
        centre = j if 0 <= a < n_angles else 2 * offset - j - 1
        lo, hi = max(0, centre - SUPPRESS_RHO), min(n_rho, centre + SUPPRESS_RHO + 1)
        z[a % n_angles, lo:hi] = 0.0


def _local_median(sig: np.ndarray) -> np.ndarray:
    """A 7-pixel median along the rows, then along the columns: the local level under a thin
    line in any direction (it is at most a few of the 7 pixels in one of the two passes) at a
    fifth of the cost of a 7x7 median."""
    return _median(_median(sig, (1, 7)), (7, 1))


def _median(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A running median over a ``size`` window with the edge values repeated beyond the
    edges: ``ndimage.median_filter(..., mode="nearest")``, the same numbers, but through
    ``signal.medfilt2d`` on an edge-padded copy, 1.3-1.7x faster for these thin windows."""
    py, px = size[0] // 2, size[1] // 2
    padded = np.pad(values, ((py, py), (px, px)), mode="edge")
    h, w = values.shape
    return signal.medfilt2d(padded, kernel_size=list(size))[py : py + h, px : px + w]


@functools.lru_cache(maxsize=4)
def _coordinates(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y of every binned pixel from the image centre, flattened."""
    xs = (np.arange(w, dtype=np.float32) - (w - 1) / 2.0)[None, :].repeat(h, 0).ravel()
    ys = (np.arange(h, dtype=np.float32) - (h - 1) / 2.0)[:, None].repeat(w, 1).ravel()
    return xs, ys


def _rho_offset(h: int, w: int) -> tuple[int, int]:
    """Offset that makes every rho bin index >= 0, and the number of bins."""
    offset = int(math.ceil(math.hypot(h, w) / 2.0)) + 2
    return offset, 2 * offset + 1


#: the matrix of the image size it was made for (at most one), and the size of the last call
_matrix: dict[tuple[int, int], sparse.csr_matrix] = {}
_last_size: list[tuple[int, int]] = [(0, 0)]


def _line_sums(flat: np.ndarray, h: int, w: int) -> np.ndarray:
    """(N_ANGLES, rho bins) sums of the flattened binned map over every line: by the sparse
    matrix of the image size when it is met twice in a row (``CACHE_ENTRIES``), else by
    ``_bincount_sums``."""
    size = (h, w)
    matrix = _matrix.get(size)
    if matrix is None and _last_size[0] == size and h * w * N_ANGLES <= CACHE_ENTRIES:
        _matrix.clear()
        matrix = _matrix[size] = _line_matrix(h, w)
    _last_size[0] = size
    if matrix is None:
        return _bincount_sums(flat, h, w)
    return (matrix @ flat.astype(np.float32)).reshape(N_ANGLES, _rho_offset(h, w)[1])


def _bincount_sums(flat: np.ndarray, h: int, w: int) -> np.ndarray:
    """``_line_sums`` by ``CHUNK`` angles at a time, with no matrix kept."""
    _, n_rho = _rho_offset(h, w)
    total = np.empty((N_ANGLES, n_rho))
    flat = flat.astype(np.float64)
    for start, idx in _make_chunks(h, w):
        n = idx.size // flat.size
        weights = np.broadcast_to(flat, (n, flat.size)).ravel()
        total[start : start + n] = np.bincount(idx, weights, n * n_rho).reshape(n, n_rho)
    return total


def _line_matrix(h: int, w: int) -> sparse.csr_matrix:
    """Sparse (angles x rho bins, pixels) matrix of ones: which line each pixel is on."""
    _, n_rho = _rho_offset(h, w)
    rows = np.concatenate([idx + start * n_rho for start, idx in _make_chunks(h, w)])
    cols = np.tile(np.arange(h * w, dtype=np.int32), N_ANGLES)
    return sparse.csr_matrix(
        (np.ones(rows.size, np.float32), (rows, cols)), shape=(N_ANGLES * n_rho, h * w)
    )


def _make_chunks(h: int, w: int):
    xs, ys = _coordinates(h, w)
    offset, n_rho = _rho_offset(h, w)
    theta = np.radians(np.arange(N_ANGLES) * 180.0 / N_ANGLES).astype(np.float32)
    for start in range(0, N_ANGLES, CHUNK):
        t = theta[start : start + CHUNK]
        rho = np.rint(np.outer(np.cos(t), xs) + np.outer(np.sin(t), ys)).astype(np.int32) + offset
        yield start, (rho + (n_rho * np.arange(len(t), dtype=np.int32))[:, None]).ravel()


@functools.lru_cache(maxsize=4)
def _line_pixels(h: int, w: int) -> np.ndarray:
    """Binned pixels on each (angle, rho bin and the next) line: the noise of its sum."""
    count = _bincount_sums(np.ones(h * w), h, w)
    return count + np.roll(count, -1, axis=1)


def _stretch(
    v: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    theta: float,
    rho: int,
    k: int,
    h: int,
    w: int,
    base: float = 0.0,
) -> Line | None:
    """The part of the line (normal ``theta``, rho bins ``rho`` and ``rho + 1``) that holds
    the signal: the run along it with the largest sum above half the line's mean (a trail may
    end inside the image). ``base``: the level of the line's neighbours per pixel, taken off
    its pixels so that its signal-to-noise is the one the search found it at."""
    c, s = math.cos(theta), math.sin(theta)
    r = np.rint(xs * c + ys * s)
    on = np.flatnonzero((r == rho) | (r == rho + 1))
    if on.size < MIN_PIXELS:
        return None
    values = v.ravel()[on].astype(np.float64) - base
    along = -xs[on] * s + ys[on] * c
    step = np.rint(along - along.min()).astype(np.int64)
    profile = np.bincount(step, values)
    pixels = np.bincount(step)
    level = 0.5 * max(float(values.mean()), 0.0)
    first, last = _best_run(profile - level * pixels)
    keep = (step >= first) & (step <= last)
    sel = on[keep]
    if sel.size == 0:
        return None
    snr = float(values[keep].sum()) / math.sqrt(sel.size)
    # position across: the signal-weighted rho of the stretch's pixels
    weight = np.clip(values[keep], 0.0, None)
    rho_exact = np.average(xs[sel] * c + ys[sel] * s, weights=weight if weight.sum() > 0 else None)
    t_mid = 0.5 * (float(along[keep].min()) + float(along[keep].max()))
    xb = (w - 1) / 2.0 + rho_exact * c - t_mid * s
    yb = (h - 1) / 2.0 + rho_exact * s + t_mid * c
    direction = theta + math.pi / 2.0
    if direction > math.pi / 2.0:
        direction -= math.pi
    return Line(
        x=xb * k + (k - 1) / 2.0,
        y=yb * k + (k - 1) / 2.0,
        theta=direction,
        length=(float(along[keep].max() - along[keep].min()) + 1.0) * k,
        snr=snr,
        iy=sel // w,
        ix=sel % w,
    )


def _best_run(gain: np.ndarray) -> tuple[int, int]:
    """First and last index of the contiguous run with the largest sum (Kadane)."""
    best, best_first, best_last = -np.inf, 0, -1
    run, first = 0.0, 0
    for i, g in enumerate(gain):
        if run <= 0.0:
            run, first = float(g), i
        else:
            run += float(g)
        if run > best:
            best, best_first, best_last = run, first, i
    return best_first, best_last


def saturated_share(
    data: np.ndarray,
    cx: float,
    cy: float,
    theta: float,
    half: float,
    level: float,
    width: float = 1.0,
    longest_run: bool = False,
) -> float:
    """Share of the positions along a line (centre, direction, half length) where a pixel
    within ``width`` across it is at or above ``level``: ``width`` is the uncertainty of the
    line's position (about half a binned pixel). With ``longest_run``, the share of the
    longest unbroken run of such positions.

    On the axis, not in the bounding box: a diagonal trail's box covers most of the image and
    with it any saturated star; a bleed or a diffraction spike has its saturated core on the
    axis over a good share of its length, a trail that crosses a saturated star a few percent.
    A trail across a crowded field crosses several: their cores add up (5-6% on seed 11's
    sim0011-00415 and 01676, runs of 9-27 pixels), where a bleed or a star's core is one run."""
    ux, uy = math.cos(theta), math.sin(theta)
    t = np.arange(-half, half + 1.0)
    offsets = np.arange(-math.ceil(width), math.ceil(width) + 1.0)
    xs = cx + t[:, None] * ux - offsets[None, :] * uy
    ys = cy + t[:, None] * uy + offsets[None, :] * ux
    ix, iy = np.rint(xs).astype(np.int64), np.rint(ys).astype(np.int64)
    inside = (ix >= 0) & (ix < data.shape[1]) & (iy >= 0) & (iy < data.shape[0])
    along = inside.any(axis=1)
    if not along.any():
        return 0.0
    hit = np.zeros(ix.shape, bool)
    hit[inside] = data[iy[inside], ix[inside]] >= level
    saturated = hit.any(axis=1)[along]
    if not longest_run:
        return float(saturated.mean())
    # run lengths from the edges of the saturated stretches
    edges = np.diff(np.concatenate(([0], saturated.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return float((ends - starts).max() / saturated.size) if starts.size else 0.0
