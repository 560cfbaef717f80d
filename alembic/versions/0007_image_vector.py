"""The image vector: a second vector column beside the fingerprint, and fp_similar on either.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

``fp`` is the 400-bin histogram of an image's objects over Map 1 and stays exactly that:
``has_object_node`` counts on it (DESIGN.md §1). What makes two images alike *as images* - sky,
depth, PSF - is not an object, and the similarity gap measured in docs/experiments.md
(``fp_similar`` precision@10 0.86 against a truth ceiling of 0.95) lies there (issue 17).

- ``caomai.fingerprint.image_vec`` (vector(416), NULL allowed): the fingerprint followed by 16
  image statistics on fixed scales (``loaders/image_vector.py`` writes it and documents the
  layout); an HNSW cosine index like fp's. Rows loaded before this revision keep NULL until
  their plane is loaded again (``caomai load --reload``); such an image cannot be a reference
  of ``fp_similar(f.image_vec, ...)`` (a clear error) and never comes up as similar on it.
- ``fp_similar`` works on either column: ``caomai.ref_vector(ref, col)`` resolves the
  reference to the *same* column of the referenced image(s) ('fp' or 'image_vec'), and an
  explicit vector reference must have that column's dimension (only fp's must be
  non-negative: it is a histogram). ``caomai.fp_similar(v, ref)`` - the function a TAP service
  that passes calls through unchanged runs - tells the column by the length of ``v``
  (``caomai.vector_column``). ``caomai.ref_vector(ref)`` keeps its meaning (the fingerprint).

- ``caomai.fingerprint_real`` (the view for TAP services that cannot serialise pgvector)
  gains ``image_vec`` as real[] after its other columns.

The SQL is in ``sql/0007/`` (frozen with this revision, like every migration's folder):
``functions.sql`` and ``views.sql`` upgrade; ``downgrade.sql`` holds the definitions of
``sql/0001/`` this revision replaces, copied, so that this migration reads only its own folder.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from caomai_db import models, sqlfiles, tapschema

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the column's dimension as released with this revision (sql/0007/ writes it too)
DIM = 416


def _raw():  # noqa: ANN202
    return op.get_bind().connection.driver_connection


def upgrade() -> None:
    raw = _raw()
    schema = sqlfiles.vector_schema(raw)
    column = models.fingerprint.c.image_vec
    op.execute(f"ALTER TABLE caomai.fingerprint ADD COLUMN image_vec {schema}.vector({DIM})")
    op.execute(f"COMMENT ON COLUMN caomai.fingerprint.image_vec IS {_quote(column.comment)}")
    op.execute(
        "CREATE INDEX ix_fingerprint_image_vec_hnsw ON caomai.fingerprint"
        f" USING hnsw (image_vec {schema}.vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
    )
    sqlfiles.apply(raw, "0007/functions.sql")
    sqlfiles.apply(raw, "0007/views.sql")
    tapschema.sync(raw)


def downgrade() -> None:
    raw = _raw()
    # 0001's fp_similar, ref_vector(ref) and fingerprint_real again, then the new functions go
    sqlfiles.apply(raw, "0007/downgrade.sql")
    op.execute("DROP INDEX caomai.ix_fingerprint_image_vec_hnsw")
    op.execute("ALTER TABLE caomai.fingerprint DROP COLUMN image_vec")
    tapschema.sync(raw)


def _quote(text: str | None) -> str:
    return "'" + (text or "").replace("'", "''") + "'"
