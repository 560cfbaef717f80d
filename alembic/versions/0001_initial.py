"""Initial schema: caom2 subset, caomai, ivoa.ObsCore, TAP_SCHEMA, UDF functions, reader role.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

What this migration creates depends on what the database already holds, and it records the
facts in caomai.meta so that downgrade removes exactly what upgrade added:

- the pgvector extension, unless installed;
- caom2.Observation/Plane/Artifact, only when none of them exists (a production archive keeps
  its own tables untouched), plus a trigger keeping caomai's plane columns in step and the
  ivoa.ObsCore view over them;
- the caomai schema (tables, hash partitions of object_annotation, HNSW index, functions);
- TAP_SCHEMA 1.1 tables, unless the database has a tap_schema schema already;
- the read-only role caomai_reader, unless it exists, granted SELECT on what TAP_SCHEMA
  publishes and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

from caomai_db import models, sqlfiles, tapschema
from caomai_db.config import READER_ROLE

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Hash partitions of caomai.object_annotation (by planeID).
PARTITIONS = models.ANNOTATION_PARTITIONS


def _raw():
    """The psycopg connection under alembic's, in the same transaction."""
    return op.get_bind().connection.driver_connection


def _scalar(query: str, *params):
    return _raw().execute(query, params).fetchone()[0]


def upgrade() -> None:
    facts: dict[str, str] = {}

    if _scalar("SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == 0:
        op.execute("CREATE EXTENSION vector")
        facts["created_extension_vector"] = "1"
    version = _scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    if tuple(int(x) for x in version.split(".")[:2]) < (0, 8):
        raise RuntimeError(
            f"caomai needs pgvector >= 0.8 (iterative index scans); this server has {version}"
        )

    if _scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'caomai'"):
        raise RuntimeError(
            "schema caomai exists but caomai's migrations have not run here; refusing to touch it"
        )
    op.execute("CREATE SCHEMA caomai")

    existing_caom2 = _scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'caom2'"
        " AND tablename IN ('observation', 'plane', 'artifact')"
    )
    caom2_managed = existing_caom2 == 0
    facts["caom2_managed"] = "1" if caom2_managed else "0"
    if caom2_managed:
        if _scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'caom2'") == 0:
            op.execute("CREATE SCHEMA caom2")
            facts["created_schema_caom2"] = "1"
        _create_caom2()

    _create_caomai()
    for i in range(PARTITIONS):
        op.execute(
            f"CREATE TABLE caomai.object_annotation_p{i:02d} PARTITION OF caomai.object_annotation"
            f" FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})"
        )

    raw = _raw()
    for name in ("functions.sql", "views.sql", "sync_plane_meta.sql"):
        sqlfiles.apply(raw, f"0001/{name}")
    if caom2_managed:
        sqlfiles.apply(raw, "0001/plane_meta_trigger.sql")
        if _scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'ivoa'") == 0:
            op.execute("CREATE SCHEMA ivoa")
            facts["created_schema_ivoa"] = "1"
        if _scalar("SELECT to_regclass('ivoa.obscore') IS NULL"):
            sqlfiles.apply(raw, "0001/obscore.sql")
            facts["created_view_obscore"] = "1"

    tap_schema_managed = (
        _scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'tap_schema'") == 0
    )
    if tap_schema_managed:
        op.execute("CREATE SCHEMA tap_schema")
        models.tap_schema_metadata.create_all(op.get_bind())
        facts["tap_schema_managed"] = "1"

    if _scalar("SELECT count(*) FROM pg_roles WHERE rolname = %s", READER_ROLE) == 0:
        facts["created_role"] = "1"
    op.bulk_insert(models.meta, [{"key": k, "value": v} for k, v in sorted(facts.items())])
    sqlfiles.apply(raw, "0001/roles.sql")
    tapschema.sync(raw)


def downgrade() -> None:
    facts = dict(_raw().execute("SELECT key, value FROM caomai.meta").fetchall())
    database = _scalar("SELECT current_database()")
    if _scalar("SELECT count(*) FROM pg_roles WHERE rolname = %s", READER_ROLE):
        ours = ["caomai"]
        for schema, fact in [
            ("caom2", "caom2_managed"),
            ("ivoa", "created_view_obscore"),
            ("tap_schema", "tap_schema_managed"),
        ]:
            if facts.get(fact) == "1":
                ours.append(schema)
        for schema in ours:
            if _scalar("SELECT count(*) FROM pg_namespace WHERE nspname = %s", schema):
                op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {READER_ROLE}")
                op.execute(f"REVOKE ALL ON SCHEMA {schema} FROM {READER_ROLE}")
        op.execute(f'ALTER ROLE {READER_ROLE} IN DATABASE "{database}" RESET ALL')
    if facts.get("tap_schema_managed") == "1":
        op.execute("DROP SCHEMA tap_schema CASCADE")
    if facts.get("created_view_obscore") == "1":
        op.execute("DROP VIEW ivoa.obscore")
    if facts.get("created_schema_ivoa") == "1":
        op.execute("DROP SCHEMA ivoa")
    if facts.get("caom2_managed") == "1":
        op.execute("DROP TRIGGER caomai_plane_meta ON caom2.plane")
    op.execute("DROP SCHEMA caomai CASCADE")
    if facts.get("caom2_managed") == "1":
        op.drop_table("artifact", schema="caom2")
        op.drop_table("plane", schema="caom2")
        op.drop_table("observation", schema="caom2")
    if facts.get("created_schema_caom2") == "1":
        op.execute("DROP SCHEMA caom2")
    if facts.get("created_extension_vector") == "1":
        op.execute("DROP EXTENSION vector")
    if facts.get("created_role") == "1":
        # the role is cluster-wide: another database's caomai may still use it
        op.execute(
            f"DO $$ BEGIN DROP ROLE {READER_ROLE}; "
            "EXCEPTION WHEN dependent_objects_still_exist THEN "
            f"RAISE NOTICE 'role {READER_ROLE} kept: other databases use it'; END $$"
        )


def _create_caom2() -> None:
    """The CAOM2 subset (autogenerated from caomai_db.models, then frozen here)."""
    op.create_table(
        "observation",
        sa.Column("obsid", sa.UUID(), nullable=False, comment="unique observation identifier"),
        sa.Column(
            "observationuri",
            sa.String(length=512),
            nullable=False,
            comment="unique URI for this observation (caom:collection/observationID)",
        ),
        sa.Column(
            "collection",
            sa.String(length=64),
            nullable=False,
            comment="data collection this observation belongs to",
        ),
        sa.Column(
            "observationid",
            sa.String(length=256),
            nullable=False,
            comment="collection-specific unique observation identifier",
        ),
        sa.Column(
            "algorithm_name",
            sa.String(length=64),
            server_default="exposure",
            nullable=False,
            comment="algorithm that defines the observation (exposure for simple observations)",
        ),
        sa.Column(
            "type",
            sa.String(length=32),
            nullable=True,
            comment="type of data collected (FITS OBSTYPE, e.g. OBJECT, FLAT)",
        ),
        sa.Column(
            "intent",
            sa.String(length=32),
            nullable=True,
            comment="intended purpose of data (science or calibration)",
        ),
        sa.Column(
            "sequencenumber",
            sa.Integer(),
            nullable=True,
            comment="sequence number assigned by the observatory",
        ),
        sa.Column(
            "metarelease",
            sa.DateTime(),
            nullable=True,
            comment="date the metadata for an observation is public (UTC)",
        ),
        sa.Column(
            "metareadgroups",
            sa.Text(),
            nullable=True,
            comment="groups allowed to read the metadata before metaRelease (space-separated URIs)",
        ),
        sa.Column(
            "proposal_id",
            sa.String(length=64),
            nullable=True,
            comment="collection-specific unique proposal identifier",
        ),
        sa.Column(
            "proposal_pi",
            sa.String(length=64),
            nullable=True,
            comment="proposal principal investigator",
        ),
        sa.Column("proposal_title", sa.Text(), nullable=True, comment="proposal title"),
        sa.Column(
            "target_name", sa.String(length=64), nullable=True, comment="name of intended target"
        ),
        sa.Column(
            "target_type",
            sa.String(length=64),
            nullable=True,
            comment="classification of intended target (field or object)",
        ),
        sa.Column(
            "telescope_name",
            sa.String(length=64),
            nullable=True,
            comment="name of telescope used to acquire observation",
        ),
        sa.Column(
            "telescope_geolocationx",
            sa.Float(precision=53),
            nullable=True,
            comment="x component of geocentric location of telescope",
        ),
        sa.Column(
            "telescope_geolocationy",
            sa.Float(precision=53),
            nullable=True,
            comment="y component of geocentric location of telescope",
        ),
        sa.Column(
            "telescope_geolocationz",
            sa.Float(precision=53),
            nullable=True,
            comment="z component of geocentric location of telescope",
        ),
        sa.Column(
            "instrument_name",
            sa.String(length=64),
            nullable=True,
            comment="name of instrument used to acquire observation",
        ),
        sa.Column(
            "instrument_keywords",
            sa.Text(),
            nullable=True,
            comment="instrument keywords (separated by |)",
        ),
        sa.Column(
            "environment_seeing",
            sa.Float(precision=53),
            nullable=True,
            comment="atmospheric seeing (FWHM)",
        ),
        sa.Column(
            "environment_elevation",
            sa.Float(precision=53),
            nullable=True,
            comment="elevation above horizon (0 to 90)",
        ),
        sa.Column(
            "environment_photometric",
            sa.Integer(),
            nullable=True,
            comment="conditions were photometric (0=false, 1=true)",
        ),
        sa.Column(
            "lastmodified",
            sa.DateTime(),
            server_default=sa.text("now()"),
            nullable=False,
            comment="timestamp of last modification of this row",
        ),
        sa.Column(
            "maxlastmodified",
            sa.DateTime(),
            server_default=sa.text("now()"),
            nullable=False,
            comment="timestamp of last modification of this observation",
        ),
        sa.PrimaryKeyConstraint("obsid", name=op.f("pk_observation")),
        sa.UniqueConstraint(
            "collection", "observationid", name=op.f("uq_observation_collection_observationid")
        ),
        sa.UniqueConstraint("observationuri", name=op.f("uq_observation_observationuri")),
        schema="caom2",
        comment="the main CAOM Observation table",
    )
    op.create_index(
        "ix_observation_instrument_name",
        "observation",
        ["instrument_name"],
        unique=False,
        schema="caom2",
    )
    op.create_table(
        "plane",
        sa.Column("planeid", sa.UUID(), nullable=False, comment="unique plane identifier"),
        sa.Column("obsid", sa.UUID(), nullable=False, comment="foreign key to caom2.Observation"),
        sa.Column(
            "planeuri",
            sa.String(length=512),
            nullable=False,
            comment="unique internal URI for this product (caom:collection/observationID/productID)",
        ),
        sa.Column(
            "publisherid",
            sa.String(length=512),
            nullable=False,
            comment="unique global identifier for this product (IVOA publisher DID)",
        ),
        sa.Column(
            "productid", sa.String(length=64), nullable=False, comment="name of this product"
        ),
        sa.Column(
            "creatorid",
            sa.String(length=512),
            nullable=True,
            comment="unique identifier assigned by the creator",
        ),
        sa.Column(
            "metarelease",
            sa.DateTime(),
            nullable=True,
            comment="date the metadata for a plane is public (UTC)",
        ),
        sa.Column(
            "datarelease",
            sa.DateTime(),
            nullable=True,
            comment="date the data for a plane is public (UTC)",
        ),
        sa.Column(
            "metareadgroups",
            sa.Text(),
            nullable=True,
            comment="groups allowed to read the metadata before metaRelease (space-separated URIs)",
        ),
        sa.Column(
            "datareadgroups",
            sa.Text(),
            nullable=True,
            comment="groups allowed to read the data before dataRelease (space-separated URIs)",
        ),
        sa.Column(
            "dataproducttype",
            sa.String(length=64),
            nullable=True,
            comment="IVOA ObsCore data product type (image, cube, ...)",
        ),
        sa.Column(
            "calibrationlevel",
            sa.Integer(),
            nullable=True,
            comment="IVOA ObsCore calibration level (0,1,2,3,4)",
        ),
        sa.Column(
            "provenance_name",
            sa.String(length=64),
            nullable=True,
            comment="name of the process that created this plane",
        ),
        sa.Column(
            "provenance_version",
            sa.String(length=64),
            nullable=True,
            comment="version of the process/software",
        ),
        sa.Column(
            "provenance_runid",
            sa.String(length=256),
            nullable=True,
            comment="identifier of the run that created this plane",
        ),
        sa.Column(
            "provenance_lastexecuted",
            sa.DateTime(),
            nullable=True,
            comment="date this process was last executed",
        ),
        sa.Column(
            "quality_flag",
            sa.String(length=16),
            nullable=True,
            comment="flag describing the data quality (possible values: junk)",
        ),
        sa.Column(
            "position_bounds",
            postgresql.ARRAY(sa.Float(precision=53)),
            nullable=True,
            comment="positional coverage of the data (ICRS polygon: ra1, dec1, ra2, dec2, ...)",
        ),
        sa.Column(
            "position_bounds_center",
            postgresql.ARRAY(sa.Float(precision=53)),
            nullable=True,
            comment="centre of the positional coverage (ICRS point: ra, dec)",
        ),
        sa.Column(
            "position_bounds_area",
            sa.Float(precision=53),
            nullable=True,
            comment="area of the positional coverage",
        ),
        sa.Column(
            "position_bounds_size",
            sa.Float(precision=53),
            nullable=True,
            comment="size of the polygon bounds (diameter of minimum spanning circle)",
        ),
        sa.Column(
            "position_dimension_naxis1",
            sa.BigInteger(),
            nullable=True,
            comment="dimensions (number of pixels) along one spatial axis",
        ),
        sa.Column(
            "position_dimension_naxis2",
            sa.BigInteger(),
            nullable=True,
            comment="dimensions (number of pixels) along other spatial axis",
        ),
        sa.Column(
            "position_resolution",
            sa.Float(precision=53),
            nullable=True,
            comment="median spatial resolution (FWHM)",
        ),
        sa.Column(
            "position_samplesize",
            sa.Float(precision=53),
            nullable=True,
            comment="median sample (pixel) size on spatial axes",
        ),
        sa.Column(
            "energy_emband",
            sa.String(length=32),
            nullable=True,
            comment="generic name for energy band (Radio, Millimeter, Infrared, Optical, UV, ...)",
        ),
        sa.Column(
            "energy_bounds_lower",
            sa.Float(precision=53),
            nullable=True,
            comment="lower bound on energy axis (barycentric wavelength)",
        ),
        sa.Column(
            "energy_bounds_upper",
            sa.Float(precision=53),
            nullable=True,
            comment="upper bound on energy axis (barycentric wavelength)",
        ),
        sa.Column(
            "energy_bounds_width",
            sa.Float(precision=53),
            nullable=True,
            comment="width of the energy bounds",
        ),
        sa.Column(
            "energy_bandpassname",
            sa.String(length=64),
            nullable=True,
            comment="collection-specific name for energy band (e.g. filter name)",
        ),
        sa.Column(
            "energy_resolvingpower",
            sa.Float(precision=53),
            nullable=True,
            comment="median spectral resolving power per pixel",
        ),
        sa.Column(
            "time_bounds_lower",
            sa.Float(precision=53),
            nullable=True,
            comment="lower bound on time axis (Modified Julian Day)",
        ),
        sa.Column(
            "time_bounds_upper",
            sa.Float(precision=53),
            nullable=True,
            comment="upper bound on time axis (Modified Julian Day)",
        ),
        sa.Column(
            "time_bounds_width",
            sa.Float(precision=53),
            nullable=True,
            comment="width of the time bounds",
        ),
        sa.Column(
            "time_exposure",
            sa.Float(precision=53),
            nullable=True,
            comment="median exposure time per pixel",
        ),
        sa.Column(
            "time_dimension",
            sa.BigInteger(),
            nullable=True,
            comment="number of samples (pixels) along the time axis",
        ),
        sa.Column(
            "polarization_states",
            sa.String(length=34),
            nullable=True,
            comment="polarization states present in the data",
        ),
        sa.Column(
            "lastmodified",
            sa.DateTime(),
            server_default=sa.text("now()"),
            nullable=False,
            comment="timestamp of last modification of this row",
        ),
        sa.Column(
            "maxlastmodified",
            sa.DateTime(),
            server_default=sa.text("now()"),
            nullable=False,
            comment="timestamp of last modification of this plane",
        ),
        sa.ForeignKeyConstraint(
            ["obsid"],
            ["caom2.observation.obsid"],
            name=op.f("fk_plane_obsid_observation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("planeid", name=op.f("pk_plane")),
        sa.UniqueConstraint("planeuri", name=op.f("uq_plane_planeuri")),
        sa.UniqueConstraint("publisherid", name=op.f("uq_plane_publisherid")),
        schema="caom2",
        comment="the products of the observation",
    )
    op.create_index(
        "ix_plane_energy_bandpassname",
        "plane",
        ["energy_bandpassname"],
        unique=False,
        schema="caom2",
    )
    op.create_index("ix_plane_metarelease", "plane", ["metarelease"], unique=False, schema="caom2")
    op.create_index("ix_plane_obsid", "plane", ["obsid"], unique=False, schema="caom2")
    op.create_index(
        "ix_plane_time_bounds_lower", "plane", ["time_bounds_lower"], unique=False, schema="caom2"
    )
    op.create_table(
        "artifact",
        sa.Column("artifactid", sa.UUID(), nullable=False, comment="unique artifact identifier"),
        sa.Column("planeid", sa.UUID(), nullable=False, comment="foreign key to caom2.Plane"),
        sa.Column(
            "uri",
            sa.String(length=1024),
            nullable=False,
            comment="external URI for the physical artifact (file)",
        ),
        sa.Column(
            "producttype",
            sa.String(length=64),
            nullable=False,
            comment="product type (science, calibration, auxiliary, preview, info)",
        ),
        sa.Column(
            "releasetype",
            sa.String(length=16),
            server_default="data",
            nullable=False,
            comment="release type (data or meta)",
        ),
        sa.Column(
            "contenttype",
            sa.String(length=128),
            nullable=True,
            comment="content-type of the physical artifact (MIME type)",
        ),
        sa.Column(
            "contentlength", sa.BigInteger(), nullable=True, comment="size of the physical artifact"
        ),
        sa.Column(
            "contentchecksum",
            sa.String(length=136),
            nullable=True,
            comment="checksum of the content (URI of the form algorithm:value)",
        ),
        sa.Column(
            "metarelease",
            sa.DateTime(),
            nullable=True,
            comment="date the metadata for the artifact is public (UTC); copied from the plane",
        ),
        sa.Column(
            "lastmodified",
            sa.DateTime(),
            server_default=sa.text("now()"),
            nullable=False,
            comment="timestamp of last modification of this row",
        ),
        sa.ForeignKeyConstraint(
            ["planeid"],
            ["caom2.plane.planeid"],
            name=op.f("fk_artifact_planeid_plane"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("artifactid", name=op.f("pk_artifact")),
        sa.UniqueConstraint("uri", name=op.f("uq_artifact_uri")),
        schema="caom2",
        comment="physical data artifacts (e.g. files)",
    )
    op.create_index("ix_artifact_planeid", "artifact", ["planeid"], unique=False, schema="caom2")


def _create_caomai() -> None:
    """caomai's tables (autogenerated from caomai_db.models, then frozen here)."""
    op.create_table(
        "meta",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_meta")),
        schema="caomai",
        comment="installation facts recorded by the migrations (what they created, so that downgrade removes only that)",
    )
    op.create_table(
        "model",
        sa.Column(
            "model_id",
            sa.Integer(),
            sa.Identity(always=False),
            nullable=False,
            comment="model identifier",
        ),
        sa.Column(
            "name", sa.Text(), nullable=False, comment="unique model name, e.g. map1-2026-11-22"
        ),
        sa.Column(
            "kind",
            sa.Text(),
            nullable=False,
            comment="map1 (object map with its encoder) or map2 (image map over fingerprints)",
        ),
        sa.Column(
            "parent_id",
            sa.Integer(),
            nullable=True,
            comment="for a map2 model: the map1 model whose fingerprints it was trained on",
        ),
        sa.Column(
            "grid_rows",
            sa.SmallInteger(),
            server_default="20",
            nullable=False,
            comment="rows of the map grid",
        ),
        sa.Column(
            "grid_cols",
            sa.SmallInteger(),
            server_default="20",
            nullable=False,
            comment="columns of the map grid",
        ),
        sa.Column(
            "dim",
            sa.Integer(),
            nullable=False,
            comment="dimension of the vectors the map is fitted on",
        ),
        sa.Column(
            "parameters",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="training parameters and figures (JSON)",
        ),
        sa.Column("artifact_uri", sa.Text(), nullable=True, comment="where the model file lies"),
        sa.Column(
            "artifact_checksum",
            sa.Text(),
            nullable=True,
            comment="checksum of the model file (sha256:hex); loading refuses a mismatch",
        ),
        sa.Column(
            "active",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
            comment="the model the ADQL functions resolve references with (one per kind)",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="when the model was registered",
        ),
        sa.Column("description", sa.Text(), nullable=True, comment="free text"),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["caomai.model.model_id"],
            name=op.f("fk_model_parent_id_model"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_model")),
        sa.UniqueConstraint("name", name=op.f("uq_model_name")),
        schema="caomai",
        comment="versioned models: Map 1 (encoder + 20x20 map of object kinds) and Map 2 (20x20 map of image kinds)",
    )
    op.create_index(
        "ux_model_active_kind",
        "model",
        ["kind"],
        unique=True,
        schema="caomai",
        postgresql_where="active",
    )
    op.create_table(
        "object_annotation",
        sa.Column("planeid", sa.UUID(), nullable=False, comment="the image (caom2.Plane.planeID)"),
        sa.Column(
            "model_id",
            sa.Integer(),
            nullable=False,
            comment="the Map-1 model that placed the object",
        ),
        sa.Column(
            "object_id", sa.Integer(), nullable=False, comment="object number within the image"
        ),
        sa.Column(
            "publisherid",
            sa.String(length=512),
            nullable=False,
            comment="publisher identifier of the plane (ObsCore obs_publisher_did)",
        ),
        sa.Column(
            "metarelease",
            sa.DateTime(),
            nullable=True,
            comment="date the plane's metadata becomes public (UTC); copied from caom2.Plane",
        ),
        sa.Column(
            "metareadgroups",
            sa.Text(),
            nullable=True,
            comment="groups allowed to read the plane's metadata before metaRelease; copied from caom2.Plane",
        ),
        sa.Column(
            "extension",
            sa.SmallInteger(),
            nullable=False,
            comment="FITS HDU index the object was detected in",
        ),
        sa.Column(
            "extname",
            sa.Text(),
            nullable=True,
            comment="EXTNAME of that HDU (CCD name), when present",
        ),
        sa.Column(
            "x",
            sa.REAL(),
            nullable=True,
            comment="x pixel coordinate of the centroid (0-based, FITS axis 1)",
        ),
        sa.Column(
            "y",
            sa.REAL(),
            nullable=True,
            comment="y pixel coordinate of the centroid (0-based, FITS axis 2)",
        ),
        sa.Column(
            "ra",
            sa.Float(precision=53),
            nullable=True,
            comment="right ascension of the centroid (ICRS), when the HDU has a WCS",
        ),
        sa.Column(
            "dec",
            sa.Float(precision=53),
            nullable=True,
            comment="declination of the centroid (ICRS), when the HDU has a WCS",
        ),
        sa.Column(
            "flux",
            sa.REAL(),
            nullable=True,
            comment="background-subtracted flux within the detection footprint",
        ),
        sa.Column("a", sa.REAL(), nullable=True, comment="semi-major axis (second moments)"),
        sa.Column("b", sa.REAL(), nullable=True, comment="semi-minor axis (second moments)"),
        sa.Column(
            "theta",
            sa.REAL(),
            nullable=True,
            comment="position angle of the major axis from the x axis",
        ),
        sa.Column("peak", sa.REAL(), nullable=True, comment="peak pixel value above background"),
        sa.Column(
            "flag",
            sa.SmallInteger(),
            nullable=True,
            comment="sep extraction flags (blended, truncated, ...)",
        ),
        sa.Column(
            "map1_node",
            sa.SmallInteger(),
            nullable=False,
            comment="node of the object on Map 1 (0..399)",
        ),
        sa.Column(
            "map1_distance",
            sa.REAL(),
            nullable=True,
            comment="distance of the object's embedding to its Map-1 node",
        ),
        sa.PrimaryKeyConstraint(
            "planeid", "model_id", "object_id", name=op.f("pk_object_annotation")
        ),
        schema="caomai",
        comment="every sampled detected object: position, flux, shape and its Map-1 node",
        postgresql_partition_by="HASH (planeid)",
    )
    op.create_index(
        "ix_object_annotation_model_node",
        "object_annotation",
        ["model_id", "map1_node"],
        unique=False,
        schema="caomai",
    )
    op.create_table(
        "fingerprint",
        sa.Column("planeid", sa.UUID(), nullable=False, comment="the image (caom2.Plane.planeID)"),
        sa.Column(
            "model_id",
            sa.Integer(),
            nullable=False,
            comment="the Map-1 model that made the fingerprint",
        ),
        sa.Column(
            "publisherid",
            sa.String(length=512),
            nullable=False,
            comment="publisher identifier of the plane (ObsCore obs_publisher_did)",
        ),
        sa.Column(
            "metarelease",
            sa.DateTime(),
            nullable=True,
            comment="date the plane's metadata becomes public (UTC); copied from caom2.Plane",
        ),
        sa.Column(
            "metareadgroups",
            sa.Text(),
            nullable=True,
            comment="groups allowed to read the plane's metadata before metaRelease; copied from caom2.Plane",
        ),
        sa.Column(
            "fp",
            Vector(400),
            nullable=False,
            comment="fingerprint: counts per Map-1 node, L2-normalised for cosine similarity",
        ),
        sa.Column(
            "counts",
            postgresql.ARRAY(sa.Integer()),
            nullable=False,
            comment="raw counts of the sampled objects per Map-1 node (400 values)",
        ),
        sa.Column(
            "n_detected", sa.Integer(), nullable=False, comment="objects detected in the image"
        ),
        sa.Column(
            "n_sampled",
            sa.Integer(),
            nullable=False,
            comment="objects sampled, encoded and annotated (<= n_detected)",
        ),
        sa.Column(
            "map2_model_id",
            sa.Integer(),
            nullable=True,
            comment="the Map-2 model that placed the image",
        ),
        sa.Column(
            "map2_node",
            sa.SmallInteger(),
            nullable=True,
            comment="node of the image on Map 2 (0..399)",
        ),
        sa.Column(
            "map2_distance",
            sa.REAL(),
            nullable=True,
            comment="distance of the fingerprint to its Map-2 node",
        ),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="when the fingerprint was computed",
        ),
        sa.CheckConstraint("cardinality(counts) = 400", name=op.f("ck_fingerprint_counts_len")),
        sa.CheckConstraint(
            "n_sampled <= n_detected", name=op.f("ck_fingerprint_sampled_le_detected")
        ),
        sa.ForeignKeyConstraint(
            ["map2_model_id"],
            ["caomai.model.model_id"],
            name=op.f("fk_fingerprint_map2_model_id_model"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["caomai.model.model_id"],
            name=op.f("fk_fingerprint_model_id_model"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("planeid", "model_id", name=op.f("pk_fingerprint")),
        schema="caomai",
        comment="one 400-value fingerprint per image (plane) and model: the weighted histogram of its objects over Map 1",
    )
    op.create_index(
        "ix_fingerprint_fp_hnsw",
        "fingerprint",
        ["fp"],
        unique=False,
        schema="caomai",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"fp": "vector_cosine_ops"},
    )
    op.create_index(
        "ix_fingerprint_map2_node", "fingerprint", ["map2_node"], unique=False, schema="caomai"
    )
    op.create_index(
        "ix_fingerprint_publisherid", "fingerprint", ["publisherid"], unique=False, schema="caomai"
    )
    op.create_table(
        "load_run",
        sa.Column("run_id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("map2_model_id", sa.Integer(), nullable=True),
        sa.Column(
            "params",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["map2_model_id"],
            ["caomai.model.model_id"],
            name=op.f("fk_load_run_map2_model_id_model"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["caomai.model.model_id"],
            name=op.f("fk_load_run_model_id_model"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_load_run")),
        schema="caomai",
        comment="one loader run: which planes, which models, its state",
    )
    op.create_table(
        "map_node",
        sa.Column("model_id", sa.Integer(), nullable=False, comment="model the node belongs to"),
        sa.Column(
            "node_id",
            sa.SmallInteger(),
            nullable=False,
            comment="node number 0..399 (row * grid_cols + col)",
        ),
        sa.Column(
            "grid_row", sa.SmallInteger(), nullable=False, comment="row of the node on the map grid"
        ),
        sa.Column(
            "grid_col",
            sa.SmallInteger(),
            nullable=False,
            comment="column of the node on the map grid",
        ),
        sa.Column(
            "member_count",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="objects (map1) or images (map2) assigned to the node",
        ),
        sa.Column(
            "codebook",
            postgresql.ARRAY(sa.REAL()),
            nullable=True,
            comment="the node's weight vector in the space the map was fitted on",
        ),
        sa.Column(
            "thumbnail",
            sa.LargeBinary(),
            nullable=True,
            comment="PNG of the node's prototype (member nearest the node, or mean)",
        ),
        sa.Column(
            "label",
            sa.Text(),
            nullable=True,
            comment="expert label of the node; every member inherits it",
        ),
        sa.Column(
            "label_source",
            sa.Text(),
            nullable=True,
            comment="who or what set the label (expert name, truth-majority, ...)",
        ),
        sa.Column(
            "labeled_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when the label was set",
        ),
        sa.Column(
            "stats",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=True,
            comment="shape and content statistics of the members (JSON)",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["caomai.model.model_id"],
            name=op.f("fk_map_node_model_id_model"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", "node_id", name=op.f("pk_map_node")),
        schema="caomai",
        comment="the 400 nodes of each map: grid position, members, prototype and expert label",
    )
    op.create_table(
        "load_queue",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("planeid", sa.UUID(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("worker", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("n_detected", sa.Integer(), nullable=True),
        sa.Column("n_sampled", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed')", name=op.f("ck_load_queue_status")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["caomai.load_run.run_id"],
            name=op.f("fk_load_queue_run_id_load_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "planeid", name=op.f("pk_load_queue")),
        schema="caomai",
        comment="per-plane state of a run; workers take planes with FOR UPDATE SKIP LOCKED",
    )
    op.create_index(
        "ix_load_queue_run_status",
        "load_queue",
        ["run_id", "status"],
        unique=False,
        schema="caomai",
    )
