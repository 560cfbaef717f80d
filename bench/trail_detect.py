"""Trail detection on a simulated archive: how many trailed CCDs and exposures get a
``FLAG_SEGMENT`` detection, how many untrailed ones do, and the detection CPU time per CCD,
for the detection as it is, as it was before the line search's baseline, spread and
saturated-run test, without the last alone, without the line search (``lines=False``) and
without both trail passes, each CCD detected every way in turn (same machine load).

    python bench/trail_detect.py ARCHIVE [--trailed N] [--untrailed M] [--out FILE]

ARCHIVE is a ``caomai simulate`` output (images/ and truth/). The first N trailed and the
first M untrailed exposures of its manifest are used."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from caomai_loaders.detect import FLAG_SEGMENT, DetectParams, detect
from caomai_loaders.evaluate import read_objects, read_truth
from caomai_loaders.images import read_images

VARIANTS = {
    "now": {},
    # the line search as it was before 2026-12-01's baseline, spread and saturated-run test
    "before 2026-12-01": {
        "line_baseline": False,
        "line_spread_ref": 0.0,
        "line_saturated_run": False,
    },
    # without the saturated-run test alone (every saturated position along a line counts)
    "saturated share": {"line_saturated_run": False},
    "no line search": {"lines": False},
    "no trail passes": {"lines": False, "segments": False},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path)
    parser.add_argument("--trailed", type=int, default=110)
    parser.add_argument("--untrailed", type=int, default=220)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "trail_detect.json"
    )
    args = parser.parse_args()

    rows = list(read_truth(args.archive / "truth" / "exposures.csv").values())
    trailed = [r for r in rows if int(r["n_trail"]) > 0][: args.trailed]
    untrailed = [r for r in rows if int(r["n_trail"]) == 0][: args.untrailed]
    used = {r["exposure_id"] for r in trailed + untrailed}
    truth = read_objects(args.archive / "truth" / "objects.csv", used, used)
    # (exposure, HDU index) of the CCDs a trail crosses
    trailed_ccds = {key for key, cols in truth.images.items() if "trail" in cols["kind"]}
    found = {name: [] for name in VARIANTS}
    seconds = {name: 0.0 for name in VARIANTS}
    ccds = []
    for r in trailed + untrailed:
        for image in read_images(args.archive / r["file"]):
            ccds.append((r["exposure_id"], (r["exposure_id"], image.index) in trailed_ccds))
            for name, params in VARIANTS.items():
                start = time.process_time()
                det = detect(image, DetectParams(**params))
                seconds[name] += time.process_time() - start
                found[name].append(bool(np.any(det.catalog["flag"] & FLAG_SEGMENT)))

    truth_ccd = np.array([t for _, t in ccds])
    exposures = sorted({e for e, _ in ccds})
    result = {
        "archive": str(args.archive),
        "exposures": {"trailed": len(trailed), "untrailed": len(untrailed)},
        "ccds": {"trailed": int(truth_ccd.sum()), "untrailed": int((~truth_ccd).sum())},
        "variants": {},
    }
    print(f"{len(ccds)} CCDs of {len(exposures)} exposures ({len(trailed)} trailed)")
    print(
        f"{'variant':<18} {'CCD recall':>10} {'CCD false':>10} {'exp recall':>10} {'exp false':>10} {'CPU s/CCD':>10}"
    )
    for name in VARIANTS:
        hit = np.array(found[name])
        per_exposure: dict[str, list[bool]] = {}
        for (exposure, truth), h in zip(ccds, hit, strict=True):
            entry = per_exposure.setdefault(exposure, [False, False])
            entry[0] |= truth
            entry[1] |= bool(h)
        e = np.array(list(per_exposure.values()))
        figures = {
            "ccd_recall": float(hit[truth_ccd].mean()),
            "ccd_false": float(hit[~truth_ccd].mean()),
            "exposure_recall": float(e[e[:, 0], 1].mean()),
            "exposure_false": float(e[~e[:, 0], 1].mean()),
            "cpu_s_per_ccd": seconds[name] / len(ccds),
        }
        result["variants"][name] = figures
        print(
            f"{name:<18} {figures['ccd_recall']:>10.3f} {figures['ccd_false']:>10.3f} "
            f"{figures['exposure_recall']:>10.3f} {figures['exposure_false']:>10.3f} "
            f"{figures['cpu_s_per_ccd']:>10.3f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
