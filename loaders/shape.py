"""Measured shape features that Map 1 sees beside the learned embedding.

Why: the SimCLR encoder is trained to ignore rotation, small shifts and +-10% scale, and its
cutouts are scaled to peak 1, so what separates a star on a badly tracked exposure from a round
one - a few tenths of elongation, all pointing the same way - is faint in the embedding (on the
simulated archive, bad-tracking exposures had fp_similar precision@10 0.2-0.4 with the
embedding alone). ``moments.py`` measured every object's adaptive moments on its
signal-to-noise box, so Map 1 is fitted on ``[embedding, weight * standardised features]`` with
these features (``NAMES``):

- ``ellipticity``: ``|e|`` of the adaptive moments;
- ``log_size``: log of the adaptive sigma (pixels): bad seeing and defocus make every compact
  object bigger;
- ``rho4``: the radial fourth moment minus a Gaussian's 2: a donut is flat-topped (negative);
- ``log_snr``: log of the peak signal-to-noise: how much any of the above can be trusted;
- ``aligned`` and ``across``: ``|e|`` times cos / sin of twice the angle between the object's
  major axis and the *file's common direction*, the signal-to-noise weighted mean of
  ``e1 + i e2`` over the file's sample: a tracking error smears every object the same way,
  galaxies point anywhere. So ``aligned`` is large on a badly tracked exposure and spread
  around zero elsewhere;
- ``unmeasured``: 1 where the moments failed (a one-pixel cosmic ray, a blend, a noise peak);
- the object's extent beyond the 32x32 box, from sep's isophotal measurement of the whole
  detection: ``log_area`` (log of its pixels above the threshold) and ``log_extent`` (log of
  its semi-major axis), and ``elongation`` (log of sep's a/b). The cutout is scaled to peak 1
  and cut at 32 pixels, so a bleeding star, a large merging pair and a trail all look like
  "something bright filling the box"; these tell them apart;
- ``saturated`` and ``segment``: the detection flags ``FLAG_SATURATED`` (the object reaches
  the saturation level: a saturated star, and with it its bleed) and ``FLAG_SEGMENT`` (a trail
  found whole by the binned pass, ``detect.py``), as 0/1.

The shape of a faint object is mostly noise, so ``ellipticity``, ``rho4``, ``aligned`` and
``across`` are multiplied by ``snr / (snr + SNR_HALF)`` (0 for noise, 1 for bright objects);
an unmeasured object takes ellipticity 0, a Gaussian's rho4 and sep's ``sqrt(a b)`` as size.

Inside the block, ``aligned`` counts ``EMPHASIS`` times the others: a tracking error is the one
class the embedding cannot see at all (it is trained to ignore direction), and one feature
among 71 inputs moved too few objects across Map-1 nodes. On the simulated archive, x2.5 raised
bad tracking's precision@10 from 0.56 to 0.68 and all classes' from 0.806 to 0.823 (x4 and x6:
0.82, with bad seeing losing what bad tracking gained). ``saturated`` counts 3 times and
``segment`` 10 times: a flag is 0 for nearly every object, so standardised and clipped it is a
few units at most, and the few dozen trails of an archive then share a Map-1 node with the
noise around them instead of owning one (on the seed-11 archive, docs/experiments.md: bleed
F1 0.81 -> 0.95, trail 0 -> 0.65 with rare-aware sampling).

The standardisation (median and spread over the training objects), the weight and the emphasis
are stored in the Map-1 model file, so loading computes exactly what training fitted; a model
trained on features this caomai does not compute is refused with a message (``maps.py``);
one trained on fewer keeps computing its own (``select``). On the simulated archive,
adaptive moments at weight 1 gave the best Map 2 (precision@10 0.80 against 0.76 for sep's
isophotal shapes at their best weight, 0.5; docs/experiments.md); 0 is the embedding alone.
"""

from __future__ import annotations

import numpy as np

from .detect import FLAG_SATURATED, FLAG_SEGMENT

NAMES = (
    "ellipticity",
    "log_size",
    "rho4",
    "log_snr",
    "aligned",
    "across",
    "unmeasured",
    "log_area",
    "log_extent",
    "elongation",
    "saturated",
    "segment",
)
DEFAULT_WEIGHT = 1.0
#: standardised features are clipped to +-CLIP so a few freak measurements cannot stretch Map 1
CLIP = 5.0
#: peak signal-to-noise at which a shape counts half
SNR_HALF = 20.0
#: features that count more than the others inside the shape block (see above)
EMPHASIS = {"aligned": 2.5, "saturated": 3.0, "segment": 10.0}


def emphasis(names: tuple[str, ...] = NAMES) -> np.ndarray:
    """Per-feature factors (in ``names`` order) applied after standardising."""
    return np.array([EMPHASIS.get(name, 1.0) for name in names])


def select(raw: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """The columns of ``raw_features`` a model was trained on (a Map 1 from before a feature
    existed keeps computing exactly its own)."""
    if tuple(names) == NAMES:
        return raw
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f"unknown shape features {unknown}; this caomai computes {list(NAMES)}")
    return raw[:, [NAMES.index(n) for n in names]]


def raw_features(columns: dict[str, np.ndarray]) -> np.ndarray:
    """(N, len(NAMES)) float64 features of one file's objects (``moments.NAMES`` plus sep's
    a, b, npix and flags).

    The common direction is a property of the file, so call this once per file with all of its
    sampled objects.
    """
    sigma = np.asarray(columns["m_sigma"], np.float64)
    n = len(sigma)
    if n == 0:
        return np.zeros((0, len(NAMES)))
    measured = np.isfinite(sigma) & (sigma > 0)
    e1 = np.where(measured, np.nan_to_num(np.asarray(columns["m_e1"], np.float64)), 0.0)
    e2 = np.where(measured, np.nan_to_num(np.asarray(columns["m_e2"], np.float64)), 0.0)
    rho4 = np.where(measured, np.asarray(columns["m_rho4"], np.float64) - 2.0, 0.0)
    rho4 = np.nan_to_num(rho4)
    snr = np.clip(np.nan_to_num(np.asarray(columns["snr"], np.float64), nan=0.0), 0.1, None)
    trust = snr / (snr + SNR_HALF)
    a = np.nan_to_num(np.asarray(columns["a"], np.float64), nan=1.0)
    b = np.nan_to_num(np.asarray(columns["b"], np.float64), nan=1.0)
    size = np.where(measured, sigma, np.sqrt(np.clip(a * b, 1e-2, None)))
    e = np.hypot(e1, e2)
    common = np.sum(trust * (e1 + 1j * e2))
    angle = np.angle(common) if abs(common) > 0 else 0.0  # of the spin-2 pair: twice the axis
    phase = np.arctan2(e2, e1) - angle
    npix = np.clip(np.nan_to_num(np.asarray(columns["npix"], np.float64), nan=1.0), 1.0, None)
    flag = np.asarray(columns["flag"], np.int64)
    return np.stack(
        [
            trust * e,
            np.log(np.clip(size, 0.1, None)),
            trust * rho4,
            np.log(snr),
            trust * e * np.cos(phase),
            trust * e * np.sin(phase),
            (~measured).astype(np.float64),
            np.log(npix),
            np.log(np.clip(a, 0.3, None)),
            np.log(np.clip(a, 0.3, None) / np.clip(b, 0.3, None)),
            ((flag & FLAG_SATURATED) != 0).astype(np.float64),
            ((flag & FLAG_SEGMENT) != 0).astype(np.float64),
        ],
        axis=1,
    )


def fit_scaling(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre (median) and scale (standard deviation) of each feature over training objects."""
    center = np.median(raw, axis=0)
    scale = raw.std(axis=0)
    return center, np.where(scale > 1e-9, scale, 1.0)


def combine(
    embedding: np.ndarray,
    raw: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    weight: float,
    factors: np.ndarray | None = None,
) -> np.ndarray:
    """What Map 1's SOM sees: the embedding with the weighted, standardised features appended.

    ``factors`` (``emphasis()``, as stored in the model; None = all 1) multiply single features.
    """
    if weight == 0:
        return np.asarray(embedding, np.float32)
    std = np.clip((raw - center) / scale, -CLIP, CLIP)
    if factors is not None:
        std = std * np.asarray(factors, np.float64)
    return np.hstack([embedding, weight * std]).astype(np.float32)
