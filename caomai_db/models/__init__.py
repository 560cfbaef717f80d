"""Table definitions: the one source of truth for the schema, TAP_SCHEMA and the grants.

One module per schema, all re-exported here (``from caomai_db import models``):

- ``columns``: ``col()``, ``table()``, the naming convention and the MetaData objects;
- ``caom2``: the CAOM2 subset created for standalone use;
- ``caomai``: caomai's own tables (models, maps, fingerprints, annotations, loader runs);
- ``ivoa``: the views (``ivoa.ObsCore``, ``caomai.fingerprint_real``, ``caomai.map_node``),
  described as Table objects for TAP_SCHEMA only; their SQL lives in ``sql/``;
- ``tap_schema``: TAP_SCHEMA 1.1, and ``FOREIGN_KEYS``, the rows of TAP_SCHEMA.keys;
- ``uws``: ``caomai_uws.job``, the TAP service's asynchronous jobs (never published).

``tapschema.py`` turns this metadata into TAP_SCHEMA rows, and the reader role is granted
SELECT on exactly the tables marked ``published``.
"""

from __future__ import annotations

from .caom2 import CAOM2_TABLES, artifact, observation, plane
from .caomai import (
    ANNOTATION_PARTITIONS,
    CAOMAI_TABLES,
    fingerprint,
    load_queue,
    load_run,
    map_node_store,
    meta,
    model,
    object_annotation,
    object_cutout,
    preview,
)
from .columns import (
    NAMING,
    TIMESTAMP,
    caom2_metadata,
    caomai_metadata,
    col,
    plane_access_columns,
    table,
    tap_schema_metadata,
    uws_metadata,
    views_metadata,
)
from .ivoa import VIEWS, fingerprint_real, map_node, obscore
from .tap_schema import (
    FOREIGN_KEYS,
    TAP_SCHEMA_TABLES,
    tap_columns,
    tap_key_columns,
    tap_keys,
    tap_schemas,
    tap_tables,
)
from .uws import UWS_TABLES, job

__all__ = [
    "ANNOTATION_PARTITIONS",
    "CAOM2_TABLES",
    "CAOMAI_TABLES",
    "FOREIGN_KEYS",
    "NAMING",
    "TAP_SCHEMA_TABLES",
    "TIMESTAMP",
    "UWS_TABLES",
    "VIEWS",
    "artifact",
    "caom2_metadata",
    "caomai_metadata",
    "col",
    "fingerprint",
    "fingerprint_real",
    "job",
    "load_queue",
    "load_run",
    "map_node",
    "map_node_store",
    "meta",
    "model",
    "object_annotation",
    "object_cutout",
    "obscore",
    "observation",
    "plane",
    "plane_access_columns",
    "preview",
    "table",
    "tap_columns",
    "tap_key_columns",
    "tap_keys",
    "tap_schema_metadata",
    "tap_schemas",
    "tap_tables",
    "uws_metadata",
    "views_metadata",
]
