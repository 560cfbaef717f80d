-- The SQL functions behind caomai's three ADQL functions (DESIGN.md §4).
--
-- Applied by the migrations with @vector@ replaced by the schema pgvector is installed in.
-- All functions live in schema caomai; the read-only role has caomai on its search_path, so a
-- TAP service that passes function calls through unchanged (CADC's) can call them unprefixed.
-- ADQL has no boolean type, so the predicates return INTEGER 1 or 0.
--
-- References (`ref`) are string literals:
--   an image:        its publisherID, its caom: plane URI, or its planeID (uuid)
--   several images:  identifiers separated by '|' -> their mean fingerprint
--   node list:       '12,13,40' or ranges '100-105' (in_node, has_object_node)
--   a fingerprint:   '[0.0, 0.3, ...]' (400 non-negative numbers, e.g. from an uploaded image)
-- A reference that names nothing or is malformed raises SQLSTATE 22023 with a message
-- a person can act on; the TAP service returns it as the VOTable error.

CREATE OR REPLACE FUNCTION caomai.parse_node_list(nodes text, n_nodes integer DEFAULT 400)
RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    item text;
    lo integer;
    hi integer;
    result integer[] := '{}';
BEGIN
    IF nodes IS NULL OR btrim(nodes) = '' THEN
        RAISE EXCEPTION 'caomai: the node list is empty'
            USING ERRCODE = '22023',
                  HINT = format('give map nodes as comma-separated integers 0..%s, e.g. ''12,13,40''', n_nodes - 1);
    END IF;
    FOREACH item IN ARRAY string_to_array(nodes, ',') LOOP
        item := btrim(item);
        IF item ~ '^[0-9]{1,6}$' THEN
            lo := item::integer;
            hi := lo;
        ELSIF item ~ '^[0-9]{1,6}\s*-\s*[0-9]{1,6}$' THEN
            lo := btrim(split_part(item, '-', 1))::integer;
            hi := btrim(split_part(item, '-', 2))::integer;
            IF lo > hi THEN
                RAISE EXCEPTION 'caomai: node range % runs backwards', quote_literal(item)
                    USING ERRCODE = '22023';
            END IF;
        ELSE
            RAISE EXCEPTION 'caomai: malformed node list %: % is not a node number',
                    quote_literal(left(nodes, 80)), quote_literal(left(item, 40))
                USING ERRCODE = '22023',
                      HINT = format('give map nodes as comma-separated integers 0..%s, e.g. ''12,13,40''', n_nodes - 1);
        END IF;
        IF hi >= n_nodes THEN
            RAISE EXCEPTION 'caomai: node % is outside the map (nodes are 0..%)', hi, n_nodes - 1
                USING ERRCODE = '22023';
        END IF;
        result := result || ARRAY(SELECT generate_series(lo, hi));
    END LOOP;
    RETURN ARRAY(SELECT DISTINCT n FROM unnest(result) AS n ORDER BY n);
END
$$;

CREATE OR REPLACE FUNCTION caomai.active_model(model_kind text)
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT model_id FROM caomai.model WHERE kind = model_kind AND active $$;

-- The planeID an image identifier names (publisherID, caom: URI or planeID), or NULL.
CREATE OR REPLACE FUNCTION caomai.resolve_plane(ident text)
RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    pid uuid;
BEGIN
    ident := btrim(ident);
    IF ident ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RETURN ident::uuid;
    END IF;
    SELECT f.planeid INTO pid FROM caomai.fingerprint AS f WHERE f.publisherid = ident LIMIT 1;
    IF FOUND THEN
        RETURN pid;
    END IF;
    IF ident LIKE 'caom:%' AND to_regclass('caom2.plane') IS NOT NULL THEN
        -- CAOM 2.4 (CADC's main) names the plane URI planeURI; CAOM 2.5 calls it uri.
        EXECUTE 'SELECT planeid FROM caom2.plane WHERE planeuri = $1' INTO pid USING ident;
        RETURN pid;
    END IF;
    RETURN NULL;
END
$$;

-- Reject 'a||b' or a trailing '|' before looking anything up: a syntax error comes first.
CREATE OR REPLACE FUNCTION caomai.check_identifiers(ref text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM unnest(string_to_array(ref, '|')) AS part WHERE btrim(part) = '') THEN
        RAISE EXCEPTION 'caomai: empty image identifier in the reference %', quote_literal(left(ref, 200))
            USING ERRCODE = '22023',
                  HINT = 'name images by publisherID, caom: URI or planeID, several separated by |';
    END IF;
END
$$;

-- The public fingerprint row an identifier names under the active Map-1 model; raises if none.
CREATE OR REPLACE FUNCTION caomai.ref_fingerprint(ident text)
RETURNS caomai.fingerprint
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    model integer := caomai.active_model('map1');
    row_ caomai.fingerprint;
BEGIN
    ident := btrim(coalesce(ident, ''));
    IF ident = '' THEN
        RAISE EXCEPTION 'caomai: empty image identifier in the reference'
            USING ERRCODE = '22023',
                  HINT = 'name images by publisherID, caom: URI or planeID, several separated by |';
    END IF;
    IF model IS NULL THEN
        RAISE EXCEPTION 'caomai: no Map-1 model is active, so no image has a fingerprint yet'
            USING ERRCODE = '22023', HINT = 'run caomai train map1 and caomai load first';
    END IF;
    SELECT f.* INTO row_
      FROM caomai.fingerprint AS f
     WHERE f.planeid = caomai.resolve_plane(ident)
       AND f.model_id = model
       AND (f.metarelease IS NULL OR f.metarelease <= now());
    IF NOT FOUND THEN
        RAISE EXCEPTION 'caomai: reference image % not found', quote_literal(left(ident, 200))
            USING ERRCODE = '22023',
                  DETAIL = 'no public image with a fingerprint of the active model has that publisherID, caom: URI or planeID',
                  HINT = 'check the identifier, e.g. SELECT publisherID FROM caomai.fingerprint';
    END IF;
    RETURN row_;
END
$$;

-- The unit-length reference vector of fp_similar: an explicit fingerprint, or the mean
-- fingerprint of one or more images.
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

-- Nodes named by a reference, grown by `radius` grid steps (Chebyshev distance on the grid:
-- radius 1 adds the 8 surrounding nodes). Image identifiers stand for their Map-2 nodes.
CREATE OR REPLACE FUNCTION caomai.ref_nodes(ref text, radius integer DEFAULT 0)
RETURNS integer[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    base integer[] := '{}';
    ident text;
    node integer;
    n_rows integer := 20;
    n_cols integer := 20;
BEGIN
    IF radius IS NULL OR radius < 0 THEN
        RAISE EXCEPTION 'caomai: the radius must be a non-negative number of grid steps, got %', coalesce(radius::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    SELECT m.grid_rows, m.grid_cols INTO n_rows, n_cols
      FROM caomai.model AS m WHERE m.kind = 'map2' AND m.active;
    IF NOT FOUND THEN
        n_rows := 20;
        n_cols := 20;
    END IF;
    ref := btrim(coalesce(ref, ''));
    -- identifiers start with ivo:// or caom: or are uuids; anything else starting with a
    -- digit is read as a node list (and a malformed one is reported as such)
    IF ref ~ '^[0-9]'
       AND ref !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\s*\|.*)?$' THEN
        base := caomai.parse_node_list(ref, n_rows * n_cols);
    ELSIF left(ref, 1) = '[' THEN
        RAISE EXCEPTION 'caomai: in_node takes images or a node list, not an explicit fingerprint'
            USING ERRCODE = '22023',
                  HINT = 'use fp_similar for fingerprints; in_node(node, ''12,13,40'') or in_node(node, ''<publisherID>'')';
    ELSE
        IF ref = '' THEN
            RAISE EXCEPTION 'caomai: empty reference'
                USING ERRCODE = '22023', HINT = 'give a node list like ''12,13,40'' or an image identifier';
        END IF;
        PERFORM caomai.check_identifiers(ref);
        FOREACH ident IN ARRAY string_to_array(ref, '|') LOOP
            node := (caomai.ref_fingerprint(ident)).map2_node;
            IF node IS NULL THEN
                RAISE EXCEPTION 'caomai: reference image % has no Map-2 node yet', quote_literal(btrim(ident))
                    USING ERRCODE = '22023', HINT = 'run caomai train map2 to place the images on Map 2';
            END IF;
            base := base || node;
        END LOOP;
    END IF;
    IF radius = 0 THEN
        RETURN ARRAY(SELECT DISTINCT b FROM unnest(base) AS b ORDER BY b);
    END IF;
    RETURN ARRAY(
        SELECT m FROM generate_series(0, n_rows * n_cols - 1) AS m
         WHERE EXISTS (
            SELECT 1 FROM unnest(base) AS b
             WHERE greatest(abs(m / n_cols - b / n_cols), abs(m % n_cols - b % n_cols)) <= radius)
         ORDER BY m);
END
$$;

-- fp_similar(fp, ref): cosine similarity in [0, 1] of a fingerprint column to the reference.
CREATE OR REPLACE FUNCTION caomai.fp_similar(fp @vector@.vector, ref text)
RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT greatest(0.0, least(1.0, 1.0 - (fp OPERATOR(@vector@.<=>) caomai.ref_vector(ref)))) $$;

-- The same for services that publish fingerprints as real[] (caomai.fingerprint_real).
CREATE OR REPLACE FUNCTION caomai.fp_similar(fp real[], ref text)
RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT caomai.fp_similar(fp::@vector@.vector, ref) $$;

-- in_node(node, ref [, radius]): 1 if the node is one of ref's nodes or within radius steps.
CREATE OR REPLACE FUNCTION caomai.in_node(node integer, ref text, radius integer DEFAULT 0)
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce((node = ANY (caomai.ref_nodes(ref, radius)))::integer, 0) $$;

-- has_object_node(planeID, nodes [, min_count]): 1 if the image holds at least min_count
-- detected objects in the listed Map-1 nodes together. Counts of a sampled image are scaled
-- by n_detected / n_sampled (the fingerprint's weighting); an unsampled image is exact.
-- Reads the fingerprint row (primary-key lookup), never the annotations.
CREATE OR REPLACE FUNCTION caomai.has_object_node(plane uuid, nodes text, min_count integer DEFAULT 1)
RETURNS integer
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    wanted integer[] := caomai.parse_node_list(nodes);
    found double precision;
BEGIN
    IF min_count IS NULL OR min_count < 0 THEN
        RAISE EXCEPTION 'caomai: min_count must be a non-negative integer, got %', coalesce(min_count::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    SELECT (SELECT coalesce(sum(f.counts[n + 1]), 0) FROM unnest(wanted) AS n)::double precision
           * f.n_detected / nullif(f.n_sampled, 0)
      INTO found
      FROM caomai.fingerprint AS f
     WHERE f.planeid = plane
       AND f.model_id = caomai.active_model('map1')
       AND (f.metarelease IS NULL OR f.metarelease <= now());
    RETURN (coalesce(found, 0) >= min_count)::integer;
END
$$;

-- ADQL 2.1 asks user-defined functions to carry a prefix: the same functions as caomai_*.
CREATE OR REPLACE FUNCTION caomai.caomai_fp_similar(fp @vector@.vector, ref text)
RETURNS double precision LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT caomai.fp_similar(fp, ref) $$;

CREATE OR REPLACE FUNCTION caomai.caomai_fp_similar(fp real[], ref text)
RETURNS double precision LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT caomai.fp_similar(fp, ref) $$;

CREATE OR REPLACE FUNCTION caomai.caomai_in_node(node integer, ref text, radius integer DEFAULT 0)
RETURNS integer LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT caomai.in_node(node, ref, radius) $$;

CREATE OR REPLACE FUNCTION caomai.caomai_has_object_node(plane uuid, nodes text, min_count integer DEFAULT 1)
RETURNS integer LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT caomai.has_object_node(plane, nodes, min_count) $$;
