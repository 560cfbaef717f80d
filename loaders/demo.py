"""`caomai demo` / `make demo`: the main job, end to end, on the embedded database.

1. start the database and bring the schema to head;
2. render the demo archive with the simulator (``simulate.DEMO``: 1000 MegaCam-like
   exposures, ground truth beside them) and register it as CAOM2 rows;
3. train Map 1 on the first half of the exposures, load every exposure, train Map 2 on the
   first half;
4. score Map 2 and ``fp_similar`` against the truth on the second half (exposures no map saw);
5. run an ADQL query through the TAP service code (read-only role), combining content and
   metadata, and say how to serve it.

Every step is resumable: a second ``caomai demo`` reuses the rendered files, the registered
rows, the trained models (by name) and the loaded planes, so an interrupted demo goes on
where it stopped. The figures it reports are the ones the README quotes for the demo.

The demo prints nothing itself: the CLI (``caomai_loaders.commands``) passes ``say``, which
shows the steps and results (stdout), and ``note``, which shows what the loaders report while
they work (stderr).
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from caomai_db import database, dbadmin
from caomai_db.config import Settings

log = logging.getLogger(__name__)

#: how the demo reports a line of text (the CLI passes a printer)
Say = Callable[[str], None]

MAP1_NAME = "demo-map1"
MAP2_NAME = "demo-map2"


@dataclass
class DemoOptions:
    """What `caomai demo` may change; the defaults are the demo the README describes."""

    exposures: int | None = None
    """None: the demo size of ``simulate.DEMO``."""
    out: Path | None = None
    """Where the archive goes; default ``$CAOMAI_HOME/demo``."""
    cutouts: int = 20000
    epochs: int = 10
    max_objects: int = 400
    workers: int | None = None
    progress: bool = True


def _step(say: Say, title: str) -> float:
    say(f"\n== {title}")
    return time.perf_counter()


def _done(say: Say, t0: float, what: str = "") -> None:
    say(f"   {what}{' ' if what else ''}({time.perf_counter() - t0:.0f} s)")


def _rendered(out: Path, exposures: int) -> bool:
    """True when a complete archive of this size is already there (manifest and every file)."""
    manifest = out / "truth" / "exposures.csv"
    if not manifest.exists():
        return False
    with manifest.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return len(rows) == exposures and all((out / r["file"]).exists() for r in rows)


def _model_exists(dsn: str, name: str) -> bool:
    with database.connect(dsn) as conn:
        found = conn.execute("SELECT 1 FROM caomai.model WHERE name = %s", (name,)).fetchone()
        conn.rollback()
    return found is not None


def run_demo(
    settings: Settings,
    options: DemoOptions | None = None,
    say: Say | None = None,
    note: Say | None = None,
) -> int:
    """Run the demo; 0 when every step worked. ``say`` gets the steps and results, ``note``
    the loaders' own reports (both default to the log)."""
    from . import modelstore
    from .evaluate import evaluate
    from .load import LoadOptions, load
    from .register import register_paths
    from .simulate import DEMO, SIM_COLLECTION, SIM_PROPRIETARY_FRACTION, simulate_archive
    from .train import train_map1, train_map2

    opts = options or DemoOptions()
    say = say or log.info
    started = time.perf_counter()
    dsn = database.resolve_dsn(settings)
    say(f"database: {dsn}")
    dbadmin.upgrade(dsn, "head")
    status = dbadmin.status(settings)
    say(status.render())
    if not status.at_head:
        say("the schema is not at head")
        return 1

    n = opts.exposures or int(DEMO["exposures"])
    out = opts.out or settings.home / "demo"
    t0 = _step(say, f"simulated archive: {n} exposures -> {out}")
    if _rendered(out, n):
        _done(say, t0, "already rendered")
    else:
        simulate_archive(
            out,
            n,
            seed=int(DEMO["seed"]),
            ccds=int(DEMO["ccds"]),
            ccd_size=DEMO["ccd_size"],
            workers=opts.workers,
            progress=opts.progress,
            say=note,
        )
        _done(say, t0, "rendered")
    t0 = _step(say, "register the files as CAOM2 rows")
    report = register_paths(
        dsn,
        [out / "images"],
        collection=SIM_COLLECTION,
        proprietary_fraction=SIM_PROPRIETARY_FRACTION,
        progress=opts.progress,
    )
    say("   " + report.summary())
    _done(say, t0)
    if not report.ok:
        return 1

    # the first half trains both maps; the second half is what the scores are measured on
    with (out / "truth" / "exposures.csv").open(newline="") as f:
        ids = sorted(r["exposure_id"] for r in csv.DictReader(f))
    split = ids[len(ids) // 2]
    training = f"o.collection = '{SIM_COLLECTION}' AND o.observationID < '{split}'"
    everything = f"o.collection = '{SIM_COLLECTION}'"

    t0 = _step(say, f"Map 1 ({MAP1_NAME}): encoder + 20x20 SOM on exposures before {split}")
    if _model_exists(dsn, MAP1_NAME):
        _done(say, t0, "already trained")
    else:
        train_map1(
            settings,
            planes=training,
            n_cutouts=opts.cutouts,
            epochs=opts.epochs,
            transform="smooth-sqrt",
            workers=opts.workers,
            name=MAP1_NAME,
            progress=opts.progress,
            description="caomai demo",
            say=note,
        )
        _done(say, t0, "trained")
    with database.connect(dsn) as conn:
        modelstore.activate(conn, modelstore.get_model(conn, MAP1_NAME).model_id)

    t0 = _step(say, "load: detection, cutouts, Map-1 nodes, fingerprints of every exposure")
    summary = load(
        settings,
        planes=everything,
        options=LoadOptions(
            max_objects=opts.max_objects, workers=opts.workers, progress=opts.progress
        ),
        say=note,
    )
    say("   " + summary.render().replace("\n", "\n   "))
    _done(say, t0)

    t0 = _step(say, f"Map 2 ({MAP2_NAME}): 20x20 SOM on the fingerprints of the training half")
    if _model_exists(dsn, MAP2_NAME):
        _done(say, t0, "already trained")
    else:
        train_map2(settings, planes=training, name=MAP2_NAME, description="caomai demo", say=note)
        _done(say, t0, "trained")

    t0 = _step(say, "evaluate against the simulator's truth (held-out half)")
    scores = evaluate(settings, truth=out / "truth" / "exposures.csv", map2=MAP2_NAME)
    say(scores.render())
    _done(say, t0)

    t0 = _step(say, "an ADQL query through the TAP service (read-only role)")
    _show_query(settings, dsn, say)
    _done(say, t0)

    say(
        f"\ndemo done in {time.perf_counter() - started:.0f} s. The embedded database keeps "
        "running (`caomai db stop` stops it).\nServe it to TOPCAT, pyvo or stilts with "
        "`caomai serve` (http://127.0.0.1:8080/tap)."
    )
    return 0


def _show_query(settings: Settings, dsn: str, say: Say) -> None:
    """The README's kind of query (the example ``similar-in-band`` of caomai_db/tap/examples.py):
    images like the first public one, in its band."""
    from caomai_db.tap import examples
    from caomai_db.tap.service import TapService

    with database.connect(dsn) as conn:
        ref = conn.execute(
            "SELECT p.publisherID, p.energy_bandpassName FROM caomai.fingerprint AS f"
            " JOIN caom2.Plane AS p ON p.planeID = f.planeID"
            " JOIN caomai.model AS m ON m.model_id = f.model_id AND m.active"
            " WHERE p.metaRelease <= now() ORDER BY p.publisherID LIMIT 1"
        ).fetchone()
        conn.rollback()
    if ref is None:
        say("   no public fingerprinted image to query with")
        return
    adql = examples.by_key("similar-in-band").query(ref[0], band=ref[1])
    say("   " + adql.replace("\n", "\n   "))
    service = TapService(settings, pool_size=1)
    try:
        result = service.run_query(
            {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql, "RESPONSEFORMAT": "csv"},
            timeout_s=60,
        )
    finally:
        service.close()
    text = result.body.decode("utf-8", "replace") if result.error is None else result.error
    say("   " + text.strip().replace("\n", "\n   "))
