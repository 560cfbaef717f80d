"""Proprietary planes never leak through the maps (issue 14, part 1).

A demo-sized synthetic archive (1000 planes, 5 % proprietary, some of them readable by a group)
gets a Map 2 trained on it; then everything the TAP service publishes is read as any client
reads it and compared with what the public planes alone give: no proprietary identifier in any
row of any published table, member counts and nearest members over public planes only, a
codebook identical to one fitted on the public planes alone, and a plane whose metaRelease
passes appearing in the figures at once, without retraining.

Map 1 (real cutouts of a small rendered archive): trained on public planes only, and a
thumbnail disappears once its plane is no longer public.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest
import torch
from pgvector.psycopg import register_vector

from caomai_db import database
from caomai_db.config import GRID_COLS, GRID_ROWS, Settings
from caomai_loaders import modelstore
from caomai_loaders.som import SOM
from caomai_loaders.train import train_map1, train_map2

from . import databases
from .load_helpers import make_archive, register_files
from .tapserver import running_service, synthetic_database

N_PLANES = 1000
GROUP = "ivo://cadc.nrc.ca/gms?CAOMAI-TEAM"


def _query(tap: str, adql: str) -> list[dict[str, str]]:
    r = httpx.post(
        f"{tap}/sync",
        data={"LANG": "ADQL", "QUERY": adql, "RESPONSEFORMAT": "csv", "MAXREC": "1000000"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    return list(csv.DictReader(io.StringIO(r.text)))


@pytest.fixture(scope="module")
def archive(cluster_dsn: str):
    with synthetic_database(cluster_dsn, N_PLANES, seed=5, proprietary_fraction=0.05) as dsn:
        with psycopg.connect(dsn) as conn:
            # a third of the proprietary planes are readable by a group: still hidden from anyone else
            conn.execute(
                "UPDATE caom2.plane SET metareadgroups = %s WHERE metarelease > now()"
                " AND get_byte(uuid_send(planeid), 0) < 85",
                (GROUP,),
            )
            conn.commit()
        settings = Settings.from_env(dsn)
        row = train_map2(settings, epochs=20, seed=1, name="map2-private", thumbnails=False)
        yield dsn, row


@pytest.fixture(scope="module")
def tap(archive):
    dsn, _ = archive
    with running_service(dsn) as url:
        yield url


def _secrets(dsn: str) -> tuple[set[str], set[str]]:
    """(planeIDs, every identifier string) of the proprietary planes, read as the owner."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT p.planeid::text, p.publisherid, p.planeuri, o.observationid, o.obsid::text"
            " FROM caom2.plane AS p JOIN caom2.observation AS o USING (obsid)"
            " WHERE p.metarelease > now()"
        ).fetchall()
    return {r[0] for r in rows}, {v for r in rows for v in r}


def test_no_published_table_names_a_proprietary_plane(archive, tap: str) -> None:
    dsn, _ = archive
    planeids, secrets = _secrets(dsn)
    assert len(planeids) >= 30
    tables = [r["table_name"] for r in _query(tap, "SELECT table_name FROM TAP_SCHEMA.tables")]
    assert "caomai.map_node" in tables and "caomai.model" in tables
    assert not any("map_node_store" in t for t in tables)
    for table in tables:
        r = httpx.post(
            f"{tap}/sync",
            data={"QUERY": f"SELECT * FROM {table}", "RESPONSEFORMAT": "csv", "MAXREC": "1000000"},
            timeout=120,
        )
        assert r.status_code == 200, (table, r.text[:300])
        found = [s for s in secrets if s in r.text]
        assert not found, f"{table} shows proprietary identifiers: {found[:3]}"


def test_map2_member_figures_count_public_planes_only(archive, tap: str) -> None:
    _, row = archive
    m2 = row.model_id
    visible = _query(
        tap,
        "SELECT f.map2_node AS node, COUNT(*) AS n FROM caomai.fingerprint AS f"
        f" WHERE f.map2_model_id = {m2} GROUP BY f.map2_node",
    )
    want = {int(r["node"]): int(r["n"]) for r in visible}
    nodes = _query(
        tap,
        f"SELECT node_id, member_count, stats FROM caomai.map_node WHERE model_id = {m2}",
    )
    assert len(nodes) == 400
    got = {int(n["node_id"]): int(n["member_count"]) for n in nodes if int(n["member_count"])}
    assert got == want
    total = _query(
        tap, f"SELECT SUM(member_count) AS s FROM caomai.map_node WHERE model_id = {m2}"
    )[0]["s"]
    public = _query(tap, "SELECT COUNT(*) AS n FROM caomai.fingerprint")[0]["n"]
    assert int(total) == int(public) < N_PLANES
    # nearest members: the node's five public members nearest its prototype
    dist = _query(
        tap,
        "SELECT f.planeID AS p, f.map2_node AS node, f.map2_distance AS d"
        f" FROM caomai.fingerprint AS f WHERE f.map2_model_id = {m2}",
    )
    by_node: dict[int, list[tuple[float, str]]] = {}
    for r in dist:
        by_node.setdefault(int(r["node"]), []).append((float(r["d"]), r["p"]))
    for n in nodes:
        stats = json.loads(n["stats"])
        node = int(n["node_id"])
        assert stats["members"] == int(n["member_count"])
        expected = [p for _, p in sorted(by_node.get(node, []))[:5]]
        assert stats["nearest_members"] == expected


def test_model_parameters_hold_no_proprietary_figure(archive, tap: str) -> None:
    dsn, row = archive
    params = json.loads(
        _query(tap, f"SELECT parameters FROM caomai.model WHERE model_id = {row.model_id}")[0][
            "parameters"
        ]
    )
    public = int(_query(tap, "SELECT COUNT(*) AS n FROM caomai.fingerprint")[0]["n"])
    assert params["fingerprints"] == public
    assert "placed" not in params
    planeids, _ = _secrets(dsn)
    trained = modelstore.training_planes(Settings.from_env(dsn), row)
    assert trained and not (trained & planeids)


def test_codebook_is_fitted_on_public_planes_only(archive) -> None:
    """A SOM fitted with the same seed on the public fingerprints alone gives the very same
    codebook: no proprietary image pulled any prototype towards itself."""
    dsn, row = archive
    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        fps = np.stack(
            [
                np.asarray(r[0].to_numpy(), np.float32)
                for r in conn.execute(
                    "SELECT fp FROM caomai.fingerprint WHERE model_id = %s"
                    " AND (metarelease IS NULL OR metarelease <= now()) ORDER BY planeid",
                    (row.parent_id,),
                ).fetchall()
            ]
        )
        stored = np.array(
            [
                r[0]
                for r in conn.execute(
                    "SELECT codebook FROM caomai.map_node_store WHERE model_id = %s"
                    " ORDER BY node_id",
                    (row.model_id,),
                ).fetchall()
            ],
            np.float32,
        )
    som = SOM(GRID_ROWS, GRID_COLS)
    som.fit(fps, epochs=20, sigma_end=0.8, device=torch.device("cpu"), seed=1)
    np.testing.assert_allclose(stored, som.codebook, rtol=0, atol=1e-6)


def test_a_released_plane_appears_without_retraining(archive, tap: str) -> None:
    dsn, row = archive
    m2 = row.model_id
    with psycopg.connect(dsn) as conn:
        planeid, node = conn.execute(
            "SELECT f.planeid, f.map2_node FROM caomai.fingerprint AS f"
            " WHERE f.metarelease > now() AND f.metareadgroups IS NULL AND f.map2_model_id = %s"
            " ORDER BY f.map2_distance LIMIT 1",
            (m2,),
        ).fetchone()
    before = int(
        _query(
            tap,
            f"SELECT member_count FROM caomai.map_node WHERE model_id = {m2} AND node_id = {node}",
        )[0]["member_count"]
    )
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "UPDATE caom2.plane SET metarelease = now() - interval '1 minute' WHERE planeid = %s",
            (planeid,),
        )
        conn.commit()
    try:
        after = _query(
            tap,
            f"SELECT member_count, stats FROM caomai.map_node WHERE model_id = {m2}"
            f" AND node_id = {node}",
        )[0]
        assert int(after["member_count"]) == before + 1
        assert str(planeid) in json.loads(after["stats"])["nearest_members"]
    finally:
        with psycopg.connect(dsn) as conn:
            conn.execute(
                "UPDATE caom2.plane SET metarelease = now() + interval '1 year' WHERE planeid = %s",
                (planeid,),
            )
            conn.commit()
    again = _query(
        tap, f"SELECT member_count FROM caomai.map_node WHERE model_id = {m2} AND node_id = {node}"
    )[0]
    assert int(again["member_count"]) == before


def test_the_reader_cannot_read_what_training_stored(archive) -> None:
    dsn, _ = archive
    with psycopg.connect(dsn) as conn:
        granted = conn.execute(
            "SELECT has_table_privilege('caomai_reader', 'caomai.map_node_store', 'SELECT'),"
            " has_table_privilege('caomai_reader', 'caomai.map_node', 'SELECT')"
        ).fetchone()
    assert granted == (False, True)


# -- Map 1 on real cutouts ------------------------------------------------------------------


def test_map1_trains_on_public_planes_and_hides_a_thumbnail_gone_private(
    cluster_dsn: str, tmp_path: Path
) -> None:
    with databases.scratch(cluster_dsn, "m1priv_") as dsn:
        make_archive(tmp_path, per_kind=2)
        with database.connect(dsn) as conn:
            ids = register_files(conn, sorted(tmp_path.glob("*.fits")))
            hidden = ids[::3]
            conn.execute(
                "UPDATE caom2.plane SET metarelease = now() + interval '1 year'"
                " WHERE planeid = ANY(%s)",
                (hidden,),
            )
            conn.commit()
        settings = Settings.from_env(dsn)
        row = train_map1(settings, n_cutouts=600, epochs=1, som_epochs=5, workers=1, progress=False)
        trained = modelstore.training_planes(settings, row)
        assert trained and not (trained & {str(h) for h in hidden})
        assert row.parameters["planes"] == len(ids) - len(hidden)
        with database.connect(dsn) as conn:
            node, plane = conn.execute(
                "SELECT node_id, thumbnail_planeid FROM caomai.map_node_store"
                " WHERE model_id = %s AND thumbnail IS NOT NULL ORDER BY node_id LIMIT 1",
                (row.model_id,),
            ).fetchone()
            assert str(plane) in trained
            shown = "SELECT thumbnail IS NOT NULL FROM caomai.map_node WHERE model_id = %s AND node_id = %s"
            assert conn.execute(shown, (row.model_id, node)).fetchone()[0]
            conn.execute(
                "UPDATE caom2.plane SET metarelease = now() + interval '1 year' WHERE planeid = %s",
                (plane,),
            )
            assert not conn.execute(shown, (row.model_id, node)).fetchone()[0]
            conn.rollback()
