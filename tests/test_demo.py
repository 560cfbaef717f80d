"""`caomai demo`, shrunk: simulate -> register -> Map 1 -> load -> Map 2 -> evaluate -> ADQL."""

from __future__ import annotations

from pathlib import Path

from caomai_db import database
from caomai_db.cli import main as caomai

ARGS = [
    "--no-serve",
    "--exposures",
    "12",
    "--cutouts",
    "300",
    "--epochs",
    "1",
    "--max-objects",
    "60",
]


def test_demo_runs_end_to_end_and_resumes(db: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    argv = ["--dsn", db, "demo", *ARGS, "--out", str(out), "--workers", "1", "--no-progress"]
    assert caomai(argv) == 0
    first = capsys.readouterr().out
    assert len(list((out / "images").glob("*.fits"))) == 12
    with database.connect(db) as conn:
        models = dict(conn.execute("SELECT name, kind FROM caomai.model").fetchall())
        n_fp = conn.execute(
            "SELECT count(*) FROM caomai.fingerprint AS f JOIN caomai.model AS m USING (model_id)"
            " WHERE m.name = 'demo-map1' AND f.map2_node IS NOT NULL"
        ).fetchone()[0]
        n_planes = conn.execute("SELECT count(*) FROM caom2.plane").fetchone()[0]
    assert models == {"demo-map1": "map1", "demo-map2": "map2"}
    assert n_planes == 12 and n_fp == 12
    # the evaluation table on the held-out half, and the ADQL answer as CSV through TAP code
    assert "accuracy" in first and "precision" in first and "recall" in first
    assert "Truth ceiling" in first  # the simulator's manifest carries the conditions
    csv_part = first.split("an ADQL query through the TAP service")[1]
    header = next(line for line in csv_part.splitlines() if line.strip().startswith("publisherID,"))
    assert header.strip().split(",") == ["publisherID", "energy_bandpassName", "sim"]
    rows = csv_part.split(header, 1)[1].strip().splitlines()
    sims = [float(r.rsplit(",", 1)[1]) for r in rows if r.strip().startswith("ivo://")]
    assert sims and sims[0] > 0.999 and sims == sorted(sims, reverse=True)

    # a second run reuses the files, the models and the loaded planes
    assert caomai(argv) == 0
    second = capsys.readouterr().out
    assert second.count("already rendered") == 2 and second.count("already trained") == 2
    assert second.count("already registered") == 2 and second.count("already loaded") == 2
    with database.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM caomai.fingerprint").fetchone()[0] == 12


def test_rendering_in_parts_gives_the_same_files(tmp_path: Path) -> None:
    """The demo renders its training half first and the rest while it serves: the two parts
    must give, byte for byte, the archive one run writes (issue 15: the same evaluation)."""
    import filecmp

    from caomai_loaders.simulate import simulate_archive

    geometry = dict(ccd_size=(128, 128), progress=False)
    simulate_archive(tmp_path / "whole", 6, workers=2, **geometry)
    simulate_archive(tmp_path / "parts", 6, workers=2, part=(0, 4), **geometry)
    assert not (tmp_path / "parts" / "truth" / "exposures.csv").exists()
    simulate_archive(tmp_path / "parts", 6, workers=1, part=(4, 6), **geometry)
    names = ["truth/exposures.csv", "truth/objects.csv", "truth/archive.json"]
    names += [f"images/{f.name}" for f in (tmp_path / "whole" / "images").glob("*.fits")]
    assert len(names) == 9
    for name in names:
        assert filecmp.cmp(tmp_path / "whole" / name, tmp_path / "parts" / name, shallow=False)


def test_demo_serves_its_printed_queries_and_stops_on_ctrl_c(db: str, tmp_path: Path) -> None:
    """`make demo` as a user meets it: the page answers, the printed queries, the pyvo snippet
    and the stilts command run as printed, and Ctrl-C (SIGINT to the process group, as a
    terminal sends it) stops the server and the background load without a traceback."""
    import os
    import shlex
    import shutil
    import signal
    import subprocess
    import sys
    import textwrap
    import time
    from contextlib import redirect_stdout
    from io import StringIO

    import httpx
    import pyvo

    from caomai_loaders.demo import example_queries

    from .system import IN_CI, require
    from .tapserver import free_port

    port = free_port()
    log_out, log_err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    argv = [sys.executable, "-m", "caomai_db.cli", "--dsn", db, "demo", *ARGS[1:]]
    argv += ["--exposures", "20", "--out", str(tmp_path / "demo"), "--workers", "1"]
    argv += ["--no-progress", "--port", str(port)]
    with log_out.open("w") as fo, log_err.open("w") as fe:
        proc = subprocess.Popen(argv, stdout=fo, stderr=fe, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def wait_for(what: str, check, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert proc.poll() is None, f"the demo ended: {log_err.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no {what}: {log_out.read_text()[-2000:]}"
            time.sleep(1)

    def page_answers() -> bool:
        try:
            return httpx.get(f"{url}/api/maps/map2", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for("page", page_answers)
        wait_for("report", lambda: "the whole demo archive is loaded" in log_out.read_text())
        out = log_out.read_text()
        status = httpx.get(f"{url}/api/status").json()
        assert status["planes"] == status["fingerprinted"] == status["on_map2"] > 10
        assert "accuracy" in out and "Truth ceiling" in out

        queries = example_queries(db)
        tap = pyvo.dal.TAPService(f"{url}/tap")
        assert len(queries) == 3 and all(q in out for q in queries)
        for q in queries:
            assert len(tap.run_sync(q).to_table()) > 0, q
        snippet = out.split("pyvo (Python):\n")[1].split("stilts (shell):")[0]
        printed = StringIO()
        with redirect_stdout(printed):
            exec(textwrap.dedent(snippet), {})
        assert "publisherID" in printed.getvalue()
        stilts = next(li for li in out.splitlines() if li.strip().startswith("stilts tapquery"))
        if shutil.which("stilts") is not None or IN_CI:
            require(shutil.which("stilts") is not None, "stilts")
            ran = subprocess.run(shlex.split(stilts), capture_output=True, text=True, timeout=120)
            assert ran.returncode == 0 and ran.stdout.startswith("n\n"), ran.stderr
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(90)
    assert rc == 0
    assert "Traceback" not in log_err.read_text(), log_err.read_text()[-3000:]
    assert "stopped." in log_out.read_text()
    with database.connect(db) as conn:
        running = conn.execute("SELECT count(*) FROM caomai.load_queue WHERE status = 'running'")
        assert running.fetchone()[0] == 0


def test_the_demo_query_asks_for_nodes_its_reference_fills() -> None:
    # the printed query must find images on any map: the Map-1 range is the 41 consecutive
    # nodes holding most of the reference image's objects
    from caomai_loaders.demo import busiest_nodes

    counts = [0] * 400
    counts[300:310] = [3] * 10
    counts[5] = 20
    assert busiest_nodes(counts) == "269-309"
    counts[5] = 40
    assert busiest_nodes(counts) == "0-40"
    assert busiest_nodes([1, 2, 3], width=41) == "0-2"
