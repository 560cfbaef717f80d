"""Reading the previews the loader writes (migration 0006), for the web API.

Any connection works (the web API uses the read-only role's, which may SELECT these tables
though TAP cannot name them). Every read joins caom2.Plane and admits only public planes
(``access.public``): a proprietary plane's preview is answered exactly as a missing one (None,
or absent from a list), so its URL tells nothing. A malformed reference is also None, never an
error: the caller turns every None into the same "not found".
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from .access import public


def _planeid(ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(ref).strip())
    except (ValueError, AttributeError, TypeError):
        return None


def plane_png(conn: psycopg.Connection, ref: str) -> bytes | None:
    """The preview PNG of a public plane named by its planeID (uuid text) or publisherID; None
    when the plane is missing, not public or has no preview, or the reference is malformed."""
    if not isinstance(ref, str) or not ref.strip() or len(ref) > 1024 or "\x00" in ref:
        return None
    planeid = _planeid(ref)
    if planeid is not None:
        where, arg = "p.planeid = %s", planeid
    else:
        where, arg = "p.publisherid = %s", ref.strip()
    row = conn.execute(
        "SELECT v.png FROM caomai.preview AS v JOIN caom2.plane AS p ON p.planeid = v.planeid"
        f" WHERE {where} AND {public('p')} LIMIT 1",
        (arg,),
    ).fetchone()
    return bytes(row[0]) if row else None


def object_png(conn: psycopg.Connection, model_id: int, planeid: str, node: int) -> bytes | None:
    """The cutout PNG of a public plane's object nearest Map-1 node ``node`` of ``model_id``;
    None when any of them is missing, not public or malformed."""
    pid = _planeid(planeid) if isinstance(planeid, str) else None
    if pid is None or not _small_int(model_id) or not _small_int(node):
        return None
    row = conn.execute(
        "SELECT c.png FROM caomai.object_cutout AS c JOIN caom2.plane AS p"
        " ON p.planeid = c.planeid"
        f" WHERE c.model_id = %s AND c.planeid = %s AND c.map1_node = %s AND {public('p')}",
        (int(model_id), pid, int(node)),
    ).fetchone()
    return bytes(row[0]) if row else None


def node_samples(
    conn: psycopg.Connection, model_id: int, node: int, n: int = 9
) -> list[dict[str, Any]]:
    """The ``n`` public members of a node nearest it, nearest first.

    Map 1: object cutouts (one per plane at most: each plane keeps its object nearest the
    node), dicts with planeid, publisherID, object_id, distance. Map 2: images placed on the
    node (caomai.fingerprint), dicts with planeid, publisherID, distance, has_preview; in the
    order of the caomai.map_node view's nearest_members (distance, then planeID). An unknown
    model or node gives an empty list.
    """
    if not (_small_int(model_id) and _small_int(node) and _small_int(n)) or n <= 0:
        return []
    row = conn.execute(
        "SELECT kind FROM caomai.model WHERE model_id = %s", (int(model_id),)
    ).fetchone()
    if row is None:
        return []
    if row[0] == "map1":
        rows = conn.execute(
            "SELECT c.planeid::text, p.publisherid, c.object_id, c.map1_distance"
            " FROM caomai.object_cutout AS c JOIN caom2.plane AS p ON p.planeid = c.planeid"
            f" WHERE c.model_id = %s AND c.map1_node = %s AND {public('p')}"
            " ORDER BY c.map1_distance, c.planeid LIMIT %s",
            (int(model_id), int(node), int(n)),
        ).fetchall()
        return [
            {"planeid": r[0], "publisherID": r[1], "object_id": r[2], "distance": float(r[3])}
            for r in rows
        ]
    # the fingerprint's own access columns, as the map_node view and the TAP layer read them
    rows = conn.execute(
        "SELECT f.planeid::text, f.publisherid, f.map2_distance,"
        " EXISTS (SELECT 1 FROM caomai.preview AS v WHERE v.planeid = f.planeid)"
        " FROM caomai.fingerprint AS f"
        f" WHERE f.map2_model_id = %s AND f.map2_node = %s AND {public('f')}"
        " ORDER BY f.map2_distance, f.planeid LIMIT %s",
        (int(model_id), int(node), int(n)),
    ).fetchall()
    return [
        {
            "planeid": r[0],
            "publisherID": r[1],
            "distance": None if r[2] is None else float(r[2]),
            "has_preview": bool(r[3]),
        }
        for r in rows
    ]


def _small_int(value: object) -> bool:
    """An int PostgreSQL's integer takes (bool excluded); anything else names nothing."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31
