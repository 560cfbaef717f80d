"""Previews: one small PNG per plane and Map-1 member cutouts, for the web page (issue 16).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

The page shows images and objects, not only numbers: a preview of each image in a result
list and nine sample members when a Map-1 node is hovered. Reading the FITS files at page time
is too slow (a MegaCam exposure is 700 MB), so the loader writes what the page shows:

- ``caomai.preview``: one PNG per loaded plane (longest side about 256 px): the binned mosaic
  of its images, zscale + asinh stretch (``loaders/previews.py``);
- ``caomai.object_cutout``: per plane and Map-1 model, for each Map-1 node present among the
  plane's sampled objects, the 32x32 cutout PNG of the object nearest that node. The nine
  nearest rows of a node over all public planes are its sample members (index on
  model_id, map1_node, map1_distance).

Neither is published in TAP_SCHEMA: ADQL cannot name them. The read-only role gets SELECT on
both (``tapschema.sync``, from the tables' ``reader`` flag), since the web API reads them
through that role's connection, always joined to caom2.Plane for the access rule
(``caomai_db/previews.py``): a proprietary plane's preview answers as a missing one.

The foreign keys to caom2.Plane (cascade: a deleted plane takes its pictures with it) are
created only where caomai created caom2, as with the metadata trigger: an archive's own tables
are never touched, and a constraint would add triggers to its Plane table. There, a preview
of a deleted plane is left behind but never shown (the read functions join caom2.Plane).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from caomai_db import tapschema

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _raw():  # noqa: ANN202
    return op.get_bind().connection.driver_connection


def _caom2_managed() -> bool:
    row = _raw().execute("SELECT value FROM caomai.meta WHERE key = 'caom2_managed'").fetchone()
    return row is not None and row[0] == "1"


def upgrade() -> None:
    plane_fk = _caom2_managed()
    op.create_table(
        "preview",
        sa.Column("planeid", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("png", sa.LargeBinary(), nullable=False),
        sa.Column("width", sa.SmallInteger(), nullable=False),
        sa.Column("height", sa.SmallInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        *(
            [
                sa.ForeignKeyConstraint(
                    ["planeid"],
                    ["caom2.plane.planeid"],
                    name=op.f("fk_preview_planeid_plane"),
                    ondelete="CASCADE",
                )
            ]
            if plane_fk
            else []
        ),
        sa.PrimaryKeyConstraint("planeid", name=op.f("pk_preview")),
        schema="caomai",
        comment="one small PNG of each loaded plane (binned mosaic of its images, zscale + asinh"
        " stretch)",
    )
    op.create_table(
        "object_cutout",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("planeid", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("map1_node", sa.SmallInteger(), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("map1_distance", sa.REAL(), nullable=False),
        sa.Column("png", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(
            "map1_node >= 0 AND map1_node < 400", name=op.f("ck_object_cutout_map1_node")
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["caomai.model.model_id"],
            name=op.f("fk_object_cutout_model_id_model"),
            ondelete="CASCADE",
        ),
        *(
            [
                sa.ForeignKeyConstraint(
                    ["planeid"],
                    ["caom2.plane.planeid"],
                    name=op.f("fk_object_cutout_planeid_plane"),
                    ondelete="CASCADE",
                )
            ]
            if plane_fk
            else []
        ),
        sa.PrimaryKeyConstraint("model_id", "planeid", "map1_node", name=op.f("pk_object_cutout")),
        schema="caomai",
        comment="per plane and Map-1 node present in it: the cutout PNG of its object nearest"
        " the node",
    )
    op.create_index(
        "ix_object_cutout_node",
        "object_cutout",
        ["model_id", "map1_node", "map1_distance"],
        schema="caomai",
    )
    # the reload of a plane deletes its cutouts by plane (the key starts with model_id)
    op.create_index("ix_object_cutout_planeid", "object_cutout", ["planeid"], schema="caomai")
    tapschema.sync(_raw())


def downgrade() -> None:
    op.drop_table("object_cutout", schema="caomai")
    op.drop_table("preview", schema="caomai")
    tapschema.sync(_raw())
