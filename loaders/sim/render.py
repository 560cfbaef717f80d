"""One CCD of one exposure, in electrons and then ADU.

Order of the physics, as in the camera:

1. Light before the atmosphere: galaxies (GalSim Sersic profiles drawn without pixel
   response), satellite trails, the halos, spikes and ghosts of very bright stars, on a layer
   padded by the PSF radius; one FFT convolution with the exposure's PSF (pixel response
   included) blurs them all. Stars are the PSF itself, added as pre-drawn stamps.
2. Sky: level from the conditions, times the illumination pattern (flat-field residuals,
   gradients, scattered light).
3. Photon noise (Poisson), then charge that overflows a pixel's full well bleeds up and down
   its column, then cosmic rays (sharp: they hit the detector, not the sky), then read noise.
4. Electrons to ADU through each amplifier's gain (the two halves of a CCD can disagree),
   clipped at the saturation level, 16-bit unsigned as MegaCam writes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import galsim
import numpy as np
from scipy import ndimage, signal

from .conditions import PIXEL_CM, PIXEL_SCALE, Conditions
from .mosaic import Geometry
from .psf import OVERSAMPLE, PSFImage, phase
from .scene import Galaxy, Scene

#: Stars brighter than this (electrons) get an aureole, diffraction spikes and a ghost.
HALO_FLUX = 3.0e6

#: Columns of objects.csv, in order.
OBJECT_COLUMNS = (
    "exposure_id",
    "object_id",
    "extension",
    "extname",
    "kind",
    "x",
    "y",
    "ra",
    "dec",
    "mag",
    "flux",
    "saturated",
    "hlr_arcsec",
    "sersic_n",
    "axis_ratio",
    "angle_deg",
    "length_px",
    "parent_id",
)


@dataclass
class CCDResult:
    data: np.ndarray
    """uint16 ADU"""
    gain: float
    rdnoise: float
    saturate: float
    objects: list[dict]


def add_stamp(img: np.ndarray, stamp: np.ndarray, ix: int, iy: int, scale: float = 1.0) -> None:
    """img[iy-h:iy+h+1, ix-h:ix+h+1] += scale * stamp, clipped at the image edges."""
    hy, hx = stamp.shape[0] // 2, stamp.shape[1] // 2
    y0, y1 = iy - hy, iy + hy + 1
    x0, x1 = ix - hx, ix + hx + 1
    ny, nx = img.shape
    if x1 <= 0 or y1 <= 0 or x0 >= nx or y0 >= ny:
        return
    sy0, sx0 = max(0, -y0), max(0, -x0)
    sy1 = stamp.shape[0] - max(0, y1 - ny)
    sx1 = stamp.shape[1] - max(0, x1 - nx)
    img[max(y0, 0) : min(y1, ny), max(x0, 0) : min(x1, nx)] += scale * stamp[sy0:sy1, sx0:sx1]


def galaxy_profile(g: Galaxy) -> galsim.GSObject:
    """The galaxy (or interacting system) as a unit-flux GalSim profile centred on its centroid."""
    if g.bulge_fraction:
        disc = galsim.Exponential(half_light_radius=g.hlr, flux=1 - g.bulge_fraction)
        disc = disc.shear(q=g.q, beta=g.angle_deg * galsim.degrees)
        bulge = galsim.DeVaucouleurs(half_light_radius=0.35 * g.hlr, flux=g.bulge_fraction)
        bulge = bulge.shear(q=min(1.0, g.q + 0.3), beta=g.angle_deg * galsim.degrees)
        prof: galsim.GSObject = galsim.Add(disc, bulge)
    else:
        prof = galsim.Sersic(n=g.n, half_light_radius=g.hlr).shear(
            q=g.q, beta=g.angle_deg * galsim.degrees
        )
    if not g.companion:
        return prof
    cp = g.companion
    dx, dy = cp["sep"] * math.cos(cp["pa"]), cp["sep"] * math.sin(cp["pa"])
    comp = galsim.Sersic(n=cp["n"], half_light_radius=cp["hlr"], flux=cp["flux_ratio"])
    comp = comp.shear(q=cp["q"], beta=cp["angle_deg"] * galsim.degrees).shift(dx, dy)
    parts = [prof, comp]
    for t in g.tails:
        # a tidal tail: a string of faint knots along an arc swept around the pair
        n_knots = 10
        for i in range(n_knots):
            a = t["start"] + t["sweep"] * i / (n_knots - 1)
            r = t["radius"] * (0.6 + 0.6 * i / (n_knots - 1))
            parts.append(
                galsim.Gaussian(
                    sigma=t["sigma"] * (1 + 0.5 * i / n_knots),
                    flux=t["flux_ratio"] * (1.4 - 0.8 * i / (n_knots - 1)) / n_knots,
                ).shift(r * math.cos(a) + 0.5 * dx, r * math.sin(a) + 0.5 * dy)
            )
    total = 1 + cp["flux_ratio"]
    return galsim.Add(parts).shift(-dx * cp["flux_ratio"] / total, -dy * cp["flux_ratio"] / total)


def draw_galaxy(g: Galaxy, x: float, y: float) -> tuple[np.ndarray, int, int]:
    """Stamp (summing to the galaxy's flux) and the pixel it is centred on."""
    ix, iy = int(math.floor(x + 0.5)), int(math.floor(y + 0.5))
    half = int(math.ceil(g.extent))
    n = 2 * half + 1
    img = galaxy_profile(g).drawImage(
        nx=n, ny=n, scale=PIXEL_SCALE, method="no_pixel", offset=(x - ix, y - iy)
    )
    arr = img.array.astype(np.float64)
    total = arr.sum()
    return (arr * (g.flux / total) if total > 0 else arr), ix, iy


def _line_points(
    x0: float, y0: float, angle_deg: float, nx: int, ny: int, step: float = 0.25
) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """Points along the infinite line through (x0, y0) inside [0, nx) x [0, ny).

    Returns xs, ys, length inside, and the midpoint of the segment inside.
    """
    t = math.radians(angle_deg)
    dx, dy = math.cos(t), math.sin(t)
    lo, hi = -1e9, 1e9
    for p, d, n in ((x0, dx, nx), (y0, dy, ny)):
        if abs(d) < 1e-12:
            if not (-0.5 <= p < n - 0.5):
                return np.empty(0), np.empty(0), 0.0, 0.0, 0.0
            continue
        a, b = (-0.5 - p) / d, (n - 0.5 - p) / d
        lo, hi = max(lo, min(a, b)), min(hi, max(a, b))
    if hi <= lo:
        return np.empty(0), np.empty(0), 0.0, 0.0, 0.0
    s = np.arange(lo, hi, step)
    mid = 0.5 * (lo + hi)
    return x0 + s * dx, y0 + s * dy, hi - lo, x0 + mid * dx, y0 + mid * dy


def _deposit_bilinear(img: np.ndarray, xs: np.ndarray, ys: np.ndarray, w: np.ndarray) -> None:
    ix, iy = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - ix, ys - iy
    ny, nx = img.shape
    for ox, oy, ww in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        jx, jy = ix + ox, iy + oy
        ok = (jx >= 0) & (jx < nx) & (jy >= 0) & (jy < ny)
        np.add.at(img, (jy[ok], jx[ok]), (w * ww)[ok])


def _bright_star_light(
    layer: np.ndarray, c: Conditions, x: float, y: float, flux: float, rng: np.random.Generator
) -> None:
    """Aureole, diffraction spikes of the four spider vanes and a pupil ghost."""
    # aureole: light scattered by the optics and the atmosphere, ~r^-3 far out
    radius = int(min(40 + math.sqrt(flux) / 30, 400))
    n = 2 * radius + 1
    ix, iy = int(math.floor(x + 0.5)), int(math.floor(y + 0.5))
    aur = galsim.Moffat(beta=1.6, fwhm=3.0 * c.fwhm, trunc=radius * PIXEL_SCALE, flux=0.03)
    st = aur.drawImage(
        nx=n, ny=n, scale=PIXEL_SCALE, method="no_pixel", offset=(x - ix, y - iy)
    ).array
    add_stamp(layer, st, ix, iy, flux)
    # spikes along the vanes (aligned with the CCD axes, rotated with the camera)
    length = min(10 + math.sqrt(flux) / 8, 600)
    s = np.arange(2.0, length, 0.5)
    weight = 0.002 * flux * 0.5 * (1.0 / (1 + (s / 3.0) ** 2))
    weight /= max(weight.sum(), 1e-12) / (0.002 * flux / 4)
    rot = math.radians(c.rotation_deg + 45.0)
    for k in range(4):
        a = rot + k * math.pi / 2
        _deposit_bilinear(layer, x + s * math.cos(a), y + s * math.sin(a), weight)
    # pupil ghost: an out-of-focus reflection, a faint disc with a hole, offset radially
    g_r = float(rng.uniform(60, 140))
    ghost = galsim.Add(
        galsim.TopHat(g_r * PIXEL_SCALE, flux=1.0),
        galsim.TopHat(0.45 * g_r * PIXEL_SCALE, flux=-0.2),
    )
    n = 2 * int(g_r + 3) + 1
    gst = ghost.drawImage(nx=n, ny=n, scale=PIXEL_SCALE, method="no_pixel").array
    gst *= 0.004 * flux / max(gst.sum(), 1e-12)
    add_stamp(layer, gst, ix + int(rng.uniform(-30, 30)), iy + int(rng.uniform(-30, 30)))


def illumination(c: Conditions, scene: Scene, geo: Geometry, k: int) -> np.ndarray | float:
    """Multiplicative sky pattern on CCD k: gradient across the mosaic, scattered light."""
    x0, y0 = geo.origin(k)
    size = float(max(geo.width, geo.height))
    ang = math.radians(c.direction_deg if math.isfinite(c.direction_deg) else scene.gradient_deg)
    yy = (np.arange(geo.ny, dtype=np.float64) + y0 - geo.height / 2) / size
    xx = (np.arange(geo.nx, dtype=np.float64) + x0 - geo.width / 2) / size
    pattern = 1.0 + c.gradient * (xx[None, :] * math.cos(ang) + yy[:, None] * math.sin(ang))
    if scene.scatter is not None:
        sx, sy, r0, width, kind = scene.scatter
        r = np.hypot(
            xx[None, :] * size + geo.width / 2 - sx, yy[:, None] * size + geo.height / 2 - sy
        )
        bump = np.exp(-0.5 * ((r - r0) / width) ** 2)
        pattern = pattern + c.scattered_light * bump
    return pattern


def bleed(img: np.ndarray, full_well: float) -> None:
    """Charge above the full well spills up and down the column, filling pixels in turn."""
    over = img > full_well
    if not over.any():
        return
    for col in np.flatnonzero(over.any(axis=0)):
        v = img[:, col]
        rows = np.flatnonzero(v > full_well)
        # contiguous runs of overfull pixels
        splits = np.flatnonzero(np.diff(rows) > 1) + 1
        for run in np.split(rows, splits):
            a, b = int(run[0]), int(run[-1])
            excess = float((v[a : b + 1] - full_well).sum())
            v[a : b + 1] = full_well
            for direction, amount in ((1, excess / 2), (-1, excess / 2)):
                seg = v[b + 1 :] if direction > 0 else v[:a][::-1]
                room = np.maximum(full_well - seg, 0.0)
                cum = np.cumsum(room)
                nfull = int(np.searchsorted(cum, amount))
                seg[:nfull] = full_well
                if nfull < seg.size:
                    seg[nfull] += amount - (cum[nfull - 1] if nfull else 0.0)
        img[:, col] = v


def cosmic_rays(
    img: np.ndarray, c: Conditions, rng: np.random.Generator
) -> list[tuple[float, float, float, float, float]]:
    """Tracks of charged particles: sharp, a few pixels long, some curled (low-energy)."""
    ny, nx = img.shape
    area_cm2 = nx * ny * PIXEL_CM**2
    n = rng.poisson(c.cosmic_ray_rate * c.exptime * area_cm2)
    out = []
    for _ in range(n):
        x, y = rng.uniform(0, nx - 1), rng.uniform(0, ny - 1)
        angle = rng.uniform(0, 180)
        # most tracks are short (steep incidence), a few graze the chip
        length = float(min(rng.exponential(4.0) + 0.5, 60.0))
        per_px = float(rng.lognormal(math.log(900), 0.6))
        steps = max(int(length / 0.5), 1)
        t = np.linspace(-length / 2, length / 2, steps)
        if rng.uniform() < 0.1:  # a "worm": a low-energy electron wandering
            a = math.radians(angle) + np.cumsum(rng.normal(0, 0.35, steps))
            xs = x + np.cumsum(0.5 * np.cos(a))
            ys = y + np.cumsum(0.5 * np.sin(a))
        else:
            xs = x + t * math.cos(math.radians(angle))
            ys = y + t * math.sin(math.radians(angle))
        ix, iy = np.rint(xs).astype(int), np.rint(ys).astype(int)
        ok = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        if not ok.any():
            continue
        charge = per_px * 0.5 * length / steps * 2 * np.ones(ok.sum())
        charge *= rng.uniform(0.6, 1.4, ok.sum())
        np.add.at(img, (iy[ok], ix[ok]), 0.9 * charge)
        # a little charge diffusion into the neighbours, still far sharper than the PSF
        for ox, oy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            jx, jy = ix[ok] + ox, iy[ok] + oy
            good = (jx >= 0) & (jx < nx) & (jy >= 0) & (jy < ny)
            np.add.at(img, (jy[good], jx[good]), 0.025 * charge[good])
        total = float(charge.sum())
        out.append((float(np.mean(xs)), float(np.mean(ys)), total, length, float(angle)))
    return out


def render_ccd(
    c: Conditions,
    geo: Geometry,
    k: int,
    scene: Scene,
    psf: PSFImage,
    rng: np.random.Generator,
    next_id: int,
) -> CCDResult:
    """Render CCD k: the image in ADU and the truth rows of the objects whose centre lies on it."""
    nx, ny = geo.nx, geo.ny
    x0, y0 = geo.origin(k)
    gain = float(rng.uniform(1.5, 1.8))
    rdnoise = float(rng.uniform(4.0, 6.0))
    saturate = float(np.round(rng.uniform(56000, 65000)))
    full_well = saturate * gain
    objects: list[dict] = []

    def record(kind: str, x: float, y: float, **kw: object) -> int:
        nonlocal next_id
        oid = next_id
        next_id += 1
        objects.append(dict(kind=kind, x=x, y=y, object_id=oid, **kw))
        return oid

    def on_ccd(x: float, y: float) -> bool:
        return -0.5 <= x < nx - 0.5 and -0.5 <= y < ny - 0.5

    # 1. light before the atmosphere, on a layer padded by the PSF radius
    pad = psf.medium
    layer = np.zeros((ny + 2 * pad, nx + 2 * pad), dtype=np.float64)
    for g in scene.galaxies:
        x, y = g.x - x0, g.y - y0
        if not (
            -pad - g.extent <= x < nx + pad + g.extent
            and -pad - g.extent <= y < ny + pad + g.extent
        ):
            continue
        stamp, ix, iy = draw_galaxy(g, x + pad, y + pad)
        add_stamp(layer, stamp, ix, iy)
        if on_ccd(x, y):
            record(
                g.kind,
                x,
                y,
                mag=g.mag,
                flux_e=g.flux,
                hlr_arcsec=g.hlr,
                sersic_n=g.n if not g.bulge_fraction else 1.0,
                axis_ratio=g.q,
                angle_deg=g.angle_deg,
            )
    if scene.satellite is not None:
        sx, sy, angle, sb = scene.satellite
        xs, ys, _, _, _ = _line_points(
            sx - x0 + pad, sy - y0 + pad, angle, nx + 2 * pad, ny + 2 * pad
        )
        if xs.size:
            _deposit_bilinear(layer, xs, ys, np.full(xs.size, sb * 0.25))
        _, _, length, mx, my = _line_points(sx - x0, sy - y0, angle, nx, ny)
        if length > 0:
            record("trail", mx, my, flux_e=sb * length, length_px=length, angle_deg=angle)
    star_x, star_y = scene.stars_x - x0, scene.stars_y - y0
    bright = np.flatnonzero(
        (scene.stars_flux > HALO_FLUX)
        & (star_x > -600)
        & (star_x < nx + 600)
        & (star_y > -600)
        & (star_y < ny + 600)
    )
    for i in bright:
        _bright_star_light(layer, c, star_x[i] + pad, star_y[i] + pad, scene.stars_flux[i], rng)
    if layer.any():
        layer = signal.fftconvolve(layer, psf.kernel, mode="same")
    img = layer[pad : pad + ny, pad : pad + nx].copy()
    del layer

    # stars: the PSF stamp at the nearest fine-grid phase
    r = psf.radius
    visible = np.flatnonzero((star_x > -r) & (star_x < nx + r) & (star_y > -r) & (star_y < ny + r))
    star_rows: list[tuple[int, int, int]] = []
    for i in visible:
        flux = float(scene.stars_flux[i])
        ix, px = phase(star_x[i])
        iy, py = phase(star_y[i])
        add_stamp(img, psf.stamp(px, py, psf.radius_for(flux)), ix, iy, flux)
        xr, yr = ix + px / OVERSAMPLE, iy + py / OVERSAMPLE
        if on_ccd(xr, yr):
            record("star", xr, yr, mag=float(scene.stars_mag[i]), flux_e=flux)
            star_rows.append((len(objects) - 1, ix, iy))

    # 2. sky and its illumination pattern
    img += c.sky_e * illumination(c, scene, geo, k)

    # 3. photons, bleeding, cosmic rays, read noise
    img = rng.poisson(np.maximum(img, 0.0)).astype(np.float64)
    for idx, ix, iy in star_rows:
        objects[idx]["saturated"] = bool(img[iy, ix] >= full_well)
    bleed(img, full_well)
    _bleed_truth(img, full_well, objects, star_rows, record)
    for x, y, q, length, angle in cosmic_rays(img, c, rng):
        record("cosmic_ray", x, y, flux_e=q, length_px=length, angle_deg=angle)
    saturated = img >= full_well
    img += rng.normal(0.0, rdnoise, img.shape)

    # 4. to ADU through two amplifiers; the B half disagrees in gain and offset, so that its
    # sky sits a fraction ``step`` above or below A's (to first order: the offset, 1.5 step,
    # less what the higher gain takes away, 0.5 step)
    half = nx // 2
    step = c.amp_step * float(rng.choice([-1.0, 1.0])) * float(rng.uniform(0.5, 1.0))
    sky_adu = c.sky_e / gain
    img[:, :half] /= gain
    img[:, half:] /= gain * (1.0 + 0.5 * step)
    img[:, half:] += 1.5 * step * sky_adu
    img[saturated] = saturate
    np.clip(img, 0.0, saturate, out=img)
    data = np.rint(img).astype(np.uint16)

    for o in objects:
        o["flux"] = o.pop("flux_e") / gain
    return CCDResult(data, gain, rdnoise, saturate, objects)


def _bleed_truth(img, full_well, objects, star_rows, record) -> None:
    """One 'bleed' row per column-wise trail of full pixels longer than it is wide."""
    mask = img >= full_well
    if not mask.any():
        return
    labels, n = ndimage.label(mask)
    for sl, lab in zip(ndimage.find_objects(labels), range(1, n + 1), strict=True):
        height = sl[0].stop - sl[0].start
        width = sl[1].stop - sl[1].start
        if height < max(6, 2 * width):
            continue
        ys, xs = np.nonzero(labels[sl] == lab)
        parent = None
        for idx, ix, iy in star_rows:
            if sl[1].start <= ix < sl[1].stop and sl[0].start <= iy < sl[0].stop:
                parent = objects[idx]["object_id"]
                break
        record(
            "bleed",
            float(xs.mean() + sl[1].start),
            float(ys.mean() + sl[0].start),
            flux_e=float(img[sl][labels[sl] == lab].sum()),
            saturated=True,
            length_px=float(height),
            angle_deg=90.0,
            parent_id=parent,
        )
