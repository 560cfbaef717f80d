"""The object-search definitions (loaders/object_search.py) on hand-built arrays whose answers
are worked out by hand, and the segment geometry against the simulator's own drawing code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from caomai_loaders import object_search as osearch
from caomai_loaders.sim import render


def _truth(*rows: tuple) -> dict[str, list]:
    """(kind, x, y[, length_px, angle_deg]) rows as match_kinds' columns."""
    cols: dict[str, list] = {"x": [], "y": [], "kind": [], "length_px": [], "angle_deg": []}
    for kind, x, y, *seg in rows:
        length, angle = seg if seg else (math.nan, math.nan)
        cols["kind"].append(kind)
        cols["x"].append(x)
        cols["y"].append(y)
        cols["length_px"].append(length)
        cols["angle_deg"].append(angle)
    return cols


def _match(truth: dict[str, list], *points: tuple[float, float]) -> list[str]:
    xy = np.array(points, np.float64)
    return osearch.match_kinds(xy[:, 0], xy[:, 1], truth).tolist()


def test_a_detection_anywhere_along_a_trail_is_the_trail() -> None:
    a = math.radians(30.0)
    u, n = (math.cos(a), math.sin(a)), (-math.sin(a), math.cos(a))
    truth = _truth(("trail", 50.0, 50.0, 100.0, 30.0), ("star", 150.0, 150.0))

    def along(s: float, off: float) -> tuple[float, float]:
        return 50.0 + s * u[0] + off * n[0], 50.0 + s * u[1] + off * n[1]

    got = _match(
        truth,
        along(40.0, 3.0),  # 40 px from the midpoint, 3 px off the line
        along(-45.0, -3.9),  # the other half, just inside the 4 px
        along(20.0, 5.0),  # beside the trail, 5 px off
        along(55.0, 0.0),  # on the line, 5 px past its end
        (150.0, 152.5),  # a star 2.5 px away
    )
    assert got == ["trail", "trail", "none", "none", "star"]


def test_segment_kinds_win_over_stars_and_points_match_within_3_px() -> None:
    truth = _truth(
        ("star", 30.0, 30.0),  # a saturated star ...
        ("bleed", 30.0, 32.0, 20.0, 90.0),  # ... bleeding along its column (y)
        ("star", 80.0, 20.0),  # a star a trail crosses
        ("trail", 80.0, 20.0, 60.0, 0.0),  # horizontal
        ("cosmic_ray", 10.0, 70.0),
        ("star", 12.0, 70.0),  # closer to the detection below than the cosmic ray
    )
    got = _match(
        truth,
        (30.4, 30.0),  # the bleeding star's detection
        (30.0, 40.0),  # 8 px up the column, still inside the 20 px bleed
        (38.0, 32.0),  # 8 px across the column: neither
        (80.0, 20.5),  # the star on the trail
        (11.8, 70.0),  # nearest point kind: the star (0.2 px), not the ray (1.8 px)
        (10.0, 73.1),  # 3.1 px from the ray, 3.6 from the star: nothing
    )
    assert got == ["bleed", "bleed", "none", "trail", "star", "none"]


def test_no_truth_and_no_detections() -> None:
    empty = _truth()
    assert _match(empty, (1.0, 2.0)) == ["none"]
    assert osearch.match_kinds(np.empty(0), np.empty(0), _truth(("star", 1.0, 1.0))).size == 0


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 137.0])
def test_segment_geometry_agrees_with_the_simulators_trail(angle: float) -> None:
    """Every point the simulator deposits a trail along lies on the segment recorded for it
    (render_ccd records _line_points' midpoint, length and the angle), and a point just past
    either end does not."""
    nx, ny = 300, 200
    xs, ys, length, mx, my = render._line_points(40.0, 170.0, angle, nx, ny)
    assert length > 0
    d = osearch.segment_distance(xs, ys, mx, my, length, angle)
    assert d.max() < 1e-6
    t = math.radians(angle)
    past = np.array([mx + (length / 2 + 6) * math.cos(t), mx - (length / 2 + 6) * math.cos(t)])
    past_y = np.array([my + (length / 2 + 6) * math.sin(t), my - (length / 2 + 6) * math.sin(t)])
    assert np.allclose(osearch.segment_distance(past, past_y, mx, my, length, angle), 6.0)


def test_the_simulators_bleed_truth_matches_the_bleeding_stars_detection() -> None:
    """A saturated column as render.bleed leaves it: _bleed_truth's row (angle 90) covers the
    star's centre and the column above and below it."""
    img = np.zeros((80, 60))
    img[20:50, 33] = 100.0  # the full column run
    img[34:37, 32:35] = 100.0  # the star's saturated core
    objects: list[dict] = [{"object_id": 1, "kind": "star", "x": 33.2, "y": 35.1}]

    def record(kind: str, x: float, y: float, **kw: object) -> int:
        objects.append(dict(kind=kind, x=x, y=y, **kw))
        return len(objects)

    render._bleed_truth(img, 100.0, objects, [(0, 33, 35)], record)
    assert [o["kind"] for o in objects] == ["star", "bleed"]
    b = objects[1]
    truth = _truth(
        ("star", 33.2, 35.1),
        ("bleed", b["x"], b["y"], b["length_px"], b["angle_deg"]),
    )
    assert _match(truth, (33.1, 35.0), (33.0, 22.0), (33.0, 47.0), (41.0, 35.0)) == [
        "bleed",
        "bleed",
        "bleed",
        "none",
    ]


def test_node_majority_kinds() -> None:
    nodes = [1, 1, 1, 2, 2, 2, 2, 3, 3]
    kinds = ["star", "star", "trail", "none", "none", "bleed", "x", "star", "star"]
    # node 2: none 2, bleed 1, x 1 -> "none"; node 3 has 2 members, fewer than 3
    assert osearch.node_majority_kinds(nodes, kinds) == {1: "star", 2: "none"}
    assert osearch.node_majority_kinds(nodes, kinds, min_members=2) == {
        1: "star",
        2: "none",
        3: "star",
    }
    # a tie goes to the alphabetically first kind, whatever the order
    assert osearch.node_majority_kinds([5, 5, 5, 5], ["x", "merger", "merger", "x"]) == {
        5: "merger"
    }
    assert osearch.node_majority_kinds([5, 5, 5, 5], ["merger", "x", "x", "merger"]) == {
        5: "merger"
    }


def test_prf() -> None:
    s = osearch.prf([1, 1, 0, 0, 0], [1, 0, 1, 0, 0])
    assert (s.tp, s.fp, s.fn, s.n) == (1, 1, 1, 5)
    assert (s.precision, s.recall, s.f1, s.base_rate) == (0.5, 0.5, 0.5, 0.4)
    s = osearch.prf([1, 1, 1, 0], [1, 1, 0, 0])
    assert s.precision == pytest.approx(2 / 3) and s.recall == 1.0
    assert s.f1 == pytest.approx(0.8)  # 2 * (2/3) / (5/3)
    nothing = osearch.prf([0, 0, 0], [1, 0, 0])
    assert math.isnan(nothing.precision) and nothing.recall == 0 and nothing.f1 == 0
    assert nothing.base_rate == pytest.approx(1 / 3)
    wrong = osearch.prf([1, 0], [0, 0])
    assert wrong.precision == 0 and math.isnan(wrong.recall) and wrong.f1 == 0


def test_choose_min_count() -> None:
    # m=1: P 3/5 -> F1 .75; m=2: P 3/4 -> .857; m=3: 1.0; m=5: R 2/3 -> .8; m=8: .5
    assert osearch.choose_min_count([0, 1, 2, 3, 5, 8], [0, 0, 0, 1, 1, 1]) == 3
    # m=1 and m=2 both score 1.0: the smaller
    assert osearch.choose_min_count([2, 4], [1, 1]) == 1
    # scaled counts: m=1: P 1/2 -> .667; m=2: P 2/3 -> .8; m=3: R 1/2 -> .667
    assert osearch.choose_min_count([1.2, 2.4, 2.6, 4.0], [0, 0, 1, 1]) == 2
    # nothing positive: every threshold scores 0, the smallest is kept
    assert osearch.choose_min_count([0, 3, 7], [0, 0, 0]) == 1


def test_rich_threshold_keeps_about_a_quarter() -> None:
    # q75 = 1.25: ">= 1.25" and "> 1.25" are both ">= 2": 2 of 8
    assert osearch.rich_threshold([0, 0, 0, 1, 1, 1, 2, 3]) == 2
    # q75 = 1 with six exposures at 1: ">= 1" keeps 6/8, "> 1" keeps 0/8 (closer to 1/4)
    assert osearch.rich_threshold([0, 0, 1, 1, 1, 1, 1, 1]) == 2
    # q75 = 3 with four exposures at 3 or more of 12: ">= 3" keeps 4/12 (off by .083),
    # "> 3" keeps 1/12 (off by .167)
    assert osearch.rich_threshold([0] * 8 + [3, 3, 3, 7]) == 3
    # an archive without any: never "rich" at 0
    assert osearch.rich_threshold([0, 0, 0]) == 1
    q = {q.name: q for q in osearch.QUESTIONS}
    assert osearch.question_threshold(q["trail"], [0, 5, 9]) == 1
    assert osearch.question_truth([0, 1, 3], 2).tolist() == [False, False, True]


def test_object_counts_scale_like_has_object_node() -> None:
    counts = np.array([[1, 2, 3, 4], [0, 0, 5, 5], [9, 9, 9, 9]])
    got = osearch.object_counts(counts, np.array([20, 10, 0]), np.array([10, 10, 0]), [1, 2])
    assert got.tolist() == [10.0, 5.0, 0.0]  # (2+3) x 20/10, 5 x 10/10, nothing sampled


def test_kind_purity_by_hand() -> None:
    nodes = [1, 1, 1, 2, 2, 3, 3, 3, 4]
    kinds = ["star", "star", "trail", "trail", "trail", "star", "none", "none", "merger"]
    labels = {1: "star", 2: "trail", 3: "none"}
    got = osearch.kind_purity(nodes, kinds, labels, {"star", "trail", "merger", "bleed"})
    k = got["kinds"]
    assert k["star"] == {
        "matched": 3,
        "nodes": 1,
        "members": 3,
        "purity": pytest.approx(2 / 3),
        "completeness": pytest.approx(2 / 3),
    }
    assert (k["trail"]["purity"], k["trail"]["completeness"]) == (1.0, pytest.approx(2 / 3))
    assert (k["none"]["purity"], k["none"]["completeness"]) == (pytest.approx(2 / 3), 1.0)
    assert math.isnan(k["merger"]["purity"]) and k["merger"]["completeness"] == 0.0
    assert k["bleed"]["matched"] == 0 and math.isnan(k["bleed"]["completeness"])
    # 8 members in labelled nodes (node 4 has no label), 6 of their node's kind
    assert got["weighted_purity"] == 0.75 and got["members_in_labelled_nodes"] == 8
    # of those, 6 matched to the truth (the two "none" aside), 4 in a node of their kind
    assert got["matched_purity"] == pytest.approx(4 / 6)
    assert got["unowned"] == ["bleed", "merger"]


def test_a_wide_detection_matches_the_trail_it_straddles() -> None:
    truth = {
        "x": [100.0],
        "y": [100.0],
        "kind": ["trail"],
        "length_px": [200.0],
        "angle_deg": [0.0],
    }
    # 7 px off the line: too far for a narrow detection, on it for one 5 px wide (a segment)
    got = osearch.match_kinds(np.array([150.0, 150.0]), np.array([107.0, 107.0]), truth, [1.0, 5.0])
    assert got.tolist() == ["none", "trail"]
    assert osearch.match_kinds([150.0], [107.0], truth).tolist() == ["none"]


def test_score_counts_chooses_on_training_and_scores_held_out() -> None:
    # training: 2 or more found means "yes" (F1 1 at min_count 2); held out, that rule
    # finds 2 of 3 positives and one false positive
    m, s = osearch.score_counts(
        [0, 1, 2, 5], [False, False, True, True], [3, 1, 2, 4], [True, True, False, True]
    )
    assert m == 2
    assert (s.tp, s.fp, s.fn) == (2, 1, 1) and s.f1 == pytest.approx(2 / 3)
