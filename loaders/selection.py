"""Which planes a training or loading job works on, and where their files lie.

``--planes QUERY`` is either a full ``SELECT`` whose first column is planeID, or a condition
over ``caom2.Observation AS o`` and ``caom2.Plane AS p`` (e.g. ``o.collection = 'CFHT' AND
p.energy_bandpassName = 'r'``). ``--files`` names registered files, or directories standing
for the image files under them (found as ``caomai register DIR`` finds them); an unregistered
file is an error naming it (``caomai register`` it first). With neither, every plane with a
science artifact on disk (``file://``) is taken.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg

from caomai_db.access import public
from caomai_db.errors import UsageError

BASE = f"""
SELECT p.planeid, a.uri, o.observationid, p.publisherid,
       {public("p")} AS public
  FROM caom2.plane AS p
  JOIN caom2.observation AS o ON o.obsid = p.obsid
  JOIN LATERAL (
        SELECT a.uri FROM caom2.artifact AS a
         WHERE a.planeid = p.planeid AND a.producttype = 'science' AND a.uri LIKE 'file://%%'
         ORDER BY a.uri LIMIT 1) AS a ON true
"""


@dataclass(frozen=True)
class PlaneFile:
    planeid: uuid.UUID
    path: Path
    observation_id: str
    publisherid: str
    #: metaRelease NULL or passed (the TAP access rule): only such planes may train a map,
    #: whose codebooks, thumbnails and statistics are published
    public: bool = True


def file_path(uri: str) -> Path:
    parts = urlsplit(uri)
    if parts.scheme != "file":
        raise UsageError(f"not a file:// URI: {uri}")
    return Path(unquote(parts.path))


def expand_files(files: list[str]) -> list[str]:
    """The files given, with each directory replaced by the image files under it.

    The same walk as ``caomai register DIR``, so the folder a user registered can be trained on
    or loaded by the same name; a directory without image files is an error rather than an
    empty selection.
    """
    from .register import find_files  # numpy and astropy: only when --files is used

    out: list[str] = []
    for name in files:
        found = find_files([Path(name)])
        if Path(name).is_dir() and not found:
            raise UsageError(f"no image files under {name}")
        out.extend(str(f) for f in found)
    return out


def select_planes(
    conn: psycopg.Connection,
    planes: str | None = None,
    files: list[str] | None = None,
) -> list[PlaneFile]:
    """The planes named by the options, ordered by observationID (deterministic)."""
    if planes and files:
        raise UsageError("give --planes or --files, not both")
    if files:
        # a directory stands for the image files under it, as `caomai register DIR` finds them,
        # so the folder a user registered can be loaded by the same name
        files = expand_files(files)
        uris = [Path(f).resolve().as_uri() for f in files]
        rows = conn.execute(
            BASE + " WHERE a.uri = ANY(%s) ORDER BY o.observationid, p.productid", (uris,)
        ).fetchall()
        found = {r[1] for r in rows}
        missing = [f for f, u in zip(files, uris, strict=True) if u not in found]
        if missing:
            raise UsageError(
                f"{len(missing)} file(s) are not registered as science artifacts: "
                + ", ".join(missing[:5])
                + (" ..." if len(missing) > 5 else "")
                + "; run `caomai register` on them first"
            )
    elif planes and planes.strip():
        text = planes.strip().rstrip(";")
        if text.lower().startswith(("select", "with")):
            sql = BASE + f" WHERE p.planeid IN (SELECT q.planeid FROM ({text}) AS q(planeid))"
        else:
            sql = BASE + f" WHERE ({text})"
        try:
            rows = conn.execute(sql + " ORDER BY o.observationid, p.productid").fetchall()
        except psycopg.Error as exc:
            conn.rollback()
            raise UsageError(f"--planes: {str(exc).strip()}") from exc
    else:
        rows = conn.execute(BASE + " ORDER BY o.observationid, p.productid").fetchall()
    return [PlaneFile(r[0], file_path(r[1]), r[2], r[3], r[4]) for r in rows]
