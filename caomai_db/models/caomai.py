"""caomai: models, maps, fingerprints, per-object annotations, loader bookkeeping."""

from __future__ import annotations

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql as pg

from ..config import IMAGE_VEC_DIM, N_NODES
from .columns import (
    caomai_metadata,
    col,
    plane_access_columns,
    table,
)

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
        "image_vec",
        Vector(IMAGE_VEC_DIM),
        "image vector: what makes two images alike as images, L2-normalised for cosine"
        " similarity (fp_similar(f.image_vec, ref)): the fingerprint fp (values 1-400), then"
        f" {IMAGE_VEC_DIM - N_NODES} image statistics on fixed scales (sky level and rate,"
        " detection density, signal-to-noise quantiles, PSF size, seeing in arcsec, shape and"
        " profile of star-like objects, double images, saturation, background structure;"
        " loaders/image_vector.py)."
        " NULL for images loaded before it existed until they are loaded again",
        ucd="meta.code;stat.fit",
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
# ORDER BY fp_similar(f.image_vec, ref) DESC, as for fp (0007)
sa.Index(
    "ix_fingerprint_image_vec_hnsw",
    fingerprint.c.image_vec,
    postgresql_using="hnsw",
    postgresql_with={"m": 16, "ef_construction": 64},
    postgresql_ops={"image_vec": "vector_cosine_ops"},
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

# Previews (migration 0006): what a page shows of the pixels, written by the loader. Never
# published through TAP (the rows are pictures, not data to query); the reader role may SELECT
# them because the web API reads them through its connection, always joined to caom2.Plane for
# the access rule (caomai_db/previews.py). The foreign keys to caom2.Plane exist only where
# caomai created caom2 (an archive's own tables are never touched, not even by a constraint).
preview = table(
    caomai_metadata,
    "caomai.preview",
    "one small PNG of each loaded plane (binned mosaic of its images, zscale + asinh stretch)",
    sa.Column(
        "planeid",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("caom2.plane.planeid", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("png", sa.LargeBinary, nullable=False),
    sa.Column("width", sa.SmallInteger, nullable=False),
    sa.Column("height", sa.SmallInteger, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
    ),
    published=False,
    reader=True,
)

object_cutout = table(
    caomai_metadata,
    "caomai.object_cutout",
    "per plane and Map-1 node present in it: the cutout PNG of its object nearest the node",
    sa.Column(
        "model_id",
        sa.Integer,
        sa.ForeignKey("caomai.model.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "planeid",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("caom2.plane.planeid", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "map1_node",
        sa.SmallInteger,
        sa.CheckConstraint(f"map1_node >= 0 AND map1_node < {N_NODES}", name="map1_node"),
        primary_key=True,
    ),
    sa.Column("object_id", sa.Integer, nullable=False),
    sa.Column("map1_distance", sa.REAL, nullable=False),
    sa.Column("png", sa.LargeBinary, nullable=False),
    published=False,
    reader=True,
)
# a node's sample members, nearest first, across planes
sa.Index(
    "ix_object_cutout_node",
    object_cutout.c.model_id,
    object_cutout.c.map1_node,
    object_cutout.c.map1_distance,
)
# a plane's cutouts, for its reload and the cascade from caom2.Plane
sa.Index("ix_object_cutout_planeid", object_cutout.c.planeid)

CAOMAI_TABLES = [
    meta,
    model,
    map_node_store,
    fingerprint,
    object_annotation,
    load_run,
    load_queue,
    preview,
    object_cutout,
]
