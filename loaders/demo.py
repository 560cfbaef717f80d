"""`caomai demo` / `make demo`: the main job, end to end, on the embedded database, ending
with the web page and the TAP service.

In the order that shows the maps soonest (``prepare``):

1. start the database and bring the schema to head;
2. render the training half of the demo archive with the simulator (``simulate.DEMO``: 1000
   MegaCam-like exposures, ground truth beside them) and register it as CAOM2 rows;
3. train Map 1 on it, load it, train Map 2 on it;

then, while the CLI serves the page (``start_finish``: a child process), or before it stops
with ``--no-serve`` (``finish``):

4. render, register and load the held-out half; place every fingerprint on Map 2 in one batch;
5. score Map 2 and ``fp_similar`` against the truth on the held-out half (exposures no map saw);
6. run an ADQL query through the TAP service code (read-only role).

Rendering the halves one after the other gives the files one run over the whole archive gives
(``simulate.simulate_archive(part=...)``), and the maps see only the training half either way,
so the evaluation is the one a run in the old order printed.

Every step is resumable: a second ``caomai demo`` reuses the rendered files, the registered
rows (one query, no header read again), the trained models (by name) and the loaded planes,
so an interrupted demo goes on where it stopped, and a finished one serves in seconds.

The demo prints nothing itself: the CLI (``caomai_loaders.commands``) passes ``say``, which
shows the steps and results (stdout), and ``note``, which shows what the loaders report while
they work (stderr).
"""

from __future__ import annotations

import csv
import logging
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from caomai_db import database, dbadmin
from caomai_db.config import Settings
from caomai_db.errors import UsageError

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


@dataclass(frozen=True)
class Plan:
    """The demo archive: its size, folder and halves (what ``finish`` needs from ``prepare``,
    also in a child process)."""

    dsn: str
    out: Path
    exposures: int
    seed: int
    started: float

    @property
    def half(self) -> int:
        """Exposures before this index train the maps; the rest are held out."""
        return self.exposures // 2

    @property
    def split(self) -> str:
        """The first held-out observationID (ids sort as their indices)."""
        from .simulate import exposure_id

        return exposure_id(self.seed, self.half)

    @property
    def training(self) -> str:
        from .simulate import SIM_COLLECTION

        return f"o.collection = '{SIM_COLLECTION}' AND o.observationID < '{self.split}'"

    @property
    def everything(self) -> str:
        from .simulate import SIM_COLLECTION

        return f"o.collection = '{SIM_COLLECTION}'"

    def files(self, first: int, stop: int) -> list[Path]:
        from .simulate import exposure_id

        return [
            self.out / "images" / f"{exposure_id(self.seed, i)}.fits" for i in range(first, stop)
        ]


def _step(say: Say, title: str) -> float:
    say(f"\n== {title}")
    return time.perf_counter()


def _done(say: Say, t0: float, what: str = "") -> None:
    say(f"   {what}{' ' if what else ''}({time.perf_counter() - t0:.0f} s)")


def _rendered(plan: Plan, first: int, stop: int) -> bool:
    """True when exposures ``first <= i < stop`` of this archive are there with their truth:
    the whole archive's manifest, or the part's."""
    from .simulate import part_paths

    manifest = plan.out / "truth" / "exposures.csv"
    if manifest.exists():
        with manifest.open(newline="") as f:
            rows = list(csv.DictReader(f))
        if len(rows) == plan.exposures and all((plan.out / r["file"]).exists() for r in rows):
            return True
    part = part_paths(plan.out, plan.exposures, first, stop)[0]
    return part.exists() and all(f.exists() for f in plan.files(first, stop))


def _model_exists(dsn: str, name: str) -> bool:
    with database.connect(dsn) as conn:
        found = conn.execute("SELECT 1 FROM caomai.model WHERE name = %s", (name,)).fetchone()
        conn.rollback()
    return found is not None


def _unloaded(dsn: str, planes: str) -> int:
    """Planes of the selection without a fingerprint of Map 1: a finished load is skipped
    without starting its worker processes (seconds of a second run)."""
    from . import modelstore
    from .selection import select_planes

    with database.connect(dsn) as conn:
        model = modelstore.get_model(conn, MAP1_NAME)
        ids = [p.planeid for p in select_planes(conn, planes, None)]
        missing = conn.execute(
            "SELECT count(*) FROM unnest(%s::uuid[]) AS u(planeid) WHERE NOT EXISTS"
            " (SELECT 1 FROM caomai.fingerprint AS f"
            "  WHERE f.planeid = u.planeid AND f.model_id = %s)",
            (ids, model.model_id),
        ).fetchone()[0]
        conn.rollback()
    return int(missing)


def _render_and_register(
    settings: Settings, opts: DemoOptions, plan: Plan, first: int, stop: int, say: Say, note: Say
) -> bool:
    """Exposures ``first <= i < stop``: rendered unless there, registered unless registered."""
    from .register import register_paths, unregistered
    from .simulate import DEMO, SIM_COLLECTION, SIM_PROPRIETARY_FRACTION, simulate_archive

    t0 = _step(
        say, f"simulated archive: exposures {first}-{stop - 1} of {plan.exposures} -> {plan.out}"
    )
    if _rendered(plan, first, stop):
        _done(say, t0, "already rendered")
    else:
        simulate_archive(
            plan.out,
            plan.exposures,
            seed=plan.seed,
            ccds=int(DEMO["ccds"]),
            ccd_size=DEMO["ccd_size"],
            workers=opts.workers,
            progress=opts.progress,
            say=note,
            part=(first, stop),
        )
        _done(say, t0, "rendered")
    t0 = _step(say, f"register exposures {first}-{stop - 1} as CAOM2 rows")
    todo = unregistered(plan.dsn, plan.files(first, stop))
    if not todo:
        _done(say, t0, "already registered")
        return True
    report = register_paths(
        plan.dsn,
        todo,
        collection=SIM_COLLECTION,
        proprietary_fraction=SIM_PROPRIETARY_FRACTION,
        progress=opts.progress,
    )
    say("   " + report.summary())
    _done(say, t0)
    return report.ok


def _load(
    settings: Settings, opts: DemoOptions, plan: Plan, planes: str, say: Say, note: Say
) -> None:
    from .load import LoadOptions, load

    missing = _unloaded(plan.dsn, planes)
    t0 = _step(say, "load: detection, cutouts, Map-1 nodes, fingerprints")
    if not missing:
        _done(say, t0, "already loaded")
        return
    summary = load(
        settings,
        planes=planes,
        options=LoadOptions(
            max_objects=opts.max_objects, workers=opts.workers, progress=opts.progress
        ),
        say=note,
    )
    say("   " + summary.render().replace("\n", "\n   "))
    _done(say, t0)


def prepare(
    settings: Settings,
    options: DemoOptions | None = None,
    say: Say | None = None,
    note: Say | None = None,
) -> Plan | None:
    """Everything the page needs: the database, the training half rendered, registered and
    loaded, both maps. None when a step failed (it said why)."""
    from . import modelstore
    from .simulate import DEMO
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
        return None

    n = opts.exposures or int(DEMO["exposures"])
    if n < 2:
        raise UsageError("--exposures must be at least 2 (a training half and a held-out half)")
    out = (opts.out or settings.home / "demo").resolve()
    plan = Plan(dsn, out, n, int(DEMO["seed"]), started)
    if not _render_and_register(settings, opts, plan, 0, plan.half, say, note or say):
        return None

    t0 = _step(say, f"Map 1 ({MAP1_NAME}): encoder + 20x20 SOM on exposures before {plan.split}")
    if _model_exists(dsn, MAP1_NAME):
        _done(say, t0, "already trained")
    else:
        train_map1(
            settings,
            planes=plan.training,
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

    _load(settings, opts, plan, plan.training, say, note or say)

    t0 = _step(say, f"Map 2 ({MAP2_NAME}): 20x20 SOM on the fingerprints of the training half")
    if _model_exists(dsn, MAP2_NAME):
        _done(say, t0, "already trained")
    else:
        train_map2(
            settings, planes=plan.training, name=MAP2_NAME, description="caomai demo", say=note
        )
        _done(say, t0, "trained")
    return plan


def finish(
    settings: Settings,
    options: DemoOptions | None,
    plan: Plan,
    say: Say | None = None,
    note: Say | None = None,
) -> int:
    """The held-out half rendered, registered and loaded, the evaluation and a query; 0 when
    every step worked."""
    from .evaluate import evaluate
    from .train import place_all_on_map2

    opts = options or DemoOptions()
    say = say or log.info
    if not _render_and_register(settings, opts, plan, plan.half, plan.exposures, say, note or say):
        return 1
    _load(settings, opts, plan, plan.everything, say, note or say)
    place_all_on_map2(settings, MAP2_NAME)

    t0 = _step(say, "evaluate against the simulator's truth (held-out half)")
    # the simulated expert labels both maps by the training half's truth (what each node holds
    # most of), so the page shows the labels a curator would give them
    scores = evaluate(
        settings, truth=plan.out / "truth" / "exposures.csv", map2=MAP2_NAME, apply_labels=True
    )
    say(scores.render())
    _done(say, t0)

    t0 = _step(say, "an ADQL query through the TAP service (read-only role)")
    _show_query(settings, plan.dsn, say)
    _done(say, t0)
    return 0


def run_demo(
    settings: Settings,
    options: DemoOptions | None = None,
    say: Say | None = None,
    note: Say | None = None,
) -> int:
    """The whole demo without serving (`caomai demo --no-serve`); 0 when every step worked.
    ``say`` gets the steps and results, ``note`` the loaders' own reports (both default to
    the log)."""
    say = say or log.info
    plan = prepare(settings, options, say, note)
    if plan is None:
        return 1
    rc = finish(settings, options, plan, say, note)
    if rc == 0:
        say(
            f"\ndemo done in {time.perf_counter() - plan.started:.0f} s. The embedded database "
            "keeps running (`caomai db stop` stops it).\nServe it to the browser, TOPCAT, pyvo "
            "or stilts with `caomai serve` (http://127.0.0.1:8080/)."
        )
    return rc


# -- while serving: the rest in a child process ----------------------------------------------


def start_finish(
    settings: Settings, options: DemoOptions, plan: Plan, say: Say, note: Say, url: str
) -> mp.Process:
    """Run ``finish`` in a child process while the parent serves. A process, not a thread:
    the loaders start process pools of their own, and their CPU work must not hold the
    server's interpreter. ``say`` and ``note`` must be module-level functions (pickled)."""
    quiet = replace(options, progress=False)  # no progress bars under the printed URL
    child = mp.get_context("spawn").Process(
        target=_finish_in_child,
        args=(settings, quiet, plan, say, note, url),
        name="caomai-demo-finish",
    )
    child.start()
    return child


def _finish_in_child(
    settings: Settings, options: DemoOptions, plan: Plan, say: Say, note: Say, url: str
) -> None:
    t0 = time.perf_counter()
    try:
        rc = finish(settings, options, plan, say, note)
    except KeyboardInterrupt:
        say("\nloading stopped; `make demo` goes on from there next time")
        return
    if rc == 0:
        say(
            f"\nthe whole demo archive is loaded and evaluated ({time.perf_counter() - t0:.0f} s"
            f" after serving began, {time.perf_counter() - plan.started:.0f} s in all); still"
            f" serving {url} (Ctrl-C stops)"
        )


def stop_finish(child: mp.Process, grace_s: float = 5.0) -> None:
    """End the child cleanly: Ctrl-C at the terminal reached it too, so give it a moment; else
    interrupt it (it puts back the planes it holds), and kill it only if that does not work."""
    child.join(grace_s)
    if child.is_alive() and child.pid is not None:
        os.kill(child.pid, signal.SIGINT)
        child.join(60)
    if child.is_alive():
        child.terminate()
        child.join()


def example_queries(dsn: str) -> list[str]:
    """The README's three example queries (``caomai_db/tap/examples.py``) with images of the
    demo archive as references, so that they run as printed: the first two public images
    on Map 2, in the first one's band, and Map-1 nodes the first one holds objects in."""
    from caomai_db.tap import examples

    with database.connect(dsn) as conn:
        refs = conn.execute(
            "SELECT p.publisherID, p.energy_bandpassName, f.counts FROM caomai.fingerprint AS f"
            " JOIN caom2.Plane AS p ON p.planeID = f.planeID"
            " JOIN caomai.model AS m ON m.model_id = f.model_id AND m.active"
            " WHERE p.metaRelease <= now() AND f.map2_node IS NOT NULL"
            " ORDER BY p.publisherID LIMIT 2"
        ).fetchall()
        conn.rollback()
    if len(refs) < 2:
        return []
    nodes = busiest_nodes(refs[0][2])
    return [
        ex.query(refs[0][0], refs[1][0], band=refs[0][1], nodes=nodes)
        for ex in examples.EXAMPLES
        if ex.readme
    ]


def busiest_nodes(counts: list[int], width: int = 41) -> str:
    """The ``width`` consecutive Map-1 nodes (as ``has_object_node`` takes them: "a-b") holding
    the most of an image's objects. Which kinds of objects a node range holds depends on the
    map; a range the reference itself fills makes the printed query find images on any map."""
    per_node = np.asarray(counts, dtype=np.int64)
    width = min(width, len(per_node))
    window = np.convolve(per_node, np.ones(width, np.int64), mode="valid")
    first = int(np.argmax(window))
    return f"{first}-{first + width - 1}"


def howto(dsn: str, url: str) -> str:
    """What the demo prints when it serves: where, three queries, pyvo, stilts, TOPCAT."""
    tap = url.rstrip("/") + "/tap"
    queries = example_queries(dsn)
    lines = [
        "",
        f"== serving the demo archive: {url}",
        f"   the maps (open it in a browser): {url}",
        f"   the TAP service:                 {tap}",
        "   The held-out half is rendered, registered and loaded meanwhile: the page says how",
        "   far loading is, and the evaluation report follows here when it is done.",
        "",
        "Three ADQL queries on the demo archive (TOPCAT, pyvo and stilts take them as they are):",
    ]
    for q in queries:
        lines += ["", q]
    first = queries[0] if queries else "SELECT TOP 5 publisherID FROM caomai.fingerprint"
    last = " ".join((queries[-1] if queries else first).split())
    lines += [
        "",
        "pyvo (Python):",
        "",
        "    import pyvo",
        f'    tap = pyvo.dal.TAPService("{tap}")',
        '    print(tap.run_sync("""' + first.replace("\n", "\n    ") + '""").to_table())',
        "",
        "stilts (shell):",
        "",
        f'    stilts tapquery tapurl={tap} ofmt=csv out=- adql="{last}"',
        "",
        f"TOPCAT: VO > Table Access Protocol (TAP) Query; enter {tap} as the TAP URL, press",
        "Use Service, paste a query into the ADQL text box and press Run Query.",
        "",
        "Ctrl-C stops the service; a second `make demo` reuses everything and serves again in",
        "seconds (an interrupted load goes on where it stopped).",
    ]
    return "\n".join(lines)


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
