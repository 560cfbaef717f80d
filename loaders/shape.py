"""Measured shape features that Map 1 sees beside the learned embedding.

Why: the SimCLR encoder is trained to ignore rotation, small shifts and +-10% scale, and its
cutouts are scaled to peak 1, so what separates a star on a badly tracked exposure from a round
one - a few tenths of elongation, all pointing the same way - is faint in the embedding (on the
simulated archive, bad-tracking exposures had fp_similar precision@10 0.2-0.4 with the
embedding alone). sep already measured every object's second moments, so Map 1 is fitted on
``[embedding, weight * standardised features]`` with these features (``NAMES``):

- ``elongation``: 1 - b/a;
- ``size``: log sqrt(a b), pixels;
- ``concentration``: log(peak / flux), high for point sources and cosmic rays, low for
  extended or smeared light (bad seeing, bad focus, trails);
- ``log_flux``: log of sep's flux;
- ``aligned`` and ``across``: elongation times cos / sin of twice the angle between the
  object's major axis and the *file's common direction*. That direction is the flux-weighted
  mean of ``e * exp(2i theta)`` over the file's brighter half (objects above the file's median
  log flux): a tracking error smears every star the same way, galaxies point anywhere. So
  ``aligned`` is large on a badly tracked exposure's stars and spread around zero elsewhere.

The standardisation (median and spread over the training objects) and the weight are stored
in the Map-1 model file, so loading computes exactly what training fitted. On the simulated
archive, weight 0.5 gave the best Map 2 (see the README's figures); 0 is the embedding alone.
"""

from __future__ import annotations

import numpy as np

NAMES = ("elongation", "size", "concentration", "log_flux", "aligned", "across")
DEFAULT_WEIGHT = 0.5
#: standardised features are clipped to +-CLIP so a few freak measurements cannot stretch Map 1
CLIP = 5.0


def raw_features(columns: dict[str, np.ndarray]) -> np.ndarray:
    """(N, 6) float64 features of one file's objects (``a``, ``b``, ``theta``, ``flux``, ``peak``).

    The common direction is a property of the file, so call this once per file with all of its
    sampled objects. NaN measurements (sep gives them for degenerate objects) become 0.
    """
    a = np.nan_to_num(np.asarray(columns["a"], np.float64), nan=0.0)
    b = np.nan_to_num(np.asarray(columns["b"], np.float64), nan=0.0)
    theta = np.nan_to_num(np.asarray(columns["theta"], np.float64), nan=0.0)
    flux = np.nan_to_num(np.asarray(columns["flux"], np.float64), nan=0.0)
    peak = np.nan_to_num(np.asarray(columns["peak"], np.float64), nan=0.0)
    n = len(a)
    if n == 0:
        return np.zeros((0, len(NAMES)))
    elong = 1.0 - b / np.maximum(a, 1e-3)
    elong = np.clip(elong, 0.0, 1.0)
    size = np.log(np.sqrt(np.maximum(a * b, 1e-3)))
    log_flux = np.log(np.maximum(flux, 1e-3))
    concentration = np.log(np.maximum(peak, 1e-3) / np.maximum(flux, 1e-3))
    weight = np.clip(log_flux - np.median(log_flux), 0.0, None)
    common = np.sum(weight * elong * np.exp(2j * theta))
    angle = np.angle(common) / 2.0 if abs(common) > 0 else 0.0
    aligned = elong * np.cos(2.0 * (theta - angle))
    across = elong * np.sin(2.0 * (theta - angle))
    return np.stack([elong, size, concentration, log_flux, aligned, across], axis=1)


def fit_scaling(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre (median) and scale (standard deviation) of each feature over training objects."""
    center = np.median(raw, axis=0)
    scale = raw.std(axis=0)
    return center, np.where(scale > 1e-9, scale, 1.0)


def combine(
    embedding: np.ndarray, raw: np.ndarray, center: np.ndarray, scale: np.ndarray, weight: float
) -> np.ndarray:
    """What Map 1's SOM sees: the embedding with the weighted, standardised features appended."""
    if weight == 0:
        return np.asarray(embedding, np.float32)
    std = np.clip((raw - center) / scale, -CLIP, CLIP)
    return np.hstack([embedding, weight * std]).astype(np.float32)
