"""TAP_SCHEMA 1.1 rows, derived from the table definitions in ``models/``.

Two consumers:

- our own TAP service: the migrations call :func:`sync`, which rewrites the rows in the
  database's ``tap_schema`` (when caomai created it) for the tables and columns that exist, and
  grants the read-only role SELECT on exactly those tables;
- an archive whose TAP service reads TAP_SCHEMA from its database (CADC's): ``caomai
  tap-schema`` writes ``tap_schema/caomai.tap_schema.sql`` describing the caomai tables, with
  fingerprints published through the real[] view, and the keys to the archive's caom2 tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
import sqlalchemy as sa
from pgvector.sqlalchemy import Vector
from psycopg import sql
from sqlalchemy.dialects import postgresql as pg

from . import datatypes
from . import models as m
from .config import READER_ROLE

SCHEMAS: dict[str, tuple[str, str | None, int]] = {
    # name as TAP users see it: (description, utype, index)
    "TAP_SCHEMA": (
        "TAP 1.1 metadata: the schemas, tables, columns and keys of this service",
        None,
        0,
    ),
    "ivoa": ("IVOA data models: ObsCore 1.1 over the CAOM2 planes", None, 10),
    "caom2": ("Common Archive Observation Model 2.4 (the subset caomai needs)", "caom2", 20),
    "caomai": (
        "image content: fingerprints (400-bin histograms of object kinds), Map-1 and Map-2 nodes, "
        "per-object annotations",
        None,
        30,
    ),
}

#: What our own service publishes, in listing order.
SERVICE_TABLES: list[sa.Table] = [
    *m.TAP_SCHEMA_TABLES,
    m.obscore,
    m.observation,
    m.plane,
    m.artifact,
    m.fingerprint,
    m.object_annotation,
    m.map_node,
    m.model,
]

#: What an archive with its own caom2, ObsCore and TAP_SCHEMA adds (fingerprints as real[]).
EXPORT_TABLES: list[sa.Table] = [
    m.fingerprint_real,
    m.object_annotation,
    m.map_node,
    m.model,
]


@dataclass(frozen=True)
class Rows:
    schemas: list[dict]
    tables: list[dict]
    columns: list[dict]
    keys: list[dict]
    key_columns: list[dict]


def tap_table_name(t: sa.Table) -> str:
    return t.info["tap_name"]


#: Column names that are ADQL reserved words; TAP 1.1 publishes them delimited ("size").
ADQL_RESERVED = {"size"}


def tap_column_name(c: sa.Column) -> str:
    name = c.info.get("tap_name", c.name)
    return f'"{name}"' if name.lower() in ADQL_RESERVED else name


def legacy_size(arraysize: str | None) -> int | None:
    """TAP_SCHEMA.columns."size" (deprecated) is the length in arraysize, when it has one."""
    digits = (arraysize or "").rstrip("*")
    return int(digits) if digits.isdigit() else None


def datatype(c: sa.Column) -> tuple[str, str | None, str | None]:
    """(VOTable/TAP datatype, arraysize, default xtype) of a column: its PostgreSQL type,
    looked up in the one type map (:mod:`caomai_db.datatypes`)."""
    t = c.type
    if isinstance(t, Vector):
        return datatypes.votable("real")[0], str(t.dim), None
    if isinstance(t, pg.ARRAY):
        item, _, _ = datatype(sa.Column("item", t.item_type))
        return item, "*", None
    if isinstance(t, sa.String) and t.length:
        return datatypes.votable("character varying")[0], f"{t.length}*", None
    for kind, sql_name in _SQL_NAMES:
        if isinstance(t, kind):
            return datatypes.votable(sql_name)
    raise TypeError(f"no TAP datatype for column {c} of type {t!r}")


#: SQLAlchemy column types -> PostgreSQL type names, most specific first (BigInteger is an
#: Integer, REAL a Float)
_SQL_NAMES: tuple[tuple[type, str], ...] = (
    (pg.UUID, "uuid"),
    (sa.DateTime, "timestamp"),
    (sa.Boolean, "boolean"),
    (sa.SmallInteger, "smallint"),
    (sa.BigInteger, "bigint"),
    (sa.Integer, "integer"),
    (sa.REAL, "real"),
    (sa.Float, "double precision"),
    (sa.LargeBinary, "bytea"),
    (pg.JSONB, "jsonb"),
    (sa.String, "character varying"),
)


def build_rows(tables: Iterable[sa.Table], existing: dict[str, set[str]] | None = None) -> Rows:
    """TAP_SCHEMA rows for ``tables``; with ``existing`` ({db table: {db columns}}), only those."""
    tables = [t for t in tables if existing is None or t.fullname in existing]
    names = {tap_table_name(t) for t in tables}
    used_schemas = {n.split(".")[0] for n in names}
    schemas = [
        {"schema_name": s, "description": d, "utype": u, "schema_index": i}
        for s, (d, u, i) in SCHEMAS.items()
        if s in used_schemas
    ]
    table_rows, column_rows = [], []
    for index, t in enumerate(tables):
        table_rows.append(
            {
                "schema_name": tap_table_name(t).split(".")[0],
                "table_name": tap_table_name(t),
                "table_type": t.info.get("table_type", "table"),
                "utype": t.info.get("utype"),
                "description": t.info["description"],
                "table_index": index,
            }
        )
        for cindex, c in enumerate(t.columns):
            if not c.info.get("published", True):
                continue
            if existing is not None and c.name not in existing[t.fullname]:
                continue
            dtype, arraysize, xtype = datatype(c)
            arraysize = c.info.get("arraysize") or arraysize
            column_rows.append(
                {
                    "table_name": tap_table_name(t),
                    "column_name": tap_column_name(c),
                    "datatype": dtype,
                    "arraysize": arraysize,
                    "xtype": c.info.get("xtype") or xtype,
                    "size": legacy_size(arraysize),
                    "description": c.info.get("description"),
                    "utype": c.info.get("utype"),
                    "unit": c.info.get("unit"),
                    "ucd": c.info.get("ucd"),
                    "indexed": int(bool(c.info.get("indexed") or c.primary_key)),
                    "principal": int(bool(c.info.get("principal"))),
                    "std": int(bool(c.info.get("std"))),
                    "column_index": cindex,
                }
            )
    published_columns = {(r["table_name"], r["column_name"]) for r in column_rows}
    keys, key_columns = [], []
    for i, (src, src_cols, dst, dst_cols, description) in enumerate(m.FOREIGN_KEYS):
        src, dst = _rename_for(tables, src), _rename_for(tables, dst)
        if src not in names or dst not in names:
            continue
        if not all((src, c) in published_columns for c in src_cols):
            continue
        if not all((dst, c) in published_columns for c in dst_cols):
            continue
        key_id = f"caomai_fk{i}"
        keys.append(
            {
                "key_id": key_id,
                "from_table": src,
                "target_table": dst,
                "utype": None,
                "description": description,
            }
        )
        for a, b in zip(src_cols, dst_cols, strict=True):
            key_columns.append({"key_id": key_id, "from_column": a, "target_column": b})
    return Rows(schemas, table_rows, column_rows, keys, key_columns)


def _rename_for(tables: list[sa.Table], name: str) -> str:
    """Keys written for caomai.fingerprint start from fingerprint_real in the export."""
    if (
        name == "caomai.fingerprint"
        and m.fingerprint not in tables
        and m.fingerprint_real in tables
    ):
        return tap_table_name(m.fingerprint_real)
    return name


def _existing_columns(conn: psycopg.Connection) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    rows = conn.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns"
        " WHERE table_schema IN ('caom2', 'caomai', 'ivoa', 'tap_schema')"
    ).fetchall()
    for schema, tname, cname in rows:
        out.setdefault(f"{schema}.{tname}", set()).add(cname)
    return out


ROW_TABLES = {
    "schemas": ["schema_name", "utype", "description", "schema_index"],
    "tables": ["schema_name", "table_name", "table_type", "utype", "description", "table_index"],
    "columns": [
        "table_name",
        "column_name",
        "datatype",
        "arraysize",
        "xtype",
        "size",
        "description",
        "utype",
        "unit",
        "ucd",
        "indexed",
        "principal",
        "std",
        "column_index",
    ],
    "keys": ["key_id", "from_table", "target_table", "utype", "description"],
    "key_columns": ["key_id", "from_column", "target_column"],
}


def sync(conn: psycopg.Connection) -> Rows:
    """Describe what exists in TAP_SCHEMA and grant the reader SELECT on what is published.

    The rows are written only where caomai created TAP_SCHEMA itself (``tap_schema_managed``
    in caomai.meta); an archive's own TAP_SCHEMA is its TAP service's business. Runs inside
    the caller's transaction (a migration's), after 0001 has recorded its facts.
    """
    facts = dict(conn.execute("SELECT key, value FROM caomai.meta").fetchall())
    existing = _existing_columns(conn)
    rows = build_rows(SERVICE_TABLES, existing)
    if facts.get("tap_schema_managed") == "1":
        for name in reversed(ROW_TABLES):
            conn.execute(sql.SQL("DELETE FROM tap_schema.{}").format(sql.Identifier(name)))
        for name, cols in ROW_TABLES.items():
            records = getattr(rows, name)
            if not records:
                continue
            stmt = sql.SQL("INSERT INTO tap_schema.{} ({}) VALUES ({})").format(
                sql.Identifier(name),
                sql.SQL(", ").join(map(sql.Identifier, cols)),
                sql.SQL(", ").join(sql.Placeholder() * len(cols)),
            )
            with conn.cursor() as cur:
                cur.executemany(stmt, [tuple(r[c] for c in cols) for r in records])
    ours = {"caomai"}
    if facts.get("caom2_managed") == "1":
        ours.add("caom2")
    if facts.get("created_view_obscore") == "1":
        ours.add("ivoa")
    if facts.get("tap_schema_managed") == "1":
        ours.add("tap_schema")
    readable = SERVICE_TABLES + [t for t in m.CAOMAI_TABLES if t.info.get("reader")]
    grant(conn, [t for t in readable if t.fullname in existing and t.schema in ours], ours)
    return rows


def grant(conn: psycopg.Connection, tables: list[sa.Table], schemas: set[str]) -> None:
    """SELECT on exactly the published tables (and the unpublished ones marked ``reader``, which
    the web API reads and TAP cannot name); nothing on the rest of our schemas.

    Only schemas caomai created are touched: an archive's own caom2, ivoa and tap_schema keep
    their ACLs exactly as they are (its operator grants the reader SELECT on them if caomai's
    TAP service is to read them).
    """
    role = sql.Identifier(READER_ROLE)
    for schema in sorted(schemas):
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), role))
    for t in m.CAOMAI_TABLES + m.VIEWS:
        if (
            t.schema in schemas
            and conn.execute("SELECT to_regclass(%s)", (t.fullname,)).fetchone()[0]
        ):
            conn.execute(
                sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(t.schema, t.name), role)
            )
    for t in tables:
        conn.execute(
            sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(t.schema, t.name), role)
        )


def _literal(v: object) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def export_sql() -> str:
    """TAP_SCHEMA 1.1 inserts for an archive's own TAP service (standard table names)."""
    rows = build_rows(EXPORT_TABLES)
    out = [
        "-- TAP_SCHEMA 1.1 rows describing the caomai tables, for an archive whose TAP service",
        "-- reads TAP_SCHEMA from its database. Generated by `caomai tap-schema`; do not edit.",
        "-- Fingerprints are published through caomai.fingerprint_real (real[]), which services",
        "-- without pgvector support can serialise. Sites with TAP_SCHEMA tables of other names",
        "-- (CADC: tap_schema.tables11, ...) substitute them. Keys point at the archive's caom2.",
        "-- Re-running this file replaces the caomai rows.",
        "",
        "DELETE FROM tap_schema.key_columns WHERE key_id LIKE 'caomai_fk%';",
        "DELETE FROM tap_schema.keys WHERE key_id LIKE 'caomai_fk%';",
        "DELETE FROM tap_schema.columns WHERE table_name LIKE 'caomai.%';",
        "DELETE FROM tap_schema.tables WHERE schema_name = 'caomai';",
        "DELETE FROM tap_schema.schemas WHERE schema_name = 'caomai';",
        "",
    ]
    # keys to the archive's caom2.Plane (not among the exported tables) are added explicitly
    extra_keys = [
        ("caomai.fingerprint_real", "caom2.Plane", "planeID", "planeID", "fingerprint of a plane"),
        (
            "caomai.object_annotation",
            "caom2.Plane",
            "planeID",
            "planeID",
            "objects detected in a plane",
        ),
    ]
    for i, (src, dst, a, b, d) in enumerate(extra_keys):
        key_id = f"caomai_fk_caom2_{i}"
        rows.keys.append(
            {
                "key_id": key_id,
                "from_table": src,
                "target_table": dst,
                "utype": None,
                "description": d,
            }
        )
        rows.key_columns.append({"key_id": key_id, "from_column": a, "target_column": b})
    for name, cols in ROW_TABLES.items():
        for r in getattr(rows, name):
            values = ", ".join(_literal(r[c]) for c in cols)
            out.append(f"INSERT INTO tap_schema.{name} ({', '.join(cols)}) VALUES ({values});")
        out.append("")
    return "\n".join(out)
