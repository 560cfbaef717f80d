"""Per-object adaptive moments in caomai.object_annotation.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

The loader measures every sampled object's GalSim HSM adaptive moments (``loaders/moments.py``)
to place it on Map 1; until now they were thrown away after that. Keeping them lets an
astronomer ask in ADQL what sep's isophotal ``a``/``b`` answer badly on faint objects: the
PSF size of an image's stars, a common elongation (tracking), flat-topped profiles (focus).

Adds ``m_sigma``, ``m_e1``, ``m_e2``, ``m_rho4`` and ``snr`` (REAL, NULL where not measured)
to the partitioned table (PostgreSQL adds them to every partition) and describes them in
TAP_SCHEMA. Rows loaded before this revision keep NULL until their plane is loaded again
(``caomai load --planes ...`` replaces a plane's annotations).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from caomai_db import models, tapschema

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the new columns, in the order the model declares them
COLUMNS = ("m_sigma", "m_e1", "m_e2", "m_rho4", "snr")


def _resync_tap_schema() -> None:
    tapschema.sync(op.get_bind().connection.driver_connection)


def upgrade() -> None:
    for name in COLUMNS:
        column = models.object_annotation.c[name]
        op.add_column(
            "object_annotation",
            sa.Column(name, sa.REAL(), nullable=True, comment=column.comment),
            schema="caomai",
        )
    _resync_tap_schema()


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("object_annotation", name, schema="caomai")
    _resync_tap_schema()
