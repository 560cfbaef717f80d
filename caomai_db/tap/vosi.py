"""VOSI documents: capabilities (with TAPRegExt), availability, tables.

The capabilities are derived from the UDF registry (``caomai_db/adql/udfs.py``), the output
formats of ``formats.py`` and the service settings; ``/tables`` from TAP_SCHEMA (the catalog).
"""

from __future__ import annotations

from ..adql import udfs
from ..adql.catalog import Catalog, Table
from ..config import QueryLimits
from .formats import FORMATS
from .xmldocs import render

TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt"

#: ADQL geometry this service translates (caomai_db/adql/geometry_rules.py, sql/0002/geometry.sql)
GEOMETRY = ("POINT", "CIRCLE", "BOX", "POLYGON", "CONTAINS", "INTERSECTS", "DISTANCE")
GEOMETRY += ("COORD1", "COORD2", "AREA")
#: the VOSI endpoints the capabilities list
VOSI_CAPABILITIES = (
    ("ivo://ivoa.net/std/VOSI#capabilities", "capabilities"),
    ("ivo://ivoa.net/std/VOSI#availability", "availability"),
    ("ivo://ivoa.net/std/VOSI#tables-1.1", "tables"),
)


def capabilities(
    base: str,
    *,
    default_maxrec: int,
    max_rows: int,
    default_duration: int,
    max_duration: int,
    retention: int,
    limits: QueryLimits | None = None,
) -> str:
    """The VOSI capabilities. TAPRegExt has elements for the row and time limits only (its
    uploadLimit is for UPLOAD, which this service does not offer): the size limits of a query
    are told in words in the language description, where clients show it."""
    lim = limits or QueryLimits()
    limit_text = (
        f"Limits of one query: at most {lim.max_query_bytes} bytes and"
        f" {lim.max_query_tokens} tokens, {lim.max_nesting} levels of nested parentheses,"
        f" {lim.max_select_items} select items, {lim.max_list_items} items in any other list"
        f" (IN, arguments), node lists of {lim.max_node_list_items} items, {lim.max_refs}"
        f" reference images in one reference; request bodies of at most"
        f" {lim.max_body_bytes} bytes."
    )
    return render(
        "capabilities.xml.j2",
        base=base,
        tapregext=TAPREGEXT,
        limit_text=limit_text,
        udf_features=[
            (form, u.description)
            for u in udfs.UDFS
            for name in u.names
            for form in u.signatures(name)
        ],
        geometry=GEOMETRY,
        formats=FORMATS,
        vosi=VOSI_CAPABILITIES,
        retention=retention,
        default_duration=default_duration,
        max_duration=max_duration,
        default_maxrec=default_maxrec,
        max_rows=max_rows,
    )


def availability(available: bool, note: str) -> str:
    return render("availability.xml.j2", available=available, note=note)


def tableset(catalog: Catalog, detail: bool = True) -> str:
    return render("tableset.xml.j2", catalog=catalog, detail=detail)


def table(catalog: Catalog, t: Table) -> str:
    """VOSI 1.1 single-table document."""
    return render("table.xml.j2", single=True, t=t, keys=catalog.keys)
