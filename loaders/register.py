"""`caomai register`: CAOM2 Observation/Plane/Artifact rows for an archive's own files.

The path every file takes into the archive's metadata, simulated or real: one Observation, one
Plane and one Artifact per file, from ordinary FITS keywords (TELESCOP, INSTRUME, FILTER,
EXPTIME, DATE-OBS/MJD-OBS, EXPNUM/OBSID, OBJECT, OBSTYPE) and the celestial WCS of each image
extension, read through ``caomai_loaders.images`` (the same reader the loaders use, so what is
registered is what will be loaded).

- Identifiers: ``observationID`` = EXPNUM or OBSID, else the file stem; ``productID`` =
  observationID + 'p' (CFHT style; a stem that is observationID plus a one-letter CFHT suffix,
  '1032210o', keeps its own letter so raw and processed files become two planes);
  ``planeURI`` = caom:{collection}/{observationID}/{productID}; ``publisherID`` =
  ivo://{authority}/{collection}?{observationID}/{productID}; ids are uuid5 of the URIs, so
  registering again updates the same rows.
- Position: the convex hull of the corners of all image extensions (ICRS, DALI polygon
  ra1, dec1, ..., counter-clockwise as seen from inside the sphere, i.e. with east to the
  left), its centroid, spherical area and size (largest vertex separation), the mosaic's pixel
  extent and the median pixel size.
- Release: metaRelease = dataRelease = the observation date for public planes. A share
  ``proprietary_fraction`` of the observations, chosen by a hash of the observation URI (the
  same ones every time), get metaRelease and dataRelease ``release_after_days`` after today.

Missing keywords get a default and a warning (summarised per kind of warning); a file that
cannot be read is reported with the reason and the run goes on.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .caom2_rows import Artifact, Observation, Plane, upsert
from .images import ImageError, is_raster

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

# the parts: describe (one file -> rows), footprint (sky geometry), register_keywords (headers)
from .describe import describe, is_proprietary  # noqa: E402, F401 - is_proprietary re-exported
from .footprint import footprint  # noqa: E402, F401 - re-exported for the tests
from .register_keywords import (  # noqa: E402
    DEFAULT_AUTHORITY,
    DEFAULT_RELEASE_AFTER_DAYS,
    FITS_SUFFIXES,
)


@dataclass
class FileResult:
    path: Path
    ok: bool
    observation_id: str | None = None
    plane_uri: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class RegisterReport:
    results: list[FileResult] = field(default_factory=list)

    @property
    def registered(self) -> list[FileResult]:
        return [r for r in self.results if r.ok]

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failed and bool(self.results)

    def warning_counts(self) -> Counter[str]:
        return Counter(w for r in self.results for w in r.warnings)

    def summary(self) -> str:
        lines = [
            f"registered {len(self.registered)} file(s), {len(self.failed)} failed"
            + ("" if self.results else " (no files found)")
        ]
        for text, n in sorted(self.warning_counts().items(), key=lambda kv: -kv[1]):
            lines.append(f"  warning ({n} file{'s' if n > 1 else ''}): {text}")
        for r in self.failed:
            lines.append(f"  FAILED {r.path}: {r.error}")
        return "\n".join(lines)


def find_files(paths: list[Path]) -> list[Path]:
    """Files to register: the files given, and image files found under the directories given."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                name = f.name.lower()
                if f.is_file() and (name.endswith(FITS_SUFFIXES) or is_raster(f)):
                    out.append(f)
        else:
            out.append(p)
    return out


# -- writing ---------------------------------------------------------------------------------


def write_rows(
    conn: psycopg.Connection, observation: Observation, plane: Plane, artifact: Artifact
) -> None:
    """Upsert the three rows (in the caller's transaction): registering a file again updates
    its rows (same uuid5 ids) and marks them modified."""
    upsert(conn, [observation], "update")
    upsert(conn, [plane], "update")
    upsert(conn, [artifact], "update")


def unregistered(dsn: str, files: list[Path]) -> list[Path]:
    """The files that no caom2.Artifact names yet: one query instead of reading every header
    again, so that a second `caomai demo` skips what the first registered."""
    from caomai_db.database import connect

    uris = [Path(f).resolve().as_uri() for f in files]
    with connect(dsn, vector=False) as conn:
        known = {
            r[0]
            for r in conn.execute(
                "SELECT uri FROM caom2.artifact WHERE uri = ANY(%s)", (uris,)
            ).fetchall()
        }
        conn.rollback()
    return [f for f, uri in zip(files, uris, strict=True) if uri not in known]


def register_paths(
    dsn: str,
    paths: list[Path],
    *,
    collection: str | None = None,
    authority: str = DEFAULT_AUTHORITY,
    proprietary_fraction: float = 0.0,
    release_after_days: int = DEFAULT_RELEASE_AFTER_DAYS,
    calibration_level: int | None = None,
    progress: bool = False,
    today: datetime | None = None,
) -> RegisterReport:
    """Register every file (directories are searched) as CAOM2 rows; never stops on a bad file.

    ``today`` (default: now) is the day proprietary releases count from: a caller that
    registers the same files twice and wants the same rows passes the same day."""
    import psycopg
    from tqdm import tqdm

    from caomai_db.database import connect

    files = find_files([Path(p) for p in paths])
    report = RegisterReport()
    today = today or datetime.now(UTC)
    seen: dict[str, Path] = {}
    with connect(dsn, vector=False) as conn:
        for path in tqdm(files, unit="file", desc="registering", disable=not progress):
            try:
                obs, plane, art, warns = describe(
                    path,
                    collection=collection,
                    authority=authority,
                    proprietary_fraction=proprietary_fraction,
                    release_after_days=release_after_days,
                    calibration_level=calibration_level,
                    today=today,
                )
            except ImageError as exc:
                report.results.append(FileResult(path, False, error=str(exc)))
                continue
            except Exception as exc:  # a header no reader foresaw: report it, go on
                log.debug("registering %s", path, exc_info=True)
                report.results.append(FileResult(path, False, error=f"{type(exc).__name__}: {exc}"))
                continue
            other = seen.get(plane.planeuri)
            if other is not None and other != path:
                warns.append("two files give the same plane; both are its artifacts")
            seen[plane.planeuri] = path
            try:
                with conn.transaction():
                    write_rows(conn, obs, plane, art)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                report.results.append(
                    FileResult(path, False, error=f"database refused the rows: {exc}".strip())
                )
                continue
            report.results.append(
                FileResult(path, True, obs.observationid, plane.planeuri, warnings=warns)
            )
    for r in report.results:
        for w in r.warnings:
            log.info("%s: %s", r.path.name, w)
    return report
