"""Loader throughput on this machine: detection, encoding, database writes, end to end, and
Map-1 training time, each printed next to a baseline measured in the same run.

    .venv/bin/python bench/load_bench.py                      # CPU, 2 CCDs of 2048x4612
    .venv/bin/python bench/load_bench.py --ccds 36 --device cuda --train-cutouts 200000

The exposure is rendered here with numpy (stars, galaxies, cosmic rays on a noisy sky, a
MegaCam-sized CCD by default), so the bench needs neither the simulator nor an archive; its
figures are about speed, not science. Stages:

- detection: ``file_objects`` (read, sep background + extraction, sampling, cutouts) on the
  exposure; baseline: reading the same pixels only;
- encoding: ``Map1.assign`` (encoder, 4-rotation averaging, SOM node) on the sampled cutouts;
  baseline: one encoder pass without the rotations and the SOM;
- database writes: ``write_plane`` (one transaction: COPY of the annotations + fingerprint
  upsert) into a throw-away embedded database; baseline: COPY of the same rows into an
  unindexed, unpartitioned temporary table;
- end to end: ``caomai load`` (queue, workers, everything) on ``--planes`` copies of the file;
- Map-1 training: the encoder (SimCLR, augmentations) for ``--train-epochs`` over
  ``--train-cutouts`` cutouts and the 20x20 SOM on their embeddings.

Print ``uptime`` next to the figures: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

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
from caomai_loaders.detect import DetectParams  # noqa: E402
from caomai_loaders.device import pick_device  # noqa: E402
from caomai_loaders.images import read_images  # noqa: E402
from caomai_loaders.load import (  # noqa: E402
    ANNOTATION_COLUMNS,
    LoadOptions,
    PlaneJob,
    PlaneResult,
    load,
    write_plane,
)
from caomai_loaders.maps import Map1  # noqa: E402
from caomai_loaders.objects import file_objects  # noqa: E402
from caomai_loaders.som import SOM  # noqa: E402


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
    ap.add_argument("--train-cutouts", type=int, default=20000)
    ap.add_argument("--train-epochs", type=int, default=1)
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()

    device = pick_device(args.device)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    work = Path(tempfile.mkdtemp(prefix="caomai-bench-"))
    figures: dict[str, dict[str, float]] = {}
    print(f"device: {device}; torch threads {torch.get_num_threads()}; cores {os.cpu_count()}")
    print("load:", os.getloadavg())
    try:
        t0 = time.perf_counter()
        path = work / "bench-00000.fits"
        write_exposure(path, args.ccds, args.nx, args.ny, args.density, seed=1)
        mpix = args.ccds * args.nx * args.ny / 1e6
        print(
            f"exposure: {args.ccds} x {args.nx}x{args.ny} = {mpix:.1f} Mpix "
            f"({path.stat().st_size / 1e6:.0f} MB) rendered in {time.perf_counter() - t0:.1f} s"
        )

        # -- detection ---------------------------------------------------------------------
        t0 = time.perf_counter()
        for image in read_images(path):
            float(np.nanmedian(image.data[::64, ::64]))
        read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fo = file_objects(path, max_objects=args.max_objects, seed=1)
        det_s = time.perf_counter() - t0
        figures["detection"] = {
            "seconds": det_s,
            "mpix_per_s": mpix / det_s,
            "objects_per_s": fo.n_detected / det_s,
            "detected": fo.n_detected,
            "baseline_read_mpix_per_s": mpix / read_s,
        }
        print(
            f"\ndetection   {rate(mpix, det_s):>10} Mpix/s {rate(fo.n_detected, det_s):>12} "
            f"objects/s  ({fo.n_detected} detected, {fo.n_sampled} sampled, {det_s:.2f} s: "
            + ", ".join(f"{k} {v:.2f}" for k, v in fo.timings.items())
            + f")\n  baseline: reading the pixels {rate(mpix, read_s)} Mpix/s"
        )

        # -- encoding ----------------------------------------------------------------------
        map1 = random_map1(device)
        boxes = np.concatenate([fo.cutouts] * max(1, 4096 // max(1, fo.n_sampled)))
        map1.assign(boxes[:512])  # warm-up (allocations, cuDNN autotune)
        t0 = time.perf_counter()
        nodes, dist = map1.assign(boxes)
        enc_s = time.perf_counter() - t0
        plain = enc.Encoder(enc.EncoderConfig(tta=False)).eval().to(device)
        t0 = time.perf_counter()
        enc.encode(plain, boxes, device=device)
        plain_s = time.perf_counter() - t0
        figures["encoding"] = {
            "objects_per_s": len(boxes) / enc_s,
            "baseline_one_pass_objects_per_s": len(boxes) / plain_s,
        }
        print(
            f"encoding    {'':>10}        {rate(len(boxes), enc_s):>12} objects/s  "
            f"({len(boxes)} cutouts, 4 rotations + SOM)\n"
            f"  baseline: one encoder pass {rate(len(boxes), plain_s)} objects/s"
        )

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
        counts = fpmod.counts_of(nodes[: fo.n_sampled], map1.som.n_nodes)
        fp = fpmod.fingerprint(counts, fo.n_detected, fo.n_sampled, pixels=fo.pixels)
        stats = image_vector.statistics(fo.sky, fo.columns, fo.n_detected, fo.pixels)
        result = PlaneResult(
            fo,
            nodes[: fo.n_sampled],
            dist[: fo.n_sampled],
            counts,
            fp,
            image_vector.image_vector(fp, stats),
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
            reps = 20
            t0 = time.perf_counter()
            for i in range(reps):
                pid, pub, rel = planes[i % len(planes)]
                job = PlaneJob(pid, str(path), pub, rel, None)
                write_plane(
                    conn,
                    run_id=None,
                    worker=None,
                    job=job,
                    model_id=model_id,
                    map2_model_id=None,
                    result=result,
                )
            db_s = (time.perf_counter() - t0) / reps
            conn.execute(
                "CREATE TEMP TABLE bench_copy AS SELECT * FROM caomai.object_annotation LIMIT 0"
            )
            rows = conn.execute(
                f"SELECT {', '.join(ANNOTATION_COLUMNS)} FROM caomai.object_annotation"
                " WHERE planeid = %s",
                (planes[0][0],),
            ).fetchall()
            t0 = time.perf_counter()
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
            copy_s = (time.perf_counter() - t0) / reps
            conn.execute("DELETE FROM caomai.object_annotation")
            conn.execute("DELETE FROM caomai.fingerprint")
            conn.commit()
        figures["db_writes"] = {
            "planes_per_s": 1 / db_s,
            "objects_per_s": fo.n_sampled / db_s,
            "baseline_copy_objects_per_s": fo.n_sampled / copy_s,
        }
        print(
            f"db writes   {rate(1, db_s):>10} planes/s {rate(fo.n_sampled, db_s):>12} objects/s  "
            f"({fo.n_sampled} annotations + fingerprint per transaction)\n"
            f"  baseline: COPY into an unindexed table {rate(fo.n_sampled, copy_s)} objects/s"
        )

        # -- end to end --------------------------------------------------------------------
        t0 = time.perf_counter()
        summary = load(
            settings,
            options=LoadOptions(
                max_objects=args.max_objects,
                workers=args.workers,
                device=args.device,
                progress=False,
            ),
        )
        e2e_s = time.perf_counter() - t0
        figures["end_to_end"] = {
            "planes": summary.planes_done,
            "seconds": e2e_s,
            "mpix_per_s": mpix * summary.planes_done / e2e_s,
            "objects_per_s": summary.detected / e2e_s,
            "sampled_objects_per_s": summary.objects / e2e_s,
        }
        print(
            f"end to end  {rate(mpix * summary.planes_done, e2e_s):>10} Mpix/s "
            f"{rate(summary.detected, e2e_s):>12} objects/s  ({summary.planes_done} planes in "
            f"{e2e_s:.1f} s, {rate(summary.planes_done, e2e_s)} planes/s; "
            f"{rate(summary.objects, e2e_s)} sampled objects/s; {summary.planes_failed} failed)"
        )

        # -- Map-1 training ----------------------------------------------------------------
        pool = fo.cutouts
        reps = int(np.ceil(args.train_cutouts / len(pool)))
        train = np.concatenate([pool] * reps)[: args.train_cutouts]
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
        print("load:", os.getloadavg())
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
        database.cluster(settings).stop()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("work directory:", work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
