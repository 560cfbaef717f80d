-- ADQL geometry in plain SQL, for databases without pg_sphere (the embedded default).
--
-- Applied by migration 0002 when the pg_sphere extension is absent; sql/geometry_pgsphere.sql
-- defines the same functions on top of pg_sphere when it is there. The ADQL translator
-- (caomai_db/adql/rewrite.py) turns POINT, CIRCLE, BOX, POLYGON, CONTAINS, INTERSECTS,
-- DISTANCE, COORD1, COORD2 and AREA into calls of these functions.
--
-- Every geometry value is a DALI array of double precision, in degrees, ICRS -- the same
-- form as the caom2/ObsCore position columns (position_bounds, s_region, ...):
--   point   [ra, dec]
--   circle  [ra, dec, radius]
--   polygon [ra1, dec1, ra2, dec2, ra3, dec3, ...]   (edges are great-circle arcs)
-- so a column and a literal mix freely. Predicates return INTEGER 1 or 0 as ADQL wants.
-- Polygons must fit in a hemisphere (what a telescope footprint always does).
-- Bad geometry raises SQLSTATE 22023 with a message the TAP service passes on.

CREATE OR REPLACE FUNCTION caomai.adql_geom_kind(g double precision[])
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    n integer := coalesce(cardinality(g), 0);
BEGIN
    IF n = 2 THEN
        RETURN 'point';
    ELSIF n = 3 THEN
        RETURN 'circle';
    ELSIF n >= 6 AND n % 2 = 0 THEN
        RETURN 'polygon';
    END IF;
    RAISE EXCEPTION 'caomai: % is not a geometry (a point has 2 values, a circle 3, a polygon an even number >= 6)',
            coalesce(left(g::text, 80), 'NULL')
        USING ERRCODE = '22023';
END
$$;

-- Angular separation in degrees (haversine: stable for small and large angles).
CREATE OR REPLACE FUNCTION caomai.adql_sep(ra1 double precision, dec1 double precision,
                                          ra2 double precision, dec2 double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
SELECT 2 * asind(least(1.0, sqrt(
           sind((dec2 - dec1) / 2) ^ 2 + cosd(dec1) * cosd(dec2) * sind((ra2 - ra1) / 2) ^ 2)))
$$;

-- Constructors ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION caomai.adql_point(ra double precision, lat double precision)
RETURNS double precision[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF ra IS NULL OR lat IS NULL THEN
        RETURN NULL;
    END IF;
    IF lat < -90 OR lat > 90 THEN
        RAISE EXCEPTION 'caomai: POINT declination % is outside -90..90 degrees', lat
            USING ERRCODE = '22023';
    END IF;
    RETURN ARRAY[ra, lat];
END
$$;

CREATE OR REPLACE FUNCTION caomai.adql_circle(center double precision[], radius double precision)
RETURNS double precision[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF center IS NULL OR radius IS NULL THEN
        RETURN NULL;
    END IF;
    IF caomai.adql_geom_kind(center) <> 'point' THEN
        RAISE EXCEPTION 'caomai: the centre of a CIRCLE must be a point' USING ERRCODE = '22023';
    END IF;
    IF radius < 0 OR radius > 180 THEN
        RAISE EXCEPTION 'caomai: CIRCLE radius % is outside 0..180 degrees', radius
            USING ERRCODE = '22023';
    END IF;
    RETURN ARRAY[center[1], center[2], radius];
END
$$;

CREATE OR REPLACE FUNCTION caomai.adql_polygon(vertices double precision[])
RETURNS double precision[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF vertices IS NULL THEN
        RETURN NULL;
    END IF;
    IF cardinality(vertices) < 6 OR cardinality(vertices) % 2 <> 0 THEN
        RAISE EXCEPTION 'caomai: a POLYGON needs at least three vertices (ra, lat pairs)'
            USING ERRCODE = '22023';
    END IF;
    RETURN vertices;
END
$$;

-- BOX(centre, width, height): the four corners, as ADQL 2.0 and pg_sphere's sbox read it
-- (a box in ra/lat: its corners at centre +- half the sizes).
CREATE OR REPLACE FUNCTION caomai.adql_box(ra double precision, lat double precision,
                                          width double precision, height double precision)
RETURNS double precision[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF ra IS NULL OR lat IS NULL OR width IS NULL OR height IS NULL THEN
        RETURN NULL;
    END IF;
    IF width <= 0 OR height <= 0 OR width >= 180 OR lat - height / 2 < -90 OR lat + height / 2 > 90 THEN
        RAISE EXCEPTION 'caomai: BOX(%, %, %, %) does not fit on the sky', ra, lat, width, height
            USING ERRCODE = '22023';
    END IF;
    RETURN ARRAY[ra - width / 2, lat - height / 2, ra + width / 2, lat - height / 2,
                 ra + width / 2, lat + height / 2, ra - width / 2, lat + height / 2];
END
$$;

-- Accessors ------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION caomai.adql_coord1(g double precision[])
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF g IS NULL THEN
        RETURN NULL;
    END IF;
    IF caomai.adql_geom_kind(g) <> 'point' THEN
        RAISE EXCEPTION 'caomai: COORD1 takes a point' USING ERRCODE = '22023';
    END IF;
    RETURN g[1];
END
$$;

CREATE OR REPLACE FUNCTION caomai.adql_coord2(g double precision[])
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF g IS NULL THEN
        RETURN NULL;
    END IF;
    IF caomai.adql_geom_kind(g) <> 'point' THEN
        RAISE EXCEPTION 'caomai: COORD2 takes a point' USING ERRCODE = '22023';
    END IF;
    RETURN g[2];
END
$$;

CREATE OR REPLACE FUNCTION caomai.adql_distance(a double precision[], b double precision[])
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF a IS NULL OR b IS NULL THEN
        RETURN NULL;
    END IF;
    IF caomai.adql_geom_kind(a) <> 'point' OR caomai.adql_geom_kind(b) <> 'point' THEN
        RAISE EXCEPTION 'caomai: DISTANCE takes two points' USING ERRCODE = '22023';
    END IF;
    RETURN caomai.adql_sep(a[1], a[2], b[1], b[2]);
END
$$;

-- Polygon helpers ------------------------------------------------------------------------

-- The unit vector of the normalised sum of the polygon's vertices: the tangent point of the
-- gnomonic projection in which its great-circle edges are straight lines.
CREATE OR REPLACE FUNCTION caomai.adql_poly_center(poly double precision[])
RETURNS double precision[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    x double precision := 0;
    y double precision := 0;
    z double precision := 0;
    norm double precision;
    i integer;
BEGIN
    FOR i IN 1 .. cardinality(poly) / 2 LOOP
        x := x + cosd(poly[2 * i]) * cosd(poly[2 * i - 1]);
        y := y + cosd(poly[2 * i]) * sind(poly[2 * i - 1]);
        z := z + sind(poly[2 * i]);
    END LOOP;
    norm := sqrt(x * x + y * y + z * z);
    IF norm < 1e-12 THEN
        RAISE EXCEPTION 'caomai: the polygon % does not fit in a hemisphere', left(poly::text, 80)
            USING ERRCODE = '22023';
    END IF;
    RETURN ARRAY[atan2d(y, x), asind(z / norm)];
END
$$;

-- Gnomonic projection of lon/lat pairs about (ra0, dec0): [x1, y1, x2, y2, ...], or NULL when
-- a point lies on the far hemisphere.
CREATE OR REPLACE FUNCTION caomai.adql_gnomonic(coords double precision[], ra0 double precision,
                                               dec0 double precision)
RETURNS double precision[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    out double precision[] := '{}';
    cosc double precision;
    i integer;
    a double precision;
    d double precision;
BEGIN
    FOR i IN 1 .. cardinality(coords) / 2 LOOP
        a := coords[2 * i - 1] - ra0;
        d := coords[2 * i];
        cosc := sind(dec0) * sind(d) + cosd(dec0) * cosd(d) * cosd(a);
        IF cosc <= 1e-9 THEN
            RETURN NULL;
        END IF;
        out := out || ARRAY[cosd(d) * sind(a) / cosc,
                            (cosd(dec0) * sind(d) - sind(dec0) * cosd(d) * cosd(a)) / cosc];
    END LOOP;
    RETURN out;
END
$$;

-- Even-odd rule on projected coordinates.
CREATE OR REPLACE FUNCTION caomai.adql_plane_inside(xy double precision[], px double precision,
                                                   py double precision)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    n integer := cardinality(xy) / 2;
    inside boolean := false;
    i integer;
    j integer := n;
    xi double precision;
    yi double precision;
    xj double precision;
    yj double precision;
BEGIN
    FOR i IN 1 .. n LOOP
        xi := xy[2 * i - 1];
        yi := xy[2 * i];
        xj := xy[2 * j - 1];
        yj := xy[2 * j];
        IF (yi > py) <> (yj > py) AND px < (xj - xi) * (py - yi) / (yj - yi) + xi THEN
            inside := NOT inside;
        END IF;
        j := i;
    END LOOP;
    RETURN inside;
END
$$;

CREATE OR REPLACE FUNCTION caomai.adql_poly_has_point(poly double precision[], ra double precision,
                                                     lat double precision)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    c double precision[] := caomai.adql_poly_center(poly);
    xy double precision[] := caomai.adql_gnomonic(poly, c[1], c[2]);
    p double precision[];
BEGIN
    IF xy IS NULL THEN
        RAISE EXCEPTION 'caomai: the polygon % does not fit in a hemisphere', left(poly::text, 80)
            USING ERRCODE = '22023';
    END IF;
    p := caomai.adql_gnomonic(ARRAY[ra, lat], c[1], c[2]);
    RETURN p IS NOT NULL AND caomai.adql_plane_inside(xy, p[1], p[2]);
END
$$;

-- Smallest angular distance (degrees) from a point to the boundary of a polygon (its
-- great-circle edges).
CREATE OR REPLACE FUNCTION caomai.adql_poly_edge_distance(poly double precision[], ra double precision,
                                                         lat double precision)
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    n integer := cardinality(poly) / 2;
    best double precision := 'Infinity';
    i integer;
    j integer;
    ax double precision; ay double precision; az double precision;
    bx double precision; by_ double precision; bz double precision;
    px double precision := cosd(lat) * cosd(ra);
    py double precision := cosd(lat) * sind(ra);
    pz double precision := sind(lat);
    nx double precision; ny double precision; nz double precision; nn double precision;
    s double precision;
    qx double precision; qy double precision; qz double precision;
    d double precision;
BEGIN
    FOR i IN 1 .. n LOOP
        j := i % n + 1;
        ax := cosd(poly[2 * i]) * cosd(poly[2 * i - 1]);
        ay := cosd(poly[2 * i]) * sind(poly[2 * i - 1]);
        az := sind(poly[2 * i]);
        bx := cosd(poly[2 * j]) * cosd(poly[2 * j - 1]);
        by_ := cosd(poly[2 * j]) * sind(poly[2 * j - 1]);
        bz := sind(poly[2 * j]);
        d := least(caomai.adql_sep(ra, lat, poly[2 * i - 1], poly[2 * i]),
                   caomai.adql_sep(ra, lat, poly[2 * j - 1], poly[2 * j]));
        -- normal of the edge's great circle
        nx := ay * bz - az * by_;
        ny := az * bx - ax * bz;
        nz := ax * by_ - ay * bx;
        nn := sqrt(nx * nx + ny * ny + nz * nz);
        IF nn > 1e-15 THEN
            nx := nx / nn; ny := ny / nn; nz := nz / nn;
            s := px * nx + py * ny + pz * nz;
            -- foot of the perpendicular on the great circle; inside the arc when it lies
            -- between a and b: (a x q).n >= 0 and (q x b).n >= 0
            qx := px - s * nx; qy := py - s * ny; qz := pz - s * nz;
            IF (ay * qz - az * qy) * nx + (az * qx - ax * qz) * ny + (ax * qy - ay * qx) * nz >= 0
               AND (qy * bz - qz * by_) * nx + (qz * bx - qx * bz) * ny + (qx * by_ - qy * bx) * nz >= 0 THEN
                d := least(d, asind(least(1.0, abs(s))));
            END IF;
        END IF;
        best := least(best, d);
    END LOOP;
    RETURN best;
END
$$;

-- Bounding cap of a polygon: [ra, lat, radius] about its centre.
CREATE OR REPLACE FUNCTION caomai.adql_poly_cap(poly double precision[])
RETURNS double precision[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    c double precision[] := caomai.adql_poly_center(poly);
    r double precision := 0;
    i integer;
BEGIN
    FOR i IN 1 .. cardinality(poly) / 2 LOOP
        r := greatest(r, caomai.adql_sep(c[1], c[2], poly[2 * i - 1], poly[2 * i]));
    END LOOP;
    RETURN ARRAY[c[1], c[2], r];
END
$$;

-- Do any edges of two polygons cross? Both are projected about one tangent point; callers
-- have checked that their bounding caps overlap, so both fit in that hemisphere.
CREATE OR REPLACE FUNCTION caomai.adql_edges_cross(a double precision[], b double precision[])
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    c double precision[] := caomai.adql_poly_center(a || b);
    pa double precision[] := caomai.adql_gnomonic(a, c[1], c[2]);
    pb double precision[] := caomai.adql_gnomonic(b, c[1], c[2]);
    na integer := cardinality(a) / 2;
    nb integer := cardinality(b) / 2;
    i integer; j integer; i2 integer; j2 integer;
    d1 double precision; d2 double precision; d3 double precision; d4 double precision;
BEGIN
    IF pa IS NULL OR pb IS NULL THEN
        RAISE EXCEPTION 'caomai: these polygons are too large to compare (they must fit in a hemisphere together)'
            USING ERRCODE = '22023';
    END IF;
    FOR i IN 1 .. na LOOP
        i2 := i % na + 1;
        FOR j IN 1 .. nb LOOP
            j2 := j % nb + 1;
            -- orientations of b's end points about edge a, and of a's about edge b
            d1 := (pa[2*i2-1] - pa[2*i-1]) * (pb[2*j] - pa[2*i]) - (pa[2*i2] - pa[2*i]) * (pb[2*j-1] - pa[2*i-1]);
            d2 := (pa[2*i2-1] - pa[2*i-1]) * (pb[2*j2] - pa[2*i]) - (pa[2*i2] - pa[2*i]) * (pb[2*j2-1] - pa[2*i-1]);
            d3 := (pb[2*j2-1] - pb[2*j-1]) * (pa[2*i] - pb[2*j]) - (pb[2*j2] - pb[2*j]) * (pa[2*i-1] - pb[2*j-1]);
            d4 := (pb[2*j2-1] - pb[2*j-1]) * (pa[2*i2] - pb[2*j]) - (pb[2*j2] - pb[2*j]) * (pa[2*i2-1] - pb[2*j-1]);
            IF ((d1 > 0 AND d2 < 0) OR (d1 < 0 AND d2 > 0)) AND ((d3 > 0 AND d4 < 0) OR (d3 < 0 AND d4 > 0)) THEN
                RETURN true;
            END IF;
        END LOOP;
    END LOOP;
    RETURN false;
END
$$;

-- Predicates -----------------------------------------------------------------------------

-- CONTAINS(a, b): 1 if a lies entirely inside b.
CREATE OR REPLACE FUNCTION caomai.adql_contains(a double precision[], b double precision[])
RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    ka text;
    kb text;
    i integer;
    cap double precision[];
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
            RETURN (caomai.adql_sep(a[1], a[2], b[1], b[2]) <= b[3])::integer;
        ELSIF ka = 'circle' THEN
            RETURN (caomai.adql_sep(a[1], a[2], b[1], b[2]) + a[3] <= b[3])::integer;
        END IF;
        -- a spherical cap (radius <= 90 degrees) is convex: the vertices decide
        FOR i IN 1 .. cardinality(a) / 2 LOOP
            IF caomai.adql_sep(a[2 * i - 1], a[2 * i], b[1], b[2]) > b[3] THEN
                RETURN 0;
            END IF;
        END LOOP;
        RETURN 1;
    END IF;
    -- b is a polygon
    IF ka = 'point' THEN
        RETURN caomai.adql_poly_has_point(b, a[1], a[2])::integer;
    ELSIF ka = 'circle' THEN
        RETURN (caomai.adql_poly_has_point(b, a[1], a[2])
                AND caomai.adql_poly_edge_distance(b, a[1], a[2]) >= a[3])::integer;
    END IF;
    FOR i IN 1 .. cardinality(a) / 2 LOOP
        IF NOT caomai.adql_poly_has_point(b, a[2 * i - 1], a[2 * i]) THEN
            RETURN 0;
        END IF;
    END LOOP;
    RETURN (NOT caomai.adql_edges_cross(a, b))::integer;
END
$$;

-- INTERSECTS(a, b): 1 if a and b have at least one point in common.
CREATE OR REPLACE FUNCTION caomai.adql_intersects(a double precision[], b double precision[])
RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    ka text;
    kb text;
    ca double precision[];
    cb double precision[];
    i integer;
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
        RETURN (caomai.adql_sep(a[1], a[2], b[1], b[2]) <= a[3] + b[3])::integer;
    ELSIF ka = 'circle' OR kb = 'circle' THEN
        IF ka = 'polygon' THEN
            ca := b;
            cb := a;
        ELSE
            ca := a;
            cb := b;
        END IF;
        RETURN (caomai.adql_poly_has_point(cb, ca[1], ca[2])
                OR caomai.adql_poly_edge_distance(cb, ca[1], ca[2]) <= ca[3])::integer;
    END IF;
    -- two polygons: far apart (bounding caps), a vertex inside the other, or crossing edges
    ca := caomai.adql_poly_cap(a);
    cb := caomai.adql_poly_cap(b);
    IF caomai.adql_sep(ca[1], ca[2], cb[1], cb[2]) > ca[3] + cb[3] THEN
        RETURN 0;
    END IF;
    IF caomai.adql_poly_has_point(b, a[1], a[2]) OR caomai.adql_poly_has_point(a, b[1], b[2]) THEN
        RETURN 1;
    END IF;
    RETURN caomai.adql_edges_cross(a, b)::integer;
END
$$;

-- AREA(g) in square degrees: spherical excess of the polygon (fan of triangles, signed, so
-- concave polygons work), 2 pi (1 - cos r) for a circle, 0 for a point.
CREATE OR REPLACE FUNCTION caomai.adql_area(g double precision[])
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    k text;
    n integer;
    total double precision := 0;
    i integer;
    ax double precision; ay double precision; az double precision;
    bx double precision; by_ double precision; bz double precision;
    cx double precision; cy double precision; cz double precision;
    triple double precision;
BEGIN
    IF g IS NULL THEN
        RETURN NULL;
    END IF;
    k := caomai.adql_geom_kind(g);
    IF k = 'point' THEN
        RETURN 0;
    ELSIF k = 'circle' THEN
        RETURN 2 * pi() * (1 - cosd(g[3])) * (180 / pi()) ^ 2;
    END IF;
    n := cardinality(g) / 2;
    ax := cosd(g[2]) * cosd(g[1]); ay := cosd(g[2]) * sind(g[1]); az := sind(g[2]);
    FOR i IN 2 .. n - 1 LOOP
        bx := cosd(g[2*i]) * cosd(g[2*i-1]); by_ := cosd(g[2*i]) * sind(g[2*i-1]); bz := sind(g[2*i]);
        cx := cosd(g[2*i+2]) * cosd(g[2*i+1]); cy := cosd(g[2*i+2]) * sind(g[2*i+1]); cz := sind(g[2*i+2]);
        triple := ax * (by_ * cz - bz * cy) + ay * (bz * cx - bx * cz) + az * (bx * cy - by_ * cx);
        -- Van Oosterom & Strackee: tan(E/2) = a.(b x c) / (1 + a.b + b.c + c.a)
        total := total + 2 * atan2(triple, 1 + (ax*bx + ay*by_ + az*bz) + (bx*cx + by_*cy + bz*cz)
                                           + (cx*ax + cy*ay + cz*az));
    END LOOP;
    RETURN abs(total) * (180 / pi()) ^ 2;
END
$$;
