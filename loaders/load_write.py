"""Writing one loaded plane: its objects COPYed into caomai.object_annotation, its fingerprint
upserted and its previews replaced (caomai.preview, caomai.object_cutout), in ONE transaction,
only while this worker still owns the plane."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg

from caomai_db.errors import LostPlane

from . import moments
from . import previews as previews_mod
from .load_pipeline import PlaneResult
from .load_queue import PlaneJob

ANNOTATION_COLUMNS = (
    "planeid",
    "model_id",
    "object_id",
    "publisherid",
    "metarelease",
    "metareadgroups",
    "extension",
    "extname",
    "x",
    "y",
    "ra",
    "dec",
    "flux",
    "a",
    "b",
    "theta",
    "peak",
    "flag",
    "map1_node",
    "map1_distance",
    *moments.NAMES,
)


def write_plane(
    conn: psycopg.Connection,
    *,
    run_id: int | None,
    worker: str | None,
    job: PlaneJob,
    model_id: int,
    map2_model_id: int | None,
    result: PlaneResult,
    previews: bool = True,
) -> None:
    """One transaction: annotations (COPY), fingerprint, previews, queue row -> done.

    The plane's node cutouts of this model are always replaced (their object_ids name the rows
    of the annotations replaced here); with ``previews`` False none are written, and the
    plane's preview (of the pixels, whatever the model) is left as it was.
    """
    fo = result.objects
    cols = fo.columns
    with conn.transaction():
        if run_id is not None:
            cur = conn.execute(
                "UPDATE caomai.load_queue SET status = 'done', finished_at = now(),"
                " n_detected = %s, n_sampled = %s, error = %s"
                " WHERE run_id = %s AND planeid = %s AND worker = %s AND status = 'running'",
                (
                    fo.n_detected,
                    fo.n_sampled,
                    ("warning: " + "; ".join(fo.notes))[:4000] if fo.notes else None,
                    run_id,
                    job.planeid,
                    worker,
                ),
            )
            if cur.rowcount != 1:
                raise LostPlane(str(job.planeid))
        conn.execute(
            "DELETE FROM caomai.object_annotation WHERE planeid = %s AND model_id = %s",
            (job.planeid, model_id),
        )
        with (
            conn.cursor() as cur,
            cur.copy(
                f"COPY caomai.object_annotation ({', '.join(ANNOTATION_COLUMNS)}) FROM STDIN"
            ) as copy,
        ):
            for i in range(fo.n_sampled):
                ra, dec = float(cols["ra"][i]), float(cols["dec"][i])
                copy.write_row(
                    (
                        job.planeid,
                        model_id,
                        i,
                        job.publisherid,
                        job.metarelease,
                        job.metareadgroups,
                        int(cols["extension"][i]),
                        fo.extnames[i],
                        float(cols["x"][i]),
                        float(cols["y"][i]),
                        ra if np.isfinite(ra) else None,
                        dec if np.isfinite(dec) else None,
                        _finite(cols["flux"][i]),
                        _finite(cols["a"][i]),
                        _finite(cols["b"][i]),
                        _finite(cols["theta"][i]),
                        _finite(cols["peak"][i]),
                        int(cols["flag"][i]),
                        int(result.nodes[i]),
                        float(result.distances[i]),
                        *(_finite(cols[name][i]) for name in moments.NAMES),
                    )
                )
        conn.execute(
            "INSERT INTO caomai.fingerprint (planeid, model_id, publisherid, metarelease,"
            " metareadgroups, fp, image_vec, counts, n_detected, n_sampled, map2_model_id,"
            " map2_node, map2_distance, computed_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())"
            " ON CONFLICT (planeid, model_id) DO UPDATE SET publisherid = EXCLUDED.publisherid,"
            " metarelease = EXCLUDED.metarelease, metareadgroups = EXCLUDED.metareadgroups,"
            " fp = EXCLUDED.fp, image_vec = EXCLUDED.image_vec, counts = EXCLUDED.counts, n_detected = EXCLUDED.n_detected,"
            " n_sampled = EXCLUDED.n_sampled, map2_model_id = EXCLUDED.map2_model_id,"
            " map2_node = EXCLUDED.map2_node, map2_distance = EXCLUDED.map2_distance,"
            " computed_at = now()",
            (
                job.planeid,
                model_id,
                job.publisherid,
                job.metarelease,
                job.metareadgroups,
                result.fp,
                result.image_vec,
                [int(c) for c in result.counts],
                fo.n_detected,
                fo.n_sampled,
                map2_model_id if result.map2_node is not None else None,
                result.map2_node,
                result.map2_distance,
            ),
        )
        _write_previews(conn, job, model_id, result, previews)


def _write_previews(
    conn: psycopg.Connection, job: PlaneJob, model_id: int, result: PlaneResult, previews: bool
) -> None:
    conn.execute(
        "DELETE FROM caomai.object_cutout WHERE planeid = %s AND model_id = %s",
        (job.planeid, model_id),
    )
    if not previews:
        return
    png = result.objects.preview
    conn.execute("DELETE FROM caomai.preview WHERE planeid = %s", (job.planeid,))
    if png is not None:
        width, height = previews_mod.png_size(png)
        conn.execute(
            "INSERT INTO caomai.preview (planeid, png, width, height) VALUES (%s, %s, %s, %s)",
            (job.planeid, png, width, height),
        )
    keep = _worth_keeping(conn, model_id, result.cutouts or [])
    if keep:
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY caomai.object_cutout (model_id, planeid, map1_node, object_id,"
                " map1_distance, png) FROM STDIN"
            ) as copy,
        ):
            for node, object_id, distance, cutout in keep:
                copy.write_row((model_id, job.planeid, node, object_id, distance, cutout))


#: cutouts kept per Map-1 node: the page shows 9, the rest leave room for proprietary planes
#: (hidden) and for reloads. Keeping every plane's nearest object of every node it holds cost
#: ~270 kB a plane; past the first planes, an object farther from its node than the node's
#: KEEP_PER_NODE-th nearest can never be shown and is not written (the table then grows as
#: records do, ~KEEP_PER_NODE * ln(planes / KEEP_PER_NODE) rows a node).
KEEP_PER_NODE = 24


def _worth_keeping(
    conn: psycopg.Connection,
    model_id: int,
    cutouts: list[tuple[int, int, float, bytes]],
    keep: int = KEEP_PER_NODE,
) -> list[tuple[int, int, float, bytes]]:
    """The cutouts nearer their node than its ``keep``-th nearest stored one (all of them
    while a node holds fewer); one index probe per node."""
    if not cutouts:
        return []
    bars = dict(
        conn.execute(
            "SELECT n, (SELECT c.map1_distance FROM caomai.object_cutout AS c"
            "  WHERE c.model_id = %s AND c.map1_node = n"
            "  ORDER BY c.map1_distance OFFSET %s LIMIT 1)"
            " FROM unnest(%s::smallint[]) AS n",
            (model_id, keep - 1, [c[0] for c in cutouts]),
        ).fetchall()
    )
    return [c for c in cutouts if bars.get(c[0]) is None or c[2] < bars[c[0]]]


def _finite(value: Any) -> float | None:
    v = float(value)
    return v if np.isfinite(v) else None
