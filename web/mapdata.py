"""What the JSON API reads: the published maps (``caomai.map_node``, a view that counts public
planes only), their node samples and statistics, and how far the archive is loaded.

Every function takes a reader connection (the TAP service's read-only role) and returns plain
JSON-able values; URLs are built by the routes, from the ids given here."""

from __future__ import annotations

from typing import Any

import psycopg

from caomai_db import previews
from caomai_db.access import public

KINDS = ("map1", "map2")


def active_model(conn: psycopg.Connection, kind: str) -> dict[str, Any] | None:
    """The active model of a map (None for an unknown map or none active)."""
    if kind not in KINDS:
        return None
    row = conn.execute(
        "SELECT model_id, name, grid_rows, grid_cols, created_at,"
        " coalesce(parameters->>'input', 'fp') FROM caomai.model"
        " WHERE kind = %s AND active",
        (kind,),
    ).fetchone()
    if row is None:
        return None
    return {
        "id": row[0],
        "name": row[1],
        "rows": row[2],
        "cols": row[3],
        "created_at": row[4].isoformat() if row[4] else None,
        # the vector a Map 2 was trained on (image_vec, or fp for one trained before the image
        # vector existed): the page asks fp_similar on that column for "similar images"
        **({"input": row[5]} if kind == "map2" else {}),
    }


_NODES = (
    "SELECT node_id, grid_row, grid_col, member_count, label, label_source,"
    " thumbnail IS NOT NULL, stats FROM caomai.map_node WHERE model_id = %s"
)


def nodes(
    conn: psycopg.Connection, model_id: int, node_id: int | None = None
) -> list[dict[str, Any]]:
    """The map's nodes (or the one ``node_id``): grid position, public member count, label,
    whether a prototype picture can be shown, statistics."""
    if node_id is None:
        rows = conn.execute(_NODES + " ORDER BY node_id", (model_id,)).fetchall()
    else:
        rows = conn.execute(_NODES + " AND node_id = %s", (model_id, node_id)).fetchall()
    return [
        {
            "node": r[0],
            "row": r[1],
            "col": r[2],
            "members": r[3],
            "label": r[4],
            "label_source": r[5],
            "has_prototype": bool(r[6]),
            "stats": _public_stats(r[7]),
        }
        for r in rows
    ]


def _public_stats(stats: dict[str, Any] | None) -> dict[str, Any]:
    """Statistics as shown: the nearest-member list of a Map-2 node is given as samples."""
    out = dict(stats or {})
    out.pop("nearest_members", None)
    return out


def map_view(conn: psycopg.Connection, kind: str) -> tuple[dict | None, list[dict]]:
    """The active model of a map and all its nodes, read on one connection."""
    model = active_model(conn, kind)
    return model, nodes(conn, model["id"]) if model else []


def node_view(
    conn: psycopg.Connection, kind: str, node_id: int, n_samples: int = 9
) -> tuple[dict | None, dict | None]:
    """The active model of a map and one node with its nearest public samples (and, on Map 2,
    the shares of its images), read on one connection."""
    model = active_model(conn, kind)
    if model is None:
        return None, None
    found = nodes(conn, model["id"], node_id)
    if not found:
        return model, None
    node = found[0]
    node["samples"] = previews.node_samples(conn, model["id"], node_id, n_samples)
    if kind == "map2":
        node["shares"] = image_shares(conn, model["id"], node_id)
    return model, node


def image_shares(conn: psycopg.Connection, model_id: int, node_id: int) -> dict[str, Any]:
    """Map-2 node: share of its public images by filter and by instrument."""
    rows = conn.execute(
        "SELECT coalesce(p.energy_bandpassname, '?'), coalesce(o.instrument_name, '?'), count(*)"
        " FROM caomai.fingerprint AS f JOIN caom2.plane AS p ON p.planeid = f.planeid"
        " JOIN caom2.observation AS o ON o.obsid = p.obsid"
        f" WHERE f.map2_model_id = %s AND f.map2_node = %s AND {public('p')}"
        " GROUP BY 1, 2",
        (model_id, node_id),
    ).fetchall()
    total = sum(r[2] for r in rows) or 1
    shares: dict[str, dict[str, float]] = {"filter": {}, "instrument": {}}
    for band, inst, n in rows:
        shares["filter"][band] = shares["filter"].get(band, 0) + n / total
        shares["instrument"][inst] = shares["instrument"].get(inst, 0) + n / total
    return {k: {kk: round(vv, 4) for kk, vv in v.items()} for k, v in shares.items()}


def progress(conn: psycopg.Connection) -> dict[str, int]:
    """How far the archive is loaded: public planes registered, and those with a fingerprint."""
    planes = conn.execute(f"SELECT count(*) FROM caom2.plane WHERE {public()}").fetchone()[0]
    done = conn.execute(
        f"SELECT count(*), count(map2_node) FROM caomai.fingerprint WHERE {public()}"
    ).fetchone()
    return {"planes": planes, "fingerprinted": done[0], "on_map2": done[1]}


def prototype_png(conn: psycopg.Connection, kind: str, node_id: int) -> bytes | None:
    """The prototype picture of a node of the active map, while the plane it was cut from is
    public (the view's rule)."""
    row = conn.execute(
        "SELECT n.thumbnail FROM caomai.map_node AS n JOIN caomai.model AS m"
        " ON m.model_id = n.model_id WHERE m.kind = %s AND m.active AND n.node_id = %s",
        (kind, node_id),
    ).fetchone()
    return bytes(row[0]) if row and row[0] is not None else None
