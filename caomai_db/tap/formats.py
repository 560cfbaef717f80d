"""The output formats of the service (RESPONSEFORMAT / FORMAT) and how each is written."""

from __future__ import annotations

from dataclasses import dataclass

from ..adql.parse import ADQLError


@dataclass(frozen=True)
class Format:
    key: str
    mime: str
    aliases: tuple[str, ...]
    ivo_id: str | None
    #: media type of the response
    content_type: str


FORMATS: tuple[Format, ...] = (
    Format(
        "votable",
        "application/x-votable+xml",
        ("votable", "votable/td"),
        "ivo://ivoa.net/std/TAPRegExt#output-votable-td",
        "application/x-votable+xml",
    ),
    Format(
        "binary2",
        "application/x-votable+xml;serialization=BINARY2",
        ("votable/b2", "votable/binary2"),
        "ivo://ivoa.net/std/TAPRegExt#output-votable-binary2",
        "application/x-votable+xml;serialization=BINARY2",
    ),
    Format(
        "binary",
        "application/x-votable+xml;serialization=BINARY",
        ("votable/b", "votable/binary"),
        "ivo://ivoa.net/std/TAPRegExt#output-votable-binary",
        "application/x-votable+xml;serialization=BINARY",
    ),
    Format("csv", "text/csv;header=present", ("csv",), None, "text/csv;header=present"),
    Format("tsv", "text/tab-separated-values", ("tsv",), None, "text/tab-separated-values"),
)

_LOOKUP: dict[str, Format] = {}
for _f in FORMATS:
    for _name in (_f.mime, *_f.aliases):
        _LOOKUP[_name.lower().replace(" ", "")] = _f
_LOOKUP |= {
    "text/xml": FORMATS[0],
    "application/xml": FORMATS[0],
    "application/x-votable+xml;serialization=tabledata": FORMATS[0],
    "text/csv": FORMATS[3],
    "application/x-votable+xml;serialization=binary2": FORMATS[1],
    "application/x-votable+xml;serialization=binary": FORMATS[2],
}


def lookup(name: str | None) -> Format:
    """The format a RESPONSEFORMAT value asks for (default VOTable TABLEDATA)."""
    if not name:
        return FORMATS[0]
    f = _LOOKUP.get(name.strip().lower().replace(" ", ""))
    if f is None:
        known = ", ".join(a for f in FORMATS for a in f.aliases)
        raise ADQLError(f"unknown RESPONSEFORMAT {name!r}; this service writes {known}")
    return f
