"""Map-1 variants offline: which object kinds own nodes, and what that does to object search
and to image similarity, without a database (docs/experiments.md, "Map 1 for rare kinds").

    # every detection of some exposures of a simulated archive, matched to its truth
    .venv/bin/python bench/map1_kinds.py extract ARCHIVE 0 500 train.npz
    .venv/bin/python bench/map1_kinds.py extract ARCHIVE 1000 1400 eval.npz
    # one variant: the encoder is trained once and cached (with the embeddings)
    .venv/bin/python bench/map1_kinds.py run train.npz eval.npz ARCHIVE \\
        '{"mix": 0.5, "emph": {"saturated": 3, "segment": 10}}' --cache enc.pt

A variant (JSON) sets the shape features (``names``, default all of ``shape.NAMES``), their
factors (``emph``, default ``shape.EMPHASIS``), the weight of the block (``w``, 1), the
share of rare-aware sampling of the SOM's training sample (``mix``, 0 = uniform) and the
encoder's (``enc_mix``), the sample size (``n``, 20000), the encoder's ``epochs`` (10).

What it prints uses ``object_search``'s definitions (as ``caomai evaluate`` does): nodes
labelled by the training exposures' majority truth kind, the four questions with min_count
chosen on the training exposures and scored on the others, per-kind purity and completeness;
plus fingerprint precision@10 among the evaluation exposures (smooth-sqrt, as the demo).
Detection, cutouts, moments and features are the loader's own functions; the sample is all
detections of each exposure (the demo's exposures hold fewer than ``max_objects``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from caomai_loaders import cutouts, moments, rare, shape  # noqa: E402
from caomai_loaders import encoder as enc  # noqa: E402
from caomai_loaders import fingerprint as fpm  # noqa: E402
from caomai_loaders import object_search as osearch  # noqa: E402
from caomai_loaders.detect import DetectParams, detect  # noqa: E402
from caomai_loaders.evaluate import read_objects, read_truth  # noqa: E402
from caomai_loaders.images import read_images  # noqa: E402
from caomai_loaders.som import SOM  # noqa: E402


def _exposures(archive: Path) -> dict[str, dict[str, str]]:
    return read_truth(archive / "truth" / "exposures.csv")


def _one(job: tuple[str, str, dict]) -> tuple[str, dict | None]:
    """All detections of one file: columns, cutouts, truth kinds."""
    exposure, path, truth = job
    parts = []
    for image in read_images(Path(path)):
        try:
            det = detect(image, DetectParams())
        except Exception:  # noqa: BLE001 - a CCD that cannot be used is skipped, as the loader does
            continue
        if not det.n:
            continue
        cat = det.catalog
        snr, flags = cutouts.snr_boxes(
            det.data_sub, det.rms, cat["x"], cat["y"], offset=det.back_offset
        )
        cols = {k: np.asarray(cat[k]) for k in ("x", "y", "a", "b", "theta", "flux", "peak")}
        cols["npix"] = np.asarray(cat["npix"])
        cols["flag"] = cat["flag"] | flags
        cols["ext"] = np.full(det.n, image.index)
        cols |= moments.measure(snr)
        kinds = osearch.match_kinds(
            cat["x"], cat["y"], truth.get(image.index, osearch.NO_TRUTH), np.asarray(cat["b"])
        )
        parts.append((cols, cutouts.normalise(snr).astype(np.float16), kinds))
    if not parts:
        return exposure, None
    cols = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    cols["shape"] = shape.raw_features(cols)
    return exposure, {
        "cols": cols,
        "c32": np.concatenate([p[1] for p in parts]),
        "kinds": np.concatenate([p[2] for p in parts]).astype(str),
    }


def extract(archive: Path, first: int, last: int, out: str, workers: int) -> None:
    exps = {e: r for e, r in _exposures(archive).items() if first <= int(r["index"]) < last}
    truth = read_objects(archive / "truth" / "objects.csv", set(exps), set(exps))
    names = sorted(exps)
    by_exposure: dict[str, dict[int, dict]] = defaultdict(dict)
    for (e, ext), cols in truth.images.items():
        by_exposure[e][ext] = cols
    jobs = [(e, str(archive / exps[e]["file"]), by_exposure[e]) for e in names]
    got: dict[str, dict | None] = {}
    with mp.get_context("spawn").Pool(workers) as pool:
        for e, r in pool.imap_unordered(_one, jobs, chunksize=4):
            got[e] = r
    kept = [e for e in names if got[e] is not None]
    parts = [got[e] for e in kept]
    cols = {k: np.concatenate([p["cols"][k] for p in parts]) for k in parts[0]["cols"]}
    np.savez(
        out,
        c32=np.concatenate([p["c32"] for p in parts]),
        kinds=np.concatenate([p["kinds"] for p in parts]),
        plane=np.concatenate([np.full(len(p["kinds"]), i) for i, p in enumerate(parts)]),
        names=np.array(kept),
        # per exposure, the truth's count of each kind a question asks about
        **{
            f"count_{q.kind}": np.array([truth.counts[e][q.kind] for e in kept])
            for q in osearch.QUESTIONS
        },
        **{"col_" + k: v for k, v in cols.items()},
    )
    print(f"{out}: {len(kept)} exposures, {sum(len(p['kinds']) for p in parts)} detections")


def _load(path: str) -> dict[str, np.ndarray]:
    d = np.load(path, allow_pickle=False)
    return {k: d[k] for k in d.files}


def _som_input(z, d, center, scale, v):
    names = tuple(v.get("names", shape.NAMES))
    idx = [shape.NAMES.index(n) for n in names]
    factors = np.array([v.get("emph", shape.EMPHASIS).get(n, 1.0) for n in names])
    return shape.combine(
        z, shape.select(d["col_shape"], names), center[idx], scale[idx], v.get("w", 1.0), factors
    )


def run(train: str, evaluate: str, archive: Path, v: dict, cache: str | None) -> dict:
    torch.manual_seed(0)
    tr, ev = _load(train), _load(evaluate)
    exposures = _exposures(archive)
    t0 = time.perf_counter()
    n = v.get("n", 20000)
    z_path = Path(cache + ".z.npz") if cache else None
    if z_path and z_path.exists():
        z = np.load(z_path)
        z_tr, z_ev = z["tr"], z["ev"]
    else:
        pick = rare.pick(tr["col_shape"], n, 0, mix=v.get("enc_mix", 0.0))
        model, _ = enc.train_encoder(
            tr["c32"][pick].astype(np.float32), epochs=v.get("epochs", 10), seed=0
        )
        z_tr = enc.encode(model, tr["c32"].astype(np.float32))
        z_ev = enc.encode(model, ev["c32"].astype(np.float32))
        if z_path:
            np.savez(z_path, tr=z_tr, ev=z_ev)
    center, scale = shape.fit_scaling(tr["col_shape"])
    x_tr = _som_input(z_tr, tr, center, scale, v)
    x_ev = _som_input(z_ev, ev, center, scale, v)
    som = SOM(20, 20)
    som.fit(x_tr[rare.pick(tr["col_shape"], n, 1, mix=v.get("mix", 0.0))], epochs=40, seed=0)
    n_tr, _ = som.assign(x_tr)
    n_ev, _ = som.assign(x_ev)

    labels = osearch.node_majority_kinds(n_tr.tolist(), tr["kinds"].tolist())
    purity = osearch.kind_purity(
        n_ev.tolist(), ev["kinds"].tolist(), labels, set(tr["kinds"].tolist()) - {osearch.NONE}
    )
    out: dict = {"variant": v, "purity": purity, "questions": {}}
    for q in osearch.QUESTIONS:
        nodes = sorted(k for k, lab in labels.items() if lab == q.kind)
        c_tr = np.bincount(tr["plane"][np.isin(n_tr, nodes)], minlength=len(tr["names"]))
        c_ev = np.bincount(ev["plane"][np.isin(n_ev, nodes)], minlength=len(ev["names"]))
        threshold = osearch.question_threshold(q, tr[f"count_{q.kind}"])
        m, s = osearch.score_counts(
            c_tr,
            osearch.question_truth(tr[f"count_{q.kind}"], threshold),
            c_ev,
            osearch.question_truth(ev[f"count_{q.kind}"], threshold),
        )
        out["questions"][q.name] = {"nodes": len(nodes), "min_count": m, **s.__dict__}

    hist = np.zeros((len(ev["names"]), 400))
    np.add.at(hist, (ev["plane"], n_ev), 1)
    fp = fpm.fingerprint(hist, hist.sum(1), hist.sum(1), "smooth-sqrt")
    cls = np.array([exposures[e]["quality_class"] for e in ev["names"]])
    sim = fp @ fp.T
    np.fill_diagonal(sim, -9)
    top = np.argsort(-sim, axis=1)[:, :10]
    by_class: dict[str, list[float]] = defaultdict(list)
    for i, c in enumerate(cls):
        by_class[c].append(float(np.mean(cls[top[i]] == c)))
    out["precision_at_10"] = float(np.mean([np.mean(x) for x in by_class.values()]))
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def show(r: dict) -> None:
    p = r["purity"]
    print(
        f"node purity {p['weighted_purity']:.3f} (matched to the truth: {p['matched_purity']:.3f});"
        f" kinds owning no node: {', '.join(p['unowned']) or '-'}"
    )
    print(
        "  "
        + "  ".join(
            f"{k}: {s['nodes']} nodes p {s['purity']:.2f} c {s['completeness']:.2f}"
            for k, s in sorted(p["kinds"].items())
        )
    )
    for name, q in r["questions"].items():
        print(
            f"  {name:12} nodes {q['nodes']:3}  min_count {q['min_count']:3}  base "
            f"{q['base_rate']:.3f}  P {q['precision']:.3f}  R {q['recall']:.3f}  F1 {q['f1']:.3f}"
        )
    print(f"  fingerprint precision@10 among the evaluation exposures: {r['precision_at_10']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("extract")
    e.add_argument("archive", type=Path)
    e.add_argument("first", type=int)
    e.add_argument("last", type=int)
    e.add_argument("out")
    e.add_argument("--workers", type=int, default=2)
    r = sub.add_parser("run")
    r.add_argument("train")
    r.add_argument("evaluate")
    r.add_argument("archive", type=Path)
    r.add_argument("variant", nargs="?", default="{}")
    r.add_argument("--cache", help="encoder embeddings cache (written on the first run)")
    r.add_argument("--json", help="append the result as one JSON line to this file")
    args = ap.parse_args()
    if args.cmd == "extract":
        extract(args.archive, args.first, args.last, args.out, args.workers)
        return
    result = run(args.train, args.evaluate, args.archive, json.loads(args.variant), args.cache)
    show(result)
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(json.dumps(result, default=float) + "\n")


if __name__ == "__main__":
    main()
