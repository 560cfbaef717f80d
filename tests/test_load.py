"""`caomai load` against a real PostgreSQL: rows, idempotence, SIGKILL + resume, two loaders on
one queue, broken files, model checksums, Map 2, labels and the evaluation.

One small synthetic archive (3 kinds x 6 exposures of 2 CCDs) is registered and a tiny Map 1
trained on its first half once per module, in a template database; each test loads into its
own copy of that template.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import pytest
from astropy.io import fits

from caomai_db import database, dbadmin
from caomai_db.cli import main as caomai
from caomai_db.config import Settings
from caomai_loaders import image_vector, modelstore
from caomai_loaders import object_search as osearch
from caomai_loaders.evaluate import LABEL_SOURCE, evaluate
from caomai_loaders.load import LoadOptions, load
from caomai_loaders.train import train_map1, train_map2

from .load_helpers import make_archive, register_files

TRAIN = "right(o.observationid, 3) < '003'"


@dataclass
class Archive:
    template: str
    admin: str
    directory: Path
    truth: Path
    map1: str


@pytest.fixture(scope="module")
def archive(cluster_dsn: str, tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("synthetic")
    # cosmic rays vary per CCD (0-11), so "images with many cosmic rays" has an answer
    kinds = make_archive(directory, per_kind=6, cosmic_rays=(0, 12))
    truth = directory / "exposures.csv"
    with open(truth, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["exposure_id", "file", "quality_class", "strength", "seed"])
        for name, kind in sorted(kinds.items()):
            w.writerow([name, f"{name}.fits", "good" if kind == "good" else kind, 1.0, 0])
    name = "tmpl_" + uuid.uuid4().hex[:8]
    admin = database.with_database(cluster_dsn, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = database.with_database(cluster_dsn, name)
    dbadmin.upgrade(dsn, "head")
    with database.connect(dsn) as conn:
        register_files(conn, sorted(directory.glob("*.fits")))
    row = train_map1(
        Settings.from_env(dsn),
        planes=TRAIN,
        n_cutouts=1500,
        epochs=2,
        som_epochs=20,
        workers=1,
        progress=False,
        name="map1-" + name,
    )
    yield Archive(name, admin, directory, truth, row.name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def copy_db(archive: Archive):
    """A fresh copy of the template database per call."""
    made: list[str] = []

    def make() -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(archive.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{archive.template}"')
        made.append(name)
        return database.with_database(archive.admin, name)

    yield make
    with psycopg.connect(archive.admin, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rows_of(dsn: str) -> tuple[list, list]:
    """Everything a load writes, minus the timestamp, in a stable order."""
    with database.connect(dsn) as conn:
        fps = conn.execute(
            "SELECT planeid, model_id, publisherid, metarelease, metareadgroups, fp::text,"
            " image_vec::text, counts, n_detected, n_sampled, map2_model_id, map2_node,"
            " map2_distance"
            " FROM caomai.fingerprint ORDER BY planeid, model_id"
        ).fetchall()
        objs = conn.execute(
            "SELECT * FROM caomai.object_annotation ORDER BY planeid, model_id, object_id"
        ).fetchall()
    return fps, objs


def quiet(workers: int = 0) -> LoadOptions:
    return LoadOptions(workers=workers, progress=False)


def cli(dsn: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "caomai_db.cli", "--dsn", dsn, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


def test_load_writes_annotations_and_fingerprints_idempotently(archive: Archive, copy_db) -> None:
    dsn = copy_db()
    settings = Settings.from_env(dsn)
    summary = load(settings, options=quiet(workers=1))
    assert summary.planes_done == 18 and summary.planes_failed == 0
    assert summary.run_counts == {"done": 18}
    with database.connect(dsn) as conn:
        n_fp, n_obj, sampled = conn.execute(
            "SELECT count(*), (SELECT count(*) FROM caomai.object_annotation), sum(n_sampled)"
            " FROM caomai.fingerprint"
        ).fetchone()
        assert n_fp == 18 and n_obj == sampled > 18 * 60
        bad = conn.execute(
            "SELECT count(*) FROM caomai.fingerprint AS f JOIN caom2.plane AS p USING (planeid)"
            " WHERE f.publisherid <> p.publisherid OR f.metarelease <> p.metarelease"
            "    OR abs(vector_norm(f.fp) - 1) > 1e-4"
            "    OR (SELECT sum(c) FROM unnest(f.counts) AS c) <> f.n_sampled"
        ).fetchone()[0]
        assert bad == 0
        # annotations: positions on the CCD, sky coordinates from the WCS, nodes on the map
        stats = conn.execute(
            "SELECT min(map1_node), max(map1_node), count(*) FILTER (WHERE ra IS NULL),"
            " min(extension), max(extension), min(x), max(x)"
            " FROM caomai.object_annotation"
        ).fetchone()
        assert 0 <= stats[0] <= stats[1] < 400 and stats[2] == 0
        assert (stats[3], stats[4]) == (1, 2) and stats[5] >= 0 and stats[6] < 200
        # adaptive moments: every object has its S/N; the shape is all there or all NULL;
        # bright stars give back the Gaussians load_helpers drew (sigma 1.3, 2.8, 3.5x1.2)
        partial = conn.execute(
            "SELECT count(*) FILTER (WHERE snr IS NULL),"
            " count(*) FILTER (WHERE (m_sigma IS NULL) <> (m_e1 IS NULL)"
            "   OR (m_sigma IS NULL) <> (m_e2 IS NULL) OR (m_sigma IS NULL) <> (m_rho4 IS NULL))"
            " FROM caomai.object_annotation"
        ).fetchone()
        assert partial == (0, 0)
        by_kind = {
            kind: (sigma, ellip, n)
            for kind, sigma, ellip, n in conn.execute(
                "SELECT split_part(o.observationid, '-', 2),"
                " percentile_cont(0.5) WITHIN GROUP (ORDER BY a.m_sigma),"
                " percentile_cont(0.5) WITHIN GROUP (ORDER BY sqrt(a.m_e1^2 + a.m_e2^2)),"
                " count(*)"
                " FROM caomai.object_annotation AS a JOIN caom2.plane AS p USING (planeid)"
                " JOIN caom2.observation AS o ON o.obsid = p.obsid"
                " WHERE a.snr > 20 AND a.m_sigma IS NOT NULL GROUP BY 1"
            ).fetchall()
        }
        assert set(by_kind) == {"good", "seeing", "tracking"}
        assert all(n >= 50 for _, _, n in by_kind.values()), by_kind
        assert 1.1 < by_kind["good"][0] < 1.5 and by_kind["good"][1] < 0.15, by_kind
        assert 2.5 < by_kind["seeing"][0] < 3.1 and by_kind["seeing"][1] < 0.15, by_kind
        # (3.5^2 - 1.2^2) / (3.5^2 + 1.2^2) = 0.79, sigma sqrt(3.5 x 1.2) = 2.05
        assert by_kind["tracking"][1] > 0.65 and 1.8 < by_kind["tracking"][0] < 2.3, by_kind
        # the image vector: unit length, fp in its first 400 values, then the weighted
        # statistics (image_vector.py); statistics of weight 0 are exactly 0
        vectors = conn.execute("SELECT f.fp, f.image_vec FROM caomai.fingerprint AS f").fetchall()
        assert len(vectors) == 18
        weights = image_vector.weights()
        for fp, iv in vectors:
            fp, iv = fp.to_numpy(), iv.to_numpy()
            assert iv.shape == (image_vector.DIM,)
            assert np.linalg.norm(iv) == pytest.approx(1.0, abs=1e-5)
            assert np.allclose(iv[:400] / np.linalg.norm(iv[:400]), fp, atol=1e-5)
            assert not iv[400:][weights == 0].any() and np.isfinite(iv).all()
        # the ADQL functions work on what the loader wrote
        pub = conn.execute("SELECT publisherid FROM caomai.fingerprint LIMIT 1").fetchone()[0]
        sim = conn.execute(
            "SELECT caomai.fp_similar(fp, %s) FROM caomai.fingerprint WHERE publisherid = %s",
            (pub, pub),
        ).fetchone()[0]
        assert sim == pytest.approx(1.0)
        sim = conn.execute(
            "SELECT caomai.fp_similar(image_vec, %s) FROM caomai.fingerprint"
            " WHERE publisherid = %s",
            (pub, pub),
        ).fetchone()[0]
        assert sim == pytest.approx(1.0)
        computed = conn.execute("SELECT max(computed_at) FROM caomai.fingerprint").fetchone()[0]
    before = rows_of(dsn)

    again = load(settings, options=quiet())
    assert again.planes_done == 0  # already loaded with this model: nothing queued
    assert rows_of(dsn) == before
    with database.connect(dsn) as conn:
        assert conn.execute("SELECT max(computed_at) FROM caomai.fingerprint").fetchone()[0] == (
            computed
        )
    redo = load(settings, reload=True, options=quiet())
    assert redo.planes_done == 18
    assert rows_of(dsn) == before  # same sample, same bits


def _wait_for(dsn: str, sql: str, condition, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(dsn, autocommit=True) as conn:
            value = conn.execute(sql).fetchone()[0]
        if condition(value):
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {sql}")


def test_a_run_killed_with_sigkill_resumes_to_the_rows_of_a_clean_run(
    archive: Archive, copy_db
) -> None:
    clean = copy_db()
    load(Settings.from_env(clean), options=quiet())
    expected = rows_of(clean)

    dsn = copy_db()
    proc = subprocess.Popen(
        [sys.executable, "-m", "caomai_db.cli", "--dsn", dsn, "load", "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
        start_new_session=True,
    )
    done_sql = "SELECT count(*) FROM caomai.load_queue WHERE status = 'done'"
    try:
        _wait_for(dsn, done_sql, lambda n: n >= 2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the loader and its detection worker, no clean-up
        proc.wait()
    with psycopg.connect(dsn, autocommit=True) as conn:
        done, running = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'done'),"
            " count(*) FILTER (WHERE status = 'running') FROM caomai.load_queue"
        ).fetchone()
    assert done < 18, "the run finished before it could be killed; make it longer"
    assert running >= 1  # planes in flight when it died
    # the server drops the dead loader's sessions; then their planes are free again
    _wait_for(
        dsn,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'caomai-load'",
        lambda n: n == 0,
    )
    summary = load(Settings.from_env(dsn), resume=True, options=quiet())
    assert summary.planes_done == 18 - done
    assert summary.run_counts == {"done": 18}
    assert rows_of(dsn) == expected


def test_two_loaders_share_a_run_and_never_take_the_same_plane(archive: Archive, copy_db) -> None:
    dsn = copy_db()
    out = cli(dsn, "load", "--enqueue-only")
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.strip().splitlines()[-1]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "caomai_db.cli",
                "--dsn",
                dsn,
                "load",
                "--resume",
                "--run",
                run_id,
                "--workers",
                "0",
                "--json",
                "--no-progress",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        for _ in range(2)
    ]
    results = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    assert sum(r["planes_done"] for r in results) == 18
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT status, attempts, worker FROM caomai.load_queue WHERE run_id = %s",
            (int(run_id),),
        ).fetchall()
        assert len(rows) == 18
        assert {r[0] for r in rows} == {"done"} and {r[1] for r in rows} == {1}
        workers = {r[2] for r in rows}
        assert workers <= {r["worker"] for r in results}
        assert conn.execute("SELECT count(*) FROM caomai.fingerprint").fetchone()[0] == 18
    # both took part (each needs a few seconds to start; 18 planes keep the first one busy)
    assert all(r["planes_done"] > 0 for r in results), results


def test_broken_files_are_recorded_and_the_run_goes_on(
    archive: Archive, copy_db, tmp_path: Path
) -> None:
    dsn = copy_db()
    good = sorted(archive.directory.glob("*.fits"))[0].read_bytes()
    (tmp_path / "truncated.fits").write_bytes(good[: len(good) // 3])
    (tmp_path / "garbage.fits").write_bytes(b"SIMPLE  = nonsense" * 500)
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(np.full((100, 100), np.nan, np.float32))]
    ).writeto(tmp_path / "allnan.fits")
    fits.HDUList([fits.PrimaryHDU(np.ones((3, 40, 40), np.float32))]).writeto(
        tmp_path / "cube.fits"
    )
    fits.HDUList([fits.PrimaryHDU(np.full((80, 80), 5.0, np.float32))]).writeto(
        tmp_path / "flat.fits"
    )
    broken = sorted(tmp_path.glob("*.fits"))
    with database.connect(dsn) as conn:
        register_files(conn, broken, collection="BROKEN")
    missing = tmp_path / "gone.fits"
    shutil.copy(broken[0], missing)
    with database.connect(dsn) as conn:
        register_files(conn, [missing], collection="BROKEN")
    missing.unlink()

    summary = load(Settings.from_env(dsn), options=quiet(workers=1))
    assert summary.planes_done == 18 and summary.planes_failed == 6
    with psycopg.connect(dsn) as conn:
        errors = dict(
            conn.execute(
                "SELECT o.observationid, q.error FROM caomai.load_queue AS q"
                " JOIN caom2.plane AS p USING (planeid) JOIN caom2.observation AS o USING (obsid)"
                " WHERE q.status = 'failed'"
            ).fetchall()
        )
    assert set(errors) == {"truncated", "garbage", "allnan", "cube", "flat", "gone"}
    assert "truncated.fits" in errors["truncated"]
    assert "garbage.fits" in errors["garbage"]
    assert "invalid" in errors["allnan"]
    assert "3 dimensions" in errors["cube"]
    assert "constant" in errors["flat"]
    assert "no such file" in errors["gone"]


def test_a_model_file_that_changed_is_refused(archive: Archive, copy_db, capsys) -> None:
    dsn = copy_db()
    settings = Settings.from_env(dsn)
    with database.connect(dsn) as conn:
        row = modelstore.active_model(conn, "map1")
    assert caomai(["--dsn", dsn, "model", "verify", row.name]) == 0
    # a copy of the model whose file was altered after it was registered
    tampered = settings.models_dir / f"{row.name}-tampered"
    shutil.copytree(modelstore.model_path(settings, row).parent, tampered)
    with open(tampered / "model.pt", "ab") as fh:
        fh.write(b"\0")
    with database.connect(dsn) as conn:
        new_id = modelstore.insert_model(
            conn,
            name=tampered.name,
            kind="map1",
            dim=row.dim,
            parameters={},
            path=tampered / "model.pt",
            checksum=row.artifact_checksum,
        )
        conn.commit()
        modelstore.activate(conn, new_id)
    capsys.readouterr()
    assert caomai(["--dsn", dsn, "load", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "refusing to use it" in err and row.artifact_checksum in err
    assert caomai(["--dsn", dsn, "model", "verify", tampered.name]) == 1
    assert caomai(["--dsn", dsn, "model", "activate", tampered.name]) == 1
    with database.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM caomai.fingerprint").fetchone()[0] == 0
    shutil.rmtree(tampered)


def test_map2_labels_and_evaluation(archive: Archive, copy_db, capsys) -> None:
    dsn = copy_db()
    settings = Settings.from_env(dsn)
    load(settings, options=quiet(workers=1))
    m2 = train_map2(settings, planes=TRAIN, thumbnails=True)
    assert m2.parameters["input"] == "image_vec"  # the loaded planes have image vectors
    with database.connect(dsn) as conn:
        placed, nodes, thumbs = conn.execute(
            "SELECT count(*) FILTER (WHERE map2_model_id = %s), count(DISTINCT map2_node),"
            " (SELECT count(*) FROM caomai.map_node WHERE model_id = %s AND thumbnail IS NOT NULL)"
            " FROM caomai.fingerprint",
            (m2.model_id, m2.model_id),
        ).fetchone()
        assert placed == 18 and nodes > 3 and thumbs >= 1
        node = conn.execute(
            "SELECT map2_node FROM caomai.fingerprint GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()[0]
    # label a node once: every member inherits it
    r, c = divmod(node, 20)
    assert caomai(["--dsn", dsn, "label-node", m2.name, f"{r},{c}", "bad seeing"]) == 0
    assert "inherit it" in capsys.readouterr().out
    with database.connect(dsn) as conn:
        labelled = conn.execute(
            "SELECT count(*), min(n.label), min(n.label_source) FROM caomai.fingerprint AS f"
            " JOIN caomai.map_node AS n ON n.model_id = f.map2_model_id AND n.node_id = f.map2_node"
            " WHERE n.label IS NOT NULL"
        ).fetchone()
        members = conn.execute(
            "SELECT count(*) FROM caomai.fingerprint WHERE map2_node = %s", (node,)
        ).fetchone()[0]
    assert labelled[0] == members and labelled[1] == "bad seeing"
    assert labelled[2].startswith("expert:")
    assert caomai(["--dsn", dsn, "label-node", m2.name, "400", "x"]) == 1

    # a new plane loaded after Map 2 exists is placed on it at load time
    with database.connect(dsn) as conn:
        conn.execute(
            "DELETE FROM caomai.fingerprint WHERE planeid = (SELECT min(planeid::text)::uuid FROM caomai.fingerprint)"
        )
        conn.commit()
    load(settings, options=quiet())
    with database.connect(dsn) as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM caomai.fingerprint WHERE map2_model_id = %s", (m2.model_id,)
            ).fetchone()[0]
            == 18
        )

    # proprietary held-out planes are scored too: the evaluation runs as the owner
    with database.connect(dsn) as conn:
        conn.execute(
            "UPDATE caom2.Plane SET metaRelease = now() + interval '1 year' WHERE planeID IN"
            " (SELECT planeid FROM caomai.fingerprint ORDER BY publisherid DESC LIMIT 2)"
        )
        conn.commit()
    report = evaluate(settings, truth=archive.truth, k=5, apply_labels=True)
    assert report.n_held_out == 9 and report.n_train_map1 == 9 and report.n_train_map2 == 9
    assert report.in_cell.n == report.held_out.n == 9
    for scores in (report.in_cell, report.held_out):
        assert scores.tp + scores.fn == 3  # three held-out "good" exposures
    # ties counted Good instead of Bad: every member of a tied cell flips to Good, nothing else
    g, c = report.in_cell_ties_good, report.in_cell
    assert g.n == 9 and g.tp >= c.tp and g.fp >= c.fp
    assert (g.tp - c.tp) + (g.fp - c.fp) == report.in_cell_tied
    # three very different kinds: far better than chance (1/3)
    assert report.precision_at_k > 0.6
    assert report.labels_written > 0
    text = report.render()
    assert "0.958" in text and "in-cell majority" in text and "precision@5" in text
    assert "(3 classes)" in text  # the archive's three kinds, counted, not a fixed figure
    # this truth has labels only, not the simulator's conditions: no truth ceiling to show
    assert report.ceiling is None and "Truth ceiling" not in text
    assert_object_search(dsn, archive, report, text)


def assert_object_search(dsn: str, archive: Archive, report, text: str) -> None:
    """The object-search section against objects.csv, recomputed here from the truth."""
    o = report.object_search
    assert o is not None and "skipped" not in o, o
    # asked through the read-only role, which does not ask the two proprietary held-out planes
    assert o["role"] == "caomai_reader"
    assert (o["held_out"], o["asked"], o["proprietary_not_asked"]) == (9, 7, 2)
    assert "as caomai_reader; 2 proprietary not asked" in text and "Per kind" in text
    counts: dict[str, dict[str, int]] = {}
    with open(archive.directory / "objects.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            c = counts.setdefault(r["exposure_id"], {})
            c[r["kind"]] = c.get(r["kind"], 0) + 1
    with database.connect(dsn) as conn:
        hidden = {
            r[0]
            for r in conn.execute(
                "SELECT o.observationid FROM caom2.plane AS p"
                " JOIN caom2.observation AS o ON o.obsid = p.obsid WHERE p.metarelease > now()"
            ).fetchall()
        }
    names = sorted(counts)
    train = [e for e in names if e[-3:] < "003"]
    asked = [e for e in names if e[-3:] >= "003" and e not in hidden]
    assert len(asked) == 7
    assert set(o["questions"]) == {q.name for q in osearch.QUESTIONS}
    for q in osearch.QUESTIONS:
        got = o["questions"][q.name]
        threshold = osearch.question_threshold(q, [counts[e].get(q.kind, 0) for e in train])
        assert got["truth_threshold"] == threshold
        positives = sum(counts[e].get(q.kind, 0) >= threshold for e in asked)
        assert got["n"] == 7 and got["base_rate"] == pytest.approx(positives / 7)
        assert got["tp"] + got["fn"] == positives
        for m in ("precision", "recall"):
            assert np.isnan(got[m]) or 0 <= got[m] <= 1
        assert 0 <= got["f1"] <= 1
        labelled = sorted(int(n) for n, k in o["labels"].items() if k == q.kind)
        assert got["nodes"] == labelled
        assert (got["min_count"] is None) == (not labelled)
        # the ceiling (detections' own kinds counted) over the same asked planes
        assert 0 <= got["ceiling_f1"] <= 1 and got["ceiling_planes"] == 7
    assert "ceiling F1" in text
    # the truth of this archive: stars and cosmic rays, varied enough to have positives
    assert o["questions"]["trail"]["base_rate"] == 0
    assert 0 < o["questions"]["cosmic_rich"]["base_rate"] < 1
    assert set(o["kinds"]) >= {"star", "cosmic_ray"}
    assert o["kinds"]["star"]["matched"] > 0 and o["held_matched"] > 0
    assert set(o["unowned"]) <= {"star", "cosmic_ray"}
    assert json.dumps(report.to_dict(), allow_nan=False)  # NaN precisions go out as null

    # --apply-labels wrote the Map-1 labels (kinds, "none" aside) ...
    written = {int(n): k for n, k in o["labels"].items() if k != osearch.NONE}
    assert written and report.map1_labels_written == len(written)
    with database.connect(dsn) as conn:
        m1 = modelstore.get_model(conn, archive.map1)
        stored = dict(
            conn.execute(
                "SELECT node_id, label FROM caomai.map_node WHERE model_id = %s"
                " AND label_source = %s",
                (m1.model_id, LABEL_SOURCE),
            ).fetchall()
        )
        assert stored == written
        # ... where the web page reads them (as the read-only role, like the API)
        from caomai_web import mapdata

        with database.connect(database.reader_dsn(Settings.from_env(dsn), dsn)) as reader:
            _, shown = mapdata.map_view(reader, "map1")
        assert {n["node"]: n["label"] for n in shown if n["label"]} == written
        # a re-run clears its own stale labels, and leaves an expert's alone
        spare = [n for n in range(400) if n not in written][:2]
        conn.execute(
            "UPDATE caomai.map_node_store SET label = 'stale', label_source = %s"
            " WHERE model_id = %s AND node_id = %s",
            (LABEL_SOURCE, m1.model_id, spare[0]),
        )
        conn.execute(
            "UPDATE caomai.map_node_store SET label = 'expert', label_source = 'expert:x'"
            " WHERE model_id = %s AND node_id = %s",
            (m1.model_id, spare[1]),
        )
        conn.commit()
    again = evaluate(Settings.from_env(dsn), truth=archive.truth, k=5, apply_labels=True)
    # the same figures on a re-run (compared JSON-safe: NaN is not equal to itself)
    assert again.to_dict()["object_search"] == report.to_dict()["object_search"]
    with database.connect(dsn) as conn:
        left = dict(
            conn.execute(
                "SELECT node_id, label FROM caomai.map_node WHERE model_id = %s"
                " AND label IS NOT NULL",
                (m1.model_id,),
            ).fetchall()
        )
    assert left == {**written, spare[1]: "expert"}
