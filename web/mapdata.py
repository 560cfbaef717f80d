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
    row = conn.execute(
        "SELECT model_id, name, grid_rows, grid_cols, created_at FROM caomai.model"
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
    }


def nodes(conn: psycopg.Connection, model_id: int) -> list[dict[str, Any]]:
    """Every node of the map: grid position, public member count, label, whether a prototype
    picture can be shown, statistics."""
    rows = conn.execute(
        "SELECT node_id, grid_row, grid_col, member_count, label, thumbnail IS NOT NULL, stats"
        " FROM caomai.map_node WHERE model_id = %s ORDER BY node_id",
        (model_id,),
    ).fetchall()
    return [
        {
            "node": r[0],
            "row": r[1],
            "col": r[2],
            "members": r[3],
            "label": r[4],
            "has_prototype": bool(r[5]),
            "stats": _public_stats(r[6]),
        }
        for r in rows
    ]


def _public_stats(stats: dict[str, Any] | None) -> dict[str, Any]:
    """Statistics as shown: the nearest-member list of a Map-2 node is given as samples."""
    out = dict(stats or {})
    out.pop("nearest_members", None)
    return out


def node(conn: psycopg.Connection, model_id: int, node_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT node_id, grid_row, grid_col, member_count, label, label_source,"
        " thumbnail IS NOT NULL, stats FROM caomai.map_node WHERE model_id = %s AND node_id = %s",
        (model_id, node_id),
    ).fetchone()
    if row is None:
        return None
    return {
        "node": row[0],
        "row": row[1],
        "col": row[2],
        "members": row[3],
        "label": row[4],
        "label_source": row[5],
        "has_prototype": bool(row[6]),
        "stats": _public_stats(row[7]),
    }


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


def samples(conn: psycopg.Connection, model_id: int, node_id: int, n: int = 9) -> list[dict]:
    return previews.node_samples(conn, model_id, node_id, n)


def progress(conn: psycopg.Connection) -> dict[str, int]:
    """How far the archive is loaded: public planes registered, and those with a fingerprint."""
    planes = conn.execute(f"SELECT count(*) FROM caom2.plane WHERE {public()}").fetchone()[0]
    done = conn.execute(
        f"SELECT count(*), count(map2_node) FROM caomai.fingerprint WHERE {public()}"
    ).fetchone()
    return {"planes": planes, "fingerprinted": done[0], "on_map2": done[1]}


def prototype_png(conn: psycopg.Connection, model_id: int, node_id: int) -> bytes | None:
    """The node's prototype picture, while the plane it was cut from is public (the view's
    rule)."""
    row = conn.execute(
        "SELECT thumbnail FROM caomai.map_node WHERE model_id = %s AND node_id = %s",
        (model_id, node_id),
    ).fetchone()
    return bytes(row[0]) if row and row[0] is not None else None
