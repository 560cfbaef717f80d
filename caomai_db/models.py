"""Table definitions: the one source of truth for the schema, TAP_SCHEMA and the grants.

Columns are created in lower case (CADC's CAOM2 tables are created unquoted, so PostgreSQL
stores ``planeid``); the camel-case name TAP users see (``planeID``) lives in the column's
``info`` together with its description, unit, UCD and utype. ``tapschema.py`` turns this
metadata into TAP_SCHEMA rows, and the reader role is granted SELECT on exactly the tables
marked ``published``.

Views (``ivoa.ObsCore``, ``caomai.fingerprint_real``) are described here as Table objects in
``VIEWS`` so that TAP_SCHEMA can describe them; their SQL lives in ``sql/``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql as pg

from .config import N_NODES

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: CAOM2 subset created for standalone use (skipped when an archive's caom2 tables exist).
caom2_metadata = sa.MetaData(schema="caom2", naming_convention=NAMING)
#: caomai's own schema.
caomai_metadata = sa.MetaData(schema="caomai", naming_convention=NAMING)
#: Views and other objects whose SQL lives in sql/; described here for TAP_SCHEMA only.
views_metadata = sa.MetaData()

TIMESTAMP = sa.DateTime(timezone=False)


def col(
    tap_name: str,
    type_: Any,
    description: str,
    *args: Any,
    unit: str | None = None,
    ucd: str | None = None,
    utype: str | None = None,
    xtype: str | None = None,
    principal: bool = False,
    std: bool = False,
    indexed: bool = False,
    published: bool = True,
    arraysize: str | None = None,
    **kwargs: Any,
) -> sa.Column:
    """A column whose TAP metadata travels with it."""
    info = {
        "arraysize": arraysize,
        "tap_name": tap_name,
        "description": description,
        "unit": unit,
        "ucd": ucd,
        "utype": utype,
        "xtype": xtype,
        "principal": principal,
        "std": std,
        "indexed": indexed,
        "published": published,
    }
    return sa.Column(tap_name.lower(), type_, *args, info=info, comment=description, **kwargs)


def table(
    metadata: sa.MetaData,
    tap_name: str,
    description: str,
    *columns: Any,
    published: bool = True,
    utype: str | None = None,
    table_type: str = "table",
    **kwargs: Any,
) -> sa.Table:
    schema, name = tap_name.split(".")
    info = {
        "tap_name": tap_name,
        "description": description,
        "published": published,
        "utype": utype,
        "table_type": table_type,
    }
    return sa.Table(
        name.lower(),
        metadata,
        *columns,
        schema=schema.lower(),
        info=info,
        comment=description,
        **kwargs,
    )


def plane_access_columns() -> list[sa.Column]:
    """The columns every plane-scoped caomai table carries, kept in step with caom2.Plane.

    CADC's TAP service hides proprietary rows only in tables that carry these columns, and
    ObsCore users join on ``obs_publisher_did = publisherID``.
    """
    return [
        col(
            "publisherID",
            sa.String(512),
            "publisher identifier of the plane (ObsCore obs_publisher_did)",
            nullable=False,
            ucd="meta.ref.ivoid",
            xtype="uri",
            principal=True,
            indexed=True,
        ),
        col(
            "metaRelease",
            TIMESTAMP,
            "date the plane's metadata becomes public (UTC); copied from caom2.Plane",
            ucd="time.release",
            xtype="timestamp",
        ),
        col(
            "metaReadGroups",
            sa.Text,
            "groups allowed to read the plane's metadata before metaRelease; copied from caom2.Plane",
        ),
    ]


# ---------------------------------------------------------------------------------------------
# caom2: a faithful subset of CAOM 2.4 as CADC publishes it (column names of CADC's `main`).
# ---------------------------------------------------------------------------------------------

observation = table(
    caom2_metadata,
    "caom2.Observation",
    "the main CAOM Observation table",
    col(
        "obsID",
        pg.UUID(as_uuid=True),
        "unique observation identifier",
        primary_key=True,
        xtype="uuid",
        indexed=True,
        utype="caom2:Observation.id",
    ),
    col(
        "observationURI",
        sa.String(512),
        "unique URI for this observation (caom:collection/observationID)",
        nullable=False,
        unique=True,
        xtype="uri",
        principal=True,
        std=True,
        utype="caom2:Observation.uri",
    ),
    col(
        "collection",
        sa.String(64),
        "data collection this observation belongs to",
        nullable=False,
        principal=True,
        std=True,
        indexed=True,
        ucd="meta.id",
        utype="caom2:Observation.collection",
    ),
    col(
        "observationID",
        sa.String(256),
        "collection-specific unique observation identifier",
        nullable=False,
        principal=True,
        std=True,
        indexed=True,
        ucd="meta.id",
        utype="caom2:Observation.observationID",
    ),
    col(
        "algorithm_name",
        sa.String(64),
        "algorithm that defines the observation (exposure for simple observations)",
        nullable=False,
        server_default="exposure",
        utype="caom2:Observation.algorithm.name",
    ),
    col(
        "type",
        sa.String(32),
        "type of data collected (FITS OBSTYPE, e.g. OBJECT, FLAT)",
        principal=True,
        std=True,
        utype="caom2:Observation.type",
    ),
    col(
        "intent",
        sa.String(32),
        "intended purpose of data (science or calibration)",
        std=True,
        utype="caom2:Observation.intent",
    ),
    col(
        "sequenceNumber",
        sa.Integer,
        "sequence number assigned by the observatory",
        utype="caom2:Observation.sequenceNumber",
    ),
    col(
        "metaRelease",
        TIMESTAMP,
        "date the metadata for an observation is public (UTC)",
        xtype="timestamp",
        ucd="time.release",
        utype="caom2:Observation.metaRelease",
    ),
    col(
        "metaReadGroups",
        sa.Text,
        "groups allowed to read the metadata before metaRelease (space-separated URIs)",
        utype="caom2:Observation.metaReadGroups",
    ),
    col(
        "proposal_id",
        sa.String(64),
        "collection-specific unique proposal identifier",
        utype="caom2:Observation.proposal.id",
    ),
    col(
        "proposal_pi",
        sa.String(64),
        "proposal principal investigator",
        utype="caom2:Observation.proposal.pi",
    ),
    col("proposal_title", sa.Text, "proposal title", utype="caom2:Observation.proposal.title"),
    col(
        "target_name",
        sa.String(64),
        "name of intended target",
        principal=True,
        ucd="meta.id;src",
        utype="caom2:Observation.target.name",
    ),
    col(
        "target_type",
        sa.String(64),
        "classification of intended target (field or object)",
        utype="caom2:Observation.target.type",
    ),
    col(
        "telescope_name",
        sa.String(64),
        "name of telescope used to acquire observation",
        principal=True,
        ucd="instr.tel",
        utype="caom2:Observation.telescope.name",
    ),
    col(
        "telescope_geoLocationX",
        sa.Float(53),
        "x component of geocentric location of telescope",
        unit="m",
        utype="caom2:Observation.telescope.geoLocationX",
    ),
    col(
        "telescope_geoLocationY",
        sa.Float(53),
        "y component of geocentric location of telescope",
        unit="m",
        utype="caom2:Observation.telescope.geoLocationY",
    ),
    col(
        "telescope_geoLocationZ",
        sa.Float(53),
        "z component of geocentric location of telescope",
        unit="m",
        utype="caom2:Observation.telescope.geoLocationZ",
    ),
    col(
        "instrument_name",
        sa.String(64),
        "name of instrument used to acquire observation",
        principal=True,
        indexed=True,
        ucd="instr",
        utype="caom2:Observation.instrument.name",
    ),
    col(
        "instrument_keywords",
        sa.Text,
        "instrument keywords (separated by |)",
        utype="caom2:Observation.instrument.keywords",
    ),
    col(
        "environment_seeing",
        sa.Float(53),
        "atmospheric seeing (FWHM)",
        unit="arcsec",
        ucd="instr.obsty.seeing",
        utype="caom2:Observation.environment.seeing",
    ),
    col(
        "environment_elevation",
        sa.Float(53),
        "elevation above horizon (0 to 90)",
        unit="deg",
        ucd="pos.az.alt",
        utype="caom2:Observation.environment.elevation",
    ),
    col(
        "environment_photometric",
        sa.Integer,
        "conditions were photometric (0=false, 1=true)",
        utype="caom2:Observation.environment.photometric",
    ),
    col(
        "lastModified",
        TIMESTAMP,
        "timestamp of last modification of this row",
        nullable=False,
        server_default=sa.text("now()"),
        xtype="timestamp",
        utype="caom2:Observation.lastModified",
    ),
    col(
        "maxLastModified",
        TIMESTAMP,
        "timestamp of last modification of this observation",
        nullable=False,
        server_default=sa.text("now()"),
        xtype="timestamp",
        utype="caom2:Observation.maxLastModified",
    ),
    sa.UniqueConstraint("collection", "observationid"),
    utype="caom2:Observation",
)

plane = table(
    caom2_metadata,
    "caom2.Plane",
    "the products of the observation",
    col(
        "planeID",
        pg.UUID(as_uuid=True),
        "unique plane identifier",
        primary_key=True,
        xtype="uuid",
        indexed=True,
        utype="caom2:Plane.id",
    ),
    col(
        "obsID",
        pg.UUID(as_uuid=True),
        "foreign key to caom2.Observation",
        sa.ForeignKey("caom2.observation.obsid", ondelete="CASCADE"),
        nullable=False,
        xtype="uuid",
        indexed=True,
    ),
    col(
        "planeURI",
        sa.String(512),
        "unique internal URI for this product (caom:collection/observationID/productID)",
        nullable=False,
        unique=True,
        xtype="uri",
        principal=True,
        std=True,
        indexed=True,
        utype="caom2:Plane.uri",
    ),
    col(
        "publisherID",
        sa.String(512),
        "unique global identifier for this product (IVOA publisher DID)",
        nullable=False,
        unique=True,
        xtype="uri",
        principal=True,
        std=True,
        indexed=True,
        ucd="meta.ref.ivoid",
        utype="caom2:Plane.publisherID",
    ),
    col(
        "productID",
        sa.String(64),
        "name of this product",
        nullable=False,
        principal=True,
        std=True,
        ucd="meta.id",
        utype="caom2:Plane.productID",
    ),
    col(
        "creatorID",
        sa.String(512),
        "unique identifier assigned by the creator",
        xtype="uri",
        utype="caom2:Plane.creatorID",
    ),
    col(
        "metaRelease",
        TIMESTAMP,
        "date the metadata for a plane is public (UTC)",
        xtype="timestamp",
        ucd="time.release",
        indexed=True,
        utype="caom2:Plane.metaRelease",
    ),
    col(
        "dataRelease",
        TIMESTAMP,
        "date the data for a plane is public (UTC)",
        xtype="timestamp",
        ucd="time.release",
        utype="caom2:Plane.dataRelease",
    ),
    col(
        "metaReadGroups",
        sa.Text,
        "groups allowed to read the metadata before metaRelease (space-separated URIs)",
        utype="caom2:Plane.metaReadGroups",
    ),
    col(
        "dataReadGroups",
        sa.Text,
        "groups allowed to read the data before dataRelease (space-separated URIs)",
        utype="caom2:Plane.dataReadGroups",
    ),
    col(
        "dataProductType",
        sa.String(64),
        "IVOA ObsCore data product type (image, cube, ...)",
        principal=True,
        std=True,
        ucd="meta.code.class",
        utype="caom2:Plane.dataProductType",
    ),
    col(
        "calibrationLevel",
        sa.Integer,
        "IVOA ObsCore calibration level (0,1,2,3,4)",
        principal=True,
        std=True,
        ucd="meta.code;obs.calib",
        utype="caom2:Plane.calibrationLevel",
    ),
    col(
        "provenance_name",
        sa.String(64),
        "name of the process that created this plane",
        utype="caom2:Plane.provenance.name",
    ),
    col(
        "provenance_version",
        sa.String(64),
        "version of the process/software",
        utype="caom2:Plane.provenance.version",
    ),
    col(
        "provenance_runID",
        sa.String(256),
        "identifier of the run that created this plane",
        utype="caom2:Plane.provenance.runID",
    ),
    col(
        "provenance_lastExecuted",
        TIMESTAMP,
        "date this process was last executed",
        xtype="timestamp",
        utype="caom2:Plane.provenance.lastExecuted",
    ),
    col(
        "quality_flag",
        sa.String(16),
        "flag describing the data quality (possible values: junk)",
        utype="caom2:Plane.quality.flag",
    ),
    col(
        "position_bounds",
        pg.ARRAY(sa.Float(53)),
        "positional coverage of the data (ICRS polygon: ra1, dec1, ra2, dec2, ...)",
        unit="deg",
        xtype="polygon",
        ucd="pos.outline;obs.field",
        utype="caom2:Plane.position.bounds",
    ),
    col(
        "position_bounds_center",
        pg.ARRAY(sa.Float(53)),
        "centre of the positional coverage (ICRS point: ra, dec)",
        unit="deg",
        xtype="point",
        arraysize="2",
        ucd="pos.eq;meta.main",
        utype="caom2:Plane.position.bounds.center",
    ),
    col(
        "position_bounds_area",
        sa.Float(53),
        "area of the positional coverage",
        unit="deg**2",
        utype="caom2:Plane.position.bounds.area",
    ),
    col(
        "position_bounds_size",
        sa.Float(53),
        "size of the polygon bounds (diameter of minimum spanning circle)",
        unit="deg",
        ucd="phys.angSize;instr.fov",
        utype="caom2:Plane.position.bounds.size",
    ),
    col(
        "position_dimension_naxis1",
        sa.BigInteger,
        "dimensions (number of pixels) along one spatial axis",
        utype="caom2:Plane.position.dimension.naxis1",
    ),
    col(
        "position_dimension_naxis2",
        sa.BigInteger,
        "dimensions (number of pixels) along other spatial axis",
        utype="caom2:Plane.position.dimension.naxis2",
    ),
    col(
        "position_resolution",
        sa.Float(53),
        "median spatial resolution (FWHM)",
        unit="arcsec",
        ucd="pos.angResolution",
        utype="caom2:Plane.position.resolution",
    ),
    col(
        "position_sampleSize",
        sa.Float(53),
        "median sample (pixel) size on spatial axes",
        unit="arcsec",
        ucd="instr.pixel",
        utype="caom2:Plane.position.sampleSize",
    ),
    col(
        "energy_emBand",
        sa.String(32),
        "generic name for energy band (Radio, Millimeter, Infrared, Optical, UV, ...)",
        utype="caom2:Plane.energy.emBand",
    ),
    col(
        "energy_bounds_lower",
        sa.Float(53),
        "lower bound on energy axis (barycentric wavelength)",
        unit="m",
        ucd="em.wl;stat.min",
        utype="caom2:Plane.energy.bounds.lower",
    ),
    col(
        "energy_bounds_upper",
        sa.Float(53),
        "upper bound on energy axis (barycentric wavelength)",
        unit="m",
        ucd="em.wl;stat.max",
        utype="caom2:Plane.energy.bounds.upper",
    ),
    col(
        "energy_bounds_width",
        sa.Float(53),
        "width of the energy bounds",
        unit="m",
        utype="caom2:Plane.energy.bounds.width",
    ),
    col(
        "energy_bandpassName",
        sa.String(64),
        "collection-specific name for energy band (e.g. filter name)",
        principal=True,
        indexed=True,
        ucd="instr.bandpass",
        utype="caom2:Plane.energy.bandpassName",
    ),
    col(
        "energy_resolvingPower",
        sa.Float(53),
        "median spectral resolving power per pixel",
        ucd="spect.resolution",
        utype="caom2:Plane.energy.resolvingPower",
    ),
    col(
        "time_bounds_lower",
        sa.Float(53),
        "lower bound on time axis (Modified Julian Day)",
        unit="d",
        ucd="time.start;obs.exposure",
        indexed=True,
        utype="caom2:Plane.time.bounds.lower",
    ),
    col(
        "time_bounds_upper",
        sa.Float(53),
        "upper bound on time axis (Modified Julian Day)",
        unit="d",
        ucd="time.end;obs.exposure",
        utype="caom2:Plane.time.bounds.upper",
    ),
    col(
        "time_bounds_width",
        sa.Float(53),
        "width of the time bounds",
        unit="d",
        utype="caom2:Plane.time.bounds.width",
    ),
    col(
        "time_exposure",
        sa.Float(53),
        "median exposure time per pixel",
        unit="s",
        ucd="time.duration;obs.exposure",
        utype="caom2:Plane.time.exposure",
    ),
    col(
        "time_dimension",
        sa.BigInteger,
        "number of samples (pixels) along the time axis",
        utype="caom2:Plane.time.dimension",
    ),
    col(
        "polarization_states",
        sa.String(34),
        "polarization states present in the data",
        utype="caom2:Plane.polarization.states",
    ),
    col(
        "lastModified",
        TIMESTAMP,
        "timestamp of last modification of this row",
        nullable=False,
        server_default=sa.text("now()"),
        xtype="timestamp",
        utype="caom2:Plane.lastModified",
    ),
    col(
        "maxLastModified",
        TIMESTAMP,
        "timestamp of last modification of this plane",
        nullable=False,
        server_default=sa.text("now()"),
        xtype="timestamp",
        utype="caom2:Plane.maxLastModified",
    ),
    utype="caom2:Plane",
)

artifact = table(
    caom2_metadata,
    "caom2.Artifact",
    "physical data artifacts (e.g. files)",
    col(
        "artifactID",
        pg.UUID(as_uuid=True),
        "unique artifact identifier",
        primary_key=True,
        xtype="uuid",
        indexed=True,
        utype="caom2:Artifact.id",
    ),
    col(
        "planeID",
        pg.UUID(as_uuid=True),
        "foreign key to caom2.Plane",
        sa.ForeignKey("caom2.plane.planeid", ondelete="CASCADE"),
        nullable=False,
        xtype="uuid",
        indexed=True,
    ),
    col(
        "uri",
        sa.String(1024),
        "external URI for the physical artifact (file)",
        nullable=False,
        unique=True,
        xtype="uri",
        principal=True,
        std=True,
        ucd="meta.ref.uri",
        utype="caom2:Artifact.uri",
    ),
    col(
        "productType",
        sa.String(64),
        "product type (science, calibration, auxiliary, preview, info)",
        nullable=False,
        principal=True,
        std=True,
        utype="caom2:Artifact.productType",
    ),
    col(
        "releaseType",
        sa.String(16),
        "release type (data or meta)",
        nullable=False,
        server_default="data",
        utype="caom2:Artifact.releaseType",
    ),
    col(
        "contentType",
        sa.String(128),
        "content-type of the physical artifact (MIME type)",
        principal=True,
        ucd="meta.code.mime",
        utype="caom2:Artifact.contentType",
    ),
    col(
        "contentLength",
        sa.BigInteger,
        "size of the physical artifact",
        unit="byte",
        principal=True,
        ucd="phys.size;meta.file",
        utype="caom2:Artifact.contentLength",
    ),
    col(
        "contentChecksum",
        sa.String(136),
        "checksum of the content (URI of the form algorithm:value)",
        xtype="uri",
        utype="caom2:Artifact.contentChecksum",
    ),
    col(
        "metaRelease",
        TIMESTAMP,
        "date the metadata for the artifact is public (UTC); copied from the plane",
        xtype="timestamp",
        ucd="time.release",
    ),
    col(
        "lastModified",
        TIMESTAMP,
        "timestamp of last modification of this row",
        nullable=False,
        server_default=sa.text("now()"),
        xtype="timestamp",
        utype="caom2:Artifact.lastModified",
    ),
    utype="caom2:Artifact",
)

sa.Index("ix_plane_obsid", plane.c.obsid)
sa.Index("ix_plane_metarelease", plane.c.metarelease)
sa.Index("ix_plane_energy_bandpassname", plane.c.energy_bandpassname)
sa.Index("ix_plane_time_bounds_lower", plane.c.time_bounds_lower)
sa.Index("ix_artifact_planeid", artifact.c.planeid)
sa.Index("ix_observation_instrument_name", observation.c.instrument_name)

# ---------------------------------------------------------------------------------------------
# caomai: models, maps, fingerprints, per-object annotations, loader bookkeeping.
# ---------------------------------------------------------------------------------------------

meta = table(
    caomai_metadata,
    "caomai.meta",
    "installation facts recorded by the migrations (what they created, so that downgrade removes only that)",
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    published=False,
)

model = table(
    caomai_metadata,
    "caomai.model",
    "versioned models: Map 1 (encoder + 20x20 map of object kinds) and Map 2 (20x20 map of image kinds)",
    col(
        "model_id",
        sa.Integer,
        "model identifier",
        sa.Identity(),
        primary_key=True,
        principal=True,
        indexed=True,
        ucd="meta.id",
    ),
    col(
        "name",
        sa.Text,
        "unique model name, e.g. map1-2026-11-22",
        nullable=False,
        unique=True,
        principal=True,
    ),
    col(
        "kind",
        sa.Text,
        "map1 (object map with its encoder) or map2 (image map over fingerprints)",
        sa.CheckConstraint("kind IN ('map1', 'map2')", name="kind"),
        nullable=False,
        principal=True,
    ),
    col(
        "parent_id",
        sa.Integer,
        "for a map2 model: the map1 model whose fingerprints it was trained on",
        sa.ForeignKey("caomai.model.model_id", ondelete="RESTRICT"),
    ),
    col("grid_rows", sa.SmallInteger, "rows of the map grid", nullable=False, server_default="20"),
    col(
        "grid_cols", sa.SmallInteger, "columns of the map grid", nullable=False, server_default="20"
    ),
    col("dim", sa.Integer, "dimension of the vectors the map is fitted on", nullable=False),
    col(
        "parameters",
        pg.JSONB,
        "training parameters and figures (JSON)",
        nullable=False,
        server_default=sa.text("'{}'::jsonb"),
    ),
    col("artifact_uri", sa.Text, "where the model file lies"),
    col(
        "artifact_checksum",
        sa.Text,
        "checksum of the model file (sha256:hex); loading refuses a mismatch",
    ),
    col(
        "active",
        sa.Boolean,
        "the model the ADQL functions resolve references with (one per kind)",
        nullable=False,
        server_default=sa.false(),
        principal=True,
    ),
    col(
        "created_at",
        sa.DateTime(timezone=True),
        "when the model was registered",
        nullable=False,
        server_default=sa.text("now()"),
        xtype="timestamp",
    ),
    col("description", sa.Text, "free text"),
)
sa.Index("ux_model_active_kind", model.c.kind, unique=True, postgresql_where=model.c.active)

map_node_store = table(
    caomai_metadata,
    "caomai.map_node_store",
    "what training wrote for the 400 nodes of each map (published through the caomai.map_node"
    " view, which recomputes every member figure from public planes only)",
    col(
        "model_id",
        sa.Integer,
        "model the node belongs to",
        sa.ForeignKey("caomai.model.model_id", ondelete="CASCADE"),
        primary_key=True,
        principal=True,
    ),
    col(
        "node_id",
        sa.SmallInteger,
        "node number 0..399 (row * grid_cols + col)",
        sa.CheckConstraint(f"node_id >= 0 AND node_id < {N_NODES}", name="node_id"),
        primary_key=True,
        principal=True,
        ucd="meta.id",
    ),
    col(
        "grid_row",
        sa.SmallInteger,
        "row of the node on the map grid",
        nullable=False,
        principal=True,
    ),
    col(
        "grid_col",
        sa.SmallInteger,
        "column of the node on the map grid",
        nullable=False,
        principal=True,
    ),
    col(
        "member_count",
        sa.BigInteger,
        "objects (map1) or images (map2) assigned to the node",
        nullable=False,
        server_default="0",
        principal=True,
        ucd="meta.number",
    ),
    col(
        "codebook", pg.ARRAY(sa.REAL), "the node's weight vector in the space the map was fitted on"
    ),
    col(
        "thumbnail",
        sa.LargeBinary,
        "PNG of the node's prototype (member nearest the node, or mean)",
    ),
    col("label", sa.Text, "expert label of the node; every member inherits it", principal=True),
    col("label_source", sa.Text, "who or what set the label (expert name, truth-majority, ...)"),
    col("labeled_at", sa.DateTime(timezone=True), "when the label was set", xtype="timestamp"),
    col("stats", pg.JSONB, "shape and content statistics of the members (JSON)"),
    col(
        "thumbnail_planeid",
        pg.UUID(as_uuid=True),
        "the plane the thumbnail was cut from: the view shows the thumbnail only while it is public",
    ),
    published=False,
)

fingerprint = table(
    caomai_metadata,
    "caomai.fingerprint",
    "one 400-value fingerprint per image (plane) and model: the weighted histogram of its objects over Map 1",
    col(
        "planeID",
        pg.UUID(as_uuid=True),
        "the image (caom2.Plane.planeID)",
        primary_key=True,
        nullable=False,
        xtype="uuid",
        principal=True,
        indexed=True,
        ucd="meta.id;meta.main",
    ),
    col(
        "model_id",
        sa.Integer,
        "the Map-1 model that made the fingerprint",
        sa.ForeignKey("caomai.model.model_id", ondelete="CASCADE"),
        primary_key=True,
        principal=True,
    ),
    *plane_access_columns(),
    col(
        "fp",
        Vector(N_NODES),
        "fingerprint: counts per Map-1 node, L2-normalised for cosine similarity",
        nullable=False,
        principal=True,
        ucd="stat.histogram",
    ),
    col(
        "counts",
        pg.ARRAY(sa.Integer),
        "raw counts of the sampled objects per Map-1 node (400 values)",
        nullable=False,
        ucd="meta.number",
        arraysize=str(N_NODES),
    ),
    col(
        "n_detected",
        sa.Integer,
        "objects detected in the image",
        nullable=False,
        principal=True,
        ucd="meta.number;src",
    ),
    col(
        "n_sampled",
        sa.Integer,
        "objects sampled, encoded and annotated (<= n_detected)",
        nullable=False,
        ucd="meta.number",
    ),
    col(
        "map2_model_id",
        sa.Integer,
        "the Map-2 model that placed the image",
        sa.ForeignKey("caomai.model.model_id", ondelete="SET NULL"),
    ),
    col(
        "map2_node",
        sa.SmallInteger,
        "node of the image on Map 2 (0..399)",
        principal=True,
        indexed=True,
        ucd="meta.code.class",
    ),
    col(
        "map2_distance",
        sa.REAL,
        "distance of the fingerprint to its Map-2 node",
        ucd="stat.fit.residual",
    ),
    col(
        "computed_at",
        sa.DateTime(timezone=True),
        "when the fingerprint was computed",
        nullable=False,
        server_default=sa.text("now()"),
        xtype="timestamp",
    ),
    sa.CheckConstraint("n_sampled <= n_detected", name="sampled_le_detected"),
    sa.CheckConstraint(f"cardinality(counts) = {N_NODES}", name="counts_len"),
)
sa.Index("ix_fingerprint_map2_node", fingerprint.c.map2_node)
# the caomai.map_node view's per-node lookups: one node's members in distance order (0004)
sa.Index(
    "ix_fingerprint_map2_placement",
    fingerprint.c.map2_model_id,
    fingerprint.c.map2_node,
    fingerprint.c.map2_distance,
)
sa.Index("ix_fingerprint_publisherid", fingerprint.c.publisherid)
sa.Index(
    "ix_fingerprint_fp_hnsw",
    fingerprint.c.fp,
    postgresql_using="hnsw",
    postgresql_with={"m": 16, "ef_construction": 64},
    postgresql_ops={"fp": "vector_cosine_ops"},
)

#: Hash partitions of object_annotation (by planeID, the key Citus would distribute on).
ANNOTATION_PARTITIONS = 16

object_annotation = table(
    caomai_metadata,
    "caomai.object_annotation",
    "every sampled detected object: position, flux, shape and its Map-1 node",
    col(
        "planeID",
        pg.UUID(as_uuid=True),
        "the image (caom2.Plane.planeID)",
        nullable=False,
        xtype="uuid",
        principal=True,
        indexed=True,
        ucd="meta.id",
    ),
    col(
        "model_id",
        sa.Integer,
        "the Map-1 model that placed the object",
        nullable=False,
        principal=True,
    ),
    col(
        "object_id",
        sa.Integer,
        "object number within the image",
        nullable=False,
        principal=True,
        ucd="meta.id;src",
    ),
    *plane_access_columns(),
    col(
        "extension",
        sa.SmallInteger,
        "FITS HDU index the object was detected in",
        nullable=False,
        principal=True,
    ),
    col("extname", sa.Text, "EXTNAME of that HDU (CCD name), when present"),
    col(
        "x",
        sa.REAL,
        "x pixel coordinate of the centroid (0-based, FITS axis 1)",
        unit="pix",
        principal=True,
        ucd="pos.cartesian.x;instr.det",
    ),
    col(
        "y",
        sa.REAL,
        "y pixel coordinate of the centroid (0-based, FITS axis 2)",
        unit="pix",
        principal=True,
        ucd="pos.cartesian.y;instr.det",
    ),
    col(
        "ra",
        sa.Float(53),
        "right ascension of the centroid (ICRS), when the HDU has a WCS",
        unit="deg",
        principal=True,
        ucd="pos.eq.ra;meta.main",
    ),
    col(
        "dec",
        sa.Float(53),
        "declination of the centroid (ICRS), when the HDU has a WCS",
        unit="deg",
        principal=True,
        ucd="pos.eq.dec;meta.main",
    ),
    col(
        "flux",
        sa.REAL,
        "background-subtracted flux within the detection footprint",
        unit="adu",
        principal=True,
        ucd="phot.flux",
    ),
    col("a", sa.REAL, "semi-major axis (second moments)", unit="pix", ucd="phys.size.smajAxis"),
    col("b", sa.REAL, "semi-minor axis (second moments)", unit="pix", ucd="phys.size.sminAxis"),
    col(
        "theta",
        sa.REAL,
        "position angle of the major axis from the x axis",
        unit="rad",
        ucd="pos.posAng",
    ),
    col("peak", sa.REAL, "peak pixel value above background", unit="adu", ucd="phot.flux;stat.max"),
    col("flag", sa.SmallInteger, "sep extraction flags (blended, truncated, ...)", ucd="meta.code"),
    col(
        "map1_node",
        sa.SmallInteger,
        "node of the object on Map 1 (0..399)",
        nullable=False,
        principal=True,
        indexed=True,
        ucd="meta.code.class",
    ),
    col(
        "map1_distance",
        sa.REAL,
        "distance of the object's embedding to its Map-1 node",
        ucd="stat.fit.residual",
    ),
    # adaptive moments (loaders/moments.py, migration 0003): NULL where HSM cannot measure
    # the object (a one-pixel cosmic ray, a blend, a noise peak)
    col(
        "m_sigma",
        sa.REAL,
        "adaptive-moment Gaussian sigma, det(M)^(1/4) (GalSim HSM); FWHM = 2.355 m_sigma for a star",
        unit="pix",
        ucd="phys.size.radius",
    ),
    col(
        "m_e1",
        sa.REAL,
        "adaptive-moment ellipticity (a^2-b^2)/(a^2+b^2) times cos(2 angle from the x axis)",
        ucd="src.ellipticity",
    ),
    col(
        "m_e2",
        sa.REAL,
        "adaptive-moment ellipticity (a^2-b^2)/(a^2+b^2) times sin(2 angle from the x axis)",
        ucd="src.ellipticity",
    ),
    col(
        "m_rho4",
        sa.REAL,
        "weighted radial fourth moment: 2 for a Gaussian, lower for a flat or ring-like"
        " (defocused) profile, higher for a cuspy one",
        ucd="src.morph.param",
    ),
    col(
        "snr",
        sa.REAL,
        "signal-to-noise ratio of the brightest pixel near the centre",
        ucd="stat.snr",
    ),
    sa.PrimaryKeyConstraint("planeid", "model_id", "object_id"),
    postgresql_partition_by="HASH (planeid)",
)
sa.Index(
    "ix_object_annotation_model_node", object_annotation.c.model_id, object_annotation.c.map1_node
)

load_run = table(
    caomai_metadata,
    "caomai.load_run",
    "one loader run: which planes, which models, its state",
    sa.Column("run_id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("caomai.model.model_id", ondelete="CASCADE")),
    sa.Column(
        "map2_model_id", sa.Integer, sa.ForeignKey("caomai.model.model_id", ondelete="SET NULL")
    ),
    sa.Column("params", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("status", sa.Text, nullable=False, server_default="open"),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
    ),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    published=False,
)

load_queue = table(
    caomai_metadata,
    "caomai.load_queue",
    "per-plane state of a run; workers take planes with FOR UPDATE SKIP LOCKED",
    sa.Column(
        "run_id",
        sa.Integer,
        sa.ForeignKey("caomai.load_run.run_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("planeid", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("worker", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("n_detected", sa.Integer),
    sa.Column("n_sampled", sa.Integer),
    sa.Column("error", sa.Text),
    sa.CheckConstraint("status IN ('pending', 'running', 'done', 'failed')", name="status"),
    published=False,
)
sa.Index("ix_load_queue_run_status", load_queue.c.run_id, load_queue.c.status)

# ---------------------------------------------------------------------------------------------
# Views (SQL in sql/views.sql), described for TAP_SCHEMA.
# ---------------------------------------------------------------------------------------------

obscore = table(
    views_metadata,
    "ivoa.ObsCore",
    "IVOA ObsCore 1.1 view of the CAOM2 science planes (calibration levels 0-4)",
    col(
        "dataproduct_type",
        sa.String(64),
        "data product (file content) primary type",
        ucd="meta.code.class",
        utype="obscore:ObsDataset.dataProductType",
        principal=True,
        std=True,
    ),
    col(
        "calib_level",
        sa.Integer,
        "calibration level of the observation: in {0, 1, 2, 3, 4}",
        ucd="meta.code;obs.calib",
        utype="obscore:ObsDataset.calibLevel",
        principal=True,
        std=True,
    ),
    col(
        "obs_collection",
        sa.String(64),
        "name of the data collection",
        ucd="meta.id",
        utype="obscore:DataID.Collection",
        principal=True,
        std=True,
    ),
    col(
        "facility_name",
        sa.String(64),
        "the name of the facility used for the observation",
        ucd="meta.id;instr.tel",
        utype="obscore:Provenance.ObsConfig.Facility.name",
        principal=True,
        std=True,
    ),
    col(
        "instrument_name",
        sa.String(64),
        "the name of the instrument used for the observation",
        ucd="meta.id;instr",
        utype="obscore:Provenance.ObsConfig.Instrument.name",
        principal=True,
        std=True,
    ),
    col(
        "obs_id",
        sa.String(256),
        "internal ID given by the ObsTAP service",
        ucd="meta.id",
        utype="obscore:DataID.observationID",
        principal=True,
        std=True,
    ),
    col(
        "obs_publisher_did",
        sa.String(512),
        "ID for the Dataset given by the publisher",
        ucd="meta.ref.ivoid",
        utype="obscore:Curation.PublisherDID",
        principal=True,
        std=True,
        xtype="uri",
    ),
    col(
        "obs_release_date",
        TIMESTAMP,
        "date the data is public",
        ucd="time.release",
        utype="obscore:Curation.releaseDate",
        std=True,
        xtype="timestamp",
    ),
    col(
        "access_url",
        sa.Text,
        "URL used to access dataset",
        ucd="meta.ref.url",
        utype="obscore:Access.Reference",
        principal=True,
        std=True,
    ),
    col(
        "access_format",
        sa.Text,
        "content format of the dataset",
        ucd="meta.code.mime",
        utype="obscore:Access.Format",
        principal=True,
        std=True,
    ),
    col(
        "access_estsize",
        sa.BigInteger,
        "estimated size of dataset",
        unit="kbyte",
        ucd="phys.size;meta.file",
        utype="obscore:Access.Size",
        principal=True,
        std=True,
    ),
    col(
        "target_name",
        sa.String(64),
        "object of interest",
        ucd="meta.id;src",
        utype="obscore:Target.Name",
        principal=True,
        std=True,
    ),
    col(
        "s_ra",
        sa.Float(53),
        "central Spatial Position in ICRS Right ascension",
        unit="deg",
        ucd="pos.eq.ra",
        utype="obscore:Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1",
        principal=True,
        std=True,
    ),
    col(
        "s_dec",
        sa.Float(53),
        "central Spatial Position in ICRS Declination",
        unit="deg",
        ucd="pos.eq.dec",
        utype="obscore:Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C2",
        principal=True,
        std=True,
    ),
    col(
        "s_fov",
        sa.Float(53),
        "estimated size of the covered region as the diameter of a containing circle",
        unit="deg",
        ucd="phys.angSize;instr.fov",
        utype="obscore:Char.SpatialAxis.Coverage.Bounds.Extent.diameter",
        principal=True,
        std=True,
    ),
    col(
        "s_region",
        pg.ARRAY(sa.Float(53)),
        "sky region covered by the data product (expressed in ICRS frame)",
        unit="deg",
        ucd="pos.outline;obs.field",
        xtype="polygon",
        utype="obscore:Char.SpatialAxis.Coverage.Support.Area",
        principal=True,
        std=True,
    ),
    col(
        "s_resolution",
        sa.Float(53),
        "spatial resolution of data as FWHM of PSF",
        unit="arcsec",
        ucd="pos.angResolution",
        utype="obscore:Char.SpatialAxis.Resolution.Refval.value",
        principal=True,
        std=True,
    ),
    col(
        "s_xel1",
        sa.BigInteger,
        "number of elements along the first coordinate of the spatial axis",
        ucd="meta.number",
        utype="obscore:Char.SpatialAxis.numBins1",
        std=True,
    ),
    col(
        "s_xel2",
        sa.BigInteger,
        "number of elements along the second coordinate of the spatial axis",
        ucd="meta.number",
        utype="obscore:Char.SpatialAxis.numBins2",
        std=True,
    ),
    col(
        "t_min",
        sa.Float(53),
        "start time in MJD",
        unit="d",
        ucd="time.start;obs.exposure",
        utype="obscore:Char.TimeAxis.Coverage.Bounds.Limits.StartTime",
        principal=True,
        std=True,
    ),
    col(
        "t_max",
        sa.Float(53),
        "stop time in MJD",
        unit="d",
        ucd="time.end;obs.exposure",
        utype="obscore:Char.TimeAxis.Coverage.Bounds.Limits.StopTime",
        principal=True,
        std=True,
    ),
    col(
        "t_exptime",
        sa.Float(53),
        "total exposure time",
        unit="s",
        ucd="time.duration;obs.exposure",
        utype="obscore:Char.TimeAxis.Coverage.Support.Extent",
        principal=True,
        std=True,
    ),
    col(
        "t_resolution",
        sa.Float(53),
        "temporal resolution FWHM",
        unit="s",
        ucd="time.resolution",
        utype="obscore:Char.TimeAxis.Resolution.Refval.value",
        principal=True,
        std=True,
    ),
    col(
        "t_xel",
        sa.BigInteger,
        "number of elements along the time axis",
        ucd="meta.number",
        utype="obscore:Char.TimeAxis.numBins",
        std=True,
    ),
    col(
        "em_min",
        sa.Float(53),
        "start in spectral coordinates",
        unit="m",
        ucd="em.wl;stat.min",
        utype="obscore:Char.SpectralAxis.Coverage.Bounds.Limits.LoLimit",
        principal=True,
        std=True,
    ),
    col(
        "em_max",
        sa.Float(53),
        "stop in spectral coordinates",
        unit="m",
        ucd="em.wl;stat.max",
        utype="obscore:Char.SpectralAxis.Coverage.Bounds.Limits.HiLimit",
        principal=True,
        std=True,
    ),
    col(
        "em_res_power",
        sa.Float(53),
        "spectral resolving power",
        ucd="spect.resolution",
        utype="obscore:Char.SpectralAxis.Resolution.ResolPower.refVal",
        principal=True,
        std=True,
    ),
    col(
        "em_xel",
        sa.BigInteger,
        "number of elements along the spectral axis",
        ucd="meta.number",
        utype="obscore:Char.SpectralAxis.numBins",
        std=True,
    ),
    col(
        "em_ucd",
        sa.Text,
        "nature of the spectral axis",
        ucd="meta.ucd",
        utype="obscore:Char.SpectralAxis.ucd",
        std=True,
    ),
    col(
        "pol_states",
        sa.String(34),
        "list of polarization states or NULL if not applicable",
        ucd="meta.code;phys.polarization",
        utype="obscore:Char.PolarizationAxis.stateList",
        principal=True,
        std=True,
    ),
    col(
        "pol_xel",
        sa.BigInteger,
        "number of polarization samples",
        ucd="meta.number",
        utype="obscore:Char.PolarizationAxis.numBins",
        std=True,
    ),
    col(
        "o_ucd",
        sa.Text,
        "UCD of observable (e.g. phot.flux.density, phot.count, etc.)",
        ucd="meta.ucd",
        utype="obscore:Char.ObservableAxis.ucd",
        principal=True,
        std=True,
    ),
    col(
        "core_id",
        pg.UUID(as_uuid=True),
        "primary key of the row: caom2.Plane.planeID",
        xtype="uuid",
    ),
    col(
        "planeID",
        pg.UUID(as_uuid=True),
        "caom2.Plane.planeID of the product (join key to caom2 and caomai)",
        xtype="uuid",
        indexed=True,
    ),
    col(
        "metaRelease",
        TIMESTAMP,
        "date the metadata is public (UTC)",
        xtype="timestamp",
        ucd="time.release",
    ),
    table_type="view",
    utype="ivo://ivoa.net/std/ObsCore#core-1.1",
)

fingerprint_real = table(
    views_metadata,
    "caomai.fingerprint_real",
    "caomai.fingerprint with the fingerprint as real[]: for TAP services that cannot serialise a pgvector column (CADC, DaCHS)",
    col(
        "planeID",
        pg.UUID(as_uuid=True),
        "the image (caom2.Plane.planeID)",
        xtype="uuid",
        principal=True,
        ucd="meta.id;meta.main",
    ),
    col("model_id", sa.Integer, "the Map-1 model that made the fingerprint", principal=True),
    *plane_access_columns(),
    col(
        "fp",
        pg.ARRAY(sa.REAL),
        "fingerprint as a 400-element float array (L2-normalised)",
        principal=True,
        ucd="stat.histogram",
        arraysize=str(N_NODES),
    ),
    col(
        "n_detected",
        sa.Integer,
        "objects detected in the image",
        principal=True,
        ucd="meta.number;src",
    ),
    col("n_sampled", sa.Integer, "objects sampled, encoded and annotated", ucd="meta.number"),
    col(
        "map2_node",
        sa.SmallInteger,
        "node of the image on Map 2 (0..399)",
        principal=True,
        ucd="meta.code.class",
    ),
    col(
        "map2_distance",
        sa.REAL,
        "distance of the fingerprint to its Map-2 node",
        ucd="stat.fit.residual",
    ),
    table_type="view",
    published=False,
)

map_node = table(
    views_metadata,
    "caomai.map_node",
    "the 400 nodes of each map: grid position, members, prototype and expert label; every member"
    " figure counts public planes only, recomputed at query time",
    col("model_id", sa.Integer, "model the node belongs to", principal=True, indexed=True),
    col(
        "node_id",
        sa.SmallInteger,
        "node number 0..399 (row * grid_cols + col)",
        principal=True,
        indexed=True,
        ucd="meta.id",
    ),
    col("grid_row", sa.SmallInteger, "row of the node on the map grid", principal=True),
    col("grid_col", sa.SmallInteger, "column of the node on the map grid", principal=True),
    col(
        "member_count",
        sa.BigInteger,
        "map2: public images placed on the node now; map1: training cutouts (all from planes"
        " public when the map was trained) in the node",
        principal=True,
        ucd="meta.number",
    ),
    col(
        "codebook",
        pg.ARRAY(sa.REAL),
        "the node's weight vector in the space the map was fitted on (fitted on public planes only)",
    ),
    col(
        "thumbnail",
        sa.LargeBinary,
        "PNG of the node's prototype (the public member nearest the node); NULL once that plane is"
        " not public",
    ),
    col("label", sa.Text, "expert label of the node; every member inherits it", principal=True),
    col("label_source", sa.Text, "who or what set the label (expert name, truth-majority, ...)"),
    col("labeled_at", sa.DateTime(timezone=True), "when the label was set", xtype="timestamp"),
    col(
        "stats",
        pg.JSONB,
        "statistics of the members (JSON); for map2 members, nearest_members (planeIDs) and"
        " distance_mean are over public planes, recomputed at query time",
    ),
    table_type="view",
)

#: Joins TOPCAT shows: (from table, from column(s)) -> (target table, target column(s)).
FOREIGN_KEYS: list[tuple[str, tuple[str, ...], str, tuple[str, ...], str]] = [
    ("caom2.Plane", ("obsID",), "caom2.Observation", ("obsID",), "planes of an observation"),
    ("caom2.Artifact", ("planeID",), "caom2.Plane", ("planeID",), "files of a plane"),
    ("caomai.fingerprint", ("planeID",), "caom2.Plane", ("planeID",), "fingerprint of a plane"),
    ("caomai.fingerprint", ("model_id",), "caomai.model", ("model_id",), "model of a fingerprint"),
    (
        "caomai.object_annotation",
        ("planeID",),
        "caom2.Plane",
        ("planeID",),
        "objects detected in a plane",
    ),
    (
        "caomai.object_annotation",
        ("model_id", "map1_node"),
        "caomai.map_node",
        ("model_id", "node_id"),
        "Map-1 node of an object",
    ),
    ("caomai.map_node", ("model_id",), "caomai.model", ("model_id",), "model of a map node"),
    ("ivoa.ObsCore", ("planeID",), "caom2.Plane", ("planeID",), "CAOM2 plane of an ObsCore row"),
]

CAOM2_TABLES = [observation, plane, artifact]
CAOMAI_TABLES = [
    meta,
    model,
    map_node_store,
    fingerprint,
    object_annotation,
    load_run,
    load_queue,
]
VIEWS = [obscore, fingerprint_real, map_node]

# ---------------------------------------------------------------------------------------------
# TAP_SCHEMA 1.1 (created only when the database has none; an archive keeps its own).
# ---------------------------------------------------------------------------------------------

tap_schema_metadata = sa.MetaData(schema="tap_schema", naming_convention=NAMING)

tap_schemas = table(
    tap_schema_metadata,
    "TAP_SCHEMA.schemas",
    "description of schemas in this tableset",
    col(
        "schema_name",
        sa.String(64),
        "schema name for reference to tap_schema.schemas",
        primary_key=True,
        principal=True,
        std=True,
    ),
    col(
        "utype",
        sa.String(512),
        "lists the utypes of schemas in the tableset",
        principal=True,
        std=True,
    ),
    col(
        "description", sa.String(512), "describes schemas in the tableset", principal=True, std=True
    ),
    col(
        "schema_index",
        sa.Integer,
        "recommended sort order when listing schemas",
        principal=True,
        std=True,
    ),
)
tap_tables = table(
    tap_schema_metadata,
    "TAP_SCHEMA.tables",
    "description of tables in this tableset",
    col(
        "schema_name",
        sa.String(64),
        "the schema this table belongs to",
        nullable=False,
        principal=True,
        std=True,
    ),
    col(
        "table_name",
        sa.String(128),
        "the fully qualified table name",
        primary_key=True,
        principal=True,
        std=True,
    ),
    col("table_type", sa.String(8), "one of: table view", nullable=False, principal=True, std=True),
    col(
        "utype",
        sa.String(512),
        "lists the utype of tables in the tableset",
        principal=True,
        std=True,
    ),
    col(
        "description", sa.String(512), "describes tables in the tableset", principal=True, std=True
    ),
    col(
        "table_index",
        sa.Integer,
        "recommended sort order when listing tables",
        principal=True,
        std=True,
    ),
)
tap_columns = table(
    tap_schema_metadata,
    "TAP_SCHEMA.columns",
    "description of columns in this tableset",
    col(
        "table_name",
        sa.String(128),
        "the table this column belongs to",
        primary_key=True,
        principal=True,
        std=True,
    ),
    col(
        "column_name", sa.String(64), "the column name", primary_key=True, principal=True, std=True
    ),
    col(
        "datatype",
        sa.String(64),
        "lists the ADQL datatype of columns in the tableset",
        nullable=False,
        principal=True,
        std=True,
    ),
    col(
        "arraysize",
        sa.String(16),
        "lists the size of variable-length columns in the tableset",
        principal=True,
        std=True,
    ),
    col(
        "xtype",
        sa.String(64),
        "a DALI or custom extended type annotation",
        principal=True,
        std=True,
    ),
    col("size", sa.Integer, "deprecated: use arraysize", principal=True, std=True),
    col(
        "description",
        sa.String(512),
        "describes the columns in the tableset",
        principal=True,
        std=True,
    ),
    col(
        "utype",
        sa.String(512),
        "lists the utypes of columns in the tableset",
        principal=True,
        std=True,
    ),
    col(
        "unit",
        sa.String(64),
        "lists the unit used for column values in the tableset",
        principal=True,
        std=True,
    ),
    col(
        "ucd", sa.String(64), "lists the UCDs of columns in the tableset", principal=True, std=True
    ),
    col(
        "indexed",
        sa.Integer,
        "an indexed column; 1 means 1, 0 means 0",
        nullable=False,
        principal=True,
        std=True,
    ),
    col(
        "principal",
        sa.Integer,
        "a principal column; 1 means 1, 0 means 0",
        nullable=False,
        principal=True,
        std=True,
    ),
    col(
        "std",
        sa.Integer,
        "a standard column; 1 means 1, 0 means 0",
        nullable=False,
        principal=True,
        std=True,
    ),
    col(
        "column_index",
        sa.Integer,
        "recommended sort order when listing columns",
        principal=True,
        std=True,
    ),
)
tap_keys = table(
    tap_schema_metadata,
    "TAP_SCHEMA.keys",
    "description of foreign keys in this tableset",
    col(
        "key_id",
        sa.String(64),
        "unique key to join to tap_schema.key_columns",
        primary_key=True,
        principal=True,
        std=True,
    ),
    col(
        "from_table",
        sa.String(128),
        "the table with the foreign key",
        nullable=False,
        principal=True,
        std=True,
    ),
    col(
        "target_table",
        sa.String(128),
        "the table with the primary key",
        nullable=False,
        principal=True,
        std=True,
    ),
    col(
        "utype", sa.String(512), "lists the utype of keys in the tableset", principal=True, std=True
    ),
    col("description", sa.String(512), "describes keys in the tableset", principal=True, std=True),
)
tap_key_columns = table(
    tap_schema_metadata,
    "TAP_SCHEMA.key_columns",
    "description of foreign key columns in this tableset",
    col(
        "key_id",
        sa.String(64),
        "key to join to tap_schema.keys",
        nullable=False,
        principal=True,
        std=True,
    ),
    col(
        "from_column",
        sa.String(64),
        "column in the from_table",
        nullable=False,
        principal=True,
        std=True,
    ),
    col(
        "target_column",
        sa.String(64),
        "column in the target_table",
        nullable=False,
        principal=True,
        std=True,
    ),
)

TAP_SCHEMA_TABLES = [tap_schemas, tap_tables, tap_columns, tap_keys, tap_key_columns]

FOREIGN_KEYS += [
    (
        "caomai.fingerprint",
        ("map2_model_id", "map2_node"),
        "caomai.map_node",
        ("model_id", "node_id"),
        "Map-2 node of an image",
    ),
    (
        "TAP_SCHEMA.tables",
        ("schema_name",),
        "TAP_SCHEMA.schemas",
        ("schema_name",),
        "the schema a table belongs to",
    ),
    (
        "TAP_SCHEMA.columns",
        ("table_name",),
        "TAP_SCHEMA.tables",
        ("table_name",),
        "the table a column belongs to",
    ),
    (
        "TAP_SCHEMA.keys",
        ("from_table",),
        "TAP_SCHEMA.tables",
        ("table_name",),
        "the table a key starts from",
    ),
    (
        "TAP_SCHEMA.keys",
        ("target_table",),
        "TAP_SCHEMA.tables",
        ("table_name",),
        "the table a key points to",
    ),
    (
        "TAP_SCHEMA.key_columns",
        ("key_id",),
        "TAP_SCHEMA.keys",
        ("key_id",),
        "the key a column pair belongs to",
    ),
]
