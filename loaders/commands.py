"""The loaders' subcommands of `caomai`: demo, simulate, register, train, load, label-node,
evaluate, model, synthetic.

``register(subparsers)`` is the ``caomai.commands`` entry point (pyproject.toml) that
``caomai_db.cli.build_parser`` calls, so the database package never imports the loaders; heavy
imports (torch, sep) happen inside the handlers so `caomai --help` stays fast.

This is the only loader module that prints: the library functions return their results and
report progress through a ``say`` callable (default: the log), which the handlers set to
print on stderr; the demo gets one for stdout too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from caomai_db.config import Settings
from caomai_db.errors import UsageError

from . import rare, shape, simulate

if TYPE_CHECKING:
    from .demo import DemoOptions, Plan


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--planes",
        metavar="QUERY",
        help="planes to use: a condition over caom2.Observation AS o and caom2.Plane AS p "
        "(e.g. \"o.collection = 'CFHT'\"), or a SELECT whose first column is planeID "
        "(default: every plane with a science file)",
    )
    p.add_argument(
        "--files",
        nargs="+",
        metavar="FILE|DIR",
        help="registered files to use instead, or directories of them (searched as by register)",
    )


def _add_device(p: argparse.ArgumentParser, threads_help: str) -> None:
    p.add_argument(
        "--device",
        default="auto",
        help="auto (GPU when present), cpu, cuda or cuda:N (default auto)",
    )
    p.add_argument(
        "--threads",
        type=int,
        help=threads_help,
    )


# -- handlers ---------------------------------------------------------------------------------


def _stdout(message: str) -> None:
    """The demo's steps and results, shown as they happen."""
    print(message, flush=True)


def _stderr(message: str) -> None:
    """What the library functions report while they work (their ``say``): on stderr, beside
    the progress bars, so that stdout keeps only the result."""
    print(message, file=sys.stderr, flush=True)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from exc


def _fraction(text: str) -> float:
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError("a fraction between 0 and 1")
    return v


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    exp_csv = simulate.simulate_archive(
        Path(args.out),
        args.exposures,
        seed=args.seed,
        ccds=args.ccds,
        ccd_size=args.ccd_size,
        classes=args.classes,
        workers=args.workers,
        progress=not args.quiet,
        say=_stderr,
    )
    print(f"wrote {exp_csv.parent.parent}: images/, truth/exposures.csv, truth/objects.csv")
    if not args.register:
        return 0
    from caomai_db import database

    from .register import register_paths

    report = register_paths(
        database.resolve_dsn(settings),
        [Path(args.out) / "images"],
        collection=args.collection,
        proprietary_fraction=args.proprietary_fraction,
        progress=not args.quiet,
    )
    print(report.summary())
    return 0 if report.ok else 1


def cmd_register(args: argparse.Namespace, settings: Settings) -> int:
    from caomai_db import database

    from .register import register_paths

    report = register_paths(
        database.resolve_dsn(settings),
        [Path(p) for p in args.paths],
        collection=args.collection,
        authority=args.authority,
        proprietary_fraction=args.proprietary_fraction,
        release_after_days=args.release_after,
        calibration_level=args.calibration_level,
        progress=not args.quiet,
    )
    print(report.summary(), file=sys.stdout if report.ok else sys.stderr)
    if not report.results:
        return 2
    return 0 if report.ok else 1


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from . import demo

    options = demo.DemoOptions(
        exposures=args.exposures,
        out=Path(args.out) if args.out else None,
        cutouts=args.cutouts,
        epochs=args.epochs,
        max_objects=args.max_objects,
        workers=args.workers,
        progress=not args.no_progress,
    )
    if args.no_serve:
        return demo.run_demo(settings, options, say=_stdout, note=_stderr)
    plan = demo.prepare(settings, options, say=_stdout, note=_stderr)
    if plan is None:
        return 1
    return _serve_demo(args, settings, options, plan)


def _serve_demo(
    args: argparse.Namespace, settings: Settings, options: DemoOptions, plan: Plan
) -> int:
    """Serve the page and TAP while a child process loads the held-out half; Ctrl-C (or
    SIGTERM) stops both, the child putting back what it held."""
    import signal

    from caomai_db.tap.cli import serve

    from . import demo

    url = f"http://{args.host}:{args.port}/"
    child = demo.start_finish(settings, options, plan, _stdout, _stderr, url)
    signal.signal(signal.SIGTERM, _interrupt)  # uvicorn raises it again once it has stopped
    try:
        _stdout(demo.howto(plan.dsn, url))
        serve(settings, host=args.host, port=args.port, log_level="warning")
    except KeyboardInterrupt:
        pass
    finally:
        demo.stop_finish(child)
    _stdout("\nstopped. The embedded database keeps running (`caomai db stop` stops it).")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM as Ctrl-C: the demo stops the same way."""
    raise KeyboardInterrupt


def cmd_synthetic(args: argparse.Namespace, settings: Settings) -> int:
    from caomai_db import database, dbadmin

    from . import synthetic

    dsn = database.resolve_dsn(settings)
    dbadmin.upgrade(dsn, "head")
    archive = synthetic.generate(dsn, args.rows, seed=args.seed)
    print(
        f"wrote {archive.n:,} synthetic planes with fingerprints (seed {archive.seed});"
        f" e.g. {synthetic.publisher_id(3)}"
    )
    return 0


def cmd_train_map1(args: argparse.Namespace, settings: Settings) -> int:
    from .detect import DetectParams
    from .train import train_map1

    row = train_map1(
        settings,
        planes=args.planes,
        files=args.files,
        n_cutouts=args.cutouts,
        max_planes=args.max_planes,
        epochs=args.epochs,
        batch_size=args.batch_size,
        dim=args.dim,
        width=args.width,
        som_epochs=args.som_epochs,
        shape_weight=args.shape_weight,
        rare_mix=args.rare_mix,
        transform=args.transform,
        background=args.background,
        device=args.device,
        workers=args.workers,
        threads=args.threads,
        seed=args.seed,
        name=args.name,
        activate=not args.no_activate,
        detect=DetectParams(thresh=args.thresh, minarea=args.minarea, bw=args.bw, bh=args.bw),
        progress=not args.no_progress,
        description=args.description,
        say=_stderr,
    )
    print(row.name)
    return 0


def cmd_train_map2(args: argparse.Namespace, settings: Settings) -> int:
    from .train import train_map2

    row = train_map2(
        settings,
        planes=args.planes,
        files=args.files,
        map1=args.map1,
        epochs=args.epochs,
        device=args.device,
        seed=args.seed,
        name=args.name,
        activate=not args.no_activate,
        thumbnails=not args.no_thumbnails,
        description=args.description,
        input=args.input,
        say=_stderr,
    )
    print(row.name)
    return 0


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    from .load import LoadOptions, load

    summary = load(
        settings,
        planes=args.planes,
        files=args.files,
        resume=args.resume,
        run_id=args.run,
        reload=args.reload,
        retry_failed=args.retry_failed,
        enqueue_only=args.enqueue_only,
        options=LoadOptions(
            max_objects=args.max_objects,
            workers=args.workers,
            device=args.device,
            threads=args.threads,
            max_attempts=args.max_attempts,
            progress=not args.no_progress,
            limit=args.limit,
            previews=not args.no_previews,
        ),
        say=_stderr,
    )
    if args.enqueue_only:
        print(summary.run_id)
        return 0
    if args.json:
        print(json.dumps(summary.to_dict(), default=str))
    else:
        print(summary.render())
    return 0


def cmd_label_node(args: argparse.Namespace, settings: Settings) -> int:
    from .labels import label_node

    print(
        label_node(
            settings,
            args.model,
            args.node,
            None if args.clear else args.label,
            source=args.source,
        )
    )
    return 0


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from .evaluate import evaluate

    report = evaluate(
        settings,
        truth=args.truth,
        objects=args.objects,
        map2=args.map2,
        k=args.k,
        max_object_planes=args.max_object_planes,
        apply_labels=args.apply_labels,
    )
    print(report.render())
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report.to_dict(), fh, indent=2, default=str)
        print(f"\nwrote {args.json}")
    return 0


def cmd_model(args: argparse.Namespace, settings: Settings) -> int:
    from caomai_db import database

    from . import modelstore

    dsn = database.resolve_dsn(settings)
    with database.connect(dsn) as conn:
        if args.model_command == "list":
            rows = modelstore.list_models(conn)
            if not rows:
                print("no models; run `caomai train map1`")
                return 0
            print(f"{'id':>4}  {'kind':4}  {'active':6}  {'parent':6}  {'created':19}  name")
            for r in rows:
                created = r.created_at.strftime("%Y-%m-%d %H:%M:%S") if r.created_at else ""
                print(
                    f"{r.model_id:>4}  {r.kind:4}  {'yes' if r.active else '':6}  "
                    f"{r.parent_id or '':6}  {created:19}  {r.name}"
                )
            return 0
        row = modelstore.get_model(conn, args.model)
        if args.model_command == "show":
            info = {k: v for k, v in row.__dict__.items()}
            info["created_at"] = str(row.created_at)
            print(json.dumps(info, indent=2, default=str))
            return 0
        if args.model_command == "verify":
            path = modelstore.verify(settings, row)
            print(f"{row.name}: {path} matches {row.artifact_checksum}")
            return 0
        if args.model_command == "activate":
            modelstore.verify(settings, row)
            modelstore.activate(conn, row.model_id)
            print(f"{row.name} (model_id {row.model_id}) is now the active {row.kind} model")
            return 0
    raise UsageError(f"unknown model command {args.model_command}")


# -- parser -----------------------------------------------------------------------------------


def _add_simulate(subparsers: argparse._SubParsersAction) -> None:
    """`caomai simulate`."""
    from .simulate import DEFAULT_CCD_SIZE, DEFAULT_CCDS, SIM_COLLECTION, SIM_PROPRIETARY_FRACTION

    p = subparsers.add_parser(
        "simulate",
        help="render a MegaCam-like archive with ground truth (GalSim)",
        description="Render exposures of a simulated MegaCam-like archive into multi-extension "
        "FITS files (DIR/images) with their ground truth (DIR/truth).",
    )
    p.add_argument("--out", required=True, help="directory to write (created)")
    p.add_argument("--exposures", type=int, required=True, help="number of exposures")
    p.add_argument("--seed", type=int, default=0, help="random seed, 0-9999 (default 0)")
    p.add_argument("--ccds", type=int, default=DEFAULT_CCDS, help="CCDs per exposure")
    p.add_argument(
        "--ccd-size",
        type=_size,
        default=DEFAULT_CCD_SIZE,
        metavar="WxH",
        help="CCD size in pixels (default 1024x1024; MegaCam: --ccds 36 --ccd-size 2048x4612)",
    )
    p.add_argument(
        "--classes",
        nargs="+",
        metavar="CLASS[=WEIGHT]",
        help="quality classes to draw from, optionally weighted "
        "(good bad_tracking really_bad_tracking bad_seeing bad_focus background crowded "
        "low_exposure; default: all, 'good' the largest share)",
    )
    p.add_argument("--workers", type=int, help="processes (default: all available cores)")
    p.add_argument("--register", action="store_true", help="register the files as CAOM2 rows")
    p.add_argument(
        "--collection", default=SIM_COLLECTION, help=f"collection (default {SIM_COLLECTION})"
    )
    p.add_argument(
        "--proprietary-fraction",
        type=_fraction,
        default=SIM_PROPRIETARY_FRACTION,
        help=f"share of planes registered proprietary (default {SIM_PROPRIETARY_FRACTION})",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_simulate)


def _add_register(subparsers: argparse._SubParsersAction) -> None:
    """`caomai register`."""
    from .register_keywords import DEFAULT_AUTHORITY, DEFAULT_RELEASE_AFTER_DAYS

    p = subparsers.add_parser(
        "register",
        help="write CAOM2 Observation/Plane/Artifact rows for FITS (or JPEG/PNG) files",
        description="Register an archive's files as caom2 rows (idempotent: registering again "
        "updates the same rows). Exit status 1 when some files failed, 2 when none was found.",
    )
    p.add_argument("paths", nargs="+", metavar="DIR|FILE", help="files, or directories to search")
    p.add_argument(
        "--collection", help="collection name (default: from TELESCOP, e.g. 'CFHT 3.6m' -> CFHT)"
    )
    p.add_argument(
        "--authority",
        default=DEFAULT_AUTHORITY,
        help=f"authority of the publisherIDs (default {DEFAULT_AUTHORITY})",
    )
    p.add_argument(
        "--proprietary-fraction",
        type=float,
        default=0.0,
        help="share of observations made proprietary (chosen by a hash of their URI; default 0)",
    )
    p.add_argument(
        "--release-after",
        type=int,
        default=DEFAULT_RELEASE_AFTER_DAYS,
        metavar="DAYS",
        help=f"proprietary planes become public DAYS after today (default {DEFAULT_RELEASE_AFTER_DAYS})",
    )
    p.add_argument(
        "--calibration-level",
        type=int,
        choices=range(0, 5),
        help="Plane.calibrationLevel (default: 2 for files with a celestial WCS, else 1)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_register)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the loader commands to `caomai`'s subcommands (the ``caomai.commands`` entry point)."""
    p = sub.add_parser(
        "demo",
        help="the main job on the embedded database: simulate, register, train, load, "
        "serve the maps and TAP, evaluate (see README)",
    )
    p.add_argument("--exposures", type=int, help="archive size (default: 1000, the demo size)")
    p.add_argument("--out", help="archive directory (default $CAOMAI_HOME/demo)")
    p.add_argument("--cutouts", type=int, default=20000, help="Map-1 training cutouts")
    p.add_argument("--epochs", type=int, default=10, help="Map-1 encoder epochs")
    p.add_argument("--max-objects", type=int, default=400, help="objects sampled per image")
    p.add_argument("--workers", type=int, help="processes (default: the free cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--no-serve",
        action="store_true",
        help="do every step, print the report and stop (default: serve the page and TAP while "
        "the held-out half loads, until Ctrl-C)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to serve on (default 8080)")
    p.set_defaults(handler=cmd_demo)

    _add_simulate(sub)
    _add_register(sub)

    train = sub.add_parser("train", help="train Map 1 (objects) or Map 2 (images)")
    tsub = train.add_subparsers(dest="train_command", required=True, metavar="MAP")

    p = tsub.add_parser(
        "map1",
        help="sample cutouts, train the self-supervised encoder and the 20x20 object map",
    )
    _add_selection(p)
    p.add_argument("--cutouts", type=int, default=20000, help="cutouts to train on (default 20000)")
    p.add_argument("--max-planes", type=int, help="sample cutouts from at most this many planes")
    p.add_argument("--epochs", type=int, default=10, help="encoder epochs (default 10)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--dim", type=int, default=64, help="embedding dimension (default 64)")
    p.add_argument("--width", type=int, default=16, help="channels of the first conv stage")
    p.add_argument("--som-epochs", type=int, default=40)
    p.add_argument(
        "--shape-weight",
        type=float,
        default=shape.DEFAULT_WEIGHT,
        help="weight of the measured shape features (adaptive moments) beside the embedding "
        f"(loaders/shape.py; 0 = embedding only; default {shape.DEFAULT_WEIGHT:g})",
    )
    p.add_argument(
        "--rare-mix",
        type=float,
        default=rare.DEFAULT_MIX,
        help="share of the cutout sampling drawn by inverse density, so rare kinds (trails, "
        f"bleeds) own Map-1 nodes (loaders/rare.py; 0 = uniform; default {rare.DEFAULT_MIX:g})",
    )
    p.add_argument(
        "--transform",
        default="sqrt",
        choices=["linear", "sqrt", "smooth-sqrt", "log-density"],
        help="fingerprint transform recorded with the model (default sqrt)",
    )
    p.add_argument(
        "--background",
        default="image",
        choices=["image", "local"],
        help="what cutouts subtract: the image's median background, keeping gradients and "
        "scattered light visible (default), or sep's local background",
    )
    p.add_argument(
        "--thresh",
        type=float,
        default=3.0,
        help="detection threshold in sigma of the matched-filtered noise (default 3)",
    )
    p.add_argument("--minarea", type=int, default=5, help="minimum connected pixels")
    p.add_argument("--bw", type=int, default=64, help="background mesh size, pixels")
    _add_device(p, "CPU threads for torch (default: every core)")
    p.add_argument("--workers", type=int, help="detection processes (default: one per core)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", help="model name (default map1-<UTC time>)")
    p.add_argument("--description")
    p.add_argument("--no-activate", action="store_true", help="register without activating")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=cmd_train_map1)

    p = tsub.add_parser("map2", help="fit the 20x20 image map on the loaded fingerprints")
    _add_selection(p)
    p.add_argument("--map1", help="Map-1 model whose fingerprints to use (default: active)")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", help="model name (default map2-<UTC time>)")
    p.add_argument("--description")
    p.add_argument("--no-activate", action="store_true")
    p.add_argument("--no-thumbnails", action="store_true", help="skip member previews")
    p.add_argument(
        "--input",
        choices=("image_vec", "fp"),
        default=None,
        help="the vector Map 2 places: the image vector or the fingerprint alone (default:"
        " the image vector when the loaded planes have one, else fp)",
    )
    p.set_defaults(handler=cmd_train_map2)

    p = sub.add_parser(
        "load",
        help="detect, encode and fingerprint planes into caomai.fingerprint/object_annotation",
    )
    _add_selection(p)
    p.add_argument("--resume", action="store_true", help="continue the latest open run (or --run)")
    p.add_argument("--run", type=int, help="work on this run (several loaders may share it)")
    p.add_argument("--reload", action="store_true", help="redo planes already loaded")
    p.add_argument(
        "--no-previews",
        action="store_true",
        help="write no plane previews or Map-1 node cutouts (caomai.preview, object_cutout)",
    )
    p.add_argument("--retry-failed", action="store_true", help="with --resume: retry failed planes")
    p.add_argument(
        "--enqueue-only", action="store_true", help="create the run, print its id, load nothing"
    )
    p.add_argument("--workers", type=int, help="detection processes (default: one per core)")
    _add_device(
        p,
        "CPU threads for torch encoding (default 1: the same bits whatever --workers;"
        " more threads change the last bits of the distances)",
    )
    p.add_argument(
        "--max-objects", type=int, default=1000, help="objects sampled per plane (default 1000)"
    )
    p.add_argument("--max-attempts", type=int, default=3, help="tries before a plane is failed")
    p.add_argument("--limit", type=int, help="stop after this many planes")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=cmd_load)

    p = sub.add_parser(
        "label-node", help="label a map node; every image (or object) on it inherits the label"
    )
    p.add_argument("model", help="model name or id")
    p.add_argument("node", help="node id 0..399 or ROW,COL")
    p.add_argument("label", nargs="?", default=None)
    p.add_argument("--source", help="who labels (default: $USER)")
    p.add_argument("--clear", action="store_true", help="remove the node's label")
    p.set_defaults(handler=cmd_label_node)

    p = sub.add_parser(
        "evaluate",
        help="Good/Bad accuracy, precision, recall and fp_similar precision@k",
        description="Scores Map 2 and fp_similar on the held-out exposures of a truth manifest. "
        "A manifest of `caomai simulate` also gives the truth ceiling: the same Map 2 and "
        "scoring on the conditions each exposure was rendered with (loaders/ceiling.py).",
    )
    p.add_argument("--truth", required=True, help="truth manifest (exposures.csv)")
    p.add_argument("--objects", help="truth object catalogue (default: objects.csv beside it)")
    p.add_argument("--map2", help="Map-2 model (default: active)")
    p.add_argument("--k", type=int, default=10, help="neighbours for precision@k (default 10)")
    p.add_argument(
        "--apply-labels",
        action="store_true",
        help="write the training-majority label of each Map-2 node (and, with the object "
        "catalogue, the majority truth kind of each Map-1 node) as its label",
    )
    p.add_argument(
        "--max-object-planes",
        type=int,
        default=500,
        help="planes whose detections are read per half for the object search (a random "
        "sample beyond it; default 500)",
    )
    p.add_argument("--json", help="also write the figures to this file")
    p.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser("model", help="list, show, verify and activate models")
    msub = p.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    q = msub.add_parser("list", help="all models")
    q.set_defaults(handler=cmd_model)
    for action, text in (
        ("show", "a model's row and training figures"),
        ("verify", "check the model file against its recorded checksum"),
        ("activate", "make the model the active one of its kind"),
    ):
        q = msub.add_parser(action, help=text)
        q.add_argument("model", help="model name or id")
        q.set_defaults(handler=cmd_model)

    p = sub.add_parser(
        "synthetic",
        help="add synthetic planes with fingerprints (to try the TAP service, tests, benchmarks)",
        description="Write N synthetic CAOM2 planes with fingerprint-like vectors (clustered, "
        "non-negative, 400-d; 1%% proprietary) into the database (loaders/synthetic.py).",
    )
    p.add_argument("--rows", type=int, default=500, help="planes to add (default 500)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(handler=cmd_synthetic)
