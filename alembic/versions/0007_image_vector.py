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

The SQL is written out here, not read from ``sql/``, so that this revision stays as released
(as 0004 does): ``sql/functions.sql`` is what 0001 applied, and the downgrade applies it again
to put back the functions this revision replaces.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from caomai_db import models, sqlfiles, tapschema

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the column's dimension as released with this revision
DIM = 416

FUNCTIONS = """
-- The vector column of caomai.fingerprint a vector of this length belongs to.
CREATE OR REPLACE FUNCTION caomai.vector_column(dims integer)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF dims = 400 THEN
        RETURN 'fp';
    ELSIF dims = @dim@ THEN
        RETURN 'image_vec';
    END IF;
    RAISE EXCEPTION 'caomai: fp_similar compares a vector column of caomai.fingerprint (fp, 400 values, or image_vec, @dim@ values), not a vector of % values', dims
        USING ERRCODE = '22023';
END
$$;

-- The unit-length reference vector of fp_similar on column col ('fp' or 'image_vec'): an
-- explicit vector of that column's length, or the mean of that column over one or more images.
CREATE OR REPLACE FUNCTION caomai.ref_vector(ref text, col text)
RETURNS @vector@.vector
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    v @vector@.vector;
    ident text;
    total @vector@.vector;
    dims integer;
    what text;
BEGIN
    IF col = 'fp' THEN
        dims := 400;
        what := 'fingerprint';
    ELSIF col = 'image_vec' THEN
        dims := @dim@;
        what := 'image vector';
    ELSE
        RAISE EXCEPTION 'caomai: fp_similar compares fp or image_vec of caomai.fingerprint, not %', quote_ident(coalesce(col, 'NULL'))
            USING ERRCODE = '22023';
    END IF;
    ref := btrim(coalesce(ref, ''));
    IF ref = '' THEN
        RAISE EXCEPTION 'caomai: empty reference'
            USING ERRCODE = '22023',
                  HINT = format('give an image (publisherID, caom: URI or planeID), several separated by |, or a %s [v1, ..., v%s]', what, dims);
    END IF;
    IF left(ref, 1) = '[' THEN
        BEGIN
            v := ref::@vector@.vector;
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'caomai: malformed % %: %', what, quote_literal(left(ref, 60)), SQLERRM
                USING ERRCODE = '22023',
                      HINT = format('an explicit %s is a bracketed list of %s numbers', what, dims);
        END;
        IF @vector@.vector_dims(v) <> dims THEN
            RAISE EXCEPTION 'caomai: an explicit % (column %) has % values, this one has %', what, col, dims, @vector@.vector_dims(v)
                USING ERRCODE = '22023';
        END IF;
        IF col = 'fp' AND EXISTS (SELECT 1 FROM unnest(v::real[]) AS x WHERE x < 0) THEN
            RAISE EXCEPTION 'caomai: an explicit fingerprint is a histogram: its values cannot be negative'
                USING ERRCODE = '22023';
        END IF;
        IF @vector@.vector_norm(v) = 0 THEN
            RAISE EXCEPTION 'caomai: an explicit % cannot be all zeros', what
                USING ERRCODE = '22023';
        END IF;
        RETURN @vector@.l2_normalize(v);
    END IF;
    PERFORM caomai.check_identifiers(ref);
    FOREACH ident IN ARRAY string_to_array(ref, '|') LOOP
        IF col = 'fp' THEN
            v := (caomai.ref_fingerprint(ident)).fp;
        ELSE
            v := (caomai.ref_fingerprint(ident)).image_vec;
            IF v IS NULL THEN
                RAISE EXCEPTION 'caomai: reference image % has no image vector yet', quote_literal(btrim(ident))
                    USING ERRCODE = '22023',
                          DETAIL = 'it was loaded before image vectors existed',
                          HINT = 'compare fingerprints with fp_similar(f.fp, ...), or load the image again (caomai load --reload)';
            END IF;
        END IF;
        total := CASE WHEN total IS NULL THEN v ELSE total OPERATOR(@vector@.+) v END;
    END LOOP;
    RETURN @vector@.l2_normalize(total);
END
$$;

-- The reference fingerprint (as before this revision).
CREATE OR REPLACE FUNCTION caomai.ref_vector(ref text)
RETURNS @vector@.vector
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT caomai.ref_vector(ref, 'fp') $$;

-- fp_similar(fp, ref): cosine similarity in [0, 1] of a vector column (fp or image_vec, told
-- apart by length) to the reference resolved to the same column.
CREATE OR REPLACE FUNCTION caomai.fp_similar(fp @vector@.vector, ref text)
RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT greatest(0.0, least(1.0, 1.0 - (fp OPERATOR(@vector@.<=>)
       caomai.ref_vector(ref, caomai.vector_column(@vector@.vector_dims(fp)))))) $$;
"""


#: caomai.fingerprint_real of sql/views.sql (0001) with the image vector appended
VIEW = """
CREATE OR REPLACE VIEW caomai.fingerprint_real AS
SELECT f.planeid,
       f.model_id,
       f.publisherid,
       f.metarelease,
       f.metareadgroups,
       f.fp::real[] AS fp,
       f.n_detected,
       f.n_sampled,
       f.map2_node,
       f.map2_distance,
       f.image_vec::real[] AS image_vec
  FROM caomai.fingerprint AS f
"""


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
    raw.execute(FUNCTIONS.replace("@vector@", schema).replace("@dim@", str(DIM)).encode())
    op.execute(VIEW)
    tapschema.sync(raw)


def downgrade() -> None:
    raw = _raw()
    # the functions of 0001 first (fp_similar stops calling the two-argument ref_vector)
    sqlfiles.apply(raw, "functions.sql")
    op.execute("DROP FUNCTION caomai.ref_vector(text, text)")
    op.execute("DROP FUNCTION caomai.vector_column(integer)")
    # a view loses no column by CREATE OR REPLACE: drop it and create 0001's again
    op.execute("DROP VIEW caomai.fingerprint_real")
    sqlfiles.apply(raw, "views.sql")
    op.execute("DROP INDEX caomai.ix_fingerprint_image_vec_hnsw")
    op.execute("ALTER TABLE caomai.fingerprint DROP COLUMN image_vec")
    tapschema.sync(raw)


def _quote(text: str | None) -> str:
    return "'" + (text or "").replace("'", "''") + "'"
