-- Migration 0007 (the image vector): fp_similar on either vector column of caomai.fingerprint.
-- Applied with @vector@ replaced by pgvector's schema; frozen once 0007 is released.

-- The vector column of caomai.fingerprint a vector of this length belongs to.
CREATE OR REPLACE FUNCTION caomai.vector_column(dims integer)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF dims = 400 THEN
        RETURN 'fp';
    ELSIF dims = 416 THEN
        RETURN 'image_vec';
    END IF;
    RAISE EXCEPTION 'caomai: fp_similar compares a vector column of caomai.fingerprint (fp, 400 values, or image_vec, 416 values), not a vector of % values', dims
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
        dims := 416;
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
