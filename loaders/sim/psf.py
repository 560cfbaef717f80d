"""The exposure's PSF, built with GalSim and drawn once on a fine grid.

The atmosphere is a Moffat profile (slightly elliptical from wind shake and optics). Bad
tracking convolves it with the path the telescope drifted along during the exposure (a line,
a line with a kink, or a jump: two stops). Bad focus convolves it with the geometric image of
the defocused pupil, an annulus whose hole is the shadow of the prime-focus cage: at
several arcsec of defocus the pupil's diffraction (lambda/D = 0.04") is invisible, so the
geometric annulus is the optical PSF at this pixel scale, and it is cheap to draw.

Drawing the PSF, with the pixel response, once per exposure on a grid ``OVERSAMPLE`` times
finer than the CCD pixels gives every star's stamp at a sub-pixel phase by slicing (stars
land within 1/(2*OVERSAMPLE) pixel of their catalogue position, and the truth records the
rendered position), and the kernel that convolves the galaxy layer.
"""

from __future__ import annotations

import math

import galsim
import numpy as np

from .conditions import PIXEL_SCALE, Conditions, effective_fwhm

#: Fine-grid sampling of the drawn PSF, per CCD pixel (odd, so phases are symmetric).
OVERSAMPLE = 5


def atmosphere(c: Conditions) -> galsim.GSObject:
    psf = galsim.Moffat(beta=c.beta, fwhm=c.fwhm)
    if c.psf_e > 0:
        psf = psf.shear(e=c.psf_e, beta=c.psf_angle_deg * galsim.degrees)
    return psf


def tracking_path(c: Conditions) -> galsim.GSObject | None:
    """The drift of the telescope during the exposure, centred on its own centroid."""
    length = c.track_length
    if length < 0.02:
        return None
    angle = c.track_angle_deg * galsim.degrees
    thin = 0.005
    if c.track_shape == "kink":
        # drift, then drift on in a direction turned by 15-45 degrees (a wind gust)
        l1, l2 = 0.65 * length, 0.35 * length
        turn = (25.0 if int(c.seed) % 2 else -25.0) * galsim.degrees
        a2 = angle + turn
        p1 = galsim.PositionD(0.5 * l1 * math.cos(angle.rad), 0.5 * l1 * math.sin(angle.rad))
        end1 = 2 * p1
        p2 = end1 + galsim.PositionD(0.5 * l2 * math.cos(a2.rad), 0.5 * l2 * math.sin(a2.rad))
        seg1 = galsim.Box(l1, thin, flux=l1 / length).rotate(angle).shift(p1)
        seg2 = galsim.Box(l2, thin, flux=l2 / length).rotate(a2).shift(p2)
        centroid = p1 * (l1 / length) + p2 * (l2 / length)
        return galsim.Sum(seg1, seg2).shift(-centroid)
    if c.track_shape == "jump":
        # the telescope sat at one place, jumped, and sat at another: a double image
        # joined by a faint trail
        dx, dy = length * math.cos(angle.rad), length * math.sin(angle.rad)
        first = galsim.Gaussian(sigma=0.05, flux=0.6).shift(-dx / 2, -dy / 2)
        second = galsim.Gaussian(sigma=0.05, flux=0.3).shift(dx / 2, dy / 2)
        joint = galsim.Box(length, thin, flux=0.1).rotate(angle)
        shift = galsim.PositionD(-dx / 2 * 0.6 + dx / 2 * 0.3, -dy / 2 * 0.6 + dy / 2 * 0.3)
        return galsim.Sum(first, second, joint).shift(-shift)
    return galsim.Box(length, thin).rotate(angle)


def defocused_pupil(c: Conditions) -> galsim.GSObject | None:
    """Geometric image of the defocused, centrally obscured pupil (unit flux)."""
    if c.donut_diameter <= 0:
        return None
    r_out = c.donut_diameter / 2.0
    eps = c.obscuration
    norm = 1.0 / (1.0 - eps**2)
    return galsim.Sum(
        galsim.TopHat(r_out, flux=norm), galsim.TopHat(eps * r_out, flux=-(eps**2) * norm)
    )


def psf_object(c: Conditions) -> galsim.GSObject:
    """The PSF (without pixel) as a GalSim profile."""
    parts = [atmosphere(c)]
    for extra in (tracking_path(c), defocused_pupil(c)):
        if extra is not None:
            parts.append(extra)
    return parts[0] if len(parts) == 1 else galsim.Convolve(parts)


class PSFImage:
    """The PSF with pixel response on a fine grid: star stamps by phase, the convolution kernel.

    Three stamp radii: faint stars need only the core, bright ones the Moffat wings out to
    where even a heavily saturated star's wing sinks into the sky noise.
    """

    def __init__(self, c: Conditions) -> None:
        size = effective_fwhm(c) / PIXEL_SCALE
        fwhm = c.fwhm / PIXEL_SCALE
        self.radius = int(np.clip(np.ceil(1.5 * size + 20 * fwhm), 16, 200))
        self.small = int(np.clip(np.ceil(2.0 * size + 4), 8, self.radius))
        self.medium = int(np.clip(np.ceil(4.5 * size + 6), self.small, self.radius))
        n_fine = (2 * self.radius + 1) * OVERSAMPLE
        profile = galsim.Convolve(psf_object(c), galsim.Pixel(PIXEL_SCALE))
        profile = profile.withGSParams(galsim.GSParams(maximum_fft_size=16384))
        fine = profile.drawImage(
            nx=n_fine, ny=n_fine, scale=PIXEL_SCALE / OVERSAMPLE, method="no_pixel"
        ).array.astype(np.float64)
        self.fine = fine
        self._cache: dict[tuple[int, int, int], np.ndarray] = {}

    def stamp(self, px: int, py: int, radius: int | None = None) -> np.ndarray:
        """The PSF sampled on CCD pixels, centred ``(px, py) / OVERSAMPLE`` pixels from the
        stamp's central pixel (px, py in -(OVERSAMPLE//2)..OVERSAMPLE//2); the full stamp
        sums to one, smaller ones are its centre."""
        radius = self.radius if radius is None else radius
        key = (px, py, radius)
        st = self._cache.get(key)
        if st is None:
            if radius == self.radius:
                h = OVERSAMPLE // 2
                n = 2 * self.radius + 1
                st = self.fine[h - py :: OVERSAMPLE, h - px :: OVERSAMPLE][:n, :n].copy()
                st /= st.sum()
            else:
                full = self.stamp(px, py)
                cut = self.radius - radius
                st = np.ascontiguousarray(full[cut:-cut, cut:-cut]) if cut else full
            self._cache[key] = st
        return st

    def radius_for(self, flux_e: float) -> int:
        """Stamp radius a star of this flux (electrons) needs."""
        if flux_e < 2.0e4:
            return self.small
        if flux_e < 2.0e6:
            return self.medium
        return self.radius

    @property
    def kernel(self) -> np.ndarray:
        return self.stamp(0, 0, self.medium)


def phase(x: float) -> tuple[int, int]:
    """Nearest pixel and fine-grid phase of a coordinate: x ~ ix + p / OVERSAMPLE."""
    ix = int(math.floor(x + 0.5))
    p = int(round((x - ix) * OVERSAMPLE))
    h = OVERSAMPLE // 2
    if p > h:
        ix, p = ix + 1, p - OVERSAMPLE
    elif p < -h:
        ix, p = ix - 1, p + OVERSAMPLE
    return ix, p
