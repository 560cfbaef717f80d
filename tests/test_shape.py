"""The measured shape features Map 1 sees beside the embedding (moments.py, shape.py)."""

from __future__ import annotations

import numpy as np

from caomai_loaders import cutouts, moments, shape
from caomai_loaders.detect import FLAG_SATURATED, FLAG_SEGMENT


def _boxes(angle_deg: float | None, n: int = 60, seed: int = 0, e: float = 0.4) -> np.ndarray:
    """32x32 boxes in signal-to-noise units of Gaussian sources with ellipticity ``e``.

    All elongated along ``angle_deg`` (a tracking error), or each its own way (None).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: cutouts.SIZE, : cutouts.SIZE] - cutouts.SIZE // 2
    out = []
    q = np.sqrt((1 - e) / (1 + e))  # b/a of a distortion e = (a^2 - b^2) / (a^2 + b^2)
    for _ in range(n):
        ang = np.radians(angle_deg if angle_deg is not None else 180 * rng.random())
        u = xx * np.cos(ang) + yy * np.sin(ang)
        v = -xx * np.sin(ang) + yy * np.cos(ang)
        sa = 2.5
        peak = 30 + 300 * rng.random()
        img = peak * np.exp(-0.5 * ((u / sa) ** 2 + (v / (q * sa)) ** 2))
        out.append(img + rng.normal(0.0, 1.0, img.shape))
    return np.array(out, np.float32)


def _columns(boxes: np.ndarray) -> dict[str, np.ndarray]:
    cols = moments.measure(boxes)
    cols["a"] = cols["b"] = np.full(len(boxes), 2.0)
    cols["npix"] = np.full(len(boxes), 30)
    cols["flag"] = np.zeros(len(boxes), np.int32)
    return cols


def test_adaptive_moments_measure_size_ellipticity_and_angle() -> None:
    m = moments.measure(_boxes(30.0, n=20, e=0.3))
    assert np.all(np.isfinite(m["m_sigma"]))
    # sigma = (a b)^(1/2) of the moment matrix: 2.5 * sqrt(q) for b/a = q
    q = np.sqrt(0.7 / 1.3)
    assert abs(np.median(m["m_sigma"]) - 2.5 * np.sqrt(q)) < 0.1
    e = np.hypot(m["m_e1"], m["m_e2"])
    assert abs(np.median(e) - 0.3) < 0.03
    angle = np.degrees(0.5 * np.arctan2(m["m_e2"], m["m_e1"]))
    assert abs(np.median(angle) - 30.0) < 3.0
    assert abs(np.median(m["m_rho4"]) - 2.0) < 0.1  # a Gaussian
    assert np.all(m["snr"] > 25)


def test_a_noise_box_or_a_cosmic_ray_is_unmeasured_not_an_error() -> None:
    rng = np.random.default_rng(3)
    noise = rng.normal(0.0, 1.0, (1, 32, 32)).astype(np.float32)
    hit = np.zeros((1, 32, 32), np.float32)
    hit[0, 16, 16] = 500.0  # one hot pixel
    m = moments.measure(np.concatenate([noise, hit]))
    assert np.all(np.isfinite(m["snr"])) and m["snr"][1] == 500.0
    assert np.isnan(m["m_sigma"][1])
    f = shape.raw_features(
        {**m, "a": np.ones(2), "b": np.ones(2), "npix": np.ones(2), "flag": np.zeros(2, int)}
    )
    assert np.all(np.isfinite(f))
    col = {name: i for i, name in enumerate(shape.NAMES)}
    assert f[1, col["unmeasured"]] == 1.0 and f[1, col["ellipticity"]] == 0.0
    assert moments.measure(np.zeros((0, 32, 32), np.float32))["snr"].shape == (0,)


def test_aligned_feature_sees_a_common_direction_not_elongation_alone() -> None:
    tracked = shape.raw_features(_columns(_boxes(35.0)))
    scattered = shape.raw_features(_columns(_boxes(None)))
    col = {name: i for i, name in enumerate(shape.NAMES)}
    # both fields hold equally elongated objects (e = 0.4, a little less for the faint ones) ...
    for f in (tracked, scattered):
        assert 0.25 < np.median(f[:, col["ellipticity"]]) < 0.4
    # ... but only on the tracked one do they share the direction
    assert np.median(tracked[:, col["aligned"]]) > 0.25
    assert np.median(np.abs(tracked[:, col["across"]])) < 0.03
    assert np.median(scattered[:, col["aligned"]]) < 0.2
    assert np.median(np.abs(scattered[:, col["across"]])) > 0.1


def test_faint_shapes_count_less_than_bright_ones() -> None:
    boxes = _boxes(35.0, n=2)
    faint = boxes.copy()
    faint[1] = boxes[1] / boxes[1].max() * 8.0  # the same shape at peak S/N ~ 8
    faint[1] += np.random.default_rng(9).normal(0.0, 1.0, faint[1].shape)
    col = {name: i for i, name in enumerate(shape.NAMES)}
    f = shape.raw_features(_columns(faint))
    assert f[1, col["log_snr"]] < f[0, col["log_snr"]]
    assert f[1, col["ellipticity"]] < 0.5 * f[0, col["ellipticity"]]


def test_combine_standardises_clips_and_weights() -> None:
    k = len(shape.NAMES)
    raw = np.array([[0.0] * k, [1.0] * k, [2.0] * k, [1000.0] * k])
    center, scale = shape.fit_scaling(raw)
    assert np.allclose(center, 1.5) and np.all(scale > 0)
    emb = np.ones((4, 3), np.float32)
    out = shape.combine(emb, raw, center, scale, 0.5)
    assert out.shape == (4, 3 + k) and out.dtype == np.float32
    assert np.allclose(out[:, :3], 1.0)
    assert np.all(np.abs(out[:, 3:]) <= 0.5 * shape.CLIP + 1e-6)
    assert np.array_equal(shape.combine(emb, raw, center, scale, 0.0), emb)
    factors = np.ones(k)
    factors[2] = 3.0
    boosted = shape.combine(emb, raw, center, scale, 0.5, factors)
    assert np.allclose(boosted[:, 3 + 2], 3.0 * out[:, 3 + 2])
    assert np.allclose(np.delete(boosted[:, 3:], 2, axis=1), np.delete(out[:, 3:], 2, axis=1))
    assert shape.emphasis()[shape.NAMES.index("aligned")] == shape.EMPHASIS["aligned"] > 1


def test_degenerate_measurements_give_finite_features() -> None:
    cols = {k: np.array([np.nan, 0.0, 2.0]) for k in moments.NAMES + ("a", "b", "npix")}
    cols["flag"] = np.array([0, FLAG_SATURATED, FLAG_SEGMENT])
    assert np.all(np.isfinite(shape.raw_features(cols)))
    empty = {k: np.zeros(0) for k in cols}
    assert shape.raw_features(empty).shape == (0, len(shape.NAMES))


def test_flags_and_isophotal_extent_reach_the_features_and_old_models_keep_their_own() -> None:
    cols = {k: np.full(3, 2.0) for k in moments.NAMES}
    cols |= {
        "a": np.array([2.0, 30.0, 200.0]),
        "b": np.array([2.0, 10.0, 2.0]),
        "npix": np.array([20, 3000, 900]),
        "flag": np.array([0, FLAG_SATURATED, FLAG_SEGMENT]),
    }
    raw = shape.raw_features(cols)
    col = {name: raw[:, i] for i, name in enumerate(shape.NAMES)}
    assert col["saturated"].tolist() == [0, 1, 0] and col["segment"].tolist() == [0, 0, 1]
    assert np.allclose(col["log_area"], np.log([20, 3000, 900]))
    assert np.allclose(col["elongation"], np.log([1.0, 3.0, 100.0]))
    old = ("ellipticity", "log_size", "rho4", "log_snr", "aligned", "across", "unmeasured")
    assert np.array_equal(shape.select(raw, old), raw[:, :7])
    assert shape.select(raw, shape.NAMES) is raw
