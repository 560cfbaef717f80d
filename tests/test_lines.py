"""The line search for faint trails (``loaders/lines.py``) through ``detect``: what it finds,
where, and what it must not call a trail."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits

from caomai_loaders import lines
from caomai_loaders.detect import FLAG_SEGMENT, DetectParams, amplifier_boundaries, detect
from caomai_loaders.images import ImageHDU

SIZE = 1024
NOISE = 30.0


def _image(seed: int, *, stars: int = 0) -> np.ndarray:
    """Sky 1000 with Gaussian noise ``NOISE``; ``stars`` Gaussian stars of random brightness."""
    rng = np.random.default_rng(seed)
    data = rng.normal(1000.0, NOISE, (SIZE, SIZE))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    for _ in range(stars):
        x, y = rng.uniform(10, SIZE - 10, 2)
        flux = 10 ** rng.uniform(3.5, 6.0)
        r2 = (xx[int(y) - 12 : int(y) + 13, int(x) - 12 : int(x) + 13] - x) ** 2 + (
            yy[int(y) - 12 : int(y) + 13, int(x) - 12 : int(x) + 13] - y
        ) ** 2
        data[int(y) - 12 : int(y) + 13, int(x) - 12 : int(x) + 13] += (
            flux / (2 * math.pi * 2.0**2) * np.exp(-0.5 * r2 / 2.0**2)
        )
    return data


def _add_line(
    data: np.ndarray, angle_deg: float, per_length: float, *, x0=511.5, y0=511.5, half=None
):
    """A line through (x0, y0) of Gaussian profile (sigma 1.5 px) with ``per_length`` times the
    noise per pixel of length (its integral across); ``half``: it ends that far from (x0, y0)."""
    yy, xx = np.mgrid[0 : data.shape[0], 0 : data.shape[1]].astype(np.float64)
    t = math.radians(angle_deg)
    across = -(xx - x0) * math.sin(t) + (yy - y0) * math.cos(t)
    along = (xx - x0) * math.cos(t) + (yy - y0) * math.sin(t)
    profile = (
        per_length * NOISE / (1.5 * math.sqrt(2 * math.pi)) * np.exp(-0.5 * (across / 1.5) ** 2)
    )
    if half is not None:
        profile[np.abs(along) > half] = 0.0
    return data + profile


def _two_amplifiers() -> fits.Header:
    """A CFHT-like header: amplifier A reads columns 1-512, B 513-1024."""
    header = fits.Header()
    header["ASECA"] = f"[1:{SIZE // 2},1:{SIZE}]"
    header["ASECB"] = f"[{SIZE // 2 + 1}:{SIZE},1:{SIZE}]"
    return header


def _hdu(data: np.ndarray, header: fits.Header | None = None) -> ImageHDU:
    header = header if header is not None else fits.Header()
    return ImageHDU(1, "ccd00", data.astype(np.float32), header, None, None, None)


def _segments(data: np.ndarray, header: fits.Header | None = None, **params):
    """The ``FLAG_SEGMENT`` detections of ``detect`` on ``data`` (catalogue columns)."""
    cat = detect(_hdu(data, header), DetectParams(**params)).catalog
    seg = (cat["flag"] & FLAG_SEGMENT) != 0
    return {name: values[seg] for name, values in cat.items()}


def _across(seg, i: int, angle_deg: float, x0=511.5, y0=511.5) -> float:
    t = math.radians(angle_deg)
    return abs(-(seg["x"][i] - x0) * math.sin(t) + (seg["y"][i] - y0) * math.cos(t))


def test_a_faint_trail_is_found_whole_by_the_line_search() -> None:
    # 4 sigma per pixel of length: about 1 sigma at the peak pixel
    data = _add_line(_image(1), 30.0, 4.0)
    seg = _segments(data, segments=False)
    assert len(seg["x"]) == 1
    assert _across(seg, 0, 30.0) < 4.0
    assert abs(math.degrees(seg["theta"][0]) - 30.0) < 1.5
    # a = length / sqrt(12); the line crosses 1024 / cos(30) = 1182 pixels of the image
    assert seg["a"][0] * math.sqrt(12) == pytest.approx(1182, rel=0.1)
    # found once with the binned pass on as well
    assert len(_segments(data)["x"]) == 1


def test_a_trail_that_ends_in_the_image_is_as_long_as_it_is() -> None:
    data = _add_line(_image(2), 120.0, 8.0, half=470.0)
    seg = _segments(data, segments=False)
    assert len(seg["x"]) == 1
    assert seg["a"][0] * math.sqrt(12) == pytest.approx(940, rel=0.1)
    assert math.hypot(seg["x"][0] - 511.5, seg["y"][0] - 511.5) < 40


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_noise_and_stars_make_no_line(seed: int) -> None:
    assert len(_segments(_image(seed, stars=400))["x"]) == 0


def test_column_aligned_lines_are_not_searched() -> None:
    data = _add_line(_image(6), 90.0, 6.0)
    assert len(_segments(data, segments=False)["x"]) == 0
    # the same line 10 degrees off the columns is a trail
    assert len(_segments(_add_line(_image(6), 80.0, 6.0), segments=False)["x"]) == 1


def test_where_the_header_says_where_amplifiers_meet_only_their_steps_are_left_out() -> None:
    def boundaries(header: fits.Header) -> list[float] | None:
        return amplifier_boundaries(_hdu(np.zeros((SIZE, SIZE)), header))

    assert boundaries(_two_amplifiers()) == [511.5]
    assert boundaries(fits.Header()) is None
    assert boundaries(fits.Header({"ASECA": f"[1:{SIZE},1:{SIZE}]"})) == []
    # a trail along the columns, far from the boundary: found by either pass
    trail = _add_line(_image(6), 90.0, 6.0, x0=200.0)
    seg = _segments(trail, _two_amplifiers(), segments=False)
    assert len(seg["x"]) == 1 and abs(seg["x"][0] - 200.0) < 4.0
    seg = _segments(trail, _two_amplifiers())
    assert len(seg["x"]) == 1 and abs(seg["x"][0] - 200.0) < 4.0
    # the same image without the amplifiers' sections: column-aligned lines are not searched
    assert len(_segments(trail)["x"]) == 0
    # amplifier B's level 100 counts (3 sigma) above A's: a column-aligned step, no trail
    step = _image(7)
    step[:, SIZE // 2 :] += 100.0
    assert len(_segments(step, _two_amplifiers())["x"]) == 0
    # ... though the same step where the header puts no boundary is taken for a line
    assert len(_segments(step, fits.Header({"ASECA": f"[1:{SIZE},1:{SIZE}]"}))["x"]) > 0


def test_clipped_noise_has_the_spread_the_search_divides_by() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(size=2_000_000)
    for clip in (0.5, 1.0, 2.0):
        assert lines.clipped_std(clip) == pytest.approx(np.clip(noise, -clip, clip).std(), rel=0.01)


def _saturated_star(data: np.ndarray, x: float, y: float, level: float) -> np.ndarray:
    """A bright star at (x, y) clipped at ``level`` (a saturated core some 10 pixels across)."""
    yy, xx = np.mgrid[0 : data.shape[0], 0 : data.shape[1]]
    star = 1e7 / (2 * math.pi * 2.5**2) * np.exp(-0.5 * ((xx - x) ** 2 + (yy - y) ** 2) / 2.5**2)
    return np.minimum(data + star, level)


def test_a_trail_across_saturated_stars_is_still_a_trail() -> None:
    # one saturated star on the line, one beside it inside its bounding box
    data = _add_line(_image(7), 30.0, 6.0)
    data = _saturated_star(data, 511.5 + 200 * math.cos(math.radians(30)), 511.5 + 100, 6000.0)
    data = _saturated_star(
        data,
        511.5 + 300 * math.cos(math.radians(30)),
        511.5 + 300 * math.sin(math.radians(30)),
        6000.0,
    )
    hdu = ImageHDU(1, "ccd00", data.astype(np.float32), fits.Header(), None, 6000.0, None)
    # (the binned pass finds only the stretch beside the star on the line, 6% of it
    # saturated: the line search finds the whole line, 2% of it)
    for params in (DetectParams(), DetectParams(segments=False)):
        cat = detect(hdu, params).catalog
        seg = (cat["flag"] & FLAG_SEGMENT) != 0
        assert seg.sum() == 1, params
        assert abs(math.degrees(cat["theta"][seg][0]) - 30.0) < 2.0


def test_a_saturated_line_is_not_a_trail() -> None:
    # a bleed-like line saturated along its length, off the columns: neither pass takes it
    data = np.minimum(_add_line(_image(8), 30.0, 2000.0), 6000.0)
    hdu = ImageHDU(1, "ccd00", data.astype(np.float32), fits.Header(), None, 6000.0, None)
    assert not np.any(detect(hdu).catalog["flag"] & FLAG_SEGMENT)


def test_the_sums_over_lines_keep_a_matrix_only_for_a_size_met_twice_in_a_row() -> None:
    # the cached matrix's product and the chunked bincount sum the same lines; a matrix costs
    # 3x the chunks to make, so sizes that alternate (a mixed archive) must not make one each
    rng = np.random.default_rng(5)
    small, large = (40, 48), (56, 64)
    maps = {s: rng.normal(size=s[0] * s[1]).astype(np.float32) for s in (small, large)}
    lines._matrix.clear()
    lines._last_size[0] = (0, 0)
    for size in (small, large, small, large):
        sums = lines._line_sums(maps[size], *size)
        assert not lines._matrix
    np.testing.assert_allclose(sums, lines._bincount_sums(maps[large], *large), atol=1e-4)
    sums = lines._line_sums(maps[large], *large)
    assert list(lines._matrix) == [large]
    np.testing.assert_allclose(sums, lines._bincount_sums(maps[large], *large), atol=1e-4)
    assert np.abs(sums).max() > 1.0  # real sums, not zeros
    lines._line_sums(maps[small], *small)
    assert list(lines._matrix) == [large]  # a size met once does not replace it


def _binned_line(shape: tuple[int, int], angle_deg: float) -> np.ndarray:
    """The binned pixels within half a pixel of a line through the map's centre."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    y0, x0 = (shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0
    t = math.radians(angle_deg)
    return np.abs(-(xx - x0) * math.sin(t) + (yy - y0) * math.cos(t)) < 0.5


def _find(sig: np.ndarray, **kwargs) -> list[lines.Line]:
    """``lines.find`` on a binned (k = 8) significance map with the loader's settings."""
    return lines.find(
        sig, None, 8, clip=1.0, min_length=128.0, max_column_deg=3.0, max_lines=3, **kwargs
    )


def _crowded_map(seed: int, per_pixel: float) -> np.ndarray:
    """A binned significance map of a crowded field (stars on 30% of the pixels, 1-5 sigma)
    with a line at 30 degrees adding ``per_pixel`` sigma to one pixel in each row's crossing."""
    rng = np.random.default_rng(seed)
    sig = rng.normal(0.0, 1.0, (128, 128)).astype(np.float32)
    stars = rng.uniform(size=sig.shape) < 0.3
    sig[stars] += rng.uniform(1.0, 5.0, int(stars.sum())).astype(np.float32)
    sig[_binned_line(sig.shape, 30.0)] += per_pixel
    return sig


def test_in_a_crowded_field_a_line_is_measured_above_its_neighbours_level() -> None:
    # the local medians sit on starlight, so sky pixels and lines sum below zero; the search
    # takes its neighbours' level off a line's sum, and the line's own measure must too, or a
    # line the search found is dropped (sim0012-00335: found at 9.65, measured at 7.6)
    def found(per_pixel: float, baseline: bool) -> list[list[float]]:
        return [
            [
                line.snr
                for line in _find(_crowded_map(seed, per_pixel), thresh=9.0, baseline=baseline)
                if abs(math.degrees(line.theta) - 30.0) < 2.0
            ]
            for seed in range(8)
        ]

    assert found(0.0, True) == [[]] * 8  # no line, none found
    with_level, without = found(2.4, True), found(2.4, False)
    assert sum(map(bool, with_level)) >= 7
    assert sum(map(bool, without)) <= 5
    assert all(a[0] > b[0] for a, b in zip(with_level, without, strict=True) if a and b)


def test_line_sums_that_spread_wider_than_noise_count_for_less() -> None:
    # noise correlated between neighbouring binned pixels (a crowded field's stars straddle
    # the bins) widens the sums over lines: their spread is 1.3, where white noise reads
    # 0.81-0.89, and such noise alone sums to "lines" of 7.5-10 sigma
    from scipy import ndimage

    false_lines = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        sig = ndimage.gaussian_filter(rng.normal(size=(128, 128)), 1.2)
        sig = (sig / sig.std()).astype(np.float32)
        false_lines += len(_find(sig, thresh=7.5, spread_ref=0.0))
        assert _find(sig, thresh=7.5, spread_ref=0.95) == []
    assert false_lines >= 2
    # white noise spreads less than the reference: a line keeps its signal-to-noise
    rng = np.random.default_rng(0)
    sig = rng.normal(size=(128, 128)).astype(np.float32)
    sig[_binned_line(sig.shape, 30.0)] += 1.5
    (plain,) = _find(sig, thresh=6.0, spread_ref=0.0)
    (scaled,) = _find(sig, thresh=6.0, spread_ref=0.95)
    assert scaled.snr == plain.snr > 7.0


def test_a_line_across_several_saturated_stars_is_told_from_a_bleed_by_its_longest_run() -> None:
    # a trail across a crowded field crosses several saturated cores: together over 5% of it,
    # each one short; a bleed or a bright star's core is one long run
    yy, xx = np.mgrid[0:600, 0:600]
    stars = np.zeros((600, 600))
    for x in (100, 220, 340, 460):
        stars[(xx - x) ** 2 + (yy - 300) ** 2 <= 8**2] = 100.0
    bleed = np.zeros((600, 600))
    bleed[298:303, 200:260] = 100.0
    for data in (stars, bleed):
        assert lines.saturated_share(data, 299.5, 300.0, 0.0, 299.5, 100.0, width=2) > 0.09
    run = {
        name: lines.saturated_share(data, 299.5, 300.0, 0.0, 299.5, 100.0, 2, longest_run=True)
        for name, data in (("stars", stars), ("bleed", bleed))
    }
    assert run["stars"] == pytest.approx(17 / 600)
    assert run["bleed"] == pytest.approx(60 / 600)
    assert lines.saturated_share(np.zeros((600, 600)), 299.5, 300.0, 0.0, 299.5, 1.0, 2, True) == 0
