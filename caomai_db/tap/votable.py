"""Query results as VOTable (TABLEDATA, BINARY, BINARY2), CSV and TSV; errors as VOTable.

Column metadata comes from TAP_SCHEMA: PostgreSQL tells the origin (table, column) of every
result column that is a plain column reference -- also through the access-filter subqueries
-- and the catalog maps it to the TAP column (name, datatype, arraysize, unit, UCD, utype,
xtype, description). Computed columns get their datatype from the PostgreSQL type. Values
follow DALI: uuid as char(36), timestamps as ISO 8601 strings (xtype timestamp), fingerprints
as float[400], DALI geometry arrays as double[*].
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import warnings
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import numpy as np
from astropy.io.votable.converters import get_converter
from astropy.io.votable.tree import Field, Info, Resource, TableElement, VOTableFile

from .. import datatypes
from ..adql.catalog import Catalog

#: PostgreSQL type oids -> (VOTable datatype, arraysize, xtype), from the one type map
_SCALAR = datatypes.by_oid()


class _Unit(str):
    """A unit written exactly as TAP_SCHEMA has it (astropy would rewrite 'pix' as 'pixel')."""

    def to_string(self, format: str | None = None) -> str:  # noqa: A002 - astropy's API
        return str(self)


@dataclass
class FieldSpec:
    name: str
    datatype: str
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None


def field_specs(
    names: list[str], type_oids: list[int], origins: list[tuple[int, int]], catalog: Catalog
) -> list[FieldSpec]:
    specs = []
    for i, name in enumerate(names):
        col = catalog.by_origin.get(origins[i]) if i < len(origins) else None
        if col is not None:
            specs.append(
                FieldSpec(
                    name=col.name.strip('"') if name == col.db_name else name,
                    datatype=col.datatype,
                    arraysize=col.arraysize,
                    xtype=col.xtype,
                    unit=col.unit,
                    ucd=col.ucd,
                    utype=col.utype,
                    description=col.description,
                )
            )
            continue
        oid = type_oids[i]
        if oid == catalog.vector_oid:
            specs.append(FieldSpec(name, "float", "*"))
            continue
        datatype, arraysize, xtype = _SCALAR.get(oid, ("char", "*", None))
        specs.append(FieldSpec(name, datatype, arraysize, xtype))
    return specs


#: BINARY cannot flag a NULL integer, nor BINARY2 a NULL inside an integer array: they need a
#: value that stands for NULL, declared in <VALUES null=...>; the type's extreme value
_BINARY_NULL = {"unsignedByte": 255, "short": -(2**15), "int": -(2**31), "long": -(2**63)}
_NUMERIC = {"short", "int", "long", "float", "double", "unsignedByte", "boolean"}
_NP = {
    "boolean": np.bool_,
    "unsignedByte": np.uint8,
    "short": np.int16,
    "int": np.int32,
    "long": np.int64,
    "float": np.float32,
    "double": np.float64,
}


def _text(v: object) -> str:
    if isinstance(v, datetime):
        return v.replace(tzinfo=None).isoformat(timespec="milliseconds")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, dict | list):
        return json.dumps(v)
    if isinstance(v, bytes | memoryview):
        return bytes(v).hex()
    return str(v)


def _is_array(spec: FieldSpec) -> bool:
    return spec.arraysize is not None and spec.datatype != "char"


def _array_value(v: object, spec: FieldSpec) -> np.ndarray:
    if isinstance(v, bytes | memoryview):
        return np.frombuffer(bytes(v), dtype=np.uint8)
    if hasattr(v, "to_numpy"):  # pgvector types
        v = v.to_numpy()
    a = np.asarray(v, dtype=_NP[spec.datatype])
    return a


def _unique_names(specs: list[FieldSpec]) -> list[str | None]:
    """VOTable IDs, only where names repeat (``SELECT *`` over a join)."""
    seen: dict[str, int] = {}
    ids: list[str | None] = []
    counts = {s.name: 0 for s in specs}
    for s in specs:
        counts[s.name] += 1
    for s in specs:
        if counts[s.name] == 1:
            ids.append(None)
            continue
        seen[s.name] = seen.get(s.name, 0) + 1
        base = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in s.name) or "col"
        if not base[0].isalpha():
            base = "c_" + base
        ids.append(f"{base}_{seen[s.name]}")
    return ids


def votable(
    specs: list[FieldSpec],
    rows: list[tuple],
    *,
    overflow: bool,
    serialization: str = "tabledata",
    infos: dict[str, str] | None = None,
) -> bytes:
    """A TAP result VOTable; OVERFLOW (DALI) goes after the table."""
    vot = VOTableFile(version="1.4")
    res = Resource()
    res.type = "results"
    vot.resources.append(res)
    res.infos.append(Info(name="QUERY_STATUS", value="OK"))
    for k, v in (infos or {}).items():
        res.infos.append(Info(name=k, value=v))
    table = TableElement(vot)
    res.tables.append(table)
    n = len(rows)
    columns: list[tuple[object, list[bool]]] = []
    for j, spec in enumerate(specs):
        values = [r[j] for r in rows]
        mask = [v is None for v in values]
        if _is_array(spec):
            arrays = [None if v is None else _array_value(v, spec) for v in values]
            fixed = spec.arraysize.isdigit() and all(
                a is None or a.shape == (int(spec.arraysize),) for a in arrays
            )
            if not fixed and spec.arraysize.isdigit():
                spec.arraysize = "*"  # the data do not have the declared length
            col = np.empty(n, dtype=object)
            empty = np.zeros(int(spec.arraysize) if fixed else 0, dtype=_NP[spec.datatype])
            for i, a in enumerate(arrays):
                a = empty if a is None else a
                # astropy's BINARY/BINARY2 writers iterate over the element mask of a
                # variable-length array: it must be a full array, not numpy's scalar nomask
                col[i] = a if fixed else np.ma.array(a, mask=np.zeros(a.shape, dtype=bool))
            columns.append((np.stack(list(col)) if fixed and n else col, mask))
        elif spec.datatype in _NUMERIC:
            zero = 0
            columns.append(
                (
                    [
                        (float(v) if isinstance(v, Decimal) else v) if v is not None else zero
                        for v in values
                    ],
                    mask,
                )
            )
        else:
            columns.append((["" if v is None else _text(v) for v in values], mask))
    ids = _unique_names(specs)
    for spec, id_, (_, mask) in zip(specs, ids, columns, strict=True):
        kwargs = {k: getattr(spec, k) for k in ("arraysize", "xtype", "ucd", "utype")}
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        if id_ is not None:
            kwargs["ID"] = id_
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = Field(vot, name=spec.name, datatype=spec.datatype, **kwargs)
        if spec.unit:
            f._unit = _Unit(spec.unit)
        if spec.description:
            f.description = spec.description
        if serialization != "tabledata" and spec.datatype in _BINARY_NULL and any(mask):
            f.values.null = _BINARY_NULL[spec.datatype]
            f.converter = get_converter(f)
        table.fields.append(f)
    table.create_arrays(n)
    arr = table.array
    for j, (data, mask) in enumerate(columns):
        key = arr.dtype.names[j]
        if n:
            arr[key] = data
        if any(mask):
            # a fixed-size array column masks each element: NULL rows mask all of theirs
            shape = arr.mask[key].shape
            arr.mask[key] = np.broadcast_to(np.reshape(mask, (n,) + (1,) * (len(shape) - 1)), shape)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vot.to_xml(buf, tabledata_format=serialization)
    out = buf.getvalue()
    if overflow:
        tail = out.rindex(b"</RESOURCE>")
        out = out[:tail] + b'<INFO name="QUERY_STATUS" value="OVERFLOW"/>\n ' + out[tail:]
    return out


def error_votable(message: str) -> bytes:
    """DALI error document: RESOURCE type=results with INFO QUERY_STATUS=ERROR."""
    vot = VOTableFile(version="1.4")
    res = Resource()
    res.type = "results"
    vot.resources.append(res)
    info = Info(name="QUERY_STATUS", value="ERROR")
    info.content = message
    res.infos.append(info)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vot.to_xml(buf)
    return buf.getvalue()


def delimited(specs: list[FieldSpec], rows: list[tuple], delimiter: str) -> bytes:
    """CSV (RFC 4180, header line) or TSV; arrays as space-separated values."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    w.writerow([s.name for s in specs])
    for r in rows:
        out = []
        for v, spec in zip(r, specs, strict=True):
            if v is None:
                out.append("")
            elif _is_array(spec):
                out.append(" ".join(str(x) for x in _array_value(v, spec)))
            elif isinstance(v, float | int | bool | Decimal):
                out.append(str(v))
            else:
                out.append(_text(v))
        w.writerow(out)
    return buf.getvalue().encode()
