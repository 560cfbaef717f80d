"""Fuzz the TAP service: N generated requests, valid and invalid ADQL and odd requests
(tests/fuzzgen.py), one after the other; counts per status, the slowest answers, the problems
(any 500, any status but 200/400, any error that is not a VOTable, any answer slower than the
statement timeout), and whether every table's rows are unchanged (md5 before and after).

    .venv/bin/python bench/fuzz.py --queries 10000                  # a service of its own
    .venv/bin/python bench/fuzz.py --url http://host:8080/tap --dsn postgresql://owner@host/db

Without ``--url`` it builds a throw-away database of ``--planes`` synthetic planes on the
configured cluster (CAOMAI_DSN, else the embedded one in CAOMAI_HOME), starts ``caomai serve``
on it with ``--statement-timeout``, and drops the database afterwards. With ``--url`` the
checksums need the owner's ``--dsn``. Writes the summary as JSON (``--out``); exit status 1
when there was a problem.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from caomai_db import database  # noqa: E402
from caomai_db.config import Settings  # noqa: E402
from tests import fuzzgen  # noqa: E402
from tests.tapserver import free_port, synthetic_database  # noqa: E402


def start_server(dsn: str, port: int, timeout_s: int) -> subprocess.Popen:
    """``caomai serve`` in a process of its own, so that client and server do not share a GIL."""
    exe = shutil.which("caomai", path=str(Path(sys.executable).parent)) or "caomai"
    env = dict(os.environ, CAOMAI_DSN=dsn, CAOMAI_QUERY_TIMEOUT=str(timeout_s))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [exe, "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/tap"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/availability", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("caomai serve did not start")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", type=int, default=10_000, help="requests to send (10000)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the generator (1)")
    ap.add_argument("--url", help="TAP base URL of a running service (default: start one)")
    ap.add_argument("--dsn", help="owner DSN of the service's database, for the checksums")
    ap.add_argument("--planes", type=int, default=1000, help="synthetic planes (1000)")
    ap.add_argument(
        "--statement-timeout",
        type=int,
        default=10,
        help="statement timeout of the service started here, and the slowest answer allowed (10 s)",
    )
    ap.add_argument("--out", default=str(ROOT / "bench/results/fuzz.json"), help="JSON summary")
    args = ap.parse_args()

    started = time.time()
    if args.url:
        report = fuzzgen.run(
            args.url, args.queries, args.seed, args.statement_timeout, args.dsn, progress=500
        )
    else:
        cluster = database.resolve_dsn(Settings.from_env())
        with synthetic_database(cluster, args.planes, seed=args.seed) as dsn:
            port = free_port()
            proc = start_server(dsn, port, args.statement_timeout)
            try:
                url = f"http://127.0.0.1:{port}/tap"
                report = fuzzgen.run(
                    url, args.queries, args.seed, args.statement_timeout, dsn, progress=500
                )
                alive = httpx.get(f"{url}/availability", timeout=10).status_code == 200
            finally:
                proc.terminate()
                proc.wait(30)
    summary = {
        "queries": args.queries,
        "seed": args.seed,
        "statement_timeout_s": args.statement_timeout,
        "planes": None if args.url else args.planes,
        "service_alive_after": None if args.url else alive,
        "wall_s": round(time.time() - started, 1),
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs, load {os.getloadavg()}",
        **report.summary(),
    }
    text = json.dumps(summary, indent=2)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")
    return 1 if report.problems or summary["checksums_held"] is False else 0


if __name__ == "__main__":
    raise SystemExit(main())
