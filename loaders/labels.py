"""Node labels: label a map node once, and every member inherits it (the paper's labelling).

A label lives on ``caomai.map_node`` (``label``, ``label_source``, ``labeled_at``). Members are
not copied: an image's label is its Map-2 node's label (``caomai.fingerprint.map2_node``), an
object's is its Map-1 node's (``object_annotation.map1_node``), so a relabelled node relabels
all its members at once, and new images loaded later inherit it too:

    SELECT f.planeID, n.label FROM caomai.fingerprint AS f
      JOIN caomai.map_node AS n ON n.model_id = f.map2_model_id AND n.node_id = f.map2_node
"""

from __future__ import annotations

import getpass

from caomai_db import database
from caomai_db.config import Settings
from caomai_db.errors import UsageError

from . import modelstore


def parse_node(text: str, rows: int, cols: int) -> int:
    """'137' or '6,17' (row, col) -> node id, checked against the grid."""
    text = text.strip()
    if "," in text:
        try:
            r, c = (int(v) for v in text.split(","))
        except ValueError as exc:
            raise UsageError(f"node {text!r}: give an id 0..{rows * cols - 1} or ROW,COL") from exc
        if not (0 <= r < rows and 0 <= c < cols):
            raise UsageError(f"node {text!r} is outside the {rows}x{cols} grid")
        return r * cols + c
    try:
        node = int(text)
    except ValueError as exc:
        raise UsageError(f"node {text!r}: give an id 0..{rows * cols - 1} or ROW,COL") from exc
    if not 0 <= node < rows * cols:
        raise UsageError(f"node {node} is outside the map (0..{rows * cols - 1})")
    return node


def label_node(
    settings: Settings,
    model: str,
    node: str,
    label: str | None,
    *,
    source: str | None = None,
) -> str:
    """Set (or clear, label=None) a node's label; returns a sentence saying what it reached."""
    dsn = database.resolve_dsn(settings)
    with database.connect(dsn) as conn:
        row = modelstore.get_model(conn, model)
        node_id = parse_node(node, row.grid_rows, row.grid_cols)
        if label is not None and not label.strip():
            raise UsageError("the label is empty; use --clear to remove a label")
        source = None if label is None else (source or f"expert:{getpass.getuser()}")
        cur = conn.execute(
            "UPDATE caomai.map_node_store SET label = %s, label_source = %s,"
            " labeled_at = CASE WHEN %s::text IS NULL THEN NULL ELSE now() END"
            " WHERE model_id = %s AND node_id = %s",
            (label, source, label, row.model_id, node_id),
        )
        if cur.rowcount != 1:
            raise UsageError(f"model {row.name!r} has no node {node_id}")
        if row.kind == "map2":
            members = conn.execute(
                "SELECT count(*) FROM caomai.fingerprint WHERE map2_model_id = %s AND map2_node = %s",
                (row.model_id, node_id),
            ).fetchone()[0]
            what = "images"
        else:
            members = conn.execute(
                "SELECT count(*) FROM caomai.object_annotation WHERE model_id = %s"
                " AND map1_node = %s",
                (row.model_id, node_id),
            ).fetchone()[0]
            what = "objects"
        conn.commit()
    r, c = divmod(node_id, row.grid_cols)
    if label is None:
        return f"{row.name} node {node_id} ({r},{c}): label cleared ({members} {what})"
    return f"{row.name} node {node_id} ({r},{c}) labelled {label!r}: {members} {what} inherit it"


def apply_labels(conn, model_id: int, labels: dict[int, str], source: str) -> int:
    """Label many nodes at once (e.g. a simulated expert: the majority truth of the members)."""
    n = 0
    for node_id, label in sorted(labels.items()):
        n += conn.execute(
            "UPDATE caomai.map_node_store SET label = %s, label_source = %s, labeled_at = now()"
            " WHERE model_id = %s AND node_id = %s",
            (label, source, model_id, node_id),
        ).rowcount
    return n


def clear_labels(conn, model_id: int, source: str) -> int:
    """Remove the labels one source wrote on a model (e.g. before it writes them again, so a
    node it no longer labels does not keep a stale label); other sources' labels stay."""
    return conn.execute(
        "UPDATE caomai.map_node_store SET label = NULL, label_source = NULL, labeled_at = NULL"
        " WHERE model_id = %s AND label_source = %s",
        (model_id, source),
    ).rowcount
