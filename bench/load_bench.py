"""Loader throughput on this machine, stage by stage (read, detect, measure, cut out, encode,
preview, write) and end to end, plus Map-1 training time, each printed next to a baseline
measured in the same run.

    .venv/bin/python bench/load_bench.py                      # CPU, 2 CCDs of 2048x4612
    .venv/bin/python bench/load_bench.py --nx 1024 --ny 1024 --density 200   # demo-sized CCDs
    .venv/bin/python bench/load_bench.py --before ../main     # also main's code, same run
    .venv/bin/python bench/load_bench.py --ccds 36 --device cuda --train-cutouts 200000

The exposure is rendered here with numpy (stars, galaxies, cosmic rays on a noisy sky, a
MegaCam-sized CCD by default), so the bench needs neither the simulator nor an archive; its
figures are about speed, not science. Every stage gives Mpix/s (the exposure's pixels over the
stage's time on them: a stage that works on the sampled objects is charged for one exposure's
sample) from the wall clock and from this process's CPU time: on a shared machine the wall
clock measures the neighbours as much as the code, the CPU time much less. Stages:

- read: ``images.read_images`` (pixels to float32, headers, WCS); baseline: the file's bytes;
- detect: ``detect.detect`` per image (sep background mesh + extraction, saturation, sky
  figures' inputs); baseline (as before): reading the pixels;
- measure: ``moments.measure`` (GalSim HSM adaptive moments) on the sampled boxes; baseline:
  the same objects' sep shapes, i.e. nothing to compute: the old per-object call is the
  ``--before`` figure;
- cut out: ``cutouts.snr_boxes`` for every image's sample + ``cutouts.normalise``; baseline:
  the boxes' fancy indexing alone;
- encode: ``Map1.assign`` (encoder, 4-rotation averaging, SOM node) on the sampled cutouts;
  baseline (as before): one encoder pass without the rotations and the SOM;
- preview: ``previews.Mosaic`` (block means, stretch, PNG) and the node cutouts' PNGs;
  baseline: the block means alone;
- write: ``write_plane`` (one transaction: COPY of the annotations + fingerprint upsert +
  previews) into a throw-away embedded database; baseline (as before): COPY of the same rows
  into an unindexed, unpartitioned temporary table;
- end to end: ``caomai load`` (queue, workers, everything) on ``--planes`` copies of the file;
  CPU time is this process's and its workers' (not PostgreSQL's); baseline: the stages above
  one after the other in one process (``file_objects`` + ``finish_plane`` + ``write_plane``);
- Map-1 training: the encoder (SimCLR, augmentations) for ``--train-epochs`` over
  ``--train-cutouts`` cutouts and the 20x20 SOM on their embeddings.

``--before DIR`` (a checkout, e.g. a git worktree at main) times every stage and the end-to-end
load with that checkout's ``loaders`` too, in the same run and on the same exposure, alternating
with this one; ``--json`` keeps the figures (bench/results/load_bench.json).

Print ``uptime`` next to the figures: the machine is shared.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from astropy.io import fits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from caomai_db import database, dbadmin  # noqa: E402
from caomai_db.config import GRID_COLS, GRID_ROWS, Settings  # noqa: E402
from caomai_loaders import encoder as enc  # noqa: E402
from caomai_loaders import fingerprint as fpmod  # noqa: E402
from caomai_loaders import image_vector, modelstore  # noqa: E402
from caomai_loaders import previews as previews_mod  # noqa: E402
from caomai_loaders.detect import DetectParams  # noqa: E402
from caomai_loaders.device import pick_device  # noqa: E402
from caomai_loaders.load import (  # noqa: E402
    ANNOTATION_COLUMNS,
    PlaneResult,
)
from caomai_loaders.maps import Map1  # noqa: E402
from caomai_loaders.som import SOM  # noqa: E402

MODULES = ("images", "detect", "moments", "cutouts", "encoder", "previews", "objects", "maps")
MODULES += ("load", "load_pipeline", "fingerprint", "image_vector")


def implementation(name: str, loaders_dir: Path | None) -> SimpleNamespace:
    """The loader modules of this checkout (``loaders_dir`` None) or of another one, imported
    as the package ``name`` (importable by the load's spawned workers through PYTHONPATH)."""
    if loaders_dir is None:
        return SimpleNamespace(
            name="this", **{m: importlib.import_module(f"caomai_loaders.{m}") for m in MODULES}
        )
    link_dir = Path(tempfile.mkdtemp(prefix="caomai-bench-before-"))
    (link_dir / name).symlink_to(loaders_dir.resolve())
    sys.path.insert(0, str(link_dir))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(link_dir)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    return SimpleNamespace(
        name="before", **{m: importlib.import_module(f"{name}.{m}") for m in MODULES}
    )


class Clock:
    """Wall and CPU seconds of a block (CPU: this process, plus reaped children if asked)."""

    def __init__(self, children: bool = False) -> None:
        self.children = children

    def _cpu(self) -> float:
        t = time.process_time()
        if self.children:
            r = resource.getrusage(resource.RUSAGE_CHILDREN)
            t += r.ru_utime + r.ru_stime
        return t

    def __enter__(self) -> Clock:
        self.w0, self.c0 = time.perf_counter(), self._cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.w0
        self.cpu = self._cpu() - self.c0


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()}"


def render_ccd(rng: np.random.Generator, nx: int, ny: int, n_obj: int) -> np.ndarray:
    """Sky 1000 e- (Poisson-like noise), stars and galaxies as Gaussians, cosmic rays; uint16."""
    img = rng.normal(1000.0, 32.0, size=(ny, nx)).astype(np.float32)
    half = 12
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float32)
    for _ in range(n_obj):
        x0, y0 = rng.integers(half, nx - half), rng.integers(half, ny - half)
        sx = rng.choice([1.6, 1.6, 1.6, 3.0])  # 1 in 4 extended
        sy = sx * rng.uniform(0.5, 1.0)
        ang = rng.uniform(0, np.pi)
        u = xx * np.cos(ang) + yy * np.sin(ang)
        v = -xx * np.sin(ang) + yy * np.cos(ang)
        flux = 10 ** rng.uniform(3.0, 5.5)
        img[y0 - half : y0 + half + 1, x0 - half : x0 + half + 1] += (
            flux / (2 * np.pi * sx * sy) * np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))
        )
    n_cr = n_obj // 20
    img[rng.integers(0, ny, n_cr), rng.integers(0, nx, n_cr)] += rng.uniform(2e3, 2e4, n_cr)
    return np.clip(img, 0, 65535).astype(np.uint16)


def write_exposure(path: Path, ccds: int, nx: int, ny: int, density: float, seed: int) -> None:
    """A multi-extension FITS exposure written one CCD at a time (a mosaic never sits in memory)."""
    rng = np.random.default_rng(seed)
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = "BENCH"
    primary.header["EXPNUM"] = path.stem
    primary.writeto(path, overwrite=True)
    for i in range(ccds):
        header = fits.Header()
        header["EXTNAME"] = f"ccd{i:02d}"
        header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
        header["CRVAL1"], header["CRVAL2"] = 150.0 + 0.2 * i, 2.0
        header["CRPIX1"], header["CRPIX2"] = nx / 2, ny / 2
        header["CD1_1"], header["CD2_2"] = -5.2e-5, 5.2e-5
        header["SATURATE"], header["GAIN"] = 65000.0, 1.6
        fits.append(path, render_ccd(rng, nx, ny, int(density * nx * ny / 1e6)), header)


def random_map1(device: torch.device) -> Map1:
    """An untrained encoder and a random SOM: the same arithmetic as a trained Map 1."""
    torch.manual_seed(0)
    model = enc.Encoder(enc.EncoderConfig()).eval().to(device)
    rng = np.random.default_rng(0)
    code = rng.normal(size=(GRID_ROWS * GRID_COLS, model.config.dim)).astype(np.float32)
    code /= np.linalg.norm(code, axis=1, keepdims=True)
    return Map1(
        encoder=model, som=SOM(GRID_ROWS, GRID_COLS, code), detect=DetectParams(), device=device
    )


def rate(n: float, seconds: float) -> str:
    return f"{n / max(seconds, 1e-9):,.1f}"


def register(dsn: str, paths: list[Path]) -> None:
    """The archive's registration when it is installed, else the tests' minimal one."""
    try:
        # the simulator branch's `caomai register`
        from caomai_loaders.register import register_paths

        register_paths(dsn, paths)
    except ImportError:
        sys.path.insert(0, str(ROOT / "tests"))
        from load_helpers import register_files

        with database.connect(dsn, vector=False) as conn:
            register_files(conn, paths, collection="BENCH")


def alternate(fns: dict[str, object], reps: int) -> dict[str, tuple[float, float]]:
    """(wall, cpu) best of ``reps`` for each implementation's ``fn``, run in turns (ABAB...),
    so that the neighbours' load falls on both alike."""
    walls: dict[str, list[float]] = {k: [] for k in fns}
    cpus: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            with Clock() as c:
                fn()  # type: ignore[operator]
            walls[k].append(c.wall)
            cpus[k].append(c.cpu)
    return {k: (min(walls[k]), min(cpus[k])) for k in fns}


def sample_boxes(L, images, dets, fo, background: str):
    """The sampled objects' boxes in signal-to-noise units, in ``fo``'s order, made with
    ``L``'s cutouts (what moments and normalisation work on)."""
    ext = fo.columns["extension"]
    parts, where = [], []
    for image, det in zip(images, dets, strict=True):
        rows = np.flatnonzero(ext == image.index)
        if len(rows):
            snr, _ = L.cutouts.snr_boxes(
                det.data_sub,
                det.rms,
                fo.columns["x"][rows],
                fo.columns["y"][rows],
                offset=det.back_offset if background == "image" else None,
            )
            parts.append(snr)
            where.append(rows)
    out = np.zeros((fo.n_sampled, 32, 32), np.float32)
    for rows, snr in zip(where, parts, strict=True):
        out[rows] = snr
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ccds", type=int, default=2, help="CCDs per exposure (MegaCam: 36)")
    ap.add_argument("--nx", type=int, default=2048)
    ap.add_argument("--ny", type=int, default=4612)
    ap.add_argument("--density", type=float, default=400.0, help="objects per Mpix")
    ap.add_argument("--max-objects", type=int, default=1000, help="sampled objects per plane")
    ap.add_argument("--planes", type=int, default=4, help="planes for the end-to-end load")
    ap.add_argument("--workers", type=int, default=None, help="detection processes")
    ap.add_argument("--device", default="auto", help="auto|cpu|cuda")
    ap.add_argument("--reps", type=int, default=3, help="runs of each stage (the best counts)")
    ap.add_argument("--train-cutouts", type=int, default=20000, help="0: no training stage")
    ap.add_argument("--train-epochs", type=int, default=1)
    ap.add_argument("--before", type=Path, help="a checkout whose loaders to time alongside")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()

    device = pick_device(args.device)
    impls = {"this": implementation("this", None)}
    if args.before:
        impls["before"] = implementation("caomai_bench_before", args.before / "loaders")
    this = impls["this"]
    work = Path(tempfile.mkdtemp(prefix="caomai-bench-"))
    figures: dict[str, dict] = {"machine": {"cores": os.cpu_count(), "device": str(device)}}
    print(f"device: {device}; cores {os.cpu_count()}; implementations: {', '.join(impls)}")
    print("uptime:", uptime())
    figures["machine"]["loadavg_start"] = os.getloadavg()
    try:
        t0 = time.perf_counter()
        path = work / "bench-00000.fits"
        write_exposure(path, args.ccds, args.nx, args.ny, args.density, seed=1)
        mpix = args.ccds * args.nx * args.ny / 1e6
        print(
            f"exposure: {args.ccds} x {args.nx}x{args.ny} = {mpix:.1f} Mpix "
            f"({path.stat().st_size / 1e6:.0f} MB) rendered in {time.perf_counter() - t0:.1f} s"
        )
        # the loader's own per-plane settings: one torch thread (load.work)
        torch.set_num_threads(1)
        map1 = random_map1(device)
        fo = this.objects.file_objects(path, max_objects=args.max_objects, seed=1)
        print(f"{fo.n_detected} detected, {fo.n_sampled} sampled\n")
        # each implementation's own inputs for its stages (read and detected by itself)
        inputs = {}
        for k, L in impls.items():
            images = list(L.images.read_images(path))
            dets = [L.detect.detect(im, L.detect.DetectParams()) for im in images]
            snr = sample_boxes(L, images, dets, fo, map1.background)
            inputs[k] = SimpleNamespace(images=images, dets=dets, snr=snr)

        def fn_read(L):
            return lambda: [None for _ in L.images.read_images(path)]

        def fn_detect(L):
            ims = inputs[L.name].images
            return lambda: [L.detect.detect(im, L.detect.DetectParams()) for im in ims]

        def fn_measure(L):
            snr = inputs[L.name].snr
            return lambda: L.moments.measure(snr)

        def fn_cutout(L):
            inp = inputs[L.name]
            return lambda: L.cutouts.normalise(sample_boxes(L, inp.images, inp.dets, fo, "image"))

        l_maps = {
            k: L.maps.Map1(encoder=map1.encoder, som=map1.som, detect=map1.detect, device=device)
            for k, L in impls.items()
        }

        def fn_encode(L):
            return lambda: l_maps[L.name].assign(fo.cutouts)

        nodes, dist = map1.assign(fo.cutouts)

        def fn_preview(L):
            ims = inputs[L.name].images

            def run():
                mosaic = L.previews.Mosaic()
                for im in ims:
                    mosaic.add(im)
                mosaic.png()
                L.previews.cutout_pngs(fo.cutouts, nodes, dist)

            return run

        plain = enc.Encoder(enc.EncoderConfig(tta=False)).eval().to(device)
        factor = max(1, int(np.ceil(max(inputs["this"].images[0].shape) / 256)))
        baselines = {
            "read": ("the file's bytes", lambda: path.read_bytes()),
            "detect": (
                "reading the pixels",
                lambda: [
                    float(np.nanmedian(im.data[::64, ::64])) for im in this.images.read_images(path)
                ],
            ),
            "measure": ("nothing (sep's shapes come with detection)", lambda: None),
            "cutout": (
                "the boxes' fancy indexing alone",
                lambda: [
                    d.data_sub[
                        np.clip(
                            np.rint(fo.columns["y"][:, None]).astype(int) + np.arange(-16, 16),
                            0,
                            d.data_sub.shape[0] - 1,
                        )[:, :, None],
                        np.clip(
                            np.rint(fo.columns["x"][:, None]).astype(int) + np.arange(-16, 16),
                            0,
                            d.data_sub.shape[1] - 1,
                        )[:, None, :],
                    ]
                    for d in inputs["this"].dets[:1]
                ],
            ),
            "encode": (
                "one encoder pass (no rotations, no SOM)",
                lambda: enc.encode(plain, fo.cutouts, device=device),
            ),
            "preview": (
                "the block means alone",
                lambda: [this.previews.block_mean(im.data, factor) for im in inputs["this"].images],
            ),
        }
        stage_fns = {
            "read": fn_read,
            "detect": fn_detect,
            "measure": fn_measure,
            "cutout": fn_cutout,
            "encode": fn_encode,
            "preview": fn_preview,
        }
        for stage, make in stage_fns.items():
            fns = {k: make(L) for k, L in impls.items()}
            fns["baseline"] = baselines[stage][1]
            got = alternate(fns, args.reps)
            fig = {
                k: {"wall_s": w, "cpu_s": c, "mpix_per_s": mpix / w, "mpix_per_cpu_s": mpix / c}
                for k, (w, c) in got.items()
            }
            fig["baseline"]["what"] = baselines[stage][0]
            if stage in ("measure", "cutout", "encode"):
                for k in impls:
                    fig[k]["objects_per_s"] = fo.n_sampled / got[k][0]
            figures[stage] = fig
            print_stage(stage, fig, impls)

        # -- database writes ---------------------------------------------------------------
        home = work / "home"
        os.environ["CAOMAI_HOME"] = str(home)
        os.environ.pop("CAOMAI_DSN", None)
        settings = Settings.from_env()
        dsn = database.resolve_dsn(settings)
        dbadmin.upgrade(dsn, "head")
        files = [path] + [work / f"bench-{i:05d}.fits" for i in range(1, args.planes)]
        for f in files[1:]:  # same pixels, each its own observation (EXPNUM names it)
            shutil.copyfile(path, f)
            fits.setval(f, "EXPNUM", value=f.stem)
        register(dsn, files)
        counts = fpmod.counts_of(nodes, map1.som.n_nodes)
        fp = fpmod.fingerprint(counts, fo.n_detected, fo.n_sampled, pixels=fo.pixels)
        stats = image_vector.statistics(fo.sky, fo.columns, fo.n_detected, fo.pixels)
        result = PlaneResult(
            fo,
            nodes,
            dist,
            counts,
            fp,
            image_vector.image_vector(fp, stats),
            cutouts=previews_mod.cutout_pngs(fo.cutouts, nodes, dist),
        )
        directory = modelstore.model_dir(settings, "bench")
        mpath, checksum = modelstore.write_model_file(directory, map1.payload())
        with database.connect(dsn) as conn:
            model_id = modelstore.insert_model(
                conn,
                name="bench",
                kind="map1",
                dim=64,
                parameters={},
                path=mpath,
                checksum=checksum,
            )
            modelstore.activate(conn, model_id)
            planes = conn.execute(
                "SELECT planeid, publisherid, metarelease FROM caom2.plane ORDER BY planeid"
            ).fetchall()
            conn.commit()
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            conn.commit()
            reps = 20

            def server_cpu() -> float:
                """CPU seconds of this connection's PostgreSQL backend (Linux /proc)."""
                try:
                    fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
                    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                except (OSError, IndexError, ValueError):
                    return float("nan")

            def fn_write(L):
                def run():
                    for i in range(reps):
                        pid, pub, rel = planes[i % len(planes)]
                        L.load.write_plane(
                            conn,
                            run_id=None,
                            worker=None,
                            job=L.load.PlaneJob(pid, str(path), pub, rel, None),
                            model_id=model_id,
                            map2_model_id=None,
                            result=result,
                        )

                return run

            fn_write(this)()  # warm-up: the first plane's rows and index pages
            conn.execute(
                "CREATE TEMP TABLE bench_copy AS SELECT * FROM caomai.object_annotation LIMIT 0"
            )
            rows = conn.execute(
                f"SELECT {', '.join(ANNOTATION_COLUMNS)} FROM caomai.object_annotation"
                " WHERE planeid = %s",
                (planes[0][0],),
            ).fetchall()
            conn.commit()

            def copy_baseline():
                for _ in range(reps):
                    with (
                        conn.transaction(),
                        conn.cursor() as cur,
                        cur.copy(
                            f"COPY bench_copy ({', '.join(ANNOTATION_COLUMNS)}) FROM STDIN"
                        ) as copy,
                    ):
                        for r in rows:
                            copy.write_row(r)

            fns = {k: fn_write(L) for k, L in impls.items()}
            fns["baseline"] = copy_baseline
            walls: dict[str, list[float]] = {k: [] for k in fns}
            cpus: dict[str, list[float]] = {k: [] for k in fns}
            for _ in range(args.reps):
                for k, fn in fns.items():
                    s0 = server_cpu()
                    with Clock() as c:
                        fn()
                    walls[k].append(c.wall / reps)
                    cpus[k].append((c.cpu + server_cpu() - s0) / reps)
            conn.execute("DELETE FROM caomai.object_annotation")
            conn.execute("DELETE FROM caomai.fingerprint")
            conn.execute("DELETE FROM caomai.object_cutout")
            conn.commit()
        fig = {}
        for k in fns:
            w, c = min(walls[k]), min(cpus[k])
            fig[k] = {
                "wall_s": w,
                "cpu_s": c,
                "mpix_per_s": mpix / w,
                "mpix_per_cpu_s": mpix / c,
                "planes_per_s": 1 / w,
                "objects_per_s": fo.n_sampled / w,
            }
        fig["baseline"]["what"] = "COPY into an unindexed table (annotations only)"
        figures["write"] = fig
        print_stage("write", fig, impls, note="CPU: this process + its PostgreSQL backend")

        # -- end to end --------------------------------------------------------------------
        serial = {k: sum(figures[s][k]["wall_s"] for s in [*stage_fns, "write"]) for k in impls}
        fig = {}
        order = list(impls) * 2 if len(impls) > 1 else list(impls)
        runs: dict[str, list[tuple[float, float, object]]] = {k: [] for k in impls}
        for i, k in enumerate(order):
            L = impls[k]
            with Clock(children=True) as c:
                summary = L.load.load(
                    settings,
                    reload=i > 0,
                    options=L.load.LoadOptions(
                        max_objects=args.max_objects,
                        workers=args.workers,
                        device=args.device,
                        progress=False,
                    ),
                    say=lambda _m: None,
                )
            runs[k].append((c.wall, c.cpu, summary))
        for k in impls:
            w, c, summary = min(runs[k], key=lambda r: r[0])
            fig[k] = {
                "planes": summary.planes_done,
                "wall_s": w,
                "cpu_s": c,
                "mpix_per_s": mpix * summary.planes_done / w,
                "mpix_per_cpu_s": mpix * summary.planes_done / c,
                "planes_per_s": summary.planes_done / w,
                "objects_per_s": summary.detected / w,
                "sampled_objects_per_s": summary.objects / w,
                "stage_seconds": summary.stage_seconds,
                "serial_stages_mpix_per_s": mpix / serial[k],
            }
        figures["end_to_end"] = fig
        print(f"end to end ({args.planes} planes, workers {args.workers or 'default'}):")
        for k in impls:
            f = fig[k]
            print(
                f"  {k:>8} {f['mpix_per_s']:8.2f} Mpix/s {f['mpix_per_cpu_s']:8.2f} Mpix/CPU-s "
                f"{f['planes_per_s']:6.2f} planes/s {f['objects_per_s']:9,.0f} objects/s  "
                f"(wall {f['wall_s']:.1f} s, CPU {f['cpu_s']:.1f} s, stages "
                + ", ".join(f"{a} {b:.1f}" for a, b in f["stage_seconds"].items())
                + ")"
            )
            print(
                f"  {'':>8} baseline: the stages one after the other in one process "
                f"{f['serial_stages_mpix_per_s']:.2f} Mpix/s"
            )
        if "before" in fig:
            print(
                "  this/before: "
                f"{fig['this']['mpix_per_s'] / fig['before']['mpix_per_s']:.2f}x wall, "
                f"{fig['this']['mpix_per_cpu_s'] / fig['before']['mpix_per_cpu_s']:.2f}x CPU"
            )

        # -- Map-1 training ----------------------------------------------------------------
        if args.train_cutouts > 0:
            torch.set_num_threads(max(1, os.cpu_count() or 1))
            pool = fo.cutouts
            reps_t = int(np.ceil(args.train_cutouts / len(pool)))
            train = np.concatenate([pool] * reps_t)[: args.train_cutouts]
            t0 = time.perf_counter()
            model, report = enc.train_encoder(train, epochs=args.train_epochs, device=device)
            enc_train_s = time.perf_counter() - t0
            z = enc.encode(model, train, device=device)
            som = SOM(GRID_ROWS, GRID_COLS)
            t0 = time.perf_counter()
            som.fit(z, epochs=40, device=device)
            som_s = time.perf_counter() - t0
            figures["train_map1"] = {
                "cutouts": len(train),
                "epochs": args.train_epochs,
                "encoder_seconds": enc_train_s,
                "encoder_pairs_per_s": report.pairs_per_s,
                "som_seconds": som_s,
                "projected_200k_10_epochs_s": 200_000 * 10 / report.pairs_per_s
                + som_s * 200_000 / len(train),
            }
            print(
                f"train map1  encoder {enc_train_s:.1f} s for {args.train_epochs} epoch(s) of "
                f"{len(train)} cutouts ({report.pairs_per_s:,.0f} pairs/s); SOM 40 epochs "
                f"{som_s:.1f} s\n  => 200k cutouts x 10 epochs: about "
                f"{figures['train_map1']['projected_200k_10_epochs_s'] / 60:.1f} min on {device}"
            )
        figures["machine"]["loadavg_end"] = os.getloadavg()
        print("uptime:", uptime())
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2, default=str) + "\n")
        database.cluster(settings).stop()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("work directory:", work)
    return 0


def print_stage(stage: str, fig: dict, impls: dict, note: str = "") -> None:
    """One stage: each implementation's Mpix/s (wall and CPU), then the baseline's."""
    print(f"{stage}{f' ({note})' if note else ''}:")
    for k in [*impls, "baseline"]:
        f = fig[k]
        extra = f"{f['objects_per_s']:10,.0f} objects/s" if "objects_per_s" in f else ""
        label = f"baseline: {f['what']}" if k == "baseline" else k
        print(
            f"  {f['mpix_per_s']:9.1f} Mpix/s {f['mpix_per_cpu_s']:9.1f} Mpix/CPU-s {extra:>20}"
            f"  {label}"
        )
    if "before" in fig:
        print(
            f"  this/before: {fig['before']['wall_s'] / fig['this']['wall_s']:.2f}x wall, "
            f"{fig['before']['cpu_s'] / fig['this']['cpu_s']:.2f}x CPU"
        )


if __name__ == "__main__":
    raise SystemExit(main())
