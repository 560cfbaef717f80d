"""Object search on Map 1 against the simulator's truth catalogue: pure functions, no database.

``caomai evaluate`` asks questions of the held-out half - images with a satellite trail, with
bleeding saturated stars, merger-rich, cosmic-ray-rich - with ``has_object_node`` over the
Map-1 nodes that the *training* half labels with the kind each question is about. Everything
that decides what counts as right lives here, on plain arrays, so an offline experiment harness
(which has the detections and the truth in memory) scores with exactly the same definitions:

- ``match_kinds``: the truth kind of each detection of one image (or "none");
- ``node_majority_kinds``: each node's label, the majority kind of its training members;
- ``QUESTIONS``, ``rich_threshold``, ``question_truth``: what the truth says for each question;
- ``object_counts``: what ``has_object_node`` counts in an image (same arithmetic as the SQL);
- ``choose_min_count``: the min_count that the training half likes best;
- ``prf``: precision, recall, F1 beside the base rate;
- ``kind_purity``: per-kind node purity and completeness on the held-out half.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: a detection this close (pixels) to a point-like truth object is that object
MATCH_RADIUS = 3.0
#: a detection this close (pixels) to the line segment of a trail or bleed is part of it
SEGMENT_RADIUS = 4.0
#: kinds recorded as a line segment: centre (x, y), ``length_px`` along ``angle_deg``
#: (direction (cos a, sin a) in pixel x, y, as ``sim/render.py`` draws trails; bleeds are
#: recorded with angle 90, i.e. along the column, the y axis)
SEGMENT_KINDS = ("trail", "bleed")
#: unmatched detections (noise peaks, blends, objects the truth does not list)
NONE = "none"
#: a node with fewer training members than this gets no label: its majority is a coin toss
MIN_MEMBERS = 3
#: "rich" questions ask for the top quartile of the training half's per-exposure counts
RICH_SHARE = 0.25
#: the truth of an image without any catalogued object (``match_kinds``' ``truth``)
NO_TRUTH: Mapping[str, Sequence] = {"x": (), "y": (), "kind": (), "length_px": (), "angle_deg": ()}


def match_kinds(
    det_x: np.ndarray,
    det_y: np.ndarray,
    truth: Mapping[str, Sequence],
    det_width: np.ndarray | None = None,
) -> np.ndarray:
    """The truth kind of each detection of ONE image (one extension), or "none".

    ``truth`` holds equal-length arrays ``x``, ``y``, ``kind``, ``length_px``, ``angle_deg``
    (the last two matter for segment kinds only; NaN elsewhere). Segment kinds win: a
    detection within ``SEGMENT_RADIUS`` of a trail or bleed segment is that trail or bleed
    (the nearest segment if several), because a bleeding star's core and a star crossed by a
    trail are found as one detection whose look is the bleed's or the trail's. Otherwise the
    nearest point-kind object within ``MATCH_RADIUS``.

    ``det_width`` (sep's minor axis ``b`` of each detection, pixels) widens the segment radius
    by the detection's own width: a detection matches a segment within
    ``SEGMENT_RADIUS + det_width``. A trail found whole by the binned pass (``detect.py``) is
    as wide as its binned blur, and its centroid can sit a few pixels off the truth's line
    (the segment takes in what lies along it); a narrow detection keeps ``SEGMENT_RADIUS``.
    """
    dx = np.asarray(det_x, np.float64)
    dy = np.asarray(det_y, np.float64)
    out = np.full(dx.shape, NONE, dtype=object)
    if dx.size == 0:
        return out
    tx = np.asarray(truth["x"], np.float64)
    ty = np.asarray(truth["y"], np.float64)
    kinds = np.asarray(truth["kind"], dtype=object)
    if tx.size == 0:
        return out
    seg = np.isin(kinds, SEGMENT_KINDS)

    # point kinds: the nearest within MATCH_RADIUS
    if (~seg).any():
        from scipy.spatial import cKDTree

        tree = cKDTree(np.column_stack([tx[~seg], ty[~seg]]))
        dist, idx = tree.query(np.column_stack([dx, dy]), distance_upper_bound=MATCH_RADIUS)
        hit = np.isfinite(dist)
        out[hit] = kinds[~seg][idx[hit]]

    # segment kinds override: the nearest segment within SEGMENT_RADIUS
    if seg.any():
        length = np.asarray(truth["length_px"], np.float64)[seg]
        angle = np.asarray(truth["angle_deg"], np.float64)[seg]
        best = np.full(dx.shape, np.inf)
        radius = SEGMENT_RADIUS + (
            0.0
            if det_width is None
            else np.clip(np.nan_to_num(np.asarray(det_width, np.float64)), 0.0, None)
        )
        for cx, cy, n, a, kind in zip(tx[seg], ty[seg], length, angle, kinds[seg], strict=True):
            d = segment_distance(dx, dy, cx, cy, n, a)
            closer = (d <= radius) & (d < best)
            best[closer] = d[closer]
            out[closer] = kind
    return out


def segment_distance(
    x: np.ndarray, y: np.ndarray, cx: float, cy: float, length: float, angle_deg: float
) -> np.ndarray:
    """Distance of points to the segment centred at (cx, cy), ``length`` long along
    ``angle_deg`` (direction (cos a, sin a) in x, y: render.py's ``_line_points``). A missing
    length or angle leaves a point at (cx, cy)."""
    length = 0.0 if not math.isfinite(length) else max(length, 0.0)
    a = math.radians(angle_deg) if math.isfinite(angle_deg) else 0.0
    ux, uy = math.cos(a), math.sin(a)
    px, py = x - cx, y - cy
    t = np.clip(px * ux + py * uy, -length / 2, length / 2)
    return np.hypot(px - t * ux, py - t * uy)


def node_majority_kinds(
    nodes: Iterable[int], kinds: Iterable[str], min_members: int = MIN_MEMBERS
) -> dict[int, str]:
    """{node: the majority truth kind of its (training) members}, for nodes with at least
    ``min_members`` members. "none" is a kind like any other here (so a node of noise peaks is
    labelled "none", which keeps it out of every question and shows up in purity); a tie goes
    to the alphabetically first kind, so the labels never depend on input order."""
    members: dict[int, Counter] = defaultdict(Counter)
    for node, kind in zip(nodes, kinds, strict=True):
        members[int(node)][str(kind)] += 1
    out = {}
    for node, counts in members.items():
        if sum(counts.values()) < min_members:
            continue
        top = max(counts.values())
        out[node] = min(k for k, c in counts.items() if c == top)
    return out


@dataclass(frozen=True)
class Question:
    """One object-search question: which exposures the truth says are positive, and the node
    label that answers it."""

    name: str
    #: the truth kind counted per exposure, and the node label has_object_node is asked about
    kind: str
    #: "any": positive with >= 1 truth row of the kind; "rich": positive in the training
    #: half's top quartile of per-exposure counts (``rich_threshold``)
    rule: str
    description: str


QUESTIONS: tuple[Question, ...] = (
    Question("trail", "trail", "any", "images with a satellite trail"),
    Question("bleed", "bleed", "any", "images with bleeding saturated stars"),
    Question("merger_rich", "merger", "rich", "merger-rich images (top quartile)"),
    Question("cosmic_rich", "cosmic_ray", "rich", "images with many cosmic rays (top quartile)"),
)


def rich_threshold(train_counts: Sequence[float], share: float = RICH_SHARE) -> int:
    """The per-exposure count from which an exposure is "rich": the training half's 75th
    percentile q, as ``count >= q`` or ``count > q`` (for integer counts, ``>= q + 1``),
    whichever makes the training share of positives closer to 25% (a tie: the stricter);
    never below 1, so an exposure without any is never rich. With many exposures at q (counts
    are small integers) ``>= q`` can make half the training half positive and ``> q`` a tenth;
    choosing by the share keeps the question "about a quarter of the images" on any archive."""
    c = np.asarray(train_counts, np.float64)
    if c.size == 0:
        return 1
    q = float(np.percentile(c, 100 * (1 - share)))
    candidates = sorted({max(1, math.ceil(q)), max(1, math.floor(q) + 1)})
    return min(candidates, key=lambda t: (abs(float(np.mean(c >= t)) - share), -t))


def question_threshold(question: Question, train_counts: Sequence[float]) -> int:
    """Per-exposure count of ``question.kind`` from which the truth says "yes"."""
    return 1 if question.rule == "any" else rich_threshold(train_counts)


def question_truth(counts: Sequence[float], threshold: int) -> np.ndarray:
    return np.asarray(counts, np.float64) >= threshold


def object_counts(
    counts: np.ndarray, n_detected: np.ndarray, n_sampled: np.ndarray, nodes: Sequence[int]
) -> np.ndarray:
    """What ``caomai.has_object_node`` compares with min_count, per image: the fingerprint's
    ``counts`` summed over ``nodes``, times n_detected / n_sampled (0 without a sample).
    ``counts`` is (images, nodes); the SQL function's arithmetic, for the training half."""
    c = np.asarray(counts, np.float64)
    if c.ndim != 2:
        c = c.reshape(len(n_detected), -1)
    total = c[:, list(nodes)].sum(axis=1) if len(nodes) else np.zeros(len(c))
    sampled = np.asarray(n_sampled, np.float64)
    scale = np.divide(
        np.asarray(n_detected, np.float64),
        sampled,
        out=np.zeros(len(sampled)),
        where=sampled > 0,
    )
    return total * scale


@dataclass
class PRF:
    precision: float
    recall: float
    f1: float
    base_rate: float
    n: int
    tp: int
    fp: int
    fn: int


def prf(pred: Sequence[bool], truth: Sequence[bool]) -> PRF:
    """Precision (NaN when nothing is predicted), recall (NaN without positives), F1 (0 when
    either is NaN or both are 0) and the base rate (share of positives) over n images."""
    p = np.asarray(pred, bool)
    t = np.asarray(truth, bool)
    tp, fp, fn = int(np.sum(p & t)), int(np.sum(p & ~t)), int(np.sum(~p & t))
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    ok = math.isfinite(precision) and math.isfinite(recall) and precision + recall > 0
    return PRF(
        precision=precision,
        recall=recall,
        f1=2 * precision * recall / (precision + recall) if ok else 0.0,
        base_rate=float(t.mean()) if t.size else float("nan"),
        n=int(t.size),
        tp=tp,
        fp=fp,
        fn=fn,
    )


def choose_min_count(train_counts: Sequence[float], train_truth: Sequence[bool]) -> int:
    """The min_count (>= 1) whose ``count >= min_count`` has the best F1 on the training half;
    ties (and a training half where no threshold scores) go to the smaller min_count."""
    c = np.asarray(train_counts, np.float64)
    t = np.asarray(train_truth, bool)
    # the prediction only changes at the integers just above each count
    candidates = sorted({1} | {int(math.ceil(v)) for v in c if v >= 1})
    best, best_f1 = 1, -1.0
    for m in candidates:
        f1 = prf(c >= m, t).f1
        if f1 > best_f1:
            best, best_f1 = m, f1
    return best


def score_counts(
    train_seen: Sequence[float],
    train_truth: Sequence[bool],
    held_seen: Sequence[float],
    held_truth: Sequence[bool],
) -> tuple[int, PRF]:
    """A question answered by counting, end to end: the min_count chosen on the training
    half (``choose_min_count``) and ``count >= min_count`` scored on the held-out half."""
    m = choose_min_count(train_seen, train_truth)
    return m, prf(np.asarray(held_seen, np.float64) >= m, held_truth)


def kind_purity(
    nodes: Sequence[int],
    kinds: Sequence[str],
    labels: Mapping[int, str],
    truth_kinds: Iterable[str] = (),
) -> dict:
    """Per-kind node purity and completeness of held-out detections under training labels.

    For each kind: the nodes labelled with it; purity = share of those nodes' held-out members
    that are of the kind; completeness = share of the kind's held-out detections that land in
    those nodes. ``weighted_purity`` is the share of held-out members of labelled nodes whose
    kind is their node's label; ``matched_purity`` the same over the members matched to a
    truth object (noise peaks and blends, "none", left out: they are no kind of the truth
    catalogue, and the faintest of them cannot be told from the faintest galaxies). ``unowned`` lists the kinds of ``truth_kinds`` (and of the
    detections), "none" aside, that label no node.
    """
    node_arr = np.asarray(nodes, np.int64)
    kind_arr = np.asarray(kinds, dtype=object)
    label_arr = np.array([labels.get(int(n)) for n in node_arr], dtype=object)
    labelled = np.array([v is not None for v in label_arr], bool)
    every = sorted(set(kind_arr.tolist()) | set(labels.values()) | set(truth_kinds))
    per_kind = {}
    for kind in every:
        in_nodes = label_arr == kind
        of_kind = kind_arr == kind
        hit = int(np.sum(in_nodes & of_kind))
        per_kind[kind] = {
            "matched": int(of_kind.sum()),
            "nodes": sum(1 for v in labels.values() if v == kind),
            "members": int(in_nodes.sum()),
            "purity": hit / int(in_nodes.sum()) if in_nodes.any() else float("nan"),
            "completeness": hit / int(of_kind.sum()) if of_kind.any() else float("nan"),
        }
    n_labelled = int(labelled.sum())
    correct = int(np.sum(labelled & (label_arr == kind_arr)))
    matched = labelled & (kind_arr != NONE)
    n_matched = int(matched.sum())
    correct_matched = int(np.sum(matched & (label_arr == kind_arr)))
    owned = set(labels.values())
    return {
        "matched_purity": correct_matched / n_matched if n_matched else float("nan"),
        "kinds": per_kind,
        "weighted_purity": correct / n_labelled if n_labelled else float("nan"),
        "members_in_labelled_nodes": n_labelled,
        "unowned": sorted(k for k in every if k != NONE and k not in owned),
    }
