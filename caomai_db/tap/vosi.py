"""VOSI documents: capabilities (with TAPRegExt), availability, tables.

The capabilities are derived from the UDF registry (``caomai_db/adql/udfs.py``), the output
formats of ``formats.py`` and the service settings; ``/tables`` from TAP_SCHEMA (the catalog).
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from ..adql import udfs
from ..adql.catalog import Catalog, Table
from ..config import QueryLimits
from .formats import FORMATS

XSI = "http://www.w3.org/2001/XMLSchema-instance"
TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt"

#: ADQL geometry this service translates (caomai_db/adql/rewrite.py, sql/geometry.sql)
GEOMETRY = ("POINT", "CIRCLE", "BOX", "POLYGON", "CONTAINS", "INTERSECTS", "DISTANCE")
GEOMETRY += ("COORD1", "COORD2", "AREA")


def _e(text: object) -> str:
    return escape(str(text))


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
    udf_features = []
    for u in udfs.UDFS:
        for name in u.names:
            for form in u.signatures(name):
                udf_features.append(
                    "        <feature>\n"
                    f"          <form>{_e(form)}</form>\n"
                    f"          <description>{_e(u.description)}</description>\n"
                    "        </feature>"
                )
    geo = "\n".join(f"        <feature><form>{g}</form></feature>" for g in GEOMETRY)
    outputs = []
    for fmt in FORMATS:
        ivo = f' ivo-id="{fmt.ivo_id}"' if fmt.ivo_id else ""
        aliases = "".join(f"<alias>{_e(a)}</alias>" for a in fmt.aliases)
        outputs.append(
            f"    <outputFormat{ivo}><mime>{_e(fmt.mime)}</mime>{aliases}</outputFormat>"
        )
    vosi = ""
    for std, path in (
        ("ivo://ivoa.net/std/VOSI#capabilities", "capabilities"),
        ("ivo://ivoa.net/std/VOSI#availability", "availability"),
        ("ivo://ivoa.net/std/VOSI#tables-1.1", "tables"),
    ):
        vosi += (
            f'  <capability standardID="{std}">\n'
            f'    <interface xsi:type="vs:ParamHTTP" version="1.1">\n'
            f'      <accessURL use="full">{_e(base)}/{path}</accessURL>\n'
            "    </interface>\n"
            "  </capability>\n"
        )
    nl = "\n"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0"
    xmlns:xsi="{XSI}"
    xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0"
    xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"
    xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0">
  <capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">
    <interface xsi:type="vs:ParamHTTP" role="std" version="1.1">
      <accessURL use="base">{_e(base)}</accessURL>
    </interface>
    <language>
      <name>ADQL</name>
      <version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>
      <version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>
      <description>ADQL through queryparser-python3 and PostgreSQL (pgvector). Content search:
fp_similar, in_node and has_object_node (also with the caomai_ prefix).
{_e(limit_text)}</description>
      <languageFeatures type="{TAPREGEXT}#features-udf">
{nl.join(udf_features)}
      </languageFeatures>
      <languageFeatures type="{TAPREGEXT}#features-adqlgeo">
{geo}
      </languageFeatures>
      <languageFeatures type="{TAPREGEXT}#features-adql-sets">
        <feature><form>UNION</form></feature>
      </languageFeatures>
      <languageFeatures type="{TAPREGEXT}#features-adql-offset">
        <feature><form>OFFSET</form></feature>
      </languageFeatures>
    </language>
{nl.join(outputs)}
    <retentionPeriod><default>{retention}</default><hard>{retention}</hard></retentionPeriod>
    <executionDuration><default>{default_duration}</default><hard>{max_duration}</hard></executionDuration>
    <outputLimit><default unit="row">{default_maxrec}</default><hard unit="row">{max_rows}</hard></outputLimit>
  </capability>
{vosi}  <capability standardID="ivo://ivoa.net/std/DALI#examples">
    <interface xsi:type="vr:WebBrowser">
      <accessURL use="full">{_e(base)}/examples</accessURL>
    </interface>
  </capability>
</vosi:capabilities>
"""


def availability(available: bool, note: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">
  <vosi:available>{"true" if available else "false"}</vosi:available>
  <vosi:note>{_e(note)}</vosi:note>
</vosi:availability>
"""


def _table_xml(t: Table, catalog: Catalog, detail: bool = True) -> str:
    out = [f'    <table type="{_e(t.table_type)}">', f"      <name>{_e(t.name)}</name>"]
    if t.description:
        out.append(f"      <description>{_e(t.description)}</description>")
    if t.utype:
        out.append(f"      <utype>{_e(t.utype)}</utype>")
    if not detail:
        out.append("    </table>")
        return "\n".join(out)
    for c in t.columns:
        std = ' std="true"' if c.std else ""
        out.append(f"      <column{std}>")
        out.append(f"        <name>{_e(c.name)}</name>")
        if c.description:
            out.append(f"        <description>{_e(c.description)}</description>")
        if c.unit:
            out.append(f"        <unit>{_e(c.unit)}</unit>")
        if c.ucd:
            out.append(f"        <ucd>{_e(c.ucd)}</ucd>")
        if c.utype:
            out.append(f"        <utype>{_e(c.utype)}</utype>")
        attrs = ""
        if c.arraysize:
            attrs += f" arraysize={quoteattr(c.arraysize)}"
        if c.xtype:
            attrs += f" extendedType={quoteattr(c.xtype)}"
        out.append(
            f'        <dataType xsi:type="vs:VOTableType"{attrs}>{_e(c.datatype)}</dataType>'
        )
        if c.indexed:
            out.append("        <flag>indexed</flag>")
        if c.principal:
            out.append("        <flag>principal</flag>")
        out.append("      </column>")
    for k in catalog.keys:
        if k.from_table != t.name:
            continue
        out.append("      <foreignKey>")
        out.append(f"        <targetTable>{_e(k.target_table)}</targetTable>")
        for a, b in k.columns:
            out.append(
                f"        <fkColumn><fromColumn>{_e(a)}</fromColumn>"
                f"<targetColumn>{_e(b)}</targetColumn></fkColumn>"
            )
        if k.description:
            out.append(f"        <description>{_e(k.description)}</description>")
        out.append("      </foreignKey>")
    out.append("    </table>")
    return "\n".join(out)


_TABLESET_HEAD = f"""<?xml version="1.0" encoding="UTF-8"?>
<vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0"
    xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"
    xmlns:xsi="{XSI}">
"""


def tableset(catalog: Catalog, detail: bool = True) -> str:
    out = [_TABLESET_HEAD]
    for s in catalog.schemas:
        out.append("  <schema>")
        out.append(f"    <name>{_e(s.name)}</name>")
        if s.description:
            out.append(f"    <description>{_e(s.description)}</description>")
        if s.utype:
            out.append(f"    <utype>{_e(s.utype)}</utype>")
        for t in catalog.tables:
            if t.schema == s.name:
                out.append(_table_xml(t, catalog, detail))
        out.append("  </schema>")
    out.append("</vosi:tableset>\n")
    return "\n".join(out)


def table(catalog: Catalog, t: Table) -> str:
    """VOSI 1.1 single-table document."""
    body = _table_xml(t, catalog).replace("    <table ", "<vosi:table ", 1)
    body = body[: body.rindex("</table>")] + "</vosi:table>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + body.replace(
            "<vosi:table ",
            '<vosi:table xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0"'
            ' xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"'
            f' xmlns:xsi="{XSI}" ',
            1,
        )
        + "\n"
    )
