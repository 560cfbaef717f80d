-- Views published next to the tables (described for TAP_SCHEMA in caomai_db/models.py).

-- Fingerprints as real[]: for TAP services that cannot serialise a pgvector column
-- (CADC's FloatArrayFormat, DaCHS). Same rows as caomai.fingerprint.
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
