"""Scoring a map against truth labels: Good vs Bad counts and the node-majority rules.

Shared by ``evaluate.py`` (Map 2 on fingerprints) and ``ceiling.py`` (the same map on the
simulator's own conditions), so both columns of the report are scored by the same code.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

GOOD = "good"


@dataclass
class BinaryScores:
    n: int
    tp: int
    fp: int
    tn: int
    fn: int
    accuracy: float
    precision: float
    recall: float


def binary_scores(truth_good: np.ndarray, pred_good: np.ndarray) -> BinaryScores:
    t = np.asarray(truth_good, bool)
    p = np.asarray(pred_good, bool)
    tp = int(np.sum(t & p))
    fp = int(np.sum(~t & p))
    tn = int(np.sum(~t & ~p))
    fn = int(np.sum(t & ~p))
    n = tp + fp + tn + fn
    return BinaryScores(
        n=n,
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        accuracy=(tp + tn) / n if n else float("nan"),
        precision=tp / (tp + fp) if tp + fp else float("nan"),
        recall=tp / (tp + fn) if tp + fn else float("nan"),
    )


def majority(values: list[str], prefer: str | None = None) -> str:
    """Most frequent value; ties go to ``prefer`` if tied, else the alphabetically first."""
    counts = Counter(values)
    top = max(counts.values())
    tied = sorted(v for v, c in counts.items() if c == top)
    return prefer if prefer in tied else tied[0]


def node_majority(nodes: np.ndarray, labels: list[str], prefer: str | None = None) -> dict:
    members: dict[int, list[str]] = defaultdict(list)
    for node, label in zip(nodes, labels, strict=True):
        members[int(node)].append(label)
    return {node: majority(v, prefer) for node, v in members.items()}


def in_cell_scores(nodes: np.ndarray, bins: list[str], prefer: str) -> BinaryScores:
    """The paper's metric: every member predicted as its cell's Good/Bad majority."""
    cell = node_majority(nodes, bins, prefer=prefer)
    truth = np.array([b == GOOD for b in bins])
    return binary_scores(truth, np.array([cell[int(n)] == GOOD for n in nodes]))


def tied_members(nodes: np.ndarray, bins: list[str]) -> int:
    """How many members sit in cells with as many Good as Bad members."""
    balance: Counter = Counter()
    size: Counter = Counter()
    for node, b in zip(nodes, bins, strict=True):
        balance[int(node)] += 1 if b == GOOD else -1
        size[int(node)] += 1
    return sum(n for node, n in size.items() if balance[node] == 0)


def fill_from_nearest(labels: dict[int, str], codebook: np.ndarray) -> dict[int, str]:
    """Every node gets a label: its own, else the nearest labelled node's (codebook space)."""
    if not labels:
        return {}
    labelled = np.array(sorted(labels))
    out = {}
    for node in range(len(codebook)):
        if node in labels:
            out[node] = labels[node]
            continue
        d = np.linalg.norm(codebook[labelled] - codebook[node], axis=1)
        out[node] = labels[int(labelled[np.argmin(d)])]
    return out


def binary(label: str) -> str:
    return "good" if label == GOOD else "bad"


def training_label_scores(
    train_nodes: np.ndarray,
    train_bins: list[str],
    held_nodes: np.ndarray,
    held_bins: list[str],
    codebook: np.ndarray,
) -> BinaryScores:
    """Held-out exposures predicted by their node's Good/Bad majority over *training* members.

    A tie counts Bad, and a node without training members takes the nearest labelled node's
    label (``fill_from_nearest``): what an expert who labelled the map once would have given.
    """
    labels = fill_from_nearest(node_majority(train_nodes, train_bins, prefer="bad"), codebook)
    return binary_scores(
        np.array([b == GOOD for b in held_bins]),
        np.array([labels[int(n)] == GOOD for n in held_nodes]),
    )


def mean_precision(per_class: dict[str, list[float]]) -> tuple[float | None, dict[str, float]]:
    """Precision@k over every query (None without queries) and per class."""
    every = [s for v in per_class.values() for s in v]
    overall = float(np.mean(every)) if every else None
    return overall, {c: float(np.mean(v)) for c, v in per_class.items()}
