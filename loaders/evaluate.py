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
- per object (with the truth catalogue): detections matched to truth objects by position,
  and the purity of each Map-1 node (share of its matched members of its majority kind).
"""

from __future__ import annotations

import csv
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from caomai_db import database
from caomai_db.config import Settings
from caomai_db.errors import UsageError

from . import ceiling as ceiling_mod
from . import labels as labels_mod
from . import modelstore
from .scoring import (
    GOOD,
    BinaryScores,
    binary,
    fill_from_nearest,
    in_cell_scores,
    majority,
    mean_precision,
    node_majority,
    tied_members,
    training_label_scores,
)

PAPER = {"accuracy": 0.958, "precision": 0.929, "recall": 0.991}
#: match radius (pixels) between a detection and a truth object
MATCH_RADIUS = 3.0
#: extended kinds whose detection centroid may sit far from the catalogued position
EXTENDED_KINDS = {"trail": 12.0, "bleed": 12.0}


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
    objects: dict[str, Any] | None = None
    #: Map 2 on the simulator's own conditions (``ceiling.py``); None without them
    ceiling: ceiling_mod.Ceiling | None = None
    seconds: float = 0.0
    labels_written: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

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
        if self.objects:
            o = self.objects
            out += [
                "",
                f"Per object on Map 1 ({o['planes']} held-out exposures, {o['detections']} "
                f"detections, {o['matched']} matched to truth objects within "
                f"{MATCH_RADIUS:g} px; trails/bleeds {EXTENDED_KINDS['trail']:g} px)",
                f"{'kind':14}{'matched':>9}{'nodes':>7}{'purity':>9}{'completeness':>14}",
            ]
            for kind, k in sorted(o["kinds"].items()):
                out.append(
                    f"{kind:14}{k['matched']:>9}{k['nodes']:>7}{k['purity']:>9.3f}"
                    f"{k['completeness']:>14.3f}"
                )
            out.append(
                f"mean node purity (weighted by members): {o['weighted_purity']:.3f} over "
                f"{o['nodes_with_members']} nodes"
            )
        if self.labels_written:
            out.append(f"\nwrote {self.labels_written} node labels (training majority) on Map 2")
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
    max_object_planes: int = 100,
    apply_labels: bool = False,
) -> Report:
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
            held_rows = [(r[0], r[1]) for r, h in zip(rows, held, strict=True) if h]
            report.objects = object_purity(
                conn, m1.model_id, objects_path, held_rows[:max_object_planes]
            )
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
    with conn.transaction():
        return labels_mod.apply_labels(
            conn, model_id, labels, "truth-majority of training members (evaluate)"
        )


def read_objects(path: Path, exposures: set[str]) -> dict[str, list[tuple[int, float, float, str]]]:
    out: dict[str, list[tuple[int, float, float, str]]] = defaultdict(list)
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            if r["exposure_id"] in exposures:
                out[r["exposure_id"]].append(
                    (int(r["extension"]), float(r["x"]), float(r["y"]), r["kind"])
                )
    return out


def object_purity(
    conn: psycopg.Connection,
    model_id: int,
    path: Path,
    planes: list[tuple[Any, str]],
) -> dict[str, Any]:
    """Match annotations to truth objects by position; purity of each Map-1 node."""
    from scipy.spatial import cKDTree

    truth = read_objects(path, {e for _, e in planes})
    if planes and not truth:
        raise UsageError(
            f"{path}: no truth object belongs to any of the {len(planes)} held-out exposures "
            "scored (is it the catalogue of another archive?)"
        )
    node_kinds: dict[int, list[str]] = defaultdict(list)
    detections = matched = 0
    for planeid, exposure in planes:
        ann = conn.execute(
            "SELECT extension, x, y, map1_node FROM caomai.object_annotation"
            " WHERE planeid = %s AND model_id = %s",
            (planeid, model_id),
        ).fetchall()
        detections += len(ann)
        objs = truth.get(exposure, [])
        by_ext: dict[int, list[tuple[float, float, str]]] = defaultdict(list)
        for ext, x, y, kind in objs:
            by_ext[ext].append((x, y, kind))
        trees = {
            ext: (cKDTree(np.array([(x, y) for x, y, _ in v])), [kd for _, _, kd in v])
            for ext, v in by_ext.items()
        }
        for ext, x, y, node in ann:
            kind = "none"
            if ext in trees:
                tree, kinds = trees[ext]
                hits = tree.query_ball_point((x, y), r=max(EXTENDED_KINDS.values()))
                best, best_d = None, np.inf
                for i in hits:
                    px, py = tree.data[i]
                    d = float(np.hypot(px - x, py - y))
                    radius = EXTENDED_KINDS.get(kinds[i], MATCH_RADIUS)
                    if d <= radius and d < best_d:
                        best, best_d = kinds[i], d
                if best is not None:
                    kind = best
                    matched += 1
            node_kinds[int(node)].append(kind)
    conn.commit()
    node_major = {n: majority(v) for n, v in node_kinds.items()}
    kinds = sorted({k for v in node_kinds.values() for k in v})
    per_kind = {}
    total_members = sum(len(v) for v in node_kinds.values())
    weighted = sum(sum(1 for k in v if k == node_major[n]) for n, v in node_kinds.items())
    for kind in kinds:
        nodes = [n for n, m in node_major.items() if m == kind]
        members = sum(len(node_kinds[n]) for n in nodes)
        correct = sum(sum(1 for k in node_kinds[n] if k == kind) for n in nodes)
        n_kind = sum(sum(1 for k in v if k == kind) for v in node_kinds.values())
        per_kind[kind] = {
            "matched": n_kind,
            "nodes": len(nodes),
            "purity": correct / members if members else float("nan"),
            "completeness": correct / n_kind if n_kind else float("nan"),
        }
    return {
        "planes": len(planes),
        "detections": detections,
        "matched": matched,
        "kinds": per_kind,
        "weighted_purity": weighted / total_members if total_members else float("nan"),
        "nodes_with_members": len(node_kinds),
        "nodes": {
            str(n): {"majority": node_major[n], "members": len(v), "counts": dict(Counter(v))}
            for n, v in sorted(node_kinds.items())
        },
    }
