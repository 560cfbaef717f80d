-- Row-level twin of caomai.sync_plane_meta() for a caom2 schema that caomai created.
CREATE OR REPLACE FUNCTION caomai.plane_meta_changed()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE caomai.fingerprint
       SET publisherid = NEW.publisherid, metarelease = NEW.metarelease, metareadgroups = NEW.metareadgroups
     WHERE planeid = NEW.planeid;
    UPDATE caomai.object_annotation
       SET publisherid = NEW.publisherid, metarelease = NEW.metarelease, metareadgroups = NEW.metareadgroups
     WHERE planeid = NEW.planeid;
    RETURN NEW;
END
$$;

CREATE TRIGGER caomai_plane_meta
AFTER UPDATE OF publisherid, metarelease, metareadgroups ON caom2.plane
FOR EACH ROW
WHEN ((OLD.publisherid, OLD.metarelease, OLD.metareadgroups)
      IS DISTINCT FROM (NEW.publisherid, NEW.metarelease, NEW.metareadgroups))
EXECUTE FUNCTION caomai.plane_meta_changed();
