"""Loader building blocks without a database: detection, cutouts, sampling, fingerprints,
device choice, the SOM and the evaluation metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.io import fits

from caomai_loaders import cutouts, device, fingerprint
from caomai_loaders.detect import FLAG_EDGE, FLAG_SEGMENT, DetectionError, DetectParams, detect
from caomai_loaders.images import ImageHDU, read_images
from caomai_loaders.objects import NoObjectsError, file_objects
from caomai_loaders.scoring import (
    binary_scores,
    fill_from_nearest,
    in_cell_scores,
    majority,
    node_majority,
    tied_members,
)
from caomai_loaders.som import SOM

from .load_helpers import render, write_exposure


def _hdu(data: np.ndarray) -> ImageHDU:
    return ImageHDU(1, "ccd00", data.astype(np.float32), fits.Header(), None, None, None)


def test_detection_finds_the_rendered_stars() -> None:
    det = detect(_hdu(render("good", seed=3, n_stars=60)))
    # 60 stars (a few blend or sit faint) + 3 cosmic rays; noise peaks are rare at 2 sigma x 5 px
    assert 50 <= det.n <= 80
    assert det.background_level == pytest.approx(100, abs=1)
    assert det.background_rms == pytest.approx(5, rel=0.15)


def test_all_nan_and_constant_images_are_clear_errors() -> None:
    with pytest.raises(DetectionError, match="invalid"):
        detect(_hdu(np.full((64, 64), np.nan)))
    with pytest.raises(DetectionError, match="constant"):
        detect(_hdu(np.full((64, 64), 7.0)))


def _cutouts(*args, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Normalised cutouts and flags, as the loader makes them."""
    snr, flags = cutouts.snr_boxes(*args, **kwargs)
    return cutouts.normalise(snr), flags


def test_cutouts_are_noise_units_with_peak_one_and_flag_the_edge() -> None:
    data = np.random.default_rng(0).normal(0, 2.0, (100, 100)).astype(np.float32)
    data[50, 50] = 400.0
    data[10:20, 60] = np.nan
    rms = np.full_like(data, 2.0)
    boxes, flags = _cutouts(data, rms, np.array([50.0, 2.0, 60.0]), np.array([50.0, 50.0, 15.0]))
    assert boxes.shape == (3, 32, 32) and boxes.dtype == np.float32
    assert boxes[0].max() == pytest.approx(1.0) and boxes[0][16, 16] == pytest.approx(1.0)
    # noise of 1 sigma around a 200-sigma peak: asinh(1/3)/asinh(200/3) ~ 0.07
    assert 0.03 < np.std(boxes[0][:8, :8]) < 0.15
    assert flags[1] & FLAG_EDGE and not flags[0] & FLAG_EDGE
    assert np.all(np.isfinite(boxes)) and flags[2] != 0  # NaN -> 0 and flagged
    png = cutouts.to_png(boxes[0])
    assert png.startswith(b"\x89PNG")


def test_sample_is_a_bottom_k_subset_and_independent_of_the_file_order(tmp_path: Path) -> None:
    path = write_exposure(tmp_path / "e.fits", "good", seed=5, n_ccds=3)
    full = file_objects(path, max_objects=10_000, seed=42)
    small = file_objects(path, max_objects=40, seed=42)
    again = file_objects(path, max_objects=40, seed=42)
    assert full.n_sampled == full.n_detected > 100
    assert small.n_detected == full.n_detected and small.n_sampled == 40
    key = lambda fo: {  # noqa: E731
        (int(e), round(float(x), 3), round(float(y), 3))
        for e, x, y in zip(fo.columns["extension"], fo.columns["x"], fo.columns["y"], strict=True)
    }
    assert key(small) <= key(full)
    assert key(small) == key(again)
    np.testing.assert_array_equal(small.cutouts, again.cutouts)
    # every CCD contributes: the sample is uniform over the file, not the first CCD's objects
    assert set(small.columns["extension"].tolist()) == {1, 2, 3}


def test_a_file_without_sources_says_so(tmp_path: Path) -> None:
    path = tmp_path / "flat.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.full((64, 64), 3.0, np.float32))]).writeto(
        path
    )
    with pytest.raises(NoObjectsError, match="flat.fits.*constant"):
        file_objects(path)


def test_fingerprint_does_not_depend_on_the_sample_size() -> None:
    rng = np.random.default_rng(1)
    # an image with 20000 detections spread over Map-1 nodes with a skewed distribution
    p = rng.dirichlet(np.full(400, 0.3))
    nodes = rng.choice(400, size=20000, p=p)
    full = fingerprint.fingerprint(fingerprint.counts_of(nodes), 20000, 20000)
    for n in (1000, 4000):
        sample = rng.choice(nodes, size=n, replace=False)
        counts = fingerprint.counts_of(sample)
        fp = fingerprint.fingerprint(counts, 20000, n)
        assert float(fp @ full) > (0.93 if n == 1000 else 0.98)
        # has_object_node's scaling brings sampled counts back to detected counts
        top = np.argsort(-p)[:5]
        scaled = counts[top].sum() * 20000 / n
        assert scaled == pytest.approx(np.bincount(nodes, minlength=400)[top].sum(), rel=0.15)
    assert np.linalg.norm(full) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError):
        fingerprint.fingerprint(np.zeros(400), 0, 0)


def test_fingerprint_transforms() -> None:
    counts = fingerprint.counts_of(np.array([0, 0, 0, 0, 1, 399]))
    lin = fingerprint.fingerprint(counts, 6, 6, "linear")
    sq = fingerprint.fingerprint(counts, 6, 6, "sqrt")
    sm = fingerprint.fingerprint(counts, 6, 6, "smooth-sqrt")
    assert lin[0] > sq[0] and lin[1] < sq[1]  # sqrt lifts the rare nodes
    assert sm[20] > 0 and lin[20] == 0  # smoothing reaches the grid neighbour below node 0
    with pytest.raises(ValueError, match="transform"):
        fingerprint.fingerprint(counts, 6, 6, "log")


def test_log_density_tells_a_sparse_image_from_a_dense_one() -> None:
    """Same shapes, 20x more objects per pixel: sqrt cannot see it, log-density does."""
    nodes = np.repeat(np.arange(10), [50, 40, 30, 20, 10, 5, 5, 5, 5, 5])
    counts = fingerprint.counts_of(nodes)
    n = len(nodes)
    sparse_sq = fingerprint.fingerprint(counts, n, n, "sqrt")
    dense_sq = fingerprint.fingerprint(counts, 20 * n, n, "sqrt")
    assert float(sparse_sq @ dense_sq) == pytest.approx(1.0, abs=1e-6)
    sparse = fingerprint.fingerprint(counts, n, n, "log-density", pixels=2_000_000)
    dense = fingerprint.fingerprint(counts, 20 * n, n, "log-density", pixels=2_000_000)
    assert float(sparse @ dense) < 0.995
    assert np.linalg.norm(dense) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="pixels"):
        fingerprint.fingerprint(counts, n, n, "log-density")


def test_image_background_keeps_the_pedestal_of_a_gradient() -> None:
    """--background image: a star on the bright side of a gradient sits on a pedestal."""
    rng = np.random.default_rng(2)
    ny, nx = 256, 256
    sky = 100.0 + np.linspace(0, 300, nx)[None, :] * np.ones((ny, 1))
    img = rng.normal(sky, 5.0).astype(np.float32)
    yy, xx = np.mgrid[0:ny, 0:nx]
    for x0 in (30, 220):
        img += (
            5000 / (2 * np.pi * 2.0**2) * np.exp(-((xx - x0) ** 2 + (yy - 128) ** 2) / 8.0)
        ).astype(np.float32)
    det = detect(_hdu(img))
    xs, ys = np.array([30.0, 220.0]), np.array([128.0, 128.0])
    local, _ = _cutouts(det.data_sub, det.rms, xs, ys)
    kept, _ = _cutouts(det.data_sub, det.rms, xs, ys, offset=det.back_offset)
    # local subtraction: both corners near 0; image background: the bright side keeps its sky
    assert abs(np.median(local[1][:6, :6])) < 0.1
    assert np.median(kept[1][:6, :6]) > np.median(kept[0][:6, :6]) + 0.1


def test_device_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    assert device.pick_device("cpu").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.pick_device("auto").type == "cpu"
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        device.pick_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert device.pick_device("auto") == torch.device("cuda")
    assert device.pick_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(RuntimeError, match="only 1 GPU"):
        device.pick_device("cuda:3")
    with pytest.raises(ValueError, match="--device"):
        device.pick_device("tpu")
    assert device.cpu_threads(3) == 3 and device.cpu_threads() >= 1


def test_som_keeps_the_topology() -> None:
    rng = np.random.default_rng(0)
    data = rng.uniform(0, 1, size=(4000, 2)).astype(np.float32)
    som = SOM(10, 10)
    report = som.fit(data, epochs=30, sigma_end=1.0)
    assert report.topographic_error < 0.05
    assert report.nodes_used == 100
    nodes, dist = som.assign(data)
    assert dist.mean() < 0.08
    # grid neighbours hold nearby vectors: adjacent codebook steps are small vs the data span
    cb = som.codebook.reshape(10, 10, 2)
    steps = np.linalg.norm(np.diff(cb, axis=0), axis=2).max()
    assert steps < 0.25


def test_metric_functions_by_hand() -> None:
    s = binary_scores(np.array([1, 1, 0, 0, 1]), np.array([1, 0, 0, 1, 1]))
    assert (s.tp, s.fp, s.tn, s.fn) == (2, 1, 1, 1)
    assert s.accuracy == pytest.approx(0.6) and s.precision == pytest.approx(2 / 3)
    assert s.recall == pytest.approx(2 / 3)
    assert majority(["good", "bad"], prefer="bad") == "bad"
    assert majority(["a", "b", "b"]) == "b"
    labels = node_majority(np.array([3, 3, 3, 7]), ["good", "bad", "good", "bad"])
    assert labels == {3: "good", 7: "bad"}
    codebook = np.array([[0.0], [1.0], [2.0], [10.0]])
    assert fill_from_nearest({0: "a", 3: "b"}, codebook) == {0: "a", 1: "a", 2: "a", 3: "b"}


def test_real_frame_detection_counts() -> None:
    from .realframes import real_frames

    a370 = next(read_images(real_frames()["a370II"]))
    det = detect(a370)
    assert 800 <= det.n <= 2500  # ~1000 sources in the CFHT 3.6m FOCAM frame of Abell 370


def test_map1_node_statistics_survive_nan_shapes() -> None:
    """sep gives NaN a/b for some degenerate objects; node stats must still be valid JSON."""
    import json

    from caomai_loaders.train import _node_stats

    cols = {
        "a": np.array([np.nan, np.nan, 2.0]),
        "b": np.array([np.nan, np.nan, 1.0]),
        "flux": np.array([1.0, 2.0, 3.0]),
        "peak": np.array([1.0, 2.0, np.nan]),
        "flag": np.zeros(3, np.int32),
        # HSM could not measure the first two objects (moments.py gives NaN, snr finite)
        "m_sigma": np.array([np.nan, np.nan, 1.5]),
        "m_e1": np.array([np.nan, np.nan, 0.3]),
        "m_e2": np.array([np.nan, np.nan, -0.4]),
        "m_rho4": np.array([np.nan, np.nan, 2.0]),
        "snr": np.array([3.0, 5.0, 40.0]),
    }
    stats = _node_stats(np.array([0, 0, 1]), np.array([0.1, 0.2, 0.3]), cols, 3)
    assert stats[0]["a_median"] is None and stats[1]["a_median"] == 2.0
    assert stats[0]["m_sigma_median"] is None and stats[0]["unmeasured_fraction"] == 1.0
    assert stats[0]["snr_median"] == 4.0
    assert stats[1]["m_ellipticity_median"] == 0.5 and stats[1]["unmeasured_fraction"] == 0.0
    assert stats[2] == {"members": 0}
    json.dumps(stats, allow_nan=False)


def test_in_cell_ties_count_as_bad_unless_asked() -> None:
    # cell 0: one good, one bad (a tie); cell 1: two good, one bad; cell 2: one bad
    nodes = np.array([0, 0, 1, 1, 1, 2])
    bins = ["good", "bad", "good", "good", "bad", "bad"]
    bad = in_cell_scores(nodes, bins, prefer="bad")
    assert (bad.tp, bad.fp, bad.fn, bad.tn) == (2, 1, 1, 2)
    good = in_cell_scores(nodes, bins, prefer="good")
    assert (good.tp, good.fp, good.fn, good.tn) == (3, 2, 0, 1)
    assert tied_members(nodes, bins) == 2
    assert tied_members(np.array([0, 1]), ["good", "bad"]) == 0


@pytest.mark.parametrize("transform", fingerprint.TRANSFORMS)
def test_fingerprints_of_many_images_equal_each_image_alone(transform: str) -> None:
    rng = np.random.default_rng(4)
    counts = rng.poisson(0.6, size=(5, fingerprint.N_NODES))
    n_det = np.array([300, 80, 5000, 41, 999])
    n_samp = np.array([300, 80, 1000, 41, 400])
    pixels = np.array([2e6, 2e6, 3.4e8, 1e6, 9e6])
    many = fingerprint.fingerprint(counts, n_det, n_samp, transform, pixels=pixels)
    assert many.shape == counts.shape and many.dtype == np.float32
    for i in range(len(counts)):
        one = fingerprint.fingerprint(counts[i], n_det[i], n_samp[i], transform, pixels=pixels[i])
        np.testing.assert_allclose(many[i], one, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="sampled"):
        fingerprint.fingerprint(counts, n_det, np.array([1, 1, 0, 1, 1]))


def _simulated_rows(classes: list[str], seed: int) -> list[dict[str, str]]:
    """Truth-manifest rows as ``caomai simulate`` writes them (conditions only, no pixels)."""
    from caomai_loaders.sim.conditions import draw_conditions

    rows = []
    for i, k in enumerate(classes):
        c = draw_conditions(f"t{i:03d}", i, seed, k, np.random.default_rng([seed, i]))
        rows.append({key: str(v) for key, v in c.row().items()})
    return rows


def test_truth_ceiling_separates_classes_the_conditions_separate() -> None:
    from caomai_loaders import ceiling

    kinds = ["good", "crowded", "really_bad_tracking", "bad_focus"]
    rows = _simulated_rows([kinds[i % 4] for i in range(120)], seed=3)
    assert ceiling.has_conditions(rows)
    train = np.arange(120) < 60
    result = ceiling.truth_ceiling(rows, train, ~train, k=5, epochs=30)
    assert result.in_cell.n == 60 and result.held_out is not None
    # these four classes change different conditions, each by a lot
    assert result.precision_at_k > 0.9 and result.held_out.accuracy > 0.9
    # the same conditions with the labels shuffled between exposures: chance, not a ceiling
    rng = np.random.default_rng(0)
    shuffled = [dict(r) for r in rows]
    perm = rng.permutation(len(rows))
    for r, j in zip(shuffled, perm, strict=True):
        r["quality_class"] = rows[j]["quality_class"]
    blind = ceiling.truth_ceiling(shuffled, train, ~train, k=5, epochs=30)
    assert blind.precision_at_k < 0.5


def test_truth_ceiling_depth_is_relative_to_the_band() -> None:
    from caomai_loaders import ceiling

    rows = _simulated_rows(["good"] * 6, seed=5)
    for r, band, depth in zip(rows, "uuurrr", (22.0, 23.0, 24.0, 24.0, 25.0, 26.0), strict=True):
        r["band"], r["mag_limit"] = band, str(depth)
    x = ceiling.condition_matrix(rows, np.ones(6, bool))
    # u and r exposures one magnitude either side of their band's median look the same
    assert np.allclose(x[:3, 0], x[3:, 0])
    assert np.allclose(x.mean(axis=0), 0, atol=1e-6)
    # a manifest without the simulator's conditions (an expert's labels) has no ceiling
    assert not ceiling.has_conditions([{"exposure_id": "a", "quality_class": "good"}])


def _trail_image(angle_deg: float, amplitude: float, seed: int = 5) -> np.ndarray:
    """512x512 sky (1000, noise 32) crossed through its centre by a line of Gaussian
    profile (sigma 1.5 px) peaking at ``amplitude`` times the noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:512, 0:512].astype(np.float64)
    t = np.radians(angle_deg)
    across = -(xx - 255.5) * np.sin(t) + (yy - 255.5) * np.cos(t)
    line = amplitude * 32.0 * np.exp(-0.5 * (across / 1.5) ** 2)
    return rng.normal(1000.0, 32.0, (512, 512)) + line


def test_a_faint_trail_is_found_whole_by_the_binned_pass() -> None:
    data = _trail_image(30.0, 1.0)
    det = detect(_hdu(data))
    seg = (det.catalog["flag"] & FLAG_SEGMENT) != 0
    assert seg.sum() == 1
    x, y = det.catalog["x"][seg][0], det.catalog["y"][seg][0]
    t = np.radians(30.0)
    assert abs(-(x - 255.5) * np.sin(t) + (y - 255.5) * np.cos(t)) < 3  # on the line
    assert det.catalog["a"][seg][0] > 60  # one long object, not fragments
    # the first pass alone breaks the line into fragments ...
    first = detect(_hdu(data), DetectParams(segments=False, lines=False))
    assert not np.any(first.catalog["flag"] & FLAG_SEGMENT) and first.catalog["a"].max() < 40

    def on_segment(cat) -> np.ndarray:
        dx, dy = cat["x"] - x, cat["y"] - y
        along = dx * np.cos(t) + dy * np.sin(t)
        return (np.abs(-dx * np.sin(t) + dy * np.cos(t)) < 2) & (np.abs(along) < 60)

    # ... which the segment absorbs: none is left lying on it
    assert on_segment(first.catalog).sum() >= 2
    assert not np.any(on_segment({k: v[~seg] for k, v in det.catalog.items()}))


def test_column_aligned_and_saturated_lines_are_left_to_the_first_pass() -> None:
    column = detect(_hdu(_trail_image(90.0, 1.0)))
    assert not np.any(column.catalog["flag"] & FLAG_SEGMENT)
    bright = np.minimum(_trail_image(30.0, 200.0), 6000.0)
    hdu = ImageHDU(1, "ccd00", bright.astype(np.float32), fits.Header(), None, 6000.0, None)
    assert not np.any(detect(hdu).catalog["flag"] & FLAG_SEGMENT)
