"""`caomai evaluate --truth MANIFEST`: the maps against the truth, with the paper's metric.

Held out: only exposures used neither to train Map 1 (its ``training_planes.txt``) nor Map 2
are scored. Good = quality_class ``good``; every other class is Bad (the paper counts crowded
and low-exposure fields among background problems). Figures:

- **paper's metric, in-cell majority**: each Map-2 node takes the majority Good/Bad truth of
  its (held-out) members, and every member is predicted as its node (Teimoorinia et al. 2021
  §5.1: "the label of the majority class within a cell is set as the label of the cell");
  accuracy, precision and recall with Good as the positive class;
- **held-out, training labels** (stricter): each node takes the majority label of its
  *training* members - what an expert who labelled the map once would have given it - and the
  held-out exposures are predicted by the node they land on; a node without training members
  takes the label of the nearest labelled node (codebook distance);
- per-class purity and completeness (8 classes, held-out, training labels);
- ``fp_similar`` precision@k: for every held-out exposure, the k most similar other images
  by the database's ``caomai.fp_similar`` among all labelled fingerprints; the share that has
  the query's class;
- object search on Map 1 (with the truth catalogue, ``objects.csv``): Map-1 nodes labelled by
  the majority truth kind of the training half's detections; four questions (trail, bleed,
  merger-rich, cosmic-ray-rich) asked with ``has_object_node`` on the held-out half through
  the read-only role; precision, recall, F1 beside the base rate; per-kind node purity and
  completeness of the held-out detections. The definitions are ``object_search.py``'s.
"""

from __future__ import annotations

import csv
import math
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from caomai_db import access, database
from caomai_db.config import Settings
from caomai_db.errors import UsageError

from . import ceiling as ceiling_mod
from . import labels as labels_mod
from . import modelstore
from . import object_search as osearch
from .scoring import (
    GOOD,
    BinaryScores,
    binary,
    fill_from_nearest,
    in_cell_scores,
    mean_precision,
    node_majority,
    tied_members,
    training_label_scores,
)

PAPER = {"accuracy": 0.958, "precision": 0.929, "recall": 0.991}
#: who wrote the labels --apply-labels writes (on Map 2 and Map 1); a re-run clears its own
LABEL_SOURCE = "truth-majority of training members (evaluate)"
#: planes whose annotations are read per half for the object search (a random sample with a
#: fixed seed beyond it): 500 planes of ~1000 sampled objects label 400 nodes with hundreds
#: of members each, and reading more costs time without changing a label
MAX_OBJECT_PLANES = 500


@dataclass
class Report:
    map1: str
    map2: str
    n_truth: int
    n_fingerprinted: int
    n_train_map1: int
    n_train_map2: int
    n_held_out: int
    in_cell: BinaryScores | None = None
    #: held-out exposures in cells with as many Good as Bad members (those count as Bad) ...
    in_cell_tied: int = 0
    #: ... and the in-cell scores if they counted as Good instead
    in_cell_ties_good: BinaryScores | None = None
    held_out: BinaryScores | None = None
    nodes_filled: int = 0
    classes: dict[str, dict[str, Any]] = field(default_factory=dict)
    precision_at_k: float | None = None
    precision_at_k_by_class: dict[str, float] = field(default_factory=dict)
    #: the same on the image vector (fp_similar(f.image_vec, ref)); None when the held-out
    #: planes were loaded before image vectors existed
    precision_at_k_image: float | None = None
    precision_at_k_image_by_class: dict[str, float] = field(default_factory=dict)
    k: int = 10
    #: Map-1 object search against the truth catalogue (``object_search``); None without it
    object_search: dict[str, Any] | None = None
    #: Map 2 on the simulator's own conditions (``ceiling.py``); None without them
    ceiling: ceiling_mod.Ceiling | None = None
    seconds: float = 0.0
    labels_written: int = 0
    map1_labels_written: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The figures, JSON-safe: NaN (a precision with nothing predicted) becomes None."""
        return _json_safe(asdict(self))

    def render(self) -> str:
        out = [
            f"Map 1 {self.map1!r}, Map 2 {self.map2!r}: {self.n_truth} exposures in the truth, "
            f"{self.n_fingerprinted} fingerprinted; training planes: {self.n_train_map1} "
            f"(Map 1), {self.n_train_map2} (Map 2); held out: {self.n_held_out}",
            "",
            "Good vs Bad on Map 2 (held-out exposures; Good = quality_class 'good', all else Bad)",
            f"{'':24}{'paper':>8}{'in-cell majority':>19}{'training labels':>18}",
        ]
        for metric in ("accuracy", "precision", "recall"):
            a = getattr(self.in_cell, metric) if self.in_cell else float("nan")
            b = getattr(self.held_out, metric) if self.held_out else float("nan")
            out.append(f"{metric:24}{PAPER[metric]:>8.3f}{a:>19.3f}{b:>18.3f}")
        if self.precision_at_k is not None:
            out.append(
                f"{f'fp_similar precision@{self.k}':24}{'-':>8}{self.precision_at_k:>19.3f}"
                f"{f'({len(self.precision_at_k_by_class)} classes)':>18}"
            )
        if self.precision_at_k_image is not None:
            out.append(
                f"{'  on image_vec':24}{'-':>8}{self.precision_at_k_image:>19.3f}"
                f"{f'({len(self.precision_at_k_image_by_class)} classes)':>18}"
            )
        if self.in_cell_ties_good is not None and self.in_cell_tied:
            g = self.in_cell_ties_good
            out.append(
                f"(in-cell: {self.in_cell_tied} exposures sit in tied cells and count as Bad; "
                f"counted Good: accuracy {g.accuracy:.3f}, precision {g.precision:.3f}, "
                f"recall {g.recall:.3f})"
            )
        if self.held_out:
            h = self.held_out
            out.append(
                f"(training labels: TP {h.tp}  FP {h.fp}  TN {h.tn}  FN {h.fn}; "
                f"{self.nodes_filled} nodes without training members took the nearest "
                "labelled node's label)"
            )
        if self.ceiling:
            c = self.ceiling
            out += [
                "",
                "Truth ceiling: the same Map 2 and scoring on the conditions each exposure was "
                "rendered with (loaders/ceiling.py)",
                f"{'':24}{'paper':>8}{'in-cell majority':>19}{'training labels':>18}"
                f"{'in-cell, ties Good':>20}",
            ]
            for metric in ("accuracy", "precision", "recall"):
                b = getattr(c.held_out, metric) if c.held_out else float("nan")
                out.append(
                    f"{metric:24}{PAPER[metric]:>8.3f}{getattr(c.in_cell, metric):>19.3f}"
                    f"{b:>18.3f}{getattr(c.in_cell_ties_good, metric):>20.3f}"
                )
            n_classes = f"({len(c.precision_at_k_by_class)} classes)"
            out.append(
                f"{f'precision@{self.k}':24}{'-':>8}{c.precision_at_k:>19.3f}{n_classes:>18}"
            )
        if self.classes:
            out += [
                "",
                "Per class (held-out, node labels from training members)",
                f"{'class':22}{'n':>6}{'purity':>9}{'completeness':>14}{f'p@{self.k}':>8}"
                + (f"{f'image p@{self.k}':>14}" if self.precision_at_k_image_by_class else "")
                + (f"{f'ceiling p@{self.k}':>16}" if self.ceiling else ""),
            ]
            for name, c in sorted(self.classes.items()):
                pk = self.precision_at_k_by_class.get(name, float("nan"))
                line = (
                    f"{name:22}{c['n']:>6}{c['purity']:>9.3f}{c['completeness']:>14.3f}{pk:>8.3f}"
                )
                if self.precision_at_k_image_by_class:
                    pi = self.precision_at_k_image_by_class.get(name, float("nan"))
                    line += f"{pi:>14.3f}"
                if self.ceiling:
                    line += f"{self.ceiling.precision_at_k_by_class.get(name, float('nan')):>16.3f}"
                out.append(line)
        if self.object_search:
            out += render_object_search(self.object_search)
        if self.labels_written:
            out.append(f"\nwrote {self.labels_written} node labels (training majority) on Map 2")
        if self.map1_labels_written:
            out.append(
                f"wrote {self.map1_labels_written} node labels (training majority kind) on Map 1"
            )
        out.append(f"\n({self.seconds:.1f} s)")
        return "\n".join(out)


def read_truth(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "exposure_id" not in rows[0] or "quality_class" not in rows[0]:
        raise UsageError(f"{path}: a truth manifest has columns exposure_id and quality_class")
    return {r["exposure_id"]: r for r in rows}


def evaluate(
    settings: Settings,
    *,
    truth: str | Path,
    objects: str | Path | None = None,
    map2: str | None = None,
    k: int = 10,
    max_object_planes: int = MAX_OBJECT_PLANES,
    apply_labels: bool = False,
) -> Report:
    """Score the maps against the truth manifest (and the object catalogue beside it).

    ``max_object_planes`` caps the planes whose annotations are read for each half of the
    object search; ``apply_labels`` writes the training-majority labels to both maps' nodes.
    """
    t0 = time.perf_counter()
    truth_path = Path(truth)
    manifest = read_truth(truth_path)
    dsn = database.resolve_dsn(settings)
    with database.connect(dsn) as conn:
        m2 = modelstore.get_model(conn, map2) if map2 else modelstore.active_model(conn, "map2")
        if m2.kind != "map2" or m2.parent_id is None:
            raise UsageError(f"{m2.name!r} is not a Map-2 model")
        m1 = modelstore.get_model(conn, m2.parent_id)
        rows = conn.execute(
            "SELECT f.planeid, o.observationid, f.map2_node"
            "  FROM caomai.fingerprint AS f"
            "  JOIN caom2.plane AS p ON p.planeid = f.planeid"
            "  JOIN caom2.observation AS o ON o.obsid = p.obsid"
            " WHERE f.model_id = %s AND f.map2_model_id = %s AND o.observationid = ANY(%s)"
            " ORDER BY o.observationid",
            (m1.model_id, m2.model_id, list(manifest)),
        ).fetchall()
        codebook = np.array(
            [
                r[0]
                for r in conn.execute(
                    "SELECT codebook FROM caomai.map_node WHERE model_id = %s ORDER BY node_id",
                    (m2.model_id,),
                ).fetchall()
            ],
            np.float32,
        )
        conn.commit()
        if not rows:
            raise UsageError(
                f"no fingerprint placed on {m2.name!r} belongs to an exposure of {truth_path}"
            )
        train1 = modelstore.training_planes(settings, m1)
        train2 = modelstore.training_planes(settings, m2)
        ids = [str(r[0]) for r in rows]
        cls = [manifest[r[1]]["quality_class"] for r in rows]
        nodes = np.array([r[2] for r in rows], np.int64)
        is_train2 = np.array([i in train2 for i in ids])
        held = np.array([(i not in train1) and (i not in train2) for i in ids])
        report = Report(
            map1=m1.name,
            map2=m2.name,
            n_truth=len(manifest),
            n_fingerprinted=len(rows),
            n_train_map1=len(train1),
            n_train_map2=int(is_train2.sum()),
            n_held_out=int(held.sum()),
            k=k,
        )
        if held.sum() == 0:
            raise UsageError(
                "every fingerprinted exposure of the truth was used for training; "
                "hold some out (train with --planes on a training split)"
            )
        h_nodes = nodes[held]
        h_cls = [c for c, h in zip(cls, held, strict=True) if h]
        h_bin = [binary(c) for c in h_cls]

        # the paper's variant: majority within each cell, over the scored members
        report.in_cell = in_cell_scores(h_nodes, h_bin, prefer="bad")
        # a tie is flagged for a look (Bad); how much that rule weighs, shown beside it
        report.in_cell_ties_good = in_cell_scores(h_nodes, h_bin, prefer=GOOD)
        report.in_cell_tied = tied_members(h_nodes, h_bin)

        # stricter: labels from the training members only
        if is_train2.any():
            t_nodes = nodes[is_train2]
            t_cls = [c for c, t in zip(cls, is_train2, strict=True) if t]
            report.nodes_filled = len(set(h_nodes.tolist()) - set(t_nodes.tolist()))
            report.held_out = training_label_scores(
                t_nodes, [binary(c) for c in t_cls], h_nodes, h_bin, codebook
            )
            class_labels = node_majority(t_nodes, t_cls)
            filled = fill_from_nearest(class_labels, codebook)
            pred = [filled[n] for n in h_nodes]
            for name in sorted(set(cls)):
                n_true = sum(1 for c in h_cls if c == name)
                n_pred = sum(1 for p in pred if p == name)
                hit = sum(1 for c, p in zip(h_cls, pred, strict=True) if c == name and p == name)
                report.classes[name] = {
                    "n": n_true,
                    "predicted": n_pred,
                    "purity": hit / n_pred if n_pred else float("nan"),
                    "completeness": hit / n_true if n_true else float("nan"),
                }
            if apply_labels:
                report.labels_written = apply_labels_fn(conn, m2.model_id, class_labels)

        # fp_similar precision@k through the database, on both vector columns
        report.precision_at_k, report.precision_at_k_by_class = similar_precision(
            conn, m1.model_id, rows, cls, held, k, "fp"
        )
        if conn.execute(
            "SELECT bool_and(image_vec IS NOT NULL) FROM caomai.fingerprint"
            " WHERE model_id = %s AND planeid = ANY(%s)",
            (m1.model_id, [r[0] for r in rows]),
        ).fetchone()[0]:
            report.precision_at_k_image, report.precision_at_k_image_by_class = similar_precision(
                conn, m1.model_id, rows, cls, held, k, "image_vec"
            )
        conn.commit()

        truth_rows = [manifest[r[1]] for r in rows]
        if ceiling_mod.has_conditions(truth_rows):
            fitted = m2.parameters.get("som", {})  # the Map-2 recipe, as recorded by training
            report.ceiling = ceiling_mod.truth_ceiling(
                truth_rows,
                is_train2,
                held,
                k=k,
                epochs=int(fitted.get("epochs", 60)),
                sigma_end=float(fitted.get("sigma_end", 0.8)),
            )

        objects_path = Path(objects) if objects else truth_path.parent / "objects.csv"
        if objects_path.exists():
            train_rows = [(r[0], r[1]) for r in rows if str(r[0]) in train1]
            held_rows = [(r[0], r[1]) for r, h in zip(rows, held, strict=True) if h]
            report.object_search, node_kinds = object_search(
                conn,
                database.reader_dsn(settings, dsn),
                m1,
                objects_path,
                train_rows,
                held_rows,
                max_object_planes,
            )
            if apply_labels and node_kinds:
                report.map1_labels_written = apply_labels_fn(conn, m1.model_id, node_kinds)
        elif objects:
            raise UsageError(f"{objects_path}: no such truth object catalogue")
    report.seconds = round(time.perf_counter() - t0, 2)
    return report


def similar_precision(
    conn: psycopg.Connection,
    model_id: int,
    rows: list,
    cls: list[str],
    held: np.ndarray,
    k: int,
    column: str,
) -> tuple[float | None, dict[str, float]]:
    """Mean precision@k of ``fp_similar(f.<column>, ref)`` over the held-out exposures: the
    share of each one's k most similar fingerprinted exposures of the truth with its class.

    The reference goes in as its explicit vector, not its publisherID: an identifier only
    names public images, and the evaluation scores proprietary exposures too (it runs as the
    owner, never through TAP). ``column`` is ``fp`` or ``image_vec`` (a column name).
    """
    by_id = {str(r[0]): c for r, c in zip(rows, cls, strict=True)}
    scores: dict[str, list[float]] = defaultdict(list)
    all_ids = [r[0] for r in rows]
    for (planeid, _, _), c, h in zip(rows, cls, held, strict=True):
        if not h:
            continue
        found = conn.execute(
            "SELECT f.planeid FROM caomai.fingerprint AS f"
            " WHERE f.model_id = %s AND f.planeid = ANY(%s) AND f.planeid <> %s"
            f" ORDER BY caomai.fp_similar(f.{column}, (SELECT r.{column}::text"
            " FROM caomai.fingerprint AS r WHERE r.model_id = %s AND r.planeid = %s)) DESC,"
            " f.planeid LIMIT %s",
            (model_id, all_ids, planeid, model_id, planeid, k),
        ).fetchall()
        if found:
            scores[c].append(np.mean([by_id[str(f[0])] == c for f in found]))
    return mean_precision(scores)


def apply_labels_fn(conn: psycopg.Connection, model_id: int, labels: dict[int, str]) -> int:
    """Replace this evaluation's labels on a model: its old ones go first, so a node that
    lost its label since the last run does not keep it."""
    with conn.transaction():
        labels_mod.clear_labels(conn, model_id, LABEL_SOURCE)
        return labels_mod.apply_labels(conn, model_id, labels, LABEL_SOURCE)


@dataclass
class _Truth:
    """The truth catalogue, as far as the object search needs it."""

    #: exposure -> kind -> rows of that kind
    counts: dict[str, Counter]
    #: (exposure, extension) -> columns x, y, kind, length_px, angle_deg (read exposures only)
    images: dict[tuple[str, int], dict[str, list]]
    kinds: set[str]


def read_objects(path: Path, exposures: set[str], positions: set[str]) -> _Truth:
    """Per-kind counts of ``exposures`` and the rows of ``positions`` (a subset) by image."""

    def num(v: str | None) -> float:
        return float(v) if v not in (None, "") else float("nan")

    counts: dict[str, Counter] = defaultdict(Counter)
    images: dict[tuple[str, int], dict[str, list]] = {}
    kinds: set[str] = set()
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            e = r["exposure_id"]
            if e not in exposures:
                continue
            kind = r["kind"]
            counts[e][kind] += 1
            kinds.add(kind)
            if e in positions:
                cols = images.setdefault(
                    (e, int(r["extension"])),
                    {"x": [], "y": [], "kind": [], "length_px": [], "angle_deg": []},
                )
                cols["x"].append(float(r["x"]))
                cols["y"].append(float(r["y"]))
                cols["kind"].append(kind)
                cols["length_px"].append(num(r.get("length_px")))
                cols["angle_deg"].append(num(r.get("angle_deg")))
    return _Truth(counts, images, kinds)


def _sample(rows: list[tuple[Any, str]], cap: int) -> list[tuple[Any, str]]:
    """At most ``cap`` rows, chosen at random with a fixed seed (the same on every run)."""
    if len(rows) <= cap:
        return rows
    pick = np.random.default_rng(0).choice(len(rows), size=cap, replace=False)
    return [rows[i] for i in sorted(pick)]


def matched_annotations(
    conn: psycopg.Connection, model_id: int, planes: list[tuple[Any, str]], truth: _Truth
) -> tuple[np.ndarray, list[str], list[str]]:
    """Map-1 node, truth kind (``object_search.match_kinds``) and planeID of every annotation
    of ``planes``."""
    exposure = {str(p): e for p, e in planes}
    ann = conn.execute(
        "SELECT planeid, extension, x, y, b, map1_node FROM caomai.object_annotation"
        " WHERE model_id = %s AND planeid = ANY(%s) ORDER BY planeid, extension, object_id",
        (model_id, [p for p, _ in planes]),
    ).fetchall()
    conn.commit()
    by_image: dict[tuple[str, int], list[tuple[float, float, float, int]]] = defaultdict(list)
    for planeid, ext, x, y, b, node in ann:
        by_image[(str(planeid), int(ext))].append((x, y, b, node))
    nodes: list[int] = []
    kinds: list[str] = []
    owners: list[str] = []
    for (planeid, ext), dets in by_image.items():
        xyb = np.array([(x, y, np.nan if b is None else b) for x, y, b, _ in dets], np.float64)
        image_truth = truth.images.get((exposure[planeid], ext), osearch.NO_TRUTH)
        kinds += osearch.match_kinds(xyb[:, 0], xyb[:, 1], image_truth, xyb[:, 2]).tolist()
        nodes += [int(n) for *_, n in dets]
        owners += [planeid] * len(dets)
    return np.array(nodes, np.int64), kinds, owners


def object_search(
    conn: psycopg.Connection,
    reader: str,
    m1: modelstore.ModelRow,
    path: Path,
    train_rows: list[tuple[Any, str]],
    held_rows: list[tuple[Any, str]],
    cap: int,
) -> tuple[dict[str, Any], dict[int, str]]:
    """The object-search section and the Map-1 node labels it used (kinds, "none" aside).

    Training half: Map 1's training planes in the truth; their annotations (at most ``cap``
    planes) are matched to the truth and each node takes its members' majority kind. Each
    question's min_count is the one with the best F1 on the training half, on the counts
    ``has_object_node`` sees (the fingerprints' ``counts``, scaled as the SQL function does).
    Held-out half: ``has_object_node`` is asked through the read-only role (``reader``, a
    DSN) over the held-out planes a TAP user can see; the truth side is the same planes.
    """
    if not train_rows:
        return {"skipped": "none of Map 1's training planes is in the truth"}, {}
    if not m1.active:
        return {
            "skipped": f"Map 1 {m1.name!r} is not the active Map 1, which has_object_node asks"
        }, {}
    train_read = _sample(train_rows, cap)
    held_read = _sample(held_rows, cap)
    truth = read_objects(
        path,
        {e for _, e in train_rows + held_rows},
        {e for _, e in train_read + held_read},
    )
    if not truth.counts:
        raise UsageError(
            f"{path}: no truth object belongs to any exposure evaluated "
            "(is it the catalogue of another archive?)"
        )

    # node labels: the training half's majority kind
    t_nodes, t_kinds, t_owner = matched_annotations(conn, m1.model_id, train_read, truth)
    node_kind = osearch.node_majority_kinds(t_nodes, t_kinds)
    labels = {n: k for n, k in node_kind.items() if k != osearch.NONE}

    # what has_object_node counts on the training planes, from the same column it reads
    fps = {
        str(r[0]): r[1:]
        for r in conn.execute(
            "SELECT planeid, counts, n_detected, n_sampled FROM caomai.fingerprint"
            " WHERE model_id = %s AND planeid = ANY(%s)",
            (m1.model_id, [p for p, _ in train_rows]),
        ).fetchall()
    }
    conn.commit()
    t_exp = [e for p, e in train_rows if str(p) in fps]
    t_fp = [fps[str(p)] for p, _ in train_rows if str(p) in fps]
    t_counts = np.array([f[0] for f in t_fp], np.float64).reshape(len(t_fp), -1)
    t_det = np.array([f[1] for f in t_fp], np.float64)
    t_sam = np.array([f[2] for f in t_fp], np.float64)

    # the held-out half, through the read-only role: only the planes it may see are asked
    held_ids = [p for p, _ in held_rows]
    held_exp = {str(p): e for p, e in held_rows}
    visible = f"p.planeid = ANY(%s) AND {access.public('p')}"
    with database.connect(reader, vector=False) as rconn:
        role = rconn.execute("SELECT current_user").fetchone()[0]
        asked = [
            str(r[0])
            for r in rconn.execute(
                f"SELECT p.planeid FROM caom2.plane AS p WHERE {visible} ORDER BY p.planeid",
                (held_ids,),
            ).fetchall()
        ]
        questions = {}
        for q in osearch.QUESTIONS:
            nodes = sorted(n for n, k in labels.items() if k == q.kind)
            train_kind = [truth.counts[e][q.kind] for e in t_exp]
            threshold = osearch.question_threshold(q, train_kind)
            t_truth = osearch.question_truth(train_kind, threshold)
            h_truth = osearch.question_truth(
                [truth.counts[held_exp[p]][q.kind] for p in asked], threshold
            )
            answer = dict.fromkeys(asked, False)
            min_count = None
            if nodes:
                t_seen = osearch.object_counts(t_counts, t_det, t_sam, nodes)
                min_count = osearch.choose_min_count(t_seen, t_truth)
                for planeid, yes in rconn.execute(
                    "SELECT p.planeid, caomai.has_object_node(p.planeid, %s, %s)"
                    f" FROM caom2.plane AS p WHERE {visible}",
                    (",".join(map(str, nodes)), min_count, held_ids),
                ).fetchall():
                    answer[str(planeid)] = bool(yes)
                train_f1 = osearch.prf(t_seen >= min_count, t_truth).f1
            else:
                train_f1 = None
            scores = osearch.prf([answer[p] for p in asked], h_truth)
            questions[q.name] = {
                "description": q.description,
                "kind": q.kind,
                "truth_threshold": threshold,
                "train_base_rate": float(np.mean(t_truth)) if len(t_truth) else None,
                "nodes": nodes,
                "min_count": min_count,
                "train_f1": train_f1,
                **asdict(scores),
            }
        rconn.rollback()

    h_nodes, h_kinds, h_owner = matched_annotations(conn, m1.model_id, held_read, truth)
    purity = osearch.kind_purity(h_nodes, h_kinds, node_kind, truth.kinds)
    # the ceiling of each question: the same counting rule on the detections' own truth kinds
    # (a perfect Map 1), on the planes read; what the detections, not the map, allow
    t_read = [(str(p), e) for p, e in train_read]
    asked_set = set(asked)
    h_read = [(str(p), e) for p, e in held_read if str(p) in asked_set]
    t_found = Counter(zip(t_owner, t_kinds, strict=True))  # (planeID, kind) -> detections
    h_found = Counter(zip(h_owner, h_kinds, strict=True))
    for q in osearch.QUESTIONS:
        threshold = questions[q.name]["truth_threshold"]
        _, ceiling = osearch.score_counts(
            [t_found[(p, q.kind)] for p, _ in t_read],
            osearch.question_truth([truth.counts[e][q.kind] for _, e in t_read], threshold),
            [h_found[(p, q.kind)] for p, _ in h_read],
            osearch.question_truth([truth.counts[e][q.kind] for _, e in h_read], threshold),
        )
        questions[q.name]["ceiling_f1"] = ceiling.f1
        questions[q.name]["ceiling_planes"] = len(h_read)
    out = {
        "map1": m1.name,
        "role": role,
        "min_members": osearch.MIN_MEMBERS,
        "train_planes": len(t_exp),
        "train_planes_read": len(train_read),
        "train_detections": len(t_kinds),
        "held_out": len(held_rows),
        "asked": len(asked),
        "proprietary_not_asked": len(held_rows) - len(asked),
        "labels": {str(n): k for n, k in sorted(node_kind.items())},
        "questions": questions,
        "held_planes_read": len(held_read),
        "held_detections": len(h_kinds),
        "held_matched": sum(1 for k in h_kinds if k != osearch.NONE),
        **purity,
    }
    return out, labels


def render_object_search(o: dict[str, Any]) -> list[str]:
    if "skipped" in o:
        return ["", f"Object search on Map 1: skipped ({o['skipped']})"]
    out = [
        "",
        "Object search on Map 1 (nodes labelled by the training half's majority kind; "
        f"has_object_node on {o['asked']} held-out public exposures as {o['role']}; "
        f"{o['proprietary_not_asked']} proprietary not asked)",
        f"{'question':16}{'nodes':>7}{'min_count':>11}{'base rate':>11}{'precision':>11}"
        f"{'recall':>8}{'F1':>7}{'ceiling F1':>12}",
    ]
    for name, q in o["questions"].items():
        mc = "-" if q["min_count"] is None else str(q["min_count"])
        out.append(
            f"{name:16}{len(q['nodes']):>7}{mc:>11}{q['base_rate']:>11.3f}"
            f"{q['precision']:>11.3f}{q['recall']:>8.3f}{q['f1']:>7.3f}"
            f"{q.get('ceiling_f1', float('nan')):>12.3f}"
        )
    out.append(
        "(ceiling F1: the same rule counting the detections matched to the kind, as a perfect "
        "Map 1 would; on the held-out planes read below)"
    )
    out += [
        f"Per kind ({o['held_detections']} detections of {o['held_planes_read']} held-out "
        f"exposures, {o['held_matched']} matched to the truth; labels from "
        f"{o['train_detections']} detections of {o['train_planes_read']} training exposures)",
        f"{'kind':14}{'matched':>9}{'nodes':>7}{'purity':>9}{'completeness':>14}",
    ]
    for kind, k in sorted(o["kinds"].items()):
        out.append(
            f"{kind:14}{k['matched']:>9}{k['nodes']:>7}{k['purity']:>9.3f}"
            f"{k['completeness']:>14.3f}"
        )
    owners = (
        f"kinds owning no node: {', '.join(o['unowned'])}"
        if o["unowned"]
        else "every truth kind owns a node"
    )
    out.append(
        f"mean node purity {o['weighted_purity']:.3f} (over detections matched to the truth: "
        f"{o['matched_purity']:.3f}); {owners}"
    )
    return out


def _json_safe(value: Any) -> Any:
    """NaN and infinities as None, recursively (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
