"""Upload retrieval: do images uploaded as files find archive images of their own class as
well as the same images do once loaded?

On the demo archive (``make demo``), takes N held-out exposures (the second half of the demo's
truth manifest, which no map was trained on), and for each:

- **upload**: POSTs the FITS file to ``/api/fingerprint?top=11`` of a running ``caomai serve``
  (started here, on the same database), which fingerprints it with the active maps, as a user's
  upload; its own archive copy is dropped from the list;
- **loaded**: ``fp_similar(f.image_vec, '<its publisherID>')`` through ``/tap/sync`` (TOP 11,
  itself dropped), on ``f.fp`` where the upload was ranked by the fingerprint (Map 2 on ``fp``).

precision@10 is the share of the 10 most similar images of the exposure's truth class, per class
and on average, for both; also the upload's wall time. Writes ``bench/results/upload_bench.json``.

    .venv/bin/python bench/upload_bench.py --n 100
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from caomai_db import database  # noqa: E402
from caomai_db.config import Settings  # noqa: E402
from tests.tapserver import running_service  # noqa: E402


def tap_list(site: str, adql: str) -> list[str]:
    reply = httpx.post(
        f"{site}/tap/sync",
        data={"LANG": "ADQL", "REQUEST": "doQuery", "QUERY": adql, "RESPONSEFORMAT": "csv"},
        timeout=120,
    )
    reply.raise_for_status()
    return [row["publisherID"] for row in csv.DictReader(reply.text.splitlines())]


def precision(ids: list[str], own: str, cls: str, classes: dict[str, str], k: int) -> float:
    others = [i for i in ids if i != own][:k]
    return sum(classes.get(i) == cls for i in others) / k


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--truth", type=Path, help="default $CAOMAI_HOME/demo/truth/exposures.csv")
    ap.add_argument("--n", type=int, default=100, help="held-out exposures to upload")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "upload_bench.json")
    args = ap.parse_args()
    settings = Settings.from_env()
    truth_path = args.truth or settings.home / "demo" / "truth" / "exposures.csv"
    with truth_path.open(newline="") as f:
        manifest = {r["exposure_id"]: r for r in csv.DictReader(f)}
    ids = sorted(manifest)
    held_out = ids[len(ids) // 2 :]
    dsn = database.resolve_dsn(settings)
    with database.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT o.observationid, p.publisherid FROM caom2.plane p"
            " JOIN caom2.observation o ON o.obsid = p.obsid"
            " JOIN caomai.fingerprint f ON f.planeid = p.planeid"
            " WHERE (p.metarelease IS NULL OR p.metarelease <= now())"
            " AND f.map2_node IS NOT NULL"
        ).fetchall()
    pid_of = {obs: pid for obs, pid in rows if obs in manifest}
    classes = {pid: manifest[obs]["quality_class"] for obs, pid in pid_of.items()}
    candidates = [e for e in held_out if e in pid_of]
    step = max(1, len(candidates) // args.n)
    chosen = candidates[::step][: args.n]
    per_class: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    seconds = []
    with running_service(dsn) as tap:
        site = tap.removesuffix("/tap")
        for n, exposure in enumerate(chosen, 1):
            row = manifest[exposure]
            cls, own = row["quality_class"], pid_of[exposure]
            path = truth_path.parent.parent / row["file"]
            t0 = time.perf_counter()
            reply = httpx.post(
                f"{site}/api/fingerprint?top={args.k + 1}",
                files={"file": (path.name, path.read_bytes())},
                timeout=300,
            )
            seconds.append(time.perf_counter() - t0)
            reply.raise_for_status()
            body = reply.json()
            uploaded = [s["publisherID"] for s in body["similar"]]
            # the loaded copy is ranked on the column the upload was (the image vector where
            # Map 2 is trained on it, else the fingerprint)
            column = "fp" if body.get("image_vec") is None else "image_vec"
            loaded = tap_list(
                site,
                f"SELECT TOP {args.k + 1} f.publisherID, fp_similar(f.{column}, '{own}') AS sim"
                " FROM caomai.fingerprint AS f ORDER BY sim DESC",
            )
            per_class[cls]["upload"].append(precision(uploaded, own, cls, classes, args.k))
            per_class[cls]["loaded"].append(precision(loaded, own, cls, classes, args.k))
            print(f"\r{n}/{len(chosen)} uploaded", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    table = {
        cls: {k: round(statistics.mean(v), 3) for k, v in got.items()} | {"n": len(got["upload"])}
        for cls, got in sorted(per_class.items())
    }
    all_upload = [v for got in per_class.values() for v in got["upload"]]
    all_loaded = [v for got in per_class.values() for v in got["loaded"]]
    mean_of = {
        "upload": round(statistics.mean(all_upload), 3),
        "loaded": round(statistics.mean(all_loaded), 3),
    }
    print(f"precision@{args.k} against the truth class, {len(chosen)} held-out exposures")
    print(f"{'class':24s} {'n':>3s} {'upload':>7s} {'loaded':>7s}")
    for cls, v in table.items():
        print(f"{cls:24s} {v['n']:3d} {v['upload']:7.3f} {v['loaded']:7.3f}")
    print(f"{'all':24s} {len(chosen):3d} {mean_of['upload']:7.3f} {mean_of['loaded']:7.3f}")
    q = statistics.quantiles(seconds, n=20)
    print(f"upload wall time: median {statistics.median(seconds):.2f} s, p95 {q[-1]:.2f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%d %H:%M"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "exposures": len(chosen),
                "k": args.k,
                "precision": mean_of,
                "per_class": table,
                "upload_seconds": {
                    "median": round(statistics.median(seconds), 3),
                    "p95": round(q[-1], 3),
                },
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
