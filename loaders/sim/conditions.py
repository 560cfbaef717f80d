"""Quality classes and the observing conditions of one exposure.

Every exposure starts as a *good* night at CFHT (seeing 0.5-1.0" scaled by airmass, moon or
not, exposure times of a real programme, a little wind shake and vignetting) and its class
then changes what that class is about, by a random ``strength`` in [0, 1]. The ranges of
neighbouring classes meet at their edges (the best "bad seeing" is as sharp as the worst
"good", the mildest "really bad tracking" trails as much as the worst "bad tracking"), so the
classes overlap the way an expert's labels of real data do. Nothing here is written to the
image headers that would give the class away: only the pixels tell.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from caomai_db.errors import SetupError, UsageError

#: The classes, in the order the truth files and reports list them.
CLASSES = (
    "good",
    "bad_tracking",
    "really_bad_tracking",
    "bad_seeing",
    "bad_focus",
    "background",
    "crowded",
    "low_exposure",
)
#: Default share of each class in an archive: most exposures of a real archive are good.
DEFAULT_WEIGHTS = {
    "good": 0.34,
    "bad_tracking": 0.09,
    "really_bad_tracking": 0.08,
    "bad_seeing": 0.10,
    "bad_focus": 0.09,
    "background": 0.10,
    "crowded": 0.10,
    "low_exposure": 0.10,
}
#: Kinds of background problem a ``background`` exposure shows (one or two of them).
BACKGROUND_KINDS = ("gradient", "scattered_light", "amp_steps", "heavy_saturation")

#: Mauna Kea (CFHT): latitude, longitude (deg), altitude (m).
CFHT_LAT, CFHT_LON, CFHT_ALT = 19.8253, -155.4689, 4204.0
#: MegaCam pixel scale, arcsec per pixel.
PIXEL_SCALE = 0.187
#: Physical pixel size (cm): cosmic-ray rates are per unit detector area.
PIXEL_CM = 13.5e-4

#: MegaCam filters. zp: magnitude giving 1 e-/s; sky: dark-sky brightness (mag/arcsec^2);
#: k: extinction per airmass; moon: how much brighter the sky gets at full moon (mag);
#: star/gal: mean colour relative to r. Filter names before and after the 2015 filter change.
FILTERS = {
    "u": dict(
        old="u.MP9301", new="u.MP9302", zp=25.1, sky=22.4, k=0.35, moon=2.8, star=1.3, gal=1.2
    ),
    "g": dict(
        old="g.MP9401", new="g.MP9402", zp=26.5, sky=22.0, k=0.17, moon=2.3, star=0.5, gal=0.5
    ),
    "r": dict(
        old="r.MP9601", new="r.MP9602", zp=26.2, sky=21.1, k=0.10, moon=1.7, star=0.0, gal=0.0
    ),
    "i": dict(
        old="i.MP9702", new="i.MP9703", zp=25.9, sky=20.4, k=0.05, moon=1.1, star=-0.2, gal=-0.3
    ),
    "z": dict(
        old="z.MP9801", new="z.MP9901", zp=24.9, sky=19.4, k=0.04, moon=0.7, star=-0.3, gal=-0.5
    ),
}
FILTER_WEIGHTS = {"u": 0.12, "g": 0.22, "r": 0.28, "i": 0.26, "z": 0.12}
#: The 2015B filter change (MJD of 2015-08-01): exposures after it carry the new names.
NEW_FILTERS_MJD = 57235.0
#: Observing dates: MegaCam's first light (2003-03) to the end of 2024.
MJD_RANGE = (52700.0, 60675.0)
#: Exposure times a survey programme uses (s), and how often.
EXPTIMES = (60.0, 120.0, 150.0, 200.0, 300.0, 345.0, 400.0, 450.0, 540.0, 600.0)
EXPTIME_WEIGHTS = (0.04, 0.08, 0.08, 0.08, 0.22, 0.10, 0.12, 0.08, 0.10, 0.10)


@dataclass
class Conditions:
    """Everything that decides how one exposure looks; the truth manifest writes it out."""

    exposure_id: str
    index: int
    seed: int
    quality_class: str
    strength: float
    # time, place, instrument
    band: str = "r"
    filter: str = "r.MP9602"
    mjd_obs: float = 55000.0
    exptime: float = 300.0
    ra: float = 0.0
    dec: float = 0.0
    glat: float = 60.0
    hour_angle: float = 0.0
    airmass: float = 1.1
    rotation_deg: float = 0.0
    # photometry
    zp: float = 26.2
    transparency: float = 1.0
    sky_mag: float = 21.1
    sky_e: float = 1000.0
    mag_limit: float = 24.5
    # PSF
    fwhm: float = 0.7
    beta: float = 3.0
    psf_e: float = 0.0
    psf_angle_deg: float = 0.0
    track_length: float = 0.0
    track_angle_deg: float = 0.0
    track_shape: str = "none"
    donut_diameter: float = 0.0
    obscuration: float = 0.0
    #: angle of the class's effect (tracking, gradient), degrees CCW from the +x pixel axis
    direction_deg: float = float("nan")
    # content
    star_density: float = 2000.0
    galaxy_factor: float = 1.0
    extinction: float = 0.0
    cosmic_ray_rate: float = 0.04
    satellite: bool = False
    # background
    background_kinds: list[str] = field(default_factory=list)
    gradient: float = 0.0
    scattered_light: float = 0.0
    amp_step: float = 0.0
    n_bright: int = 0

    def row(self) -> dict[str, object]:
        out = asdict(self)
        out["background_kinds"] = "|".join(self.background_kinds)
        return out


def assign_classes(n: int, weights: dict[str, float], seed: int) -> list[str]:
    """The class of every exposure: shares as weighted (largest remainder), order shuffled.

    Counts are exact rather than drawn, so a small test archive holds every class asked for.
    """
    names = [c for c in CLASSES if weights.get(c, 0) > 0]
    if not names:
        raise UsageError("no quality class has a positive weight")
    w = np.array([weights[c] for c in names], dtype=float)
    share = w / w.sum() * n
    counts = np.floor(share).astype(int)
    if n >= len(names):  # every class asked for appears at least once
        counts = np.maximum(counts, 1)
    while counts.sum() > n:
        counts[np.argmax(counts - share)] -= 1
    order = np.argsort(-(share - counts), kind="stable")
    i = 0
    while counts.sum() < n:
        counts[order[i % len(names)]] += 1
        i += 1
    labels = [c for c, k in zip(names, counts, strict=True) for _ in range(k)]
    rng = np.random.default_rng([seed, 0xC1A55])
    rng.shuffle(labels)
    return labels


def exposure_seed(seed: int, index: int) -> int:
    """The seed of one exposure's random streams: independent of workers and of other exposures."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def draw_conditions(
    exposure_id: str, index: int, seed: int, quality_class: str, rng: np.random.Generator
) -> Conditions:
    """A night at CFHT for this exposure, then the class's own change to it."""
    if quality_class not in CLASSES:
        raise UsageError(f"unknown quality class {quality_class!r}; known: {', '.join(CLASSES)}")
    s = float(rng.uniform(0.0, 1.0))
    c = Conditions(exposure_id, index, seed, quality_class, round(s, 4))

    # when and where
    # UT 06-15:30 is night in Hawaii
    c.mjd_obs = round(float(np.floor(rng.uniform(*MJD_RANGE)) + rng.uniform(6.0, 15.5) / 24.0), 8)
    c.band = str(rng.choice(list(FILTER_WEIGHTS), p=list(FILTER_WEIGHTS.values())))
    f = FILTERS[c.band]
    c.filter = f["new"] if c.mjd_obs >= NEW_FILTERS_MJD else f["old"]
    c.exptime = float(rng.choice(EXPTIMES, p=EXPTIME_WEIGHTS))
    crowded = quality_class == "crowded"
    c.ra, c.dec, c.glat = _pointing(rng, crowded)
    c.hour_angle, c.airmass = _hour_angle(rng, c.dec)
    c.rotation_deg = float(rng.normal(0.0, 0.02))

    # photometry: moon brightens the sky on some nights, thin cirrus on others
    c.zp = f["zp"]
    moon = float(f["moon"] * rng.uniform(0, 1) ** 2) if rng.uniform() < 0.5 else 0.0
    c.sky_mag = f["sky"] - moon + float(rng.normal(0, 0.1))
    c.transparency = float(rng.uniform(0.85, 1.0))

    # PSF of a good night
    zenith_seeing = float(rng.uniform(0.45, 0.85))
    c.fwhm = min(zenith_seeing * c.airmass**0.6, 1.05)
    c.beta = float(rng.uniform(2.6, 4.5))
    c.psf_e = float(rng.uniform(0.0, 0.05))
    c.psf_angle_deg = float(rng.uniform(0, 180))
    c.track_length = float(rng.uniform(0.0, 0.15))  # wind shake
    c.track_angle_deg = float(rng.uniform(0, 180))
    c.track_shape = "line"

    # content of a high-latitude field
    sin_b = max(math.sin(math.radians(abs(c.glat))), 0.17)
    c.star_density = 1500.0 / sin_b**1.2
    c.galaxy_factor = float(rng.lognormal(0.0, 0.25))  # cosmic variance, clusters
    c.cosmic_ray_rate = 0.04 * float(rng.uniform(0.7, 1.4))  # per cm^2 per s at 4200 m
    c.satellite = bool(rng.uniform() < 0.06)

    # illumination: flat-field residuals and faint amplifier mismatch are always there
    c.gradient = float(rng.uniform(0.0, 0.02))
    c.direction_deg = float("nan")
    c.amp_step = float(rng.uniform(0.0, 0.004))

    _apply_class(c, rng, s)
    _photometry(c)
    return c


def _apply_class(c: Conditions, rng: np.random.Generator, s: float) -> None:
    k = c.quality_class
    if k == "bad_tracking":
        c.track_length = c.fwhm * (0.8 + 1.7 * s)
        c.track_angle_deg = float(rng.uniform(0, 180))
        c.direction_deg = c.track_angle_deg
    elif k == "really_bad_tracking":
        c.track_length = c.fwhm * (2.4 + 8.0 * s)
        c.track_angle_deg = float(rng.uniform(0, 180))
        c.track_shape = str(rng.choice(["line", "kink", "jump"], p=[0.6, 0.25, 0.15]))
        c.direction_deg = c.track_angle_deg
    elif k == "bad_seeing":
        c.fwhm = (1.1 + 1.4 * s) * float(rng.uniform(0.95, 1.05))
        c.beta = float(rng.uniform(2.5, 3.5))
    elif k == "bad_focus":
        # the hole must beat the seeing for the dip to show: the size scales with it
        c.donut_diameter = 2.8 * c.fwhm + 4.0 * s
        c.obscuration = float(rng.uniform(0.42, 0.5))
        c.psf_e = float(rng.uniform(0.0, 0.08))  # a little astigmatism
    elif k == "background":
        n_kinds = 1 if rng.uniform() < 0.6 else 2
        c.background_kinds = sorted(
            str(x) for x in rng.choice(BACKGROUND_KINDS, size=n_kinds, replace=False)
        )
        c.direction_deg = float(rng.uniform(0, 360))
        if "gradient" in c.background_kinds:
            c.gradient = 0.10 + 0.60 * s
        if "scattered_light" in c.background_kinds:
            c.scattered_light = 0.12 + 0.8 * s
        if "amp_steps" in c.background_kinds:
            c.amp_step = 0.06 + 0.24 * s
        if "heavy_saturation" in c.background_kinds:
            c.n_bright = int(1 + rng.integers(0, 3))
        # background problems come with moonlight more often than not
        if rng.uniform() < 0.5:
            c.sky_mag -= float(rng.uniform(0.5, 1.5))
    elif k == "crowded":
        c.star_density = 6.0e4 * 10 ** (1.2 * s)
        c.extinction = float(rng.uniform(0.5, 2.5))
        c.galaxy_factor *= 10 ** (-0.4 * c.extinction * 0.7)
    elif k == "low_exposure":
        if rng.uniform() < 0.5:  # a short exposure
            c.exptime = float(np.round(30.0 * 10 ** (-1.2 * s), 1))
            c.exptime = max(c.exptime, 1.0)
        else:  # clouds
            c.transparency = float(0.12 * 10 ** (-1.0 * s))
    # "good", and the rest of every class, keeps the night drawn above


def _photometry(c: Conditions) -> None:
    """Sky level per pixel and the 5-sigma point-source limit, from the conditions."""
    f = FILTERS[c.band]
    throughput = c.exptime * c.transparency * 10 ** (-0.4 * f["k"] * (c.airmass - 1.0))
    c.sky_e = throughput * 10 ** (-0.4 * (c.sky_mag - c.zp)) * PIXEL_SCALE**2
    psf_px = effective_fwhm(c) / PIXEL_SCALE
    n_eff = 4 * math.pi * (psf_px / 2.355) ** 2
    noise = math.sqrt(n_eff * (c.sky_e + 25.0))
    c.mag_limit = c.zp - 2.5 * math.log10(5 * noise / max(throughput, 1e-9))


def effective_fwhm(c: Conditions) -> float:
    """Rough size of the PSF (arcsec), for stamp sizes and depth."""
    size = math.hypot(c.fwhm, 0.8 * c.track_length)
    if c.donut_diameter:
        size = max(size, math.hypot(c.donut_diameter, c.fwhm))
    return size


def _pointing(rng: np.random.Generator, crowded: bool) -> tuple[float, float, float]:
    """(ra, dec, galactic latitude): the plane for crowded fields, high latitude otherwise."""
    from astropy.coordinates import SkyCoord

    for _ in range(200):
        if crowded:
            l_deg = float(rng.uniform(0, 360))
            b_deg = float(rng.uniform(-6, 6))
            icrs = SkyCoord(l=l_deg, b=b_deg, unit="deg", frame="galactic").icrs
            ra, dec = float(icrs.ra.deg), float(icrs.dec.deg)
        else:
            ra = float(rng.uniform(0, 360))
            dec = math.degrees(math.asin(rng.uniform(math.sin(-0.44), math.sin(1.25))))
            b_deg = float(SkyCoord(ra=ra, dec=dec, unit="deg").galactic.b.deg)
        if -28 <= dec <= 72 and (crowded or abs(b_deg) >= 20):
            return round(ra, 6), round(dec, 6), round(b_deg, 4)
    raise SetupError("no pointing found")  # pragma: no cover - 200 tries never all fail


def _hour_angle(rng: np.random.Generator, dec: float) -> tuple[float, float]:
    """Hour angle (h) and airmass of an observation taken within reach of the meridian."""
    lat, d = math.radians(CFHT_LAT), math.radians(dec)
    for _ in range(50):
        ha = float(rng.uniform(-3.5, 3.5))
        cosz = math.sin(lat) * math.sin(d) + math.cos(lat) * math.cos(d) * math.cos(
            math.radians(15 * ha)
        )
        if cosz > 0.5:
            return round(ha, 4), round(1.0 / cosz, 4)
    cosz = math.sin(lat) * math.sin(d) + math.cos(lat) * math.cos(d)
    return 0.0, round(1.0 / cosz, 4)
