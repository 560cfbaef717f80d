"""What lies in the field of one exposure, in mosaic pixel coordinates.

Number counts follow the sky: galaxies dN/dm ~ 10^(0.33 m) normalised to ~3e4 per mag per
deg^2 at r = 24, stars dN/dm ~ 10^(0.15 m) with a density that rises towards the Galactic
plane, both down to a magnitude below the exposure's detection limit (so faint sources are
there as they are on the sky: at the noise). Galaxies get Sersic profiles (discs n ~ 1,
spheroids n ~ 4, some bulge + disc), half-light radii that shrink with magnitude, inclination
axis ratios and random orientations; some become interacting pairs with tidal tails.
Exposure-wide features (a satellite crossing, very bright stars for heavy saturation,
scattered light) are drawn here once, so every CCD sees the same ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .conditions import FILTERS, PIXEL_SCALE, Conditions
from .mosaic import Geometry

#: Rendering margin around the mosaic (pixels): sources just outside still shine in.
MARGIN = 40
#: Galaxy counts: per mag per deg^2 at r = 24, and slope.
GAL_A, GAL_SLOPE = 3.0e4, 0.33
#: Star counts slope (per mag), normalised by Conditions.star_density (per deg^2, r < 24).
STAR_SLOPE = 0.15
#: Share of galaxies brighter than r = 23 caught interacting.
MERGER_FRACTION = 0.07


@dataclass
class Galaxy:
    x: float
    y: float
    mag: float
    flux: float
    """electrons"""
    hlr: float
    """half-light radius (arcsec)"""
    n: float
    q: float
    angle_deg: float
    bulge_fraction: float = 0.0
    kind: str = "galaxy"
    companion: dict | None = None
    tails: list[dict] = field(default_factory=list)

    @property
    def extent(self) -> float:
        """Radius (pixels) that holds the galaxy's light, for its stamp."""
        r = (8.0 if max(self.n, 4.0 * self.bulge_fraction) >= 2 else 5.0) * self.hlr
        if self.companion:
            r = max(r, self.companion["sep"] + 5.0 * self.companion["hlr"])
        for t in self.tails:
            r = max(r, t["radius"] * 2 + 3 * t["sigma"])
        return min(r / PIXEL_SCALE + 3, 400)


@dataclass
class Scene:
    stars_x: np.ndarray
    stars_y: np.ndarray
    stars_mag: np.ndarray
    stars_flux: np.ndarray
    galaxies: list[Galaxy]
    #: satellite trail: (x, y) of a point on it, angle (deg), electrons per pixel of length
    satellite: tuple[float, float, float, float] | None = None
    #: scattered light: (x, y, radius, width) in pixels; a ring (pupil ghost) or a blob
    scatter: tuple[float, float, float, float, str] | None = None
    #: direction of the illumination gradient (deg), when the class did not give one
    gradient_deg: float = 0.0


def throughput(c: Conditions) -> float:
    """Electrons per unit 10^(-0.4 (m - zp)): exposure time, clouds, extinction."""
    k = FILTERS[c.band]["k"]
    return c.exptime * c.transparency * 10 ** (-0.4 * k * (c.airmass - 1.0))


def mag_to_e(c: Conditions, mag: np.ndarray | float) -> np.ndarray | float:
    return throughput(c) * 10 ** (-0.4 * (np.asarray(mag) - c.zp))


def _power_law_mags(
    rng: np.random.Generator, n: int, slope: float, m1: float, m2: float
) -> np.ndarray:
    """n magnitudes with dN/dm ~ 10^(slope m) between m1 and m2 (inverse CDF)."""
    a, b = 10 ** (slope * m1), 10 ** (slope * m2)
    return np.log10(a + rng.uniform(size=n) * (b - a)) / slope


def make_scene(c: Conditions, geo: Geometry, rng: np.random.Generator) -> Scene:
    w, h = geo.width + 2 * MARGIN, geo.height + 2 * MARGIN
    area = w * h * (PIXEL_SCALE / 3600.0) ** 2
    f = FILTERS[c.band]
    m_faint = min(c.mag_limit + 1.0, 27.0)

    # stars: N(<24) = star_density per deg^2 in this band's colour
    m1, m2 = 11.0, m_faint
    cum = lambda m: 10 ** (STAR_SLOPE * (m - 24.0 - f["star"]))  # noqa: E731
    n_stars = rng.poisson(c.star_density * area * (cum(m2) - cum(m1)))
    smag = _power_law_mags(rng, n_stars, STAR_SLOPE, m1, m2) + c.extinction * 0.5
    sx = rng.uniform(-MARGIN, geo.width + MARGIN, n_stars)
    sy = rng.uniform(-MARGIN, geo.height + MARGIN, n_stars)
    if c.n_bright:
        # very bright stars for heavy saturation: 10^2.5-10^4.5 times a full well at the peak
        nb = c.n_bright
        flux = 1.0e5 / 0.04 * 10 ** rng.uniform(2.0, 2.0 + 2.5 * max(c.strength, 0.2), nb)
        bmag = c.zp - 2.5 * np.log10(flux / throughput(c))
        sx = np.concatenate([sx, rng.uniform(0.1 * geo.width, 0.9 * geo.width, nb)])
        sy = np.concatenate([sy, rng.uniform(0.1 * geo.height, 0.9 * geo.height, nb)])
        smag = np.concatenate([smag, bmag])

    # galaxies, in r, then in this band
    colour = f["gal"]
    r1, r2 = 14.0, m_faint - colour + 0.6
    cumg = (
        GAL_A
        / (GAL_SLOPE * math.log(10))
        * (10 ** (GAL_SLOPE * (r2 - 24)) - 10 ** (GAL_SLOPE * (r1 - 24)))
    )
    n_gal = rng.poisson(cumg * area * c.galaxy_factor)
    rmag = _power_law_mags(rng, n_gal, GAL_SLOPE, r1, r2)
    gmag = rmag + colour + rng.normal(0, 0.3, n_gal) + c.extinction
    keep = gmag < m_faint
    rmag, gmag = rmag[keep], gmag[keep]
    gx = rng.uniform(-MARGIN, geo.width + MARGIN, rmag.size)
    gy = rng.uniform(-MARGIN, geo.height + MARGIN, rmag.size)
    galaxies = [
        _galaxy(rng, c, float(x), float(y), float(r), float(m))
        for x, y, r, m in zip(gx, gy, rmag, gmag, strict=True)
    ]

    scene = Scene(
        stars_x=sx,
        stars_y=sy,
        stars_mag=smag,
        stars_flux=np.asarray(mag_to_e(c, smag), dtype=float),
        galaxies=galaxies,
        gradient_deg=float(rng.uniform(0, 360)),
    )
    if c.satellite:
        sb = 10 ** rng.uniform(math.log10(60), math.log10(3000)) * c.transparency
        scene.satellite = (
            float(rng.uniform(0, geo.width)),
            float(rng.uniform(0, geo.height)),
            float(rng.uniform(0, 180)),
            float(sb),
        )
    if c.scattered_light:
        size = max(geo.width, geo.height)
        if rng.uniform() < 0.5:  # MegaCam's pupil ghost: a broad ring near the centre
            scene.scatter = (
                float(geo.width * rng.uniform(0.3, 0.7)),
                float(geo.height * rng.uniform(0.3, 0.7)),
                float(size * rng.uniform(0.2, 0.45)),
                float(size * rng.uniform(0.06, 0.15)),
                "ring",
            )
        else:  # light from a bright star or the moon just outside the field
            ang = rng.uniform(0, 2 * math.pi)
            scene.scatter = (
                float(geo.width / 2 + 0.6 * size * math.cos(ang)),
                float(geo.height / 2 + 0.6 * size * math.sin(ang)),
                0.0,
                float(size * rng.uniform(0.35, 0.8)),
                "blob",
            )
    return scene


def _galaxy(
    rng: np.random.Generator, c: Conditions, x: float, y: float, rmag: float, mag: float
) -> Galaxy:
    hlr = 0.9 * 10 ** (-0.12 * (rmag - 20.0)) * 10 ** rng.normal(0, 0.18)
    hlr = float(np.clip(hlr, 0.12, 8.0))
    kind = rng.uniform()
    bulge = 0.0
    if kind < 0.6:  # disc: inclination gives the axis ratio
        n = round(float(rng.uniform(0.7, 1.5)), 1)
        cosi = rng.uniform()
        q = math.sqrt(cosi**2 * (1 - 0.15**2) + 0.15**2)
    elif kind < 0.85:  # spheroid
        n = round(float(rng.uniform(2.5, 4.5)), 1)
        q = float(rng.uniform(0.5, 1.0))
    else:  # bulge + disc
        n = 1.0
        q = float(rng.uniform(0.3, 1.0))
        bulge = float(rng.uniform(0.15, 0.5))
    g = Galaxy(
        x=x,
        y=y,
        mag=mag,
        flux=float(mag_to_e(c, mag)),
        hlr=hlr,
        n=n,
        q=float(q),
        angle_deg=float(rng.uniform(0, 180)),
        bulge_fraction=bulge,
    )
    if rmag < 23.0 and rng.uniform() < MERGER_FRACTION:
        g.kind = "merger"
        ratio = float(rng.uniform(0.25, 1.0))
        c_hlr = hlr * float(rng.uniform(0.5, 1.0))
        sep = (hlr + c_hlr) * float(rng.uniform(0.6, 1.8))
        pa = float(rng.uniform(0, 2 * math.pi))
        g.companion = dict(
            flux_ratio=ratio,
            hlr=c_hlr,
            n=round(float(rng.uniform(0.8, 4.0)), 1),
            q=float(rng.uniform(0.4, 1.0)),
            angle_deg=float(rng.uniform(0, 180)),
            sep=sep,
            pa=pa,
        )
        for sign in (1, -1)[: int(rng.integers(1, 3))]:
            g.tails.append(
                dict(
                    flux_ratio=float(rng.uniform(0.04, 0.15)),
                    radius=(hlr + sep) * float(rng.uniform(0.8, 1.6)),
                    start=pa + sign * float(rng.uniform(0.2, 0.8)) + (math.pi if sign < 0 else 0),
                    sweep=sign * float(rng.uniform(1.0, 2.2)),
                    sigma=hlr * float(rng.uniform(0.25, 0.5)),
                )
            )
    return g
