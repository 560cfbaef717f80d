"""TAP_SCHEMA 1.1 (created only when the database has none; an archive keeps its own)."""

from __future__ import annotations

import sqlalchemy as sa

from .columns import (
    col,
    table,
    tap_schema_metadata,
)

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


#: The rows of TAP_SCHEMA.keys for every schema, in key_id order: the joins TOPCAT shows,
#: (from table, from column(s)) -> (target table, target column(s)), description.
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
