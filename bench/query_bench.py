"""Top-k similarity under metadata filters: recall@k and latency, SQL and TAP, against numpy.

    .venv/bin/python bench/query_bench.py --rows 100000

Builds (once; kept for the next run) a database ``caomai_bench_g<generator>_<rows>`` on the
configured cluster (CAOMAI_DSN, else the embedded one in CAOMAI_HOME) holding ``rows``
synthetic planes (caomai_loaders.synthetic: clustered, non-negative, 400-d fingerprints with CAOM2
metadata; 1 % are proprietary), starts ``caomai serve`` on it, and for filters keeping 0.1 %,
1 %, 10 % and 100 % of the rows (``time_bounds_lower < cut``) asks ``--queries`` top-``k``
ADQL queries

    SELECT TOP k p.publisherID, fp_similar(f.fp, '<ref>') AS sim
    FROM caom2.Plane AS p JOIN caomai.fingerprint AS f ON f.planeID = p.planeID
    WHERE p.time_bounds_lower < <cut> ORDER BY sim DESC

three ways, each timed per query:

- **numpy**: brute force over the rows the filter keeps (the baseline; vectors in memory);
- **SQL**: the translated statement as the TAP service runs it (reader role, plan chosen by
  the filter's estimated selectivity, checks of the reference included; translation excluded);
  each query runs once untimed first, so SQL and TAP are both measured with warm caches;
- **TAP**: the full sync round trip over HTTP (translation, planning, VOTable) to the server.

recall@k compares SQL's answer with numpy's exact top k. Prints one table and the machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from caomai_db import database, dbadmin
from caomai_db.adql import plan as plan_mod
from caomai_db.adql.rewrite import translate
from caomai_db.config import Settings
from caomai_db.tap.service import TapService
from caomai_loaders import synthetic

FRACTIONS = (0.001, 0.01, 0.1, 1.0)


def prepare(base_dsn: str, rows: int, seed: int) -> str:
    name = f"caomai_bench_g{synthetic.GENERATOR}_{rows}"
    admin = database.with_database(base_dsn, "postgres")
    dsn = database.with_database(base_dsn, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if exists:
        with psycopg.connect(dsn) as conn:
            have = conn.execute("SELECT count(*) FROM caomai.fingerprint").fetchone()[0]
        if have == rows:
            print(f"reusing database {name} ({rows:,} planes)", flush=True)
            return dsn
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dbadmin.upgrade(dsn, "head")
    t0 = time.perf_counter()
    synthetic.generate(dsn, rows, seed=seed)
    print(
        f"built {name}: {rows:,} planes + HNSW index in {time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    return dsn


def load_vectors(dsn: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """publisherID, fingerprint (float32, unit), time_bounds_lower, proprietary flag."""
    ids, fps, times, secret = [], [], [], []
    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        with conn.cursor(name="vectors") as cur:
            cur.itersize = 20_000
            cur.execute(
                "SELECT p.publisherid, f.fp, p.time_bounds_lower, p.metarelease > now()"
                " FROM caom2.plane p JOIN caomai.fingerprint f USING (planeid)"
            )
            for pub, fp, t, s in cur:
                ids.append(pub)
                fps.append(fp.to_numpy() if hasattr(fp, "to_numpy") else fp)
                times.append(t)
                secret.append(s)
    x = np.asarray(fps, dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.array(ids), x, np.array(times), np.array(secret, dtype=bool)


def start_server(dsn: str, port: int) -> subprocess.Popen:
    exe = shutil.which("caomai", path=str(Path(sys.executable).parent)) or "caomai"
    env = dict(os.environ, CAOMAI_DSN=dsn)
    proc = subprocess.Popen(
        [exe, "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/tap"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/availability", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("caomai serve did not start")


def adql(ref: str, cut: float | None, k: int) -> str:
    where = "" if cut is None else f" WHERE p.time_bounds_lower < {cut!r}"
    return (
        f"SELECT TOP {k} p.publisherID, fp_similar(f.fp, '{ref}') AS sim"
        " FROM caom2.Plane AS p JOIN caomai.fingerprint AS f ON f.planeID = p.planeID"
        f"{where} ORDER BY sim DESC"
    )


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=20, help="queries per filter (default 20)")
    ap.add_argument("-k", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--port", type=int, default=8799)
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument("--ef-search-min", type=int, help="set CAOMAI_EF_SEARCH_MIN (SQL and TAP)")
    ap.add_argument("--exact-max-rows", type=int, help="set CAOMAI_EXACT_MAX_ROWS (SQL and TAP)")
    ap.add_argument("--fractions", default=",".join(map(str, FRACTIONS)), help="filters to try")
    args = ap.parse_args()

    if args.ef_search_min is not None:
        os.environ["CAOMAI_EF_SEARCH_MIN"] = str(args.ef_search_min)
    if args.exact_max_rows is not None:
        os.environ["CAOMAI_EXACT_MAX_ROWS"] = str(args.exact_max_rows)
    settings = Settings.from_env()
    dsn = prepare(database.resolve_dsn(settings), args.rows, args.seed)
    t0 = time.perf_counter()
    ids, x, times, secret = load_vectors(dsn)
    print(f"numpy baseline: {len(ids):,} vectors in memory ({time.perf_counter() - t0:.0f} s)")
    svc = TapService(settings.with_dsn(dsn), pool_size=2)
    plan_settings = svc.plan_settings
    print(f"plan settings: {plan_settings}")
    server = start_server(dsn, args.port)
    tap = f"http://127.0.0.1:{args.port}/tap"
    client = httpx.Client(timeout=120)
    rng = np.random.default_rng(args.seed + 1)
    refs = ids[rng.choice(np.flatnonzero(~secret), size=args.queries, replace=False)]
    index_of = {p: i for i, p in enumerate(ids)}
    figures = []
    try:
        # warm up: the first queries read the index and tables into memory
        for ref in refs[:3]:
            client.post(f"{tap}/sync", data={"LANG": "ADQL", "QUERY": adql(ref, None, args.k)})
        for fraction in [float(f) for f in args.fractions.split(",")]:
            cut = synthetic.time_cut(fraction) if fraction < 1 else None
            keep = ~secret if cut is None else (~secret & (times < cut))
            t_np, t_sql, t_tap, recalls, plans = [], [], [], [], []
            # an untimed pass first, so SQL and TAP (same plan, same pages) are both timed
            # warm; otherwise whichever runs first pays for reading the index pages
            for ref in refs:
                t = translate(adql(ref, cut, args.k), svc.catalog(), args.k)
                with svc.pool.connection() as conn:
                    plan_mod.run(conn, t, svc.catalog(), maxrec=args.k, timeout_s=60)
            # numpy in a pass of its own: its BLAS threads keep spinning on both cores for a
            # moment after each product and would slow a SQL query timed right after it
            wants = []
            for ref in refs:
                s = time.perf_counter()
                rows = np.flatnonzero(keep if cut is None else (times < cut) & ~secret)
                scores = x[rows] @ x[index_of[ref]]
                top = rows[np.argpartition(-scores, min(args.k, len(rows) - 1))[: args.k]]
                t_np.append(time.perf_counter() - s)
                wants.append(set(ids[top]))
            time.sleep(0.5)
            for ref, want in zip(refs, wants, strict=True):
                q = adql(ref, cut, args.k)
                # SQL as the service runs it
                cat = svc.catalog()
                t = translate(q, cat, args.k)
                with svc.pool.connection() as conn:
                    s = time.perf_counter()
                    res = plan_mod.run(
                        conn, t, cat, maxrec=args.k, timeout_s=60, plan_settings=plan_settings
                    )
                    t_sql.append(time.perf_counter() - s)
                got = {r[0] for r in res.rows}
                recalls.append(len(got & want) / len(want))
                plans.append(res.plan.name + ("+fallback" if res.plan.fallback else ""))
            # TAP round trips in a pass of their own: a query repeated right after its SQL
            # run would find every page it needs in shared buffers and look faster than it is
            for ref in refs:
                q = adql(ref, cut, args.k)
                s = time.perf_counter()
                r = client.post(
                    f"{tap}/sync", data={"LANG": "ADQL", "QUERY": q, "MAXREC": str(args.k)}
                )
                t_tap.append(time.perf_counter() - s)
                if r.status_code != 200:
                    raise SystemExit(f"TAP error: {r.text[:500]}")
            figures.append(
                {
                    "filter": fraction,
                    "rows_kept": int(keep.sum()),
                    "plans": {p: plans.count(p) for p in sorted(set(plans))},
                    "recall_mean": float(np.mean(recalls)),
                    "recall_min": float(np.min(recalls)),
                    "sql_p50_ms": pct(t_sql, 50),
                    "sql_p95_ms": pct(t_sql, 95),
                    "tap_p50_ms": pct(t_tap, 50),
                    "tap_p95_ms": pct(t_tap, 95),
                    "numpy_p50_ms": pct(t_np, 50),
                    "numpy_p95_ms": pct(t_np, 95),
                }
            )
    finally:
        client.close()
        server.terminate()
        server.wait(30)
        svc.close()
    load = os.getloadavg()
    print(
        f"\nrows={args.rows:,} k={args.k} queries/filter={args.queries} cpus={os.cpu_count()}"
        f" load(1/5/15 min)={load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}\n"
    )
    print(
        "| filter | rows kept | plan | recall@k mean (min) | SQL p50 / p95 ms"
        " | TAP p50 / p95 ms | numpy p50 / p95 ms |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for f in figures:
        plans = ", ".join(f"{k} {v}" for k, v in f["plans"].items())
        print(
            f"| {f['filter']:.1%} | {f['rows_kept']:,} | {plans} | {f['recall_mean']:.3f}"
            f" ({f['recall_min']:.2f}) | {f['sql_p50_ms']:.1f} / {f['sql_p95_ms']:.1f}"
            f" | {f['tap_p50_ms']:.1f} / {f['tap_p95_ms']:.1f}"
            f" | {f['numpy_p50_ms']:.1f} / {f['numpy_p95_ms']:.1f} |"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"rows": args.rows, "k": args.k, "load": load, "figures": figures}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
