"""The measured shape features Map 1 sees beside the embedding (loaders/shape.py)."""

from __future__ import annotations

import numpy as np
import sep

from loaders import shape


def _measured(angle_deg: float | None, n: int = 60, seed: int = 0) -> dict[str, np.ndarray]:
    """sep's catalogue of Gaussian sources, all elongated along angle_deg (None: random)."""
    rng = np.random.default_rng(seed)
    ny = nx = 600
    yy, xx = np.mgrid[:ny, :nx]
    img = rng.normal(0.0, 1.0, (ny, nx))
    for _ in range(n):
        x0, y0 = 30 + 540 * rng.random(), 30 + 540 * rng.random()
        ang = np.radians(angle_deg if angle_deg is not None else 180 * rng.random())
        dx, dy = xx - x0, yy - y0
        u = dx * np.cos(ang) + dy * np.sin(ang)
        v = -dx * np.sin(ang) + dy * np.cos(ang)
        flux = 2000 * (1 + 20 * rng.random())
        sa, sb = 3.0, 1.8
        img += flux / (2 * np.pi * sa * sb) * np.exp(-0.5 * ((u / sa) ** 2 + (v / sb) ** 2))
    cat = sep.extract(img.astype(np.float64), 5.0, err=1.0, minarea=5)
    return {k: cat[k] for k in ("a", "b", "theta", "flux", "peak")}


def test_aligned_feature_sees_a_common_direction_not_elongation_alone() -> None:
    tracked = shape.raw_features(_measured(35.0))
    scattered = shape.raw_features(_measured(None))
    col = {name: i for i, name in enumerate(shape.NAMES)}
    # both fields hold equally elongated objects (b/a = 0.6) ...
    for f in (tracked, scattered):
        assert 0.3 < np.median(f[:, col["elongation"]]) < 0.5
    # ... but only on the tracked one do they share the direction
    assert np.median(tracked[:, col["aligned"]]) > 0.3
    assert np.median(np.abs(tracked[:, col["across"]])) < 0.05
    assert np.median(scattered[:, col["aligned"]]) < 0.25
    assert np.median(np.abs(scattered[:, col["across"]])) > 0.1


def test_combine_standardises_clips_and_weights() -> None:
    raw = np.array([[0.0] * 6, [1.0] * 6, [2.0] * 6, [1000.0] * 6])
    center, scale = shape.fit_scaling(raw)
    assert np.allclose(center, 1.5) and np.all(scale > 0)
    emb = np.ones((4, 3), np.float32)
    out = shape.combine(emb, raw, center, scale, 0.5)
    assert out.shape == (4, 9) and out.dtype == np.float32
    assert np.allclose(out[:, :3], 1.0)
    assert np.all(np.abs(out[:, 3:]) <= 0.5 * shape.CLIP + 1e-6)
    assert np.array_equal(shape.combine(emb, raw, center, scale, 0.0), emb)


def test_degenerate_measurements_give_finite_features() -> None:
    cols = {k: np.array([np.nan, 0.0, 2.0]) for k in ("a", "b", "theta", "flux", "peak")}
    assert np.all(np.isfinite(shape.raw_features(cols)))
    assert shape.raw_features({k: np.zeros(0) for k in cols}).shape == (0, 6)
