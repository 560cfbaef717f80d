"""Many clients at once against `caomai serve`, while a loader writes: is every answer right,
and do cheap requests keep answering while heavy ones queue?

Builds a synthetic archive in a private embedded cluster (or uses ``--dsn``), starts
``caomai serve`` as its own process (its memory is measured apart from the clients), and runs N
client threads from loopback for a bounded time. Each client loops over a mix:

- similarity: ``TOP 10 ... fp_similar`` with a metadata filter, ordered by similarity;
- ``in_node`` and ``has_object_node`` counts;
- cheap requests: ``/availability``, ``/capabilities``, a TAP_SCHEMA read, a small query;
- an asynchronous job (create, run, WAIT, read the result).

Every answer is checked against an exact recomputation with numpy from the rows as the
administrator reads them (``tests/tapserver.py``). Meanwhile a writer inserts proprietary planes
with fingerprints (new data arrives proprietary), so the public answers must not change.

Prints throughput, p50/p95/p99 per kind, errors (HTTP or VOTable errors), drops (connections
the client lost or timed out), wrong answers, and the server's RSS; writes the figures to
``bench/results/load_test-<label>.json``.

    .venv/bin/python bench/load_test.py --clients 32 --seconds 60 --label before
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from caomai_db import database, dbadmin  # noqa: E402
from caomai_db.config import Settings  # noqa: E402
from caomai_loaders import synthetic  # noqa: E402
from tests.tapserver import Truth, free_port  # noqa: E402

CHEAP = {"availability", "capabilities", "tap_schema", "small"}


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    drops: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    wrong: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float, outcome: str, note: str = "") -> None:
        with self.lock:
            if outcome == "ok":
                self.latencies[kind].append(seconds)
            else:
                getattr(self, outcome)[kind] += 1
                if len(self.samples) < 20:
                    self.samples.append(f"{kind} {outcome}: {note[:200]}")


class Workload:
    """The requests and their exact answers."""

    def __init__(self, truth: Truth, seed: int) -> None:
        self.truth = truth
        self.rng = random.Random(seed)
        self.public = np.flatnonzero(~truth.proprietary)
        # similarity references come from a fixed pool, so the exact answers cached for them
        # stay bounded (one float per plane and reference) however long the run
        self.sim_refs = self.rng.sample(list(self.public), min(200, len(self.public)))
        self.sim_cache: dict[str, np.ndarray] = {}
        self.lock = threading.Lock()

    def _sim(self, ref: str) -> np.ndarray:
        with self.lock:
            if ref not in self.sim_cache:
                self.sim_cache[ref] = self.truth.similarity([ref])
            return self.sim_cache[ref]

    def similarity(self) -> tuple[str, callable]:
        t = self.truth
        ref = t.publisherid[self.rng.choice(self.sim_refs)]
        frac = self.rng.choice([0.01, 0.1, 0.5, 1.0])
        cut = synthetic.time_cut(frac)
        adql = (
            "SELECT TOP 10 p.publisherID, fp_similar(f.fp, '" + ref + "') AS sim"
            " FROM caom2.Plane AS p JOIN caomai.fingerprint AS f ON f.planeID = p.planeID"
            f" WHERE p.time_bounds_lower < {cut} ORDER BY sim DESC"
        )
        keep = ~t.proprietary & (t.time_lo < cut)

        def check(rows: list[dict[str, str]]) -> str | None:
            sim = self._sim(ref)
            order = [j for j in np.argsort(-sim) if keep[j]][:11]
            want = sim[order[:10]]
            got = np.array([float(r["sim"]) for r in rows])
            if len(got) != min(10, int(keep.sum())):
                return f"{len(got)} rows, want {min(10, int(keep.sum()))}"
            if not np.allclose(got, want, atol=1e-5):
                return f"similarities {got[:3]} want {want[:3]}"
            return None

        return adql, check

    def in_node(self) -> tuple[str, callable]:
        t = self.truth
        ref = t.publisherid[self.rng.choice(self.public)]
        radius = self.rng.choice([0, 1, 2])
        adql = (
            "SELECT COUNT(*) AS n FROM caomai.fingerprint AS f"
            f" WHERE in_node(f.map2_node, '{ref}', {radius}) = 1"
        )
        want = int((t.in_node([ref], radius) & ~t.proprietary).sum())
        return adql, lambda rows: None if int(rows[0]["n"]) == want else f"{rows} want {want}"

    def has_object_node(self) -> tuple[str, callable]:
        t = self.truth
        i = int(self.rng.choice(self.public))
        nodes = [int(n) for n in np.argsort(-t.counts[i])[: self.rng.choice([1, 3, 6])]]
        k = self.rng.choice([1, 5, 20])
        adql = (
            "SELECT COUNT(*) AS n FROM caom2.Plane AS p"
            f" WHERE has_object_node(p.planeID, '{','.join(map(str, nodes))}', {k}) = 1"
        )
        want = int((t.has_object_node(nodes, k) & ~t.proprietary).sum())
        return adql, lambda rows: None if int(rows[0]["n"]) == want else f"{rows} want {want}"

    def small(self) -> tuple[str, callable]:
        t = self.truth
        ref = t.publisherid[self.rng.choice(self.public)]
        adql = f"SELECT p.publisherID FROM caom2.Plane AS p WHERE p.publisherID = '{ref}'"
        return adql, lambda rows: None if [r["publisherID"] for r in rows] == [ref] else str(rows)

    def tap_schema(self) -> tuple[str, callable]:
        adql = "SELECT table_name, column_name FROM TAP_SCHEMA.columns WHERE table_name = 'caomai.fingerprint'"
        return adql, lambda rows: None if len(rows) >= 10 else f"{len(rows)} columns"


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def client(base: str, work: Workload, tally: Tally, stop: float, seed: int, timeout: float) -> None:
    rng = random.Random(seed)
    kinds = (
        ["similarity"] * 40
        + ["in_node"] * 12
        + ["has_object_node"] * 12
        + ["availability"] * 8
        + ["capabilities"] * 4
        + ["tap_schema"] * 8
        + ["small"] * 12
        + ["async"] * 4
    )
    with httpx.Client(timeout=timeout) as http:
        while time.monotonic() < stop:
            kind = rng.choice(kinds)
            t0 = time.perf_counter()
            try:
                if kind in ("availability", "capabilities"):
                    r = http.get(f"{base}/{kind}")
                    ok = r.status_code == 200 and (
                        kind != "availability" or "available>true</" in r.text
                    )
                    tally.add(kind, time.perf_counter() - t0, "ok" if ok else "errors", r.text)
                    continue
                adql, check = getattr(work, "similarity" if kind == "async" else kind)()
                data = {"LANG": "ADQL", "QUERY": adql, "RESPONSEFORMAT": "csv"}
                if kind == "async":
                    r = http.post(f"{base}/async", data={**data, "PHASE": "RUN"})
                    if r.status_code not in (200, 303):
                        tally.add(kind, 0, "errors", f"{r.status_code} {r.text}")
                        continue
                    url = r.headers.get("location") or str(r.url)
                    while True:
                        job = http.get(url, params={"WAIT": "10"})
                        if "EXECUTING" not in job.text and "QUEUED" not in job.text:
                            break
                        if time.monotonic() > stop + timeout:
                            break
                    if "COMPLETED" not in job.text:
                        tally.add(kind, time.perf_counter() - t0, "errors", job.text)
                        continue
                    r = http.get(f"{url}/results/result")
                else:
                    r = http.post(f"{base}/sync", data=data)
                if r.status_code != 200 or r.text.lstrip().startswith("<"):
                    tally.add(kind, time.perf_counter() - t0, "errors", f"{r.status_code} {r.text}")
                    continue
                problem = check(_rows(r.text))
                tally.add(
                    kind, time.perf_counter() - t0, "wrong" if problem else "ok", problem or ""
                )
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                tally.add(kind, time.perf_counter() - t0, "drops", repr(exc))


def writer(dsn: str, stop: float, written: list[int]) -> None:
    """Proprietary planes with fingerprints, a batch of 20 every half second (a loader's pace)."""
    rng = np.random.default_rng(99)
    with psycopg.connect(dsn) as conn:
        m1 = conn.execute(
            "SELECT model_id FROM caomai.model WHERE kind = 'map1' AND active"
        ).fetchone()[0]
        while time.monotonic() < stop:
            with conn.transaction():
                for _ in range(20):
                    obs, plane = uuid.uuid4(), uuid.uuid4()
                    name = f"lt{obs.hex[:12]}"
                    conn.execute(
                        "INSERT INTO caom2.observation (obsid, observationuri, collection,"
                        " observationid, intent, type, metarelease) VALUES (%s, %s, 'LOADTEST',"
                        " %s, 'science', 'OBJECT', now() + interval '1 year')",
                        (obs, f"caom:LOADTEST/{name}", name),
                    )
                    conn.execute(
                        "INSERT INTO caom2.plane (planeid, obsid, planeuri, publisherid, productid,"
                        " metarelease, datarelease, calibrationlevel, dataproducttype) VALUES"
                        " (%s, %s, %s, %s, %s, now() + interval '1 year', now() + interval '1 year',"
                        " 2, 'image')",
                        (
                            plane,
                            obs,
                            f"caom:LOADTEST/{name}/{name}p",
                            f"ivo://caomai.example/LOADTEST?{name}/{name}p",
                            f"{name}p",
                        ),
                    )
                    counts = rng.multinomial(300, np.full(400, 1 / 400)).astype(int)
                    fp = np.sqrt(counts)
                    fp = fp / np.linalg.norm(fp)
                    conn.execute(
                        "INSERT INTO caomai.fingerprint (planeid, model_id, publisherid, metarelease,"
                        " fp, counts, n_detected, n_sampled) SELECT planeid, %s, publisherid,"
                        " metarelease, %s::vector, %s, 300, 300 FROM caom2.plane WHERE planeid = %s",
                        (m1, "[" + ",".join(f"{v:.6f}" for v in fp) + "]", counts.tolist(), plane),
                    )
            written[0] += 20
            time.sleep(0.5)


def percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    a = np.array(values) * 1000
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(a, 50)), 1),
        "p95_ms": round(float(np.percentile(a, 95)), 1),
        "p99_ms": round(float(np.percentile(a, 99)), 1),
        "max_ms": round(float(a.max()), 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--planes", type=int, default=20_000, help="synthetic planes (default 20000)")
    ap.add_argument("--dsn", help="use this migrated database with a synthetic archive instead")
    ap.add_argument("--timeout", type=float, default=90, help="client timeout per request, s")
    ap.add_argument("--no-writer", action="store_true", help="no loader writing meanwhile")
    ap.add_argument("--label", default=time.strftime("%Y%m%d-%H%M"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="caomai-loadtest-"))
    os.environ["CAOMAI_HOME"] = str(home)
    try:
        if args.dsn:
            dsn = args.dsn
        else:
            dsn = database.resolve_dsn(Settings.from_env())
            print(f"building a synthetic archive of {args.planes} planes ...", flush=True)
            dbadmin.upgrade(dsn, "head")
            synthetic.generate(dsn, args.planes, seed=7, proprietary_fraction=0.05)
        truth = Truth.load(dsn)
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "caomai_db.cli",
                "--dsn",
                dsn,
                "serve",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
        )
        base = f"http://127.0.0.1:{port}/tap"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/availability", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the service did not start")
            time.sleep(0.3)
        proc = psutil.Process(server.pid)
        rss = [proc.memory_info().rss]
        work, tally = Workload(truth, args.seed), Tally()
        stop = time.monotonic() + args.seconds
        written = [0]
        threads = [
            threading.Thread(
                target=client, args=(base, work, tally, stop, args.seed * 1000 + i, args.timeout)
            )
            for i in range(args.clients)
        ]
        if not args.no_writer:
            threads.append(threading.Thread(target=writer, args=(dsn, stop, written)))
        t0 = time.monotonic()
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            rss.append(proc.memory_info().rss)
            time.sleep(1)
        wall = time.monotonic() - t0
        server.terminate()
        server.wait(30)
    finally:
        subprocess.run(
            [sys.executable, "-m", "caomai_db.cli", "db", "stop"],
            env={**os.environ, "CAOMAI_HOME": str(home)},
            capture_output=True,
            cwd=ROOT,
        )
        shutil.rmtree(home, ignore_errors=True)

    kinds = sorted(set(tally.latencies) | set(tally.errors) | set(tally.drops) | set(tally.wrong))
    total = sum(len(v) for v in tally.latencies.values())
    cheap = [x for k in CHEAP for x in tally.latencies.get(k, [])]
    report = {
        "label": args.label,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_after": os.getloadavg(),
        "clients": args.clients,
        "seconds": round(wall, 1),
        "planes": len(truth.publisherid),
        "planes_written_meanwhile": written[0],
        "answers_per_s": round(total / wall, 1),
        "errors": sum(tally.errors.values()),
        "drops": sum(tally.drops.values()),
        "wrong": sum(tally.wrong.values()),
        "server_rss_mb": {"start": round(rss[0] / 2**20), "max": round(max(rss) / 2**20)},
        "cheap": percentiles(cheap),
        "per_kind": {
            k: {
                **percentiles(tally.latencies.get(k, [])),
                "errors": tally.errors.get(k, 0),
                "drops": tally.drops.get(k, 0),
                "wrong": tally.wrong.get(k, 0),
            }
            for k in kinds
        },
        "samples": tally.samples,
    }
    print(
        f"\n{args.clients} clients, {wall:.0f} s, {report['planes']} planes"
        f" (+{written[0]} proprietary written meanwhile): {report['answers_per_s']} answers/s,"
        f" {report['errors']} errors, {report['drops']} drops, {report['wrong']} wrong;"
        f" server RSS {report['server_rss_mb']['start']} -> max {report['server_rss_mb']['max']} MB"
    )
    print(
        f"{'kind':<16} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'err':>4} {'drop':>4} {'wrong':>5}"
    )
    for k, v in {
        "cheap (all)": {**report["cheap"], "errors": "", "drops": "", "wrong": ""},
        **report["per_kind"],
    }.items():
        print(
            f"{k:<16} {v.get('n', 0):>6} {v.get('p50_ms', '-'):>8} {v.get('p95_ms', '-'):>8}"
            f" {v.get('p99_ms', '-'):>8} {v['errors']!s:>4} {v['drops']!s:>4} {v['wrong']!s:>5}"
        )
    for s in tally.samples[:5]:
        print("  e.g.", s)
    out = ROOT / "bench" / "results" / f"load_test-{args.label}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
