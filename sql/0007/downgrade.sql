-- Undoing migration 0007: the definitions of sql/0001/ that 0007 replaced, copied here so
-- that 0007 reads only its own folder. Frozen with 0007.

-- fp_similar on fp only (0001)
CREATE OR REPLACE FUNCTION caomai.fp_similar(fp @vector@.vector, ref text)
RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT greatest(0.0, least(1.0, 1.0 - (fp OPERATOR(@vector@.<=>) caomai.ref_vector(ref)))) $$;

-- the reference fingerprint (0001)
CREATE OR REPLACE FUNCTION caomai.ref_vector(ref text)
RETURNS @vector@.vector
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    v @vector@.vector;
    ident text;
    total @vector@.vector;
BEGIN
    ref := btrim(coalesce(ref, ''));
    IF ref = '' THEN
        RAISE EXCEPTION 'caomai: empty reference'
            USING ERRCODE = '22023',
                  HINT = 'give an image (publisherID, caom: URI or planeID), several separated by |, or a fingerprint [v1, ..., v400]';
    END IF;
    IF left(ref, 1) = '[' THEN
        BEGIN
            v := ref::@vector@.vector;
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'caomai: malformed fingerprint %: %', quote_literal(left(ref, 60)), SQLERRM
                USING ERRCODE = '22023',
                      HINT = 'an explicit fingerprint is a bracketed list of 400 non-negative numbers';
        END;
        IF @vector@.vector_dims(v) <> 400 THEN
            RAISE EXCEPTION 'caomai: an explicit fingerprint has 400 values, this one has %', @vector@.vector_dims(v)
                USING ERRCODE = '22023';
        END IF;
        IF EXISTS (SELECT 1 FROM unnest(v::real[]) AS x WHERE x < 0) THEN
            RAISE EXCEPTION 'caomai: an explicit fingerprint is a histogram: its values cannot be negative'
                USING ERRCODE = '22023';
        END IF;
        IF @vector@.vector_norm(v) = 0 THEN
            RAISE EXCEPTION 'caomai: an explicit fingerprint cannot be all zeros'
                USING ERRCODE = '22023';
        END IF;
        RETURN @vector@.l2_normalize(v);
    END IF;
    PERFORM caomai.check_identifiers(ref);
    FOREACH ident IN ARRAY string_to_array(ref, '|') LOOP
        v := (caomai.ref_fingerprint(ident)).fp;
        total := CASE WHEN total IS NULL THEN v ELSE total OPERATOR(@vector@.+) v END;
    END LOOP;
    RETURN @vector@.l2_normalize(total);
END
$$;

DROP FUNCTION caomai.ref_vector(text, text);
DROP FUNCTION caomai.vector_column(integer);

-- a view loses no column by CREATE OR REPLACE: drop it and create 0001's again
DROP VIEW caomai.fingerprint_real;
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
       f.map2_distance
  FROM caomai.fingerprint AS f;
