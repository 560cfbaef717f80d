"""A small simulated archive with both maps trained and every plane loaded, built once per test
session for the web tests (the API and the browser tests read it, and never write it).

Four quality classes of eight exposures each, registered as `caomai register` does (footprints,
filters, dates), one in eight observations proprietary; Map 1 trained on the first half, every
plane loaded, Map 2 trained. An upload comes from exposures rendered with another seed."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from caomai_db import database
from caomai_db.config import Settings
from caomai_loaders.load import LoadOptions, load
from caomai_loaders.register import register_paths
from caomai_loaders.train import train_map1, train_map2

from . import databases
from .simarchive import archive

CLASSES = ("good", "bad_tracking", "bad_focus", "crowded")
GEOMETRY = dict(ccds=2, ccd_size=(512, 512), classes={c: 1.0 for c in CLASSES}, workers=2)


@dataclass
class WebArchive:
    dsn: str
    directory: Path
    #: publisherID -> quality class, for every registered plane
    truth: dict[str, str]
    #: publisherIDs of the proprietary planes
    proprietary: set[str]
    #: exposures not in the archive (path -> quality class), to upload
    uploads: dict[Path, str]


_BUILT: dict[str, WebArchive] = {}


def manifest(directory: Path) -> dict[Path, str]:
    """file -> quality class, from the simulator's manifest."""
    with (directory / "truth" / "exposures.csv").open(newline="") as f:
        return {directory / r["file"]: r["quality_class"] for r in csv.DictReader(f)}


def web_archive(cluster_dsn: str) -> WebArchive:
    if cluster_dsn in _BUILT:
        return _BUILT[cluster_dsn]
    directory = archive("web", exposures=32, seed=21, **GEOMETRY)
    extra = archive("web-uploads", exposures=8, seed=22, **GEOMETRY)
    dsn = databases.create(cluster_dsn, "web_")  # lives as long as the test cluster
    register_paths(dsn, [directory], proprietary_fraction=0.125)
    settings = Settings.from_env(dsn)
    with database.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT p.publisherid, a.uri, p.metarelease > now()"
            " FROM caom2.plane p JOIN caom2.artifact a ON a.planeid = p.planeid"
        ).fetchall()
    by_file = {path.resolve().as_uri(): cls for path, cls in manifest(directory).items()}
    truth = {pid: by_file[uri] for pid, uri, _ in rows}
    proprietary = {pid for pid, _, private in rows if private}
    train_map1(
        settings,
        n_cutouts=3000,
        epochs=2,
        som_epochs=20,
        workers=1,
        progress=False,
        name="web-map1",
    )
    load(settings, options=LoadOptions(workers=1, progress=False))
    train_map2(settings, epochs=40, seed=1, name="web-map2")
    built = WebArchive(dsn, directory, truth, proprietary, manifest(extra))
    _BUILT[cluster_dsn] = built
    return built
