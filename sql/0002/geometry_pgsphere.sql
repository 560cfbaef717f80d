-- ADQL geometry on pg_sphere, for databases that have it.
--
-- Applied by migration 0002 after sql/geometry.sql when the pg_sphere extension is installed
-- (@pgsphere@ is replaced by its schema): the same functions, same DALI-array arguments in
-- degrees, same results, but the separations, containment, overlaps and areas are pg_sphere's.
-- The constructors, accessors and adql_geom_kind of geometry.sql stay as they are.

CREATE OR REPLACE FUNCTION caomai.adql_spoint(g double precision[])
RETURNS @pgsphere@.spoint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT @pgsphere@.spoint(radians(g[1]), radians(g[2])) $$;

CREATE OR REPLACE FUNCTION caomai.adql_scircle(g double precision[])
RETURNS @pgsphere@.scircle
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT @pgsphere@.scircle(@pgsphere@.spoint(radians(g[1]), radians(g[2])), radians(g[3])) $$;

CREATE OR REPLACE FUNCTION caomai.adql_spoly(g double precision[])
RETURNS @pgsphere@.spoly
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
SELECT ('{' || string_agg(format('(%sd,%sd)', g[2 * i - 1], g[2 * i]), ',' ORDER BY i) || '}')::@pgsphere@.spoly
  FROM generate_series(1, cardinality(g) / 2) AS i
$$;

CREATE OR REPLACE FUNCTION caomai.adql_sep(ra1 double precision, dec1 double precision,
                                          ra2 double precision, dec2 double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
SELECT degrees(@pgsphere@.spoint(radians(ra1), radians(dec1))
               OPERATOR(@pgsphere@.<->) @pgsphere@.spoint(radians(ra2), radians(dec2)))
$$;

CREATE OR REPLACE FUNCTION caomai.adql_contains(a double precision[], b double precision[])
RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    ka text;
    kb text;
BEGIN
    IF a IS NULL OR b IS NULL THEN
        RETURN NULL;
    END IF;
    ka := caomai.adql_geom_kind(a);
    kb := caomai.adql_geom_kind(b);
    IF kb = 'point' THEN
        RETURN (ka = 'point' AND caomai.adql_sep(a[1], a[2], b[1], b[2]) <= 1e-9)::integer;
    ELSIF kb = 'circle' THEN
        IF ka = 'point' THEN
            RETURN (caomai.adql_spoint(a) OPERATOR(@pgsphere@.@) caomai.adql_scircle(b))::integer;
        ELSIF ka = 'circle' THEN
            RETURN (caomai.adql_scircle(a) OPERATOR(@pgsphere@.@) caomai.adql_scircle(b))::integer;
        END IF;
        RETURN (caomai.adql_spoly(a) OPERATOR(@pgsphere@.@) caomai.adql_scircle(b))::integer;
    END IF;
    IF ka = 'point' THEN
        RETURN (caomai.adql_spoint(a) OPERATOR(@pgsphere@.@) caomai.adql_spoly(b))::integer;
    ELSIF ka = 'circle' THEN
        RETURN (caomai.adql_scircle(a) OPERATOR(@pgsphere@.@) caomai.adql_spoly(b))::integer;
    END IF;
    RETURN (caomai.adql_spoly(a) OPERATOR(@pgsphere@.@) caomai.adql_spoly(b))::integer;
END
$$;

CREATE OR REPLACE FUNCTION caomai.adql_intersects(a double precision[], b double precision[])
RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    ka text;
    kb text;
BEGIN
    IF a IS NULL OR b IS NULL THEN
        RETURN NULL;
    END IF;
    ka := caomai.adql_geom_kind(a);
    kb := caomai.adql_geom_kind(b);
    IF ka = 'point' THEN
        RETURN caomai.adql_contains(a, b);
    ELSIF kb = 'point' THEN
        RETURN caomai.adql_contains(b, a);
    ELSIF ka = 'circle' AND kb = 'circle' THEN
        RETURN (caomai.adql_scircle(a) OPERATOR(@pgsphere@.&&) caomai.adql_scircle(b))::integer;
    ELSIF ka = 'circle' THEN
        RETURN (caomai.adql_scircle(a) OPERATOR(@pgsphere@.&&) caomai.adql_spoly(b))::integer;
    ELSIF kb = 'circle' THEN
        RETURN (caomai.adql_spoly(a) OPERATOR(@pgsphere@.&&) caomai.adql_scircle(b))::integer;
    END IF;
    RETURN (caomai.adql_spoly(a) OPERATOR(@pgsphere@.&&) caomai.adql_spoly(b))::integer;
END
$$;

CREATE OR REPLACE FUNCTION caomai.adql_area(g double precision[])
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    k text;
BEGIN
    IF g IS NULL THEN
        RETURN NULL;
    END IF;
    k := caomai.adql_geom_kind(g);
    IF k = 'point' THEN
        RETURN 0;
    ELSIF k = 'circle' THEN
        RETURN @pgsphere@.area(caomai.adql_scircle(g)) * (180 / pi()) ^ 2;
    END IF;
    RETURN @pgsphere@.area(caomai.adql_spoly(g)) * (180 / pi()) ^ 2;
END
$$;
