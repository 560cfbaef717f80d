-- Keep the plane columns every caomai table carries (publisherID, metaRelease,
-- metaReadGroups) in step with caom2.Plane.
--
-- caomai.sync_plane_meta() is set-based and idempotent: an archive whose caom2 tables
-- caomai must not alter runs it after each harvest (`caomai db sync-meta`). When caomai
-- created caom2 itself, a trigger on caom2.plane (sql/plane_meta_trigger.sql) does it row
-- by row as planes change.
CREATE OR REPLACE FUNCTION caomai.sync_plane_meta()
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    n1 bigint;
    n2 bigint;
BEGIN
    UPDATE caomai.fingerprint AS f
       SET publisherid = p.publisherid, metarelease = p.metarelease, metareadgroups = p.metareadgroups
      FROM caom2.plane AS p
     WHERE p.planeid = f.planeid
       AND (f.publisherid, f.metarelease, f.metareadgroups)
           IS DISTINCT FROM (p.publisherid, p.metarelease, p.metareadgroups);
    GET DIAGNOSTICS n1 = ROW_COUNT;
    UPDATE caomai.object_annotation AS a
       SET publisherid = p.publisherid, metarelease = p.metarelease, metareadgroups = p.metareadgroups
      FROM caom2.plane AS p
     WHERE p.planeid = a.planeid
       AND (a.publisherid, a.metarelease, a.metareadgroups)
           IS DISTINCT FROM (p.publisherid, p.metarelease, p.metareadgroups);
    GET DIAGNOSTICS n2 = ROW_COUNT;
    RETURN n1 + n2;
END
$$;
