"""The one type map: PostgreSQL types and what TAP, VOTable, ADQL and DaCHS call them.

Three places need to name a column's or a value's type in another vocabulary, and they must
agree, or a client reads a column one way in TAP_SCHEMA and another in a result:

- TAP_SCHEMA and ``/tables`` (:func:`caomai_db.tapschema.datatype`, from the table models);
- VOTable fields of computed result columns (``caomai_db.tap.votable``, from the PostgreSQL
  type oid the driver reports);
- DaCHS resource descriptors and UDF return types (``caomai_db.adql.dachs``), and the ADQL
  types of the UDF signatures (``caomai_db.adql.udfs``).

Each PostgreSQL type is one row of :data:`TYPES`; every lookup below reads that table. The
first row of a VOTable datatype is the SQL type written for it (``char`` -> ``text``).

Standard library only, like ``adql/udfs.py``, which reads it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SqlType:
    """One PostgreSQL type and its names elsewhere."""

    #: the name PostgreSQL and DaCHS write (``double precision``)
    sql: str
    #: pg_type oid, and the oid of its array type where results may carry one
    oid: int
    array_oid: int | None
    #: VOTable / TAP_SCHEMA datatype, arraysize and xtype (DALI)
    votable: str
    arraysize: str | None = None
    xtype: str | None = None
    #: the ADQL type of a value, as a TAPRegExt signature writes it
    adql: str | None = None


TYPES: tuple[SqlType, ...] = (
    SqlType("text", 25, None, "char", "*", adql="VARCHAR"),
    SqlType("double precision", 701, 1022, "double", adql="DOUBLE"),
    SqlType("real", 700, 1021, "float", adql="REAL"),
    SqlType("integer", 23, 1007, "int", adql="INTEGER"),
    SqlType("bigint", 20, 1016, "long", adql="BIGINT"),
    SqlType("smallint", 21, 1005, "short", adql="SMALLINT"),
    SqlType("boolean", 16, 1000, "boolean"),
    SqlType("bytea", 17, None, "unsignedByte", "*"),
    SqlType('"char"', 18, None, "char", "1"),
    SqlType("json", 114, None, "char", "*"),
    SqlType("jsonb", 3802, None, "char", "*"),
    SqlType("character", 1042, None, "char", "*"),
    SqlType("character varying", 1043, None, "char", "*"),
    SqlType("date", 1082, None, "char", "*", "timestamp"),
    SqlType("timestamp", 1114, None, "char", "*", "timestamp"),
    SqlType("timestamp with time zone", 1184, None, "char", "*", "timestamp"),
    SqlType("numeric", 1700, None, "double"),
    SqlType("uuid", 2950, None, "char", "36", "uuid"),
)

BY_SQL: dict[str, SqlType] = {t.sql: t for t in TYPES}


def by_oid() -> dict[int, tuple[str, str | None, str | None]]:
    """pg type oid -> (VOTable datatype, arraysize, xtype), arrays included."""
    out: dict[int, tuple[str, str | None, str | None]] = {}
    for t in TYPES:
        out[t.oid] = (t.votable, t.arraysize, t.xtype)
        if t.array_oid is not None:
            out[t.array_oid] = (t.votable, "*", None)
    return out


def votable(sql: str) -> tuple[str, str | None, str | None]:
    """(VOTable datatype, arraysize, xtype) of a PostgreSQL type name."""
    t = BY_SQL[sql]
    return t.votable, t.arraysize, t.xtype


def sql_for_votable(datatype: str) -> str:
    """The SQL type written for a VOTable datatype (the first row that has it)."""
    for t in TYPES:
        if t.votable == datatype:
            return t.sql
    raise KeyError(datatype)


def sql_for_adql(adql: str) -> str:
    """The SQL type of an ADQL type (``DOUBLE`` -> ``double precision``)."""
    for t in TYPES:
        if t.adql == adql:
            return t.sql
    raise KeyError(adql)


def votable_for_adql(adql: str) -> str:
    """The VOTable datatype of an ADQL type (``INTEGER`` -> ``int``)."""
    return BY_SQL[sql_for_adql(adql)].votable
