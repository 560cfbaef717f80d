"""The one writer of CAOM2 rows: caom2.observation, caom2.plane and caom2.artifact.

Registration, the synthetic archive and the test helpers all describe their files the same
way, so they write through the same dataclasses and the same SQL: a column caomai fills is
named once, here, and the rows every writer leaves are shaped alike (what the loaders and
the TAP service read does not depend on who wrote it).

- :func:`upsert` writes rows with ``executemany`` (one file at a time, as ``caomai register``
  does) and says what a row that already exists gets: ``"update"`` (registering again updates
  the same rows, ``lastmodified``/``maxlastmodified`` = now()), ``"nothing"`` (keep the first
  one) or ``"error"`` (a plain INSERT: a duplicate is a mistake of the caller).
- :func:`copy` writes a large batch of new rows with binary COPY (the synthetic archive: many
  times faster than INSERT; a row that exists already makes it fail).

Columns caomai does not fill are left out, so a database whose caom2 schema has more columns
keeps its defaults. The defaults of the dataclasses are those of caomai's own schema
(algorithm_name, releasetype) or what every writer writes (an image plane, a science
artifact).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import Literal

import psycopg

from caomai_db.errors import UsageError

OnConflict = Literal["update", "nothing", "error"]


def uri_id(uri: str) -> uuid.UUID:
    """The id of the row a URI names (uuid5 in the URL namespace): writing again finds it."""
    return uuid.uuid5(uuid.NAMESPACE_URL, uri)


@dataclass(slots=True)
class Observation:
    """A caom2.observation row: the columns caomai fills."""

    obsid: uuid.UUID
    observationuri: str
    collection: str
    observationid: str
    metarelease: datetime | None = None
    intent: str | None = None
    type: str | None = None
    algorithm_name: str = "exposure"
    sequencenumber: int | None = None
    proposal_id: str | None = None
    proposal_pi: str | None = None
    target_name: str | None = None
    telescope_name: str | None = None
    telescope_geolocationx: float | None = None
    telescope_geolocationy: float | None = None
    telescope_geolocationz: float | None = None
    instrument_name: str | None = None
    environment_elevation: float | None = None


@dataclass(slots=True)
class Plane:
    """A caom2.plane row: the columns caomai fills."""

    planeid: uuid.UUID
    obsid: uuid.UUID
    planeuri: str
    publisherid: str
    productid: str
    metarelease: datetime | None = None
    datarelease: datetime | None = None
    dataproducttype: str | None = "image"
    calibrationlevel: int | None = None
    energy_emband: str | None = None
    energy_bounds_lower: float | None = None
    energy_bounds_upper: float | None = None
    energy_bounds_width: float | None = None
    energy_bandpassname: str | None = None
    time_bounds_lower: float | None = None
    time_bounds_upper: float | None = None
    time_bounds_width: float | None = None
    time_exposure: float | None = None
    time_dimension: int | None = None
    position_bounds: list[float] | None = None
    position_bounds_center: list[float] | None = None
    position_bounds_area: float | None = None
    position_bounds_size: float | None = None
    position_dimension_naxis1: int | None = None
    position_dimension_naxis2: int | None = None
    position_samplesize: float | None = None


@dataclass(slots=True)
class Artifact:
    """A caom2.artifact row: the columns caomai fills."""

    artifactid: uuid.UUID
    planeid: uuid.UUID
    uri: str
    producttype: str = "science"
    contenttype: str | None = None
    contentlength: int | None = None
    contentchecksum: str | None = None
    releasetype: str = "data"
    metarelease: datetime | None = None


Row = Observation | Plane | Artifact


@dataclass(frozen=True)
class _Table:
    name: str
    key: str
    columns: tuple[str, ...]
    #: caom2.artifact has no maxlastmodified
    max_last_modified: bool


def _table(cls: type, name: str, key: str, max_last_modified: bool) -> _Table:
    return _Table(name, key, tuple(f.name for f in fields(cls)), max_last_modified)


TABLES: dict[type, _Table] = {
    Observation: _table(Observation, "caom2.observation", "obsid", True),
    Plane: _table(Plane, "caom2.plane", "planeid", True),
    Artifact: _table(Artifact, "caom2.artifact", "artifactid", False),
}


def _of(rows: Sequence[Row]) -> _Table:
    kinds = {type(r) for r in rows}
    if len(kinds) != 1:
        raise TypeError(f"rows of one table at a time, got {sorted(k.__name__ for k in kinds)}")
    return TABLES[kinds.pop()]


def upsert_sql(table: _Table, on_conflict: OnConflict) -> str:
    """INSERT of one row; ``lastmodified`` (and ``maxlastmodified``) are now() on insert and
    on update, so a harvester sees a re-registered row as changed."""
    stamps = ["lastmodified"] + (["maxlastmodified"] if table.max_last_modified else [])
    sql = (
        f"INSERT INTO {table.name} ({', '.join(table.columns + tuple(stamps))})"
        f" VALUES ({', '.join(['%s'] * len(table.columns) + ['now()'] * len(stamps))})"
    )
    if on_conflict == "update":
        sets = [f"{c} = EXCLUDED.{c}" for c in table.columns if c != table.key]
        sets += [f"{s} = now()" for s in stamps]
        sql += f" ON CONFLICT ({table.key}) DO UPDATE SET {', '.join(sets)}"
    elif on_conflict == "nothing":
        sql += f" ON CONFLICT ({table.key}) DO NOTHING"
    elif on_conflict != "error":
        raise UsageError(f"on_conflict must be 'update', 'nothing' or 'error', not {on_conflict!r}")
    return sql


def upsert(conn: psycopg.Connection, rows: Sequence[Row], on_conflict: OnConflict) -> None:
    """Write rows of one table (in the caller's transaction) with executemany.

    Write observations before their planes and planes before their artifacts (foreign keys).
    """
    if not rows:
        return
    table = _of(rows)
    values = attrgetter(*table.columns)
    with conn.cursor() as cur:
        cur.executemany(upsert_sql(table, on_conflict), [values(r) for r in rows])


def copy(conn: psycopg.Connection, rows: Sequence[Row]) -> None:
    """Write new rows of one table with binary COPY (in the caller's transaction): for large
    batches, where INSERT would be the bottleneck. ``lastmodified`` takes the column default."""
    if not rows:
        return
    table = _of(rows)
    values = attrgetter(*table.columns)
    # binary COPY needs each column's exact type: the database's own, so an archive's caom2
    # with other column types is written as it is declared
    oids = dict(
        conn.execute(
            "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass"
            " AND attnum > 0 AND NOT attisdropped",
            (table.name,),
        ).fetchall()
    )
    with (
        conn.cursor() as cur,
        cur.copy(
            f"COPY {table.name} ({', '.join(table.columns)}) FROM STDIN (FORMAT BINARY)"
        ) as cp,
    ):
        cp.set_types([oids[c] for c in table.columns])
        for r in rows:
            cp.write_row(values(r))
