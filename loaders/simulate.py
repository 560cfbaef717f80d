"""`caomai simulate`: a MegaCam-like archive rendered with GalSim, with its ground truth.

Writes, under ``out``::

    images/<exposure_id>.fits   primary HDU (exposure keywords, no data) + one uint16 image HDU
                                per CCD ('ccd00', ...), each with a TAN WCS, GAIN, RDNOISE,
                                SATURATE
    truth/exposures.csv         one row per exposure: class, strength, seed, conditions, PSF
    truth/objects.csv           one row per rendered object: where, what kind, how bright
    truth/archive.json          the parameters of the run

The truth is for measuring models, never for feeding them. ``exposure_id`` is
``sim{seed:04d}-{i:05d}``. Output depends only on the seed and the geometry: each exposure has
its own random streams (the same on any number of workers), and no header holds the time of
rendering, so the same arguments give byte-identical files.

The parts live in ``caomai_loaders.sim``; this module is the entry point and the command line.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import multiprocessing as mp
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from caomai_db.errors import UsageError

log = logging.getLogger(__name__)

#: The archive `caomai demo` renders: ~1000 exposures, two 1024x1024 CCDs each, every class.
DEMO = dict(exposures=1000, ccds=2, ccd_size=(1024, 1024), seed=0)
#: Default geometry of `caomai simulate` (laptop-sized); a full MegaCam exposure is
#: ``ccds=36, ccd_size=(2048, 4612)``.
DEFAULT_CCDS = 2
DEFAULT_CCD_SIZE = (1024, 1024)
#: Collection the simulated archive is registered under.
SIM_COLLECTION = "CAOMAISIM"
#: Share of simulated planes registered as proprietary (metaRelease in the future).
SIM_PROPRIETARY_FRACTION = 0.05

EXPOSURE_FIRST_COLUMNS = ("exposure_id", "file", "quality_class", "strength", "seed")
KIND_COUNTS = ("star", "galaxy", "merger", "cosmic_ray", "trail", "bleed")


def exposure_id(seed: int, index: int) -> str:
    return f"sim{seed:04d}-{index:05d}"


@dataclass(frozen=True)
class Task:
    out: str
    seed: int
    index: int
    quality_class: str
    ccds: int
    nx: int
    ny: int


def render_exposure(task: Task) -> tuple[dict[str, object], list[dict[str, object]]]:
    """Render one exposure to ``images/<id>.fits``; return its truth rows (exposure, objects)."""
    import numpy as np
    from astropy.io import fits

    from .sim.conditions import draw_conditions, exposure_seed
    from .sim.mosaic import Geometry, ccd_header, ccd_wcs, pixel_to_world, primary_header
    from .sim.psf import PSFImage
    from .sim.render import render_ccd
    from .sim.scene import make_scene

    geo = Geometry(task.ccds, task.nx, task.ny)
    eid = exposure_id(task.seed, task.index)
    exp_seed = exposure_seed(task.seed, task.index)
    streams = np.random.SeedSequence(exp_seed).spawn(2 + geo.ccds)
    c = draw_conditions(
        eid, task.index, exp_seed, task.quality_class, np.random.default_rng(streams[0])
    )
    scene = make_scene(c, geo, np.random.default_rng(streams[1]))
    psf = PSFImage(c)

    hdus: list[fits.PrimaryHDU | fits.ImageHDU] = [fits.PrimaryHDU(header=primary_header(c, geo))]
    objects: list[dict[str, object]] = []
    next_id = 0
    for k in range(geo.ccds):
        res = render_ccd(c, geo, k, scene, psf, np.random.default_rng(streams[2 + k]), next_id)
        next_id += len(res.objects)
        header = ccd_header(c, geo, k, res.gain, res.rdnoise, res.saturate)
        hdus.append(fits.ImageHDU(data=res.data, header=header))  # EXTNAME stays lower case
        if res.objects:
            w = ccd_wcs(c, geo, k)
            xs = np.array([o["x"] for o in res.objects])
            ys = np.array([o["y"] for o in res.objects])
            ra, dec = pixel_to_world(w, xs, ys)
            for o, r, d in zip(res.objects, ra, dec, strict=True):
                o.update(exposure_id=eid, extension=k + 1, extname=f"ccd{k:02d}", ra=r, dec=d)
                objects.append(o)

    out = Path(task.out)
    path = out / "images" / f"{eid}.fits"
    tmp = path.with_name(path.name + ".part")
    fits.HDUList(hdus).writeto(tmp, overwrite=True, output_verify="exception")
    os.replace(tmp, path)

    row = c.row()
    row["file"] = str(path.relative_to(out))
    row["ccds"], row["ccd_nx"], row["ccd_ny"] = geo.ccds, geo.nx, geo.ny
    row["psf_radius_px"] = psf.radius
    counts = Counter(str(o["kind"]) for o in objects)
    for kind in KIND_COUNTS:
        row[f"n_{kind}"] = counts.get(kind, 0)
    row["n_saturated"] = sum(1 for o in objects if o["kind"] == "star" and o.get("saturated"))
    return row, objects


def parse_classes(spec: list[str] | None) -> dict[str, float]:
    """``None`` -> default shares; ``['good', 'bad_focus']`` -> those, at their default shares;
    ``['good=3', 'crowded=1']`` -> explicit weights."""
    from .sim.conditions import CLASSES, DEFAULT_WEIGHTS

    if not spec:
        return dict(DEFAULT_WEIGHTS)
    out: dict[str, float] = {}
    for item in spec:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            name, _, weight = part.partition("=")
            name = name.strip()
            if name not in CLASSES:
                raise UsageError(f"unknown quality class {name!r}; known: {', '.join(CLASSES)}")
            try:
                out[name] = float(weight) if weight else DEFAULT_WEIGHTS[name]
            except ValueError as exc:
                raise UsageError(f"bad weight in {part!r}") from exc
    return out


def _fmt(v: object) -> object:
    """CSV text of a value: fixed formatting, so the same archive gives the same bytes."""
    if v is None:
        return ""
    if hasattr(v, "item") and not isinstance(v, str | bytes):
        v = v.item()  # numpy scalar
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format(v, ".12g") if math.isfinite(v) else ""
    return v


def simulate_archive(
    out: Path,
    exposures: int,
    seed: int = 0,
    ccds: int = DEFAULT_CCDS,
    ccd_size: tuple[int, int] = DEFAULT_CCD_SIZE,
    classes: list[str] | dict[str, float] | None = None,
    workers: int | None = None,
    progress: bool = True,
    say: Callable[[str], None] | None = None,
    part: tuple[int, int] | None = None,
) -> Path:
    """Render ``exposures`` exposures under ``out``; return the path of truth/exposures.csv.

    ``ccd_size`` is (width, height) in pixels. ``classes`` restricts or weights the quality
    classes (see ``parse_classes``). ``workers`` defaults to the cores this process may use.
    With ``progress``, the rendering speed is reported through ``say`` (the CLI prints it;
    default: the log), never printed here.

    ``part=(first, stop)`` renders only exposures ``first <= i < stop`` of the archive of
    ``exposures`` (so that the demo can work on one half while the other renders); their
    truth goes to ``truth/parts/``, and when the parts cover the whole archive they are
    joined into the same truth files, byte for byte, as one run over everything writes
    (every exposure depends only on the seed, its index and its class, and the classes are
    drawn for the whole archive). Returns the path of the part's exposures.csv.
    """
    from tqdm import tqdm

    from .sim.conditions import assign_classes
    from .sim.mosaic import Geometry
    from .sim.render import OBJECT_COLUMNS

    if exposures < 1:
        raise UsageError("--exposures must be at least 1")
    if not 0 <= seed <= 9999:
        raise UsageError("--seed must be between 0 and 9999 (it is part of the exposure ids)")
    geo = Geometry(ccds, int(ccd_size[0]), int(ccd_size[1]))
    weights = classes if isinstance(classes, dict) else parse_classes(classes)
    labels = assign_classes(exposures, weights, seed)
    out = Path(out).resolve()
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    _forget_other_sizes(out, exposures)
    first, stop = part or (0, exposures)
    if not 0 <= first < stop <= exposures:
        raise UsageError(f"part {first}-{stop} is not inside 0-{exposures}")
    indices = range(first, stop)
    tasks = [Task(str(out), seed, i, labels[i], geo.ccds, geo.nx, geo.ny) for i in indices]
    workers = max(1, min(workers or available_cores(), len(tasks)))

    if part is None:
        exp_path, obj_path = out / "truth" / "exposures.csv", out / "truth" / "objects.csv"
    else:
        exp_path, obj_path = part_paths(out, exposures, first, stop)
        exp_path.parent.mkdir(parents=True, exist_ok=True)
    exp_tmp, obj_tmp = exp_path.with_suffix(".csv.part"), obj_path.with_suffix(".csv.part")
    t0 = time.perf_counter()
    n_objects = 0
    with (
        open(exp_tmp, "w", newline="") as fe,
        open(obj_tmp, "w", newline="") as fo,
        _pool(workers) as pool,
    ):
        ow = csv.writer(fo)
        ow.writerow(OBJECT_COLUMNS)
        ew: csv.DictWriter | None = None
        results = pool.imap(render_exposure, tasks) if pool else map(render_exposure, tasks)
        bar = tqdm(
            results,
            total=len(tasks),
            unit="exp",
            desc="rendering",
            disable=not progress,
            dynamic_ncols=True,
            mininterval=0.5,
        )
        for row, objects in bar:
            if ew is None:
                names = list(EXPOSURE_FIRST_COLUMNS) + [
                    k for k in row if k not in EXPOSURE_FIRST_COLUMNS
                ]
                ew = csv.DictWriter(fe, fieldnames=names)
                ew.writeheader()
            ew.writerow({k: _fmt(v) for k, v in row.items()})
            for o in objects:
                ow.writerow([_fmt(o.get(col)) for col in OBJECT_COLUMNS])
            n_objects += len(objects)
    os.replace(exp_tmp, exp_path)
    os.replace(obj_tmp, obj_path)
    elapsed = time.perf_counter() - t0
    if progress:
        mpix = geo.megapixels * len(tasks)
        (say or log.info)(
            f"rendered {len(tasks)} exposures ({mpix:.0f} Mpix, {n_objects} objects) in "
            f"{elapsed:.1f} s on {workers} worker(s): {elapsed / mpix * workers:.3f} s/Mpix per core"
        )
    meta = dict(
        generator="caomai simulate",
        exposures=exposures,
        seed=seed,
        ccds=geo.ccds,
        ccd_size=[geo.nx, geo.ny],
        classes=weights,
        class_counts=dict(sorted(Counter(labels).items())),
        pixel_scale_arcsec=0.187,
        exposure_id_format="sim{seed:04d}-{index:05d}",
    )
    if part is None or join_parts(out, exposures):
        archive_json = out / "truth" / "archive.json"
        archive_json.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return exp_path


def part_paths(out: Path, exposures: int, first: int, stop: int) -> tuple[Path, Path]:
    """Where the truth of exposures ``first <= i < stop`` goes (exposures, objects)."""
    stem = parts_dir(out, exposures) / f"{first:05d}-{stop:05d}"
    return stem.with_suffix(".exposures.csv"), stem.with_suffix(".objects.csv")


def parts_dir(out: Path, exposures: int) -> Path:
    """The parts of an archive of ``exposures`` (the classes depend on the size)."""
    return Path(out) / "truth" / f"parts-of-{exposures}"


def rendered_parts(out: Path, exposures: int) -> list[tuple[int, int]]:
    """The parts of an archive of ``exposures`` whose truth is written, in order."""
    found = []
    for f in parts_dir(out, exposures).glob("*-*.exposures.csv"):
        first, _, stop = f.name.split(".")[0].partition("-")
        found.append((int(first), int(stop)))
    return sorted(found)


def _forget_other_sizes(out: Path, exposures: int) -> None:
    """Drop the truth of an archive of another size in ``out``: its files are about to be
    overwritten, so its manifest and parts would describe files that are no longer there."""
    import shutil

    for folder in (out / "truth").glob("parts-of-*"):
        if folder != parts_dir(out, exposures):
            shutil.rmtree(folder, ignore_errors=True)
    manifest = out / "truth" / "exposures.csv"
    if manifest.exists():
        with manifest.open(newline="") as f:
            rows = sum(1 for _ in csv.DictReader(f))
        if rows != exposures:
            manifest.unlink()


def join_parts(out: Path, exposures: int) -> bool:
    """Join the parts into truth/exposures.csv and objects.csv when they cover 0..exposures
    one after the other (headers once, rows in order: the bytes of one whole run); True when
    joined."""
    parts = rendered_parts(out, exposures)
    bounds = [0] + [stop for _, stop in parts]
    if not parts or [first for first, _ in parts] != bounds[:-1] or bounds[-1] != exposures:
        return False
    for kind, index in (("exposures", 0), ("objects", 1)):
        final = Path(out) / "truth" / f"{kind}.csv"
        tmp = final.with_suffix(".csv.part")
        with tmp.open("wb") as dst:
            for n, (first, stop) in enumerate(parts):
                with part_paths(out, exposures, first, stop)[index].open("rb") as src:
                    header = src.readline()
                    if n == 0:
                        dst.write(header)
                    dst.write(src.read())
        os.replace(tmp, final)
    return True


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def ignore_sigint() -> None:
    """In a pool's worker: Ctrl-C reaches the whole process group, and the parent, not the
    worker, decides what it means (it terminates its pool); a worker would only print a
    traceback."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _pool:
    """A process pool (fork where the platform has it), or None for one worker."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: mp.pool.Pool | None = None

    def __enter__(self) -> mp.pool.Pool | None:
        if self.workers > 1:
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            self.pool = mp.get_context(method).Pool(self.workers, initializer=ignore_sigint)
        return self.pool

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            if exc[0] is None:
                self.pool.close()
            else:
                self.pool.terminate()
            self.pool.join()
