"""The image vector of a plane: what makes two images alike *as images* (DESIGN.md §1, issue 17).

``fp`` is a histogram of object kinds and stays one (``has_object_node`` counts on it). Two
images with the same object kinds can still differ in what a user means by "an image like
this": a short or clouded exposure has little sky and few faint detections; bad seeing, bad
focus and tracking change the stars' size, profile and elongation more plainly in a few
per-image statistics than in where a few dozen stars fall among 400 nodes. The offline work
in docs/experiments.md traced most of the gap between ``fp_similar`` (precision@10 0.86) and
the simulator's truth ceiling (0.95) to exactly this image-level information.

Layout (``DIM`` = 400 + ``len(NAMES)`` values, float32, L2-normalised for cosine):

- values 0..399: the fingerprint ``fp`` as stored (unit length), times ``FP_WEIGHT``;
- values 400..: the image statistics ``NAMES``, each through a fixed transform to about unit
  spread around zero (``CENTER``, ``SCALE``, clipped at ``CLIP``), times ``STAT_WEIGHT`` and
  its own ``EMPHASIS`` (0 for the statistics that did not help: see ``EMPHASIS``).

Every constant is written here or in the Map-1 model file: a plane's vector depends on its
own pixels and on Map 1 only, never on the other planes loaded beside it (a vector loaded
today compares with one loaded next year, and an uploaded image gets the same vector as a
loaded one). A statistic that
cannot be measured (no star-like object, no EXPTIME) is 0, the centre of its scale.

The statistics (sky from sep's background mesh, per image, pixel-weighted over a mosaic;
object figures over the plane's sampled objects, whose adaptive moments are measured anyway):

- ``log_sky_e``: log10 of the sky level in electrons per pixel (GAIN, 1 if absent) - depth:
  a short exposure has little sky, a clouded one a dim sky;
- ``log_sky_rate``: log10 of sky electrons per pixel per second (EXPTIME; 0 if absent) over
  the usual rate of the exposure's camera and filter (``SkyStats.band``), one-sided: only a
  sky dimmer than usual counts (clouds dim the sky as they dim the stars; a bright moon is
  not a fault). The usual rate is the median over Map 1's training exposures in that band
  (``sky_rate_reference``, kept in the Map-1 model file): a clear i-band sky is several times
  brighter per second than a clear g-band one, so one fixed threshold left clouded i and z
  exposures among the clear ones. A band Map 1 has not seen, or a Map 1 from before the
  table, is measured against ``SKY_RATE_FALLBACK``;
- ``log_density``: log10 of detections per million valid pixels - depth and crowding;
- ``log_snr_p50`` / ``log_snr_p90`` / ``log_snr_p99``: quantiles of the sampled objects' peak
  signal-to-noise - how deep the brightest objects reach;
- ``unmeasured``: share of sampled objects adaptive moments could not measure (noise peaks,
  cosmic rays, blends: high on shallow images);
- the PSF figures come from the plane's *stellar locus* (``star_locus``): every star of an
  exposure has the same PSF, so its adaptive sigma, ellipticity (e1, e2) and fourth moment
  agree within the measurement noise, while cosmic rays (sharper, elongated, flat-topped),
  galaxies (larger, every shape) and noise peaks scatter. The locus is the largest group of
  such mutually alike objects (S/N >= ``MIN_STAR_SNR``, measured, not saturated, sigma >=
  ``MIN_STAR_SIGMA`` px). On the seed-11 simulated archive a 2-Mpix exposure holds a median
  of ~7 stars above S/N 10 beside ~15 galaxies and ~9 cosmic rays; a percentile over every
  compact object (the first version) followed the seeing with correlation 0.57, the locus
  with 0.85, and tracking 0.75 -> 0.82 (docs/experiments.md);
- ``log_psf``: log of the locus' median sigma (pixels);
- ``seeing``: natural log of the stars' FWHM in arcseconds across their elongation (2.355 x
  the locus' median minor-axis sigma, sigma ((1 - |e|) / (1 + |e|))^(1/4), x the WCS pixel
  scale: a trail is no wider than its star; unknown without a celestial WCS), one-sided: only
  a PSF wider than a good night's counts (about 1.1 arcsec, where an observatory grades seeing
  as bad; the two-sided ``log_psf`` alone left bad seeing among the good exposures);
- ``psf_e``: median ellipticity |e| of the locus (tracking, wind shake);
- ``psf_e_coherent``: length of the locus' mean (e1, e2): a common elongation (tracking);
- ``double_images``: the share of bright objects that have a companion at the plane's most
  common offset (``double_images()``), one-sided: a telescope that jumped during the exposure
  (every star twice) or a long trail that detection cut into pieces at the same spacing;
- ``psf_rho4``: median fourth radial moment of the locus (2 for a Gaussian, lower for a donut);
- ``log_saturated``: log10(1 + saturated sampled objects per Mpix) - bright stars, bleeds;
- ``saturated_pixels``: log10 of the share of pixels at saturation (bleed trails),
  one-sided: only more saturation than a normal field's bright stars make (a very bright star
  with its bleeds and halo in the field);
- ``background_structure``: log10(1 + the 5-95% range of the background mesh over the sky
  noise) - gradients, scattered light, amplifier steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from astropy.wcs.utils import proj_plane_pixel_scales

from caomai_db.config import IMAGE_VEC_DIM, N_NODES

from .detect import FLAG_SATURATED, Detections
from .images import ImageHDU
from .register_keywords import sky_band

NAMES = (
    "log_sky_e",
    "log_sky_rate",
    "log_density",
    "log_snr_p50",
    "log_snr_p90",
    "log_snr_p99",
    "unmeasured",
    "log_psf",
    "seeing",
    "psf_e",
    "psf_e_coherent",
    "double_images",
    "psf_rho4",
    "log_saturated",
    "saturated_pixels",
    "background_structure",
)
#: length of the vector: the fingerprint block, then the statistics
DIM = N_NODES + len(NAMES)
assert DIM == IMAGE_VEC_DIM, "caomai_db.config.IMAGE_VEC_DIM is the column's dimension"
#: the fixed centre and spread of each statistic's transform: the median and the robust spread
#: (interquartile range / 1.349) over the 300 training exposures of a MegaCam-like simulated
#: archive (``caomai simulate --exposures 600 --seed 5``; docs/experiments.md, 2026-11-30) -
#: for the PSF figures of the stellar locus, over the 1000 training exposures of the seed-11
#: archive - measured once and written here, so that no plane's vector depends on another's.
#: For a one-sided statistic (``ONE_SIDED``) the centre is the threshold where it starts to
#: count: a sky rate 10^0.5 ~ 3x below its band's usual one (the 5th percentile of the good
#: exposures' relative rate is -0.24 on the seed-11 archive, -0.3 on seed 12), and
#: about the 95th of their saturated share (1e-3) and of their double-image share (0.05), on
#: the seed-11 archive; for ``seeing``, ln 1.08: a stellar FWHM of 1.08 arcsec as the locus
#: reads it (a Moffat star of about 0.95 arcsec), with a narrow scale (5%) so that it acts
#: as "worse than a good night" rather than as a second size (docs/experiments.md, "One-sided
#: statistics")
CENTER = {
    "log_sky_e": 3.0,
    "log_sky_rate": -0.5,
    "log_density": 2.0,
    "log_snr_p50": 0.76,
    "log_snr_p90": 1.6,
    "log_snr_p99": 2.4,
    "unmeasured": 0.27,
    "log_psf": 0.83,
    "seeing": 0.08,
    "psf_e": 0.036,
    "psf_e_coherent": 0.03,
    "double_images": 0.05,
    "psf_rho4": 2.12,
    "log_saturated": 0.0,
    "saturated_pixels": -3.0,
    "background_structure": 0.1,
}
SCALE = {
    "log_sky_e": 0.5,
    "log_sky_rate": 0.3,
    "log_density": 0.2,
    "log_snr_p50": 0.2,
    "log_snr_p90": 0.25,
    "log_snr_p99": 0.6,
    "unmeasured": 0.13,
    "log_psf": 0.65,
    "seeing": 0.05,
    "psf_e": 0.04,
    "psf_e_coherent": 0.04,
    "double_images": 0.03,
    "psf_rho4": 0.13,
    "log_saturated": 0.13,
    "saturated_pixels": 0.3,
    "background_structure": 0.05,
}
#: the sky rate (log10 e-/s/px) a band without a reference is measured against: with the
#: centre of -0.5 a sky counts below 10^-0.4 = 0.4 e-/s/px, about the 5th percentile of the
#: good exposures' rate over all bands of the seed-11 archive (the fixed threshold this
#: statistic had before the per-band reference)
SKY_RATE_FALLBACK = 0.1
#: a band's reference needs at least this many training exposures (a median of a handful of
#: nights may be a clouded one)
MIN_SKY_REFERENCE = 10
#: statistics that count on one side of their centre only: a sky dimmer than a clear night's,
#: more saturation and more double images than a normal field has. Two-sided, the ordinary
#: spread of a good night's sky or of its saturated stars made good exposures less alike than
#: the fault made the bad ones different (every weight lowered precision@10); one-sided, a
#: normal exposure reads 0 and loses nothing
ONE_SIDED = {
    "log_sky_rate": "below",
    "saturated_pixels": "above",
    "double_images": "above",
    "seeing": "above",
}
#: a statistic's transformed value is clipped to this many scales from the centre: one broken
#: frame (a NaN-filled CCD, a saturated sky) must not swamp the fingerprint block
CLIP = 4.0
#: weight of the fingerprint block (unit length) and of a statistic (unit spread)
FP_WEIGHT = 1.0
STAT_WEIGHT = 0.15
#: per-statistic factor on STAT_WEIGHT: 1 for the statistics a greedy forward selection kept
#: (chosen on the training half's queries of the seed-11 archive, docs/experiments.md, "The
#: stellar locus"): the PSF size, its coherent elongation and fourth moment (from the locus),
#: the background structure and the detection density. The others lowered fp_similar
#: precision@10 on these 2-Mpix exposures; they stay in the layout with weight 0 (measured,
#: not used) so that a later weighting keeps the column's shape.
#: The one-sided statistics are 0 on most exposures, so their weight separates the faulty ones
#: without spreading the good ones: the sky rate and the saturation weigh 2x, the double
#: images 1.33x, the seeing (a narrow step) 0.67x (docs/experiments.md, "One-sided statistics").
USED = ("log_psf", "psf_e_coherent", "psf_rho4", "background_structure", "log_density")
EMPHASIS: dict[str, float] = {name: 1.0 if name in USED else 0.0 for name in NAMES} | {
    "log_sky_rate": 2.0,
    "saturated_pixels": 2.0,
    "double_images": 4.0 / 3.0,
    "seeing": 2.0 / 3.0,
}
#: candidates for the stellar locus (``star_locus``): measured, not saturated, at least this
#: peak signal-to-noise and this adaptive sigma (pixels; cosmic rays are mostly sharper)
MIN_STAR_SNR = 8.0
MIN_STAR_SIGMA = 0.9
#: the fewest candidates a locus is looked for among (fewer: the PSF figures are unknown)
MIN_STAR_CANDIDATES = 3
#: two candidates are alike when their log sigma, (e1, e2) and fourth moment differ by less
#: than these: about three times the scatter of the stars of one exposure at S/N ~ 10
LOCUS_LOG_SIGMA = 0.06
LOCUS_E = 0.08
LOCUS_RHO4 = 0.1
#: double images: bright objects (S/N >= ``MIN_STAR_SNR``, not saturated) on the same image,
#: offsets between ``PAIR_MIN`` and ``PAIR_MAX`` pixels, binned in cells of ``PAIR_CELL`` px
#: (a star's centroid is good to a fraction of a pixel; two cells either way make the
#: tolerance); a random field of ~30 bright objects puts 1-3 pairs in its fullest cell
PAIR_MIN, PAIR_MAX, PAIR_CELL = 4.0, 60.0, 1.5
#: a Gaussian's FWHM over its sigma (the locus' adaptive sigma reads a Moffat star 1.13x wider
#: than its Gaussian core, docs/experiments.md: ``seeing``'s threshold is set on this scale)
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass
class SkyStats:
    """Pixel-level figures of a plane, summed over its images as they are detected."""

    pixels: int = 0
    sky_e: float = 0.0
    """sum over images of (sky electrons per pixel x valid pixels)"""
    structure: float = 0.0
    """sum over images of (background range over noise x valid pixels)"""
    saturated_pixels: int = 0
    exptime: float | None = None
    pixel_scale: float | None = None
    """arcsec per pixel, from the first image with a celestial WCS"""
    band: str | None = None
    """"INSTRUME FILTER" (``register_keywords.sky_band``) of the first image added (an
    image's header holds its primary's keywords too: ``images.read_images``)"""
    images: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, image: ImageHDU, det: Detections) -> None:
        """Add one image's sky (sep's global background and mesh) and saturated pixels."""
        if self.band is None:
            self.band = sky_band(image.header)
        n = int(np.count_nonzero(np.isfinite(det.data_sub)))
        if n == 0:
            return
        gain = image.gain if image.gain and image.gain > 0 else 1.0
        self.sky_e += max(det.background_level, 0.0) * gain * n
        # every 7th pixel of the mesh is plenty for a 5-95% range of a smooth map
        offset = det.back_offset.ravel()[::7]
        lo, hi = np.percentile(offset, [5, 95])
        self.structure += float(hi - lo) / max(det.background_rms, 1e-12) * n
        if det.saturation is not None:
            self.saturated_pixels += int(np.count_nonzero(image.data >= 0.999 * det.saturation))
        if self.exptime is None:
            t = image.header.get("EXPTIME")
            if isinstance(t, int | float) and t > 0:
                self.exptime = float(t)
        if self.pixel_scale is None and image.wcs is not None:
            scale = float(np.mean(proj_plane_pixel_scales(image.wcs))) * 3600.0
            if math.isfinite(scale) and scale > 0:
                self.pixel_scale = scale
        self.pixels += n
        self.images += 1

    def to_dict(self) -> dict[str, float | str | None]:
        p = max(self.pixels, 1)
        return {
            "sky_e": self.sky_e / p,
            "structure": self.structure / p,
            "saturated_share": self.saturated_pixels / p,
            "exptime": self.exptime,
            "pixel_scale": self.pixel_scale,
            "band": self.band,
        }


def _q(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def star_locus(
    snr: np.ndarray,
    sigma: np.ndarray,
    e1: np.ndarray,
    e2: np.ndarray,
    rho4: np.ndarray,
    saturated: np.ndarray,
) -> np.ndarray | None:
    """Indices of the plane's stars: the candidate with the most alike candidates (see the
    module's docstring) and those alike to it; None with too few candidates to tell.

    Pairwise over the candidates (at most the sample's 1000 objects: a few milliseconds).
    """
    candidate = np.isfinite(sigma) & ~saturated & (snr >= MIN_STAR_SNR) & (sigma >= MIN_STAR_SIGMA)
    idx = np.flatnonzero(candidate)
    if len(idx) < MIN_STAR_CANDIDATES:
        return None
    log_sigma, a1, a2, r4 = np.log(sigma[idx]), e1[idx], e2[idx], rho4[idx]
    alike = (
        (np.abs(log_sigma[:, None] - log_sigma[None, :]) < LOCUS_LOG_SIGMA)
        & (np.hypot(a1[:, None] - a1[None, :], a2[:, None] - a2[None, :]) < LOCUS_E)
        & (np.abs(r4[:, None] - r4[None, :]) < LOCUS_RHO4)
    )
    # the first of the most connected candidates: the same stars on every run
    return idx[alike[int(np.argmax(alike.sum(axis=1)))]]


def double_images(x: np.ndarray, y: np.ndarray, image: np.ndarray, bright: np.ndarray) -> float:
    """Share of the bright objects that sit at the plane's most common offset from another.

    Why: a telescope that jumps during an exposure images every star twice, at one offset
    (the seed's simulator draws it as "really bad tracking"; real frames show it after a
    wind gust or a guiding loss), and detection cuts long star trails into pieces at one
    spacing. No single object looks wrong, but the offsets agree: the fullest 2x2 block of
    a histogram of pair offsets (each pair both ways, so an offset near the vertical is not
    split between its two signs) holds about as many pairs as there are stars. Galaxies,
    cosmic rays and stars of a normal field are placed at random and fill no cell. NaN with
    fewer than 4 bright objects.
    """
    idx = np.flatnonzero(bright)
    if len(idx) < 4:
        return float("nan")
    n_cells = int(np.ceil(2 * PAIR_MAX / PAIR_CELL)) + 2
    hist = np.zeros((n_cells, n_cells), np.int64)
    for img in np.unique(image[idx]):
        sel = idx[image[idx] == img]
        dx = x[sel][:, None] - x[sel][None, :]
        dy = y[sel][:, None] - y[sel][None, :]
        r = np.hypot(dx, dy)
        keep = (r >= PAIR_MIN) & (r <= PAIR_MAX)
        i = ((dx[keep] + PAIR_MAX) / PAIR_CELL).astype(np.int64)
        j = ((dy[keep] + PAIR_MAX) / PAIR_CELL).astype(np.int64)
        np.add.at(hist, (i, j), 1)
    block = hist[:-1, :-1] + hist[1:, :-1] + hist[:-1, 1:] + hist[1:, 1:]
    return float(block.max() / len(idx))


def log_sky_rate(sky: dict[str, float | str | None]) -> float:
    """log10 sky electrons per pixel per second of a plane (``SkyStats.to_dict``), NaN
    without a sky or an exposure time."""
    sky_e = float(sky.get("sky_e") or 0.0)
    exptime = sky.get("exptime")
    if sky_e > 0 and isinstance(exptime, int | float) and exptime > 0:
        return math.log10(sky_e / exptime)
    return float("nan")


def sky_rate_reference(skies: list[dict[str, float | str | None]]) -> dict[str, float]:
    """The usual sky rate of each band: the median ``log_sky_rate`` over these exposures
    (Map 1's training planes), for the bands with at least ``MIN_SKY_REFERENCE`` of them.

    Why a median: most nights of an archive are clear, so the median is a clear sky's rate
    even when a fifth of the exposures were taken through cloud.
    """
    rates: dict[str, list[float]] = {}
    for sky in skies:
        band, rate = sky.get("band"), log_sky_rate(sky)
        if isinstance(band, str) and math.isfinite(rate):
            rates.setdefault(band, []).append(rate)
    return {
        band: round(float(np.median(r)), 4)
        for band, r in sorted(rates.items())
        if len(r) >= MIN_SKY_REFERENCE
    }


def statistics(
    sky: dict[str, float | str | None],
    columns: dict[str, np.ndarray],
    n_detected: int,
    pixels: int,
    sky_reference: float | None = None,
) -> dict[str, float]:
    """The raw statistics ``NAMES`` of one plane (NaN where not measurable); ``sky_reference``
    is the usual log sky rate of the plane's band (``sky_rate_reference``), None for
    ``SKY_RATE_FALLBACK``."""
    sky_e = float(sky.get("sky_e") or 0.0)
    reference = SKY_RATE_FALLBACK if sky_reference is None else sky_reference
    snr = np.asarray(columns["snr"], np.float64)
    snr = snr[np.isfinite(snr)]
    sigma = np.asarray(columns["m_sigma"], np.float64)
    e1 = np.asarray(columns["m_e1"], np.float64)
    e2 = np.asarray(columns["m_e2"], np.float64)
    rho4 = np.asarray(columns["m_rho4"], np.float64)
    flag = np.asarray(columns["flag"], np.int64)
    all_snr = np.nan_to_num(np.asarray(columns["snr"], np.float64), nan=0.0)
    saturated = (flag & FLAG_SATURATED) != 0
    measured = np.isfinite(sigma)
    star = star_locus(all_snr, sigma, e1, e2, rho4, saturated)
    known = star is not None
    if star is None:
        star = np.zeros(0, np.int64)
    e = np.hypot(e1[star], e2[star])
    mpix = max(pixels, 1) / 1e6
    nan = float("nan")
    # across the elongation: adaptive moments' sigma is sqrt(ab), b = sigma ((1-e)/(1+e))^(1/4)
    e_star = np.clip(e, 0.0, 0.999)
    minor = sigma[star] * ((1.0 - e_star) / (1.0 + e_star)) ** 0.25
    log_minor = float(np.median(np.log(minor))) if known else nan
    pixel_scale = sky.get("pixel_scale")
    return {
        "log_sky_e": math.log10(sky_e) if sky_e > 0 else nan,
        "log_sky_rate": log_sky_rate(sky) - reference,
        "log_density": math.log10(max(n_detected, 1) / mpix),
        "log_snr_p50": math.log10(max(_q(snr, 50), 1e-3)) if len(snr) else nan,
        "log_snr_p90": math.log10(max(_q(snr, 90), 1e-3)) if len(snr) else nan,
        "log_snr_p99": math.log10(max(_q(snr, 99), 1e-3)) if len(snr) else nan,
        "unmeasured": float(1.0 - measured.mean()) if len(sigma) else nan,
        "log_psf": float(np.median(np.log(sigma[star]))) if known else nan,
        "seeing": log_minor + math.log(FWHM_PER_SIGMA * pixel_scale) if pixel_scale else nan,
        "psf_e": float(np.median(e)) if known else nan,
        "psf_e_coherent": (float(np.hypot(np.mean(e1[star]), np.mean(e2[star]))) if known else nan),
        "double_images": double_images(
            np.asarray(columns["x"], np.float64),
            np.asarray(columns["y"], np.float64),
            np.asarray(columns["extension"]),
            (all_snr >= MIN_STAR_SNR) & ~saturated,
        ),
        "psf_rho4": float(np.median(rho4[star])) if known else nan,
        "log_saturated": math.log10(1.0 + saturated.sum() * n_detected / max(len(flag), 1) / mpix),
        "saturated_pixels": math.log10(float(sky.get("saturated_share") or 0.0) + 1e-6),
        "background_structure": math.log10(1.0 + float(sky.get("structure") or 0.0)),
    }


def scaled(stats: dict[str, float]) -> np.ndarray:
    """The statistics on their fixed scales: (value - centre) / scale, clipped, 0 if unknown;
    a one-sided statistic (``ONE_SIDED``) is 0 on its normal side and counts below (or above)
    its centre."""
    out = np.zeros(len(NAMES), np.float64)
    for i, name in enumerate(NAMES):
        v = stats.get(name, float("nan"))
        if v is not None and math.isfinite(v):
            z = (v - CENTER[name]) / SCALE[name]
            side = ONE_SIDED.get(name)
            lo, hi = (-CLIP, 0.0) if side == "below" else (0.0, CLIP) if side else (-CLIP, CLIP)
            out[i] = np.clip(z, lo, hi)
    return out


def weights() -> np.ndarray:
    """Per-statistic weight: ``STAT_WEIGHT`` times its ``EMPHASIS``."""
    return np.array([STAT_WEIGHT * EMPHASIS.get(n, 1.0) for n in NAMES])


def image_vector(fp: np.ndarray, stats: dict[str, float]) -> np.ndarray:
    """The L2-normalised image vector (``DIM`` float32 values) of one plane."""
    fp = np.asarray(fp, np.float64)
    if fp.shape != (N_NODES,):
        raise ValueError(f"a fingerprint has {N_NODES} values, got {fp.shape}")
    v = np.concatenate([FP_WEIGHT * fp, weights() * scaled(stats)])
    return (v / np.linalg.norm(v)).astype(np.float32)
