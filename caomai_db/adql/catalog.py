"""What the service publishes: TAP_SCHEMA, read from the database, matched to the relations.

TAP_SCHEMA is the one list of what ADQL may reach: the translator refuses any other table,
VOSI ``/tables`` is written from it, and the VOTable output takes each column's datatype,
unit, UCD, utype, xtype and description from it. TAP names keep their case (``caom2.Plane``,
``planeID``); the relations behind them are the lower-case names PostgreSQL folds to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg


@dataclass
class Column:
    table: str  # TAP name of its table
    name: str  # TAP name (planeID)
    db_name: str  # name in the database (planeid)
    datatype: str
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None
    indexed: bool = False
    principal: bool = False
    std: bool = False
    size: int | None = None
    type_oid: int = 0  # PostgreSQL type of the column


@dataclass
class Table:
    name: str  # TAP name: schema.Table
    schema: str  # TAP schema name
    db_schema: str
    db_name: str
    table_type: str = "table"
    description: str | None = None
    utype: str | None = None
    oid: int = 0
    columns: list[Column] = field(default_factory=list)

    @property
    def db_qualified(self) -> str:
        return f"{self.db_schema}.{self.db_name}"

    def column(self, name: str) -> Column | None:
        """A column by its name in a query: exact TAP name, else case-insensitive."""
        for c in self.columns:
            if c.name == name or c.db_name == name:
                return c
        low = name.lower()
        for c in self.columns:
            if c.name.lower() == low:
                return c
        return None

    @property
    def has_metarelease(self) -> bool:
        """Rows of such tables are hidden while metaRelease is in the future."""
        return any(c.db_name == "metarelease" for c in self.columns)


@dataclass
class Key:
    key_id: str
    from_table: str
    target_table: str
    description: str | None
    columns: list[tuple[str, str]]


@dataclass
class Schema:
    name: str
    description: str | None
    utype: str | None


@dataclass
class Catalog:
    schemas: list[Schema]
    tables: list[Table]
    keys: list[Key]
    #: (relation oid, attnum) -> Column, to describe result columns by their origin
    by_origin: dict[tuple[int, int], Column]
    #: estimated rows of caomai.fingerprint (plan choice)
    fingerprint_rows: float
    #: the pgvector type's oid (result columns of that type are fingerprints)
    vector_oid: int | None
    has_pgsphere: bool

    def table(self, schema: str | None, name: str) -> Table | None:
        """A published table by the names a query used (exact TAP case, else any case)."""
        candidates = self.tables
        if schema is not None:
            exact = [t for t in candidates if t.schema == schema]
            candidates = exact or [t for t in candidates if t.schema.lower() == schema.lower()]
        exact = [t for t in candidates if t.name.split(".", 1)[1] == name]
        found = exact or [t for t in candidates if t.name.split(".", 1)[1].lower() == name.lower()]
        return found[0] if len(found) == 1 else None

    def suggest(self, name: str) -> list[str]:
        """Published table names that end like ``name`` (for error messages)."""
        low = name.lower().split(".")[-1]
        return [t.name for t in self.tables if t.name.lower().split(".")[-1] == low]


def load(conn: psycopg.Connection) -> Catalog:
    """Read TAP_SCHEMA and the relations behind it (as the query role sees them)."""
    schemas = [
        Schema(*r)
        for r in conn.execute(
            "SELECT schema_name, description, utype FROM tap_schema.schemas"
            " ORDER BY schema_index NULLS LAST, schema_name"
        ).fetchall()
    ]
    tables: list[Table] = []
    for name, schema, ttype, desc, utype in conn.execute(
        "SELECT table_name, schema_name, table_type, description, utype FROM tap_schema.tables"
        " ORDER BY table_index NULLS LAST, table_name"
    ).fetchall():
        short = name.split(".", 1)[1] if "." in name else name
        db_schema, db_name = schema.lower(), short.lower()
        oid = conn.execute(
            "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))::oid", (db_schema, db_name)
        ).fetchone()[0]
        if oid is None:
            continue  # described but not there: not queryable
        tables.append(Table(name, schema, db_schema, db_name, ttype or "table", desc, utype, oid))
    by_name = {t.name: t for t in tables}
    attrs: dict[int, dict[str, tuple[int, int]]] = {}
    if tables:
        for relid, attnum, attname, typid in conn.execute(
            "SELECT attrelid::oid, attnum, attname, atttypid::oid FROM pg_attribute"
            " WHERE attrelid = ANY(%s::oid[]) AND attnum > 0 AND NOT attisdropped",
            ([t.oid for t in tables],),
        ).fetchall():
            attrs.setdefault(relid, {})[attname] = (attnum, typid)
    by_origin: dict[tuple[int, int], Column] = {}
    for r in conn.execute(
        "SELECT table_name, column_name, datatype, arraysize, xtype, unit, ucd, utype,"
        ' description, indexed, principal, std, "size" FROM tap_schema.columns'
        " ORDER BY table_name, column_index NULLS LAST, column_name"
    ).fetchall():
        t = by_name.get(r[0])
        if t is None:
            continue
        db_col = r[1].strip('"').lower()  # "size": delimited because ADQL reserves it
        found = attrs.get(t.oid, {}).get(db_col)
        if found is None:
            continue
        c = Column(
            t.name,
            r[1],
            db_col,
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            r[7],
            r[8],
            bool(r[9]),
            bool(r[10]),
            bool(r[11]),
            r[12],
            found[1],
        )
        t.columns.append(c)
        by_origin[(t.oid, found[0])] = c
    keys: dict[str, Key] = {}
    for key_id, src, dst, desc in conn.execute(
        "SELECT key_id, from_table, target_table, description FROM tap_schema.keys ORDER BY key_id"
    ).fetchall():
        if src in by_name and dst in by_name:
            keys[key_id] = Key(key_id, src, dst, desc, [])
    for key_id, a, b in conn.execute(
        # no ORDER BY: the columns of a key in the order TAP_SCHEMA holds them
        "SELECT key_id, from_column, target_column FROM tap_schema.key_columns"
    ).fetchall():
        if key_id in keys:
            keys[key_id].columns.append((a, b))
    rows = conn.execute(
        "SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = to_regclass('caomai.fingerprint')"
    ).fetchone()
    vector_oid = conn.execute("SELECT to_regtype('vector')::oid").fetchone()[0]
    pgsphere = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_sphere'")
    return Catalog(
        schemas=[s for s in schemas if any(t.schema == s.name for t in tables)],
        tables=tables,
        keys=list(keys.values()),
        by_origin=by_origin,
        fingerprint_rows=float(rows[0]) if rows else 0.0,
        vector_oid=vector_oid,
        has_pgsphere=bool(pgsphere.fetchone()[0]),
    )
