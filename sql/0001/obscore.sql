-- ivoa.ObsCore as CADC defines it over CAOM2: science intent, calibration levels 0-4,
-- obs_publisher_did = Plane.publisherID. Created only when caomai created the caom2 tables
-- (an archive that has caom2 has its own ObsCore). Positions are DALI arrays (no pg_sphere):
-- s_region is the polygon ra1, dec1, ra2, dec2, ...
CREATE OR REPLACE VIEW ivoa.obscore AS
SELECT p.dataproducttype                         AS dataproduct_type,
       p.calibrationlevel                        AS calib_level,
       o.collection                              AS obs_collection,
       o.telescope_name                          AS facility_name,
       o.instrument_name                         AS instrument_name,
       o.observationid                           AS obs_id,
       p.publisherid                             AS obs_publisher_did,
       p.datarelease                             AS obs_release_date,
       a.uri::text                               AS access_url,
       a.contenttype::text                       AS access_format,
       (a.contentlength / 1024)::bigint          AS access_estsize,
       o.target_name                             AS target_name,
       p.position_bounds_center[1]               AS s_ra,
       p.position_bounds_center[2]               AS s_dec,
       p.position_bounds_size                    AS s_fov,
       p.position_bounds                         AS s_region,
       p.position_resolution                     AS s_resolution,
       p.position_dimension_naxis1               AS s_xel1,
       p.position_dimension_naxis2               AS s_xel2,
       p.time_bounds_lower                       AS t_min,
       p.time_bounds_upper                       AS t_max,
       p.time_exposure                           AS t_exptime,
       NULL::double precision                    AS t_resolution,
       p.time_dimension                          AS t_xel,
       p.energy_bounds_lower                     AS em_min,
       p.energy_bounds_upper                     AS em_max,
       p.energy_resolvingpower                   AS em_res_power,
       NULL::bigint                              AS em_xel,
       NULL::text                                AS em_ucd,
       p.polarization_states                     AS pol_states,
       NULL::bigint                              AS pol_xel,
       'phot.count'::text                        AS o_ucd,
       p.planeid                                 AS core_id,
       p.planeid                                 AS planeid,
       p.metarelease                             AS metarelease
  FROM caom2.observation AS o
  JOIN caom2.plane AS p ON p.obsid = o.obsid
  LEFT JOIN LATERAL (
        SELECT art.uri, art.contenttype, art.contentlength
          FROM caom2.artifact AS art
         WHERE art.planeid = p.planeid AND art.producttype = 'science'
         ORDER BY art.uri
         LIMIT 1) AS a ON true
 WHERE o.intent = 'science'
   AND p.calibrationlevel BETWEEN 0 AND 4;
