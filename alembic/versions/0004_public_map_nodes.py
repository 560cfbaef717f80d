"""Map nodes publish public planes only: caomai.map_node becomes a view.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

Until now ``caomai.map_node`` was the table training wrote, published as it was: a Map-2
node's ``member_count`` counted proprietary images, its ``stats.nearest_members`` listed their
planeIDs verbatim and its thumbnail could be one of them, so anyone could read what the access
rules hide everywhere else (issue 14).

The table training writes is renamed ``caomai.map_node_store`` and is no longer published (the
read-only role loses SELECT on it). ``caomai.map_node`` is now a view with the same columns that
recomputes every member figure of a Map-2 node from the *public* fingerprints at query time:
member count, nearest members, mean distance. A plane whose metaRelease passes appears in them
at once, without retraining or a refresh; one whose metaRelease moves into the future
disappears at once. A thumbnail is shown only while the plane it was cut from is public
(``thumbnail_planeid``). Map-1 figures stay what training measured, since training reads public
planes only (``loaders/train.py``). "Public" is the rule of the TAP access layer: metaRelease
NULL or passed (a plane readable by some metaReadGroups only is hidden from everyone else).

The view's SQL is written out here, not read from ``sql/``, so this revision stays as released.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from caomai_db import tapschema

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUBLIC = "(f.metarelease IS NULL OR f.metarelease <= now())"

VIEW = f"""
CREATE VIEW caomai.map_node AS
SELECT s.model_id,
       s.node_id,
       s.grid_row,
       s.grid_col,
       CASE WHEN m.kind = 'map2' THEN coalesce(live.members, 0) ELSE s.member_count END
           AS member_count,
       s.codebook,
       CASE WHEN s.thumbnail_planeid IS NULL OR EXISTS (
                SELECT 1 FROM caom2.plane AS p
                 WHERE p.planeid = s.thumbnail_planeid
                   AND (p.metarelease IS NULL OR p.metarelease <= now()))
            THEN s.thumbnail END AS thumbnail,
       s.label,
       s.label_source,
       s.labeled_at,
       CASE WHEN m.kind = 'map2' THEN
            jsonb_build_object(
                'members', coalesce(live.members, 0),
                'training_members', coalesce(s.stats -> 'training_members', '0'::jsonb),
                'nearest_members', coalesce(near.ids, '[]'::jsonb),
                'distance_mean', round(live.distance_mean::numeric, 4))
            ELSE s.stats END AS stats
  FROM caomai.map_node_store AS s
  JOIN caomai.model AS m ON m.model_id = s.model_id
  LEFT JOIN LATERAL (
        SELECT count(*) AS members, avg(f.map2_distance) AS distance_mean
          FROM caomai.fingerprint AS f
         WHERE m.kind = 'map2' AND f.map2_model_id = s.model_id
           AND f.map2_node = s.node_id AND {PUBLIC}) AS live ON true
  LEFT JOIN LATERAL (
        SELECT jsonb_agg(n.planeid::text ORDER BY n.map2_distance, n.planeid) AS ids
          FROM (SELECT f.planeid, f.map2_distance
                  FROM caomai.fingerprint AS f
                 WHERE m.kind = 'map2' AND f.map2_model_id = s.model_id
                   AND f.map2_node = s.node_id AND {PUBLIC}
                 ORDER BY f.map2_distance, f.planeid
                 LIMIT 5) AS n) AS near ON true
"""


def _raw():  # noqa: ANN202
    return op.get_bind().connection.driver_connection


def upgrade() -> None:
    op.rename_table("map_node", "map_node_store", schema="caomai")
    op.add_column(
        "map_node_store",
        sa.Column(
            "thumbnail_planeid",
            postgresql.UUID(as_uuid=True),
            nullable=True,
            comment="the plane the thumbnail was cut from: the view shows the thumbnail only"
            " while it is public",
        ),
        schema="caomai",
    )
    op.execute(
        "COMMENT ON TABLE caomai.map_node_store IS 'what training wrote for the 400 nodes of each"
        " map (published through the caomai.map_node view, which recomputes every member figure"
        " from public planes only)'"
    )
    # the view's per-node lookups: members of one node in distance order
    op.create_index(
        "ix_fingerprint_map2_placement",
        "fingerprint",
        ["map2_model_id", "map2_node", "map2_distance"],
        schema="caomai",
    )
    op.execute(VIEW)
    op.execute(
        "COMMENT ON VIEW caomai.map_node IS 'the 400 nodes of each map: grid position, members,"
        " prototype and expert label; every member figure counts public planes only, recomputed"
        " at query time'"
    )
    # the thumbnails written before this revision came from any plane: keep only those whose
    # plane cannot be told (Map 1: cutouts of the training planes) and drop Map 2's, which
    # were previews of whole images; `caomai train map2` writes them again.
    op.execute(
        "UPDATE caomai.map_node_store AS s SET thumbnail = NULL FROM caomai.model AS m"
        " WHERE m.model_id = s.model_id AND m.kind = 'map2'"
    )
    op.execute("UPDATE caomai.model SET parameters = parameters - 'placed' WHERE kind = 'map2'")
    tapschema.sync(_raw())


def downgrade() -> None:
    op.execute("DROP VIEW caomai.map_node")
    op.drop_index("ix_fingerprint_map2_placement", "fingerprint", schema="caomai")
    op.drop_column("map_node_store", "thumbnail_planeid", schema="caomai")
    op.rename_table("map_node_store", "map_node", schema="caomai")
    op.execute(
        "COMMENT ON TABLE caomai.map_node IS 'the 400 nodes of each map: grid position, members,"
        " prototype and expert label'"
    )
    tapschema.sync(_raw())
