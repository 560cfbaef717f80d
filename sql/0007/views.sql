-- Migration 0007: caomai.fingerprint_real gains the image vector as real[].
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
  FROM caomai.fingerprint AS f;
