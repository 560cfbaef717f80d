"""A real ``caomai load`` with two checkouts, on the same registered planes, into two databases:
its speed (alternating, same run) and whether the fingerprints and Map-1 nodes agree.

    .venv/bin/python bench/load_compare.py --before ../main \
        --home-before /tmp/home-a --home-after /tmp/home-b --planes 100

Both CAOMAI_HOMEs must hold the same registered planes and the same active Map-1 model (e.g.
one home copied after ``caomai register`` and ``caomai train map1``). Each load is
``caomai load --reload --limit N`` (the queue takes planes in planeID order, so both load the
same ones); the before checkout's ``loaders`` is put first on PYTHONPATH as caomai_loaders.
CPU time is the loader's and its workers' (not PostgreSQL's). Then, per plane loaded by both:
fingerprint (fp, counts, n_detected, n_sampled) and each object's Map-1 node and distance.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CAOMAI = Path(sys.executable).with_name("caomai")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_load(home: Path, pythonpath: str | None, planes: int, workers: int | None) -> dict:
    env = dict(os.environ, CAOMAI_HOME=str(home))
    env.pop("CAOMAI_DSN", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cmd = [str(CAOMAI), "load", "--reload", "--limit", str(planes), "--json", "--no-progress"]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads(out[out.index("{") :])
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    mpix = summary["pixels"] / 1e6
    return {
        "planes": summary["planes_done"],
        "failed": summary["planes_failed"],
        "loader_seconds": summary["seconds"],
        "wall_s": wall,
        "cpu_s": cpu,
        "mpix_per_s": mpix / summary["seconds"],
        "mpix_per_s_with_startup": mpix / wall,
        "mpix_per_cpu_s": mpix / cpu,
        "planes_per_s": summary["planes_done"] / summary["seconds"],
        "objects_per_s": summary["detected"] / summary["seconds"],
        "stage_seconds": summary["stage_seconds"],
    }


def _array(v) -> np.ndarray:
    """A pgvector value (or a plain list) as float64."""
    return np.asarray(v.to_list() if hasattr(v, "to_list") else v, np.float64)


def read_db(home: Path) -> tuple[dict, dict]:
    """planeid -> (fp, counts, n_detected, n_sampled); planeid -> (nodes, distances)."""
    os.environ["CAOMAI_HOME"] = str(home)
    from caomai_db import database
    from caomai_db.config import Settings

    dsn = database.resolve_dsn(Settings.from_env())
    with database.connect(dsn) as conn:
        fps = {
            r[0]: (_array(r[1]), list(r[2]), r[3], r[4])
            for r in conn.execute(
                "SELECT f.planeid, f.fp, f.counts, f.n_detected, f.n_sampled"
                " FROM caomai.fingerprint f JOIN caomai.model m USING (model_id)"
                " WHERE m.active"
            )
        }
        objs: dict = {}
        for pid, nodes, dists in conn.execute(
            "SELECT planeid, array_agg(map1_node ORDER BY object_id),"
            " array_agg(map1_distance ORDER BY object_id)"
            " FROM caomai.object_annotation a JOIN caomai.model m USING (model_id)"
            " WHERE m.active GROUP BY planeid"
        ):
            objs[pid] = (np.asarray(nodes), np.asarray(dists, np.float64))
    database.cluster(Settings.from_env()).stop()
    return fps, objs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, required=True, help="the other checkout (e.g. main)")
    ap.add_argument("--home-before", type=Path, required=True)
    ap.add_argument("--home-after", type=Path, required=True)
    ap.add_argument("--planes", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=1, help="before/after pairs, alternating")
    ap.add_argument("--workers", type=int, help="both sides (default: each side's own)")
    ap.add_argument("--after-workers", type=int, nargs="*", default=[], help="extra after runs")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--compare-only", action="store_true", help="no loads: compare what is there")
    args = ap.parse_args()

    link = Path(tempfile.mkdtemp(prefix="caomai-before-"))
    (link / "caomai_loaders").symlink_to((args.before / "loaders").resolve())
    runs: list[dict] = []
    for _ in range(0 if args.compare_only else args.rounds):
        for side, home, pp, workers in (
            ("before", args.home_before, str(link), args.workers),
            ("after", args.home_after, None, args.workers),
            *(("after", args.home_after, None, w) for w in args.after_workers),
        ):
            up0 = uptime()
            fig = run_load(home, pp, args.planes, workers)
            fig |= {
                "side": side,
                "workers": workers,
                "uptime_before": up0,
                "uptime_after": uptime(),
            }
            runs.append(fig)
            print(
                f"{side:>6} workers {workers or 'default'}: {fig['planes']} planes, "
                f"{fig['mpix_per_s']:.2f} Mpix/s ({fig['mpix_per_s_with_startup']:.2f} with start-up), "
                f"{fig['mpix_per_cpu_s']:.2f} Mpix/CPU-s, {fig['planes_per_s']:.2f} planes/s, "
                f"{fig['objects_per_s']:.0f} objects/s; stages {fig['stage_seconds']}\n"
                f"        {up0}\n        {fig['uptime_after']}",
                flush=True,
            )
    fa, oa = read_db(args.home_before)
    fb, ob = read_db(args.home_after)
    common = sorted(set(fa) & set(fb))
    fp_same = counts_same = 0
    cos: list[float] = []
    node_same = node_total = dist_same = 0
    for pid in common:
        a, b = fa[pid], fb[pid]
        fp_same += bool(np.array_equal(a[0], b[0]))
        counts_same += a[1:] == b[1:]
        cos.append(1 - float(a[0] @ b[0]) / (np.linalg.norm(a[0]) * np.linalg.norm(b[0]) or 1))
        if pid in oa and pid in ob and len(oa[pid][0]) == len(ob[pid][0]):
            node_same += int((oa[pid][0] == ob[pid][0]).sum())
            dist_same += int((oa[pid][1] == ob[pid][1]).sum())
            node_total += len(oa[pid][0])
    quality = {
        "planes_compared": len(common),
        "fp_bit_identical": fp_same,
        "counts_n_detected_n_sampled_identical": counts_same,
        "max_cosine_distance": max(cos) if cos else None,
        "objects_compared": node_total,
        "map1_node_identical": node_same,
        "map1_distance_identical": dist_same,
    }
    print("quality:", json.dumps(quality))
    if args.json:
        old = json.loads(args.json.read_text()) if args.json.exists() else {}
        runs = runs or old.get("runs", [])
        args.json.write_text(json.dumps({"runs": runs, "quality": quality}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
