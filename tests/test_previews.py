"""Previews (migration 0006, issue 16): the loader writes one PNG per plane and one Map-1 node
cutout per node present; a reload replaces them; the read functions of caomai_db/previews.py
answer for a proprietary plane exactly as for a missing one; TAP cannot name the tables.

One small synthetic archive (3 kinds x 2 exposures of 2 CCDs, 200x200 each) is registered,
a tiny Map 1 trained and every plane loaded once per module; the tests read it through the
read-only role, as the web API does. Tests that change rows put them back.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import psycopg
import pytest
from astropy.io import fits
from PIL import Image

from caomai_db import database, previews
from caomai_db.config import READER_ROLE, Settings
from caomai_loaders import previews as loader_previews
from caomai_loaders.images import ImageHDU
from caomai_loaders.load import LoadOptions, load
from caomai_loaders.train import train_map1, train_map2

from . import databases
from .load_helpers import make_archive, register_files
from .tapserver import running_service


@dataclass
class Loaded:
    dsn: str
    planeids: list[uuid.UUID]
    map1_id: int
    map2_id: int


@pytest.fixture(scope="module")
def loaded(cluster_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    directory = tmp_path_factory.mktemp("previews")
    make_archive(directory, per_kind=2)
    with databases.scratch(cluster_dsn, "prev_") as dsn:
        with database.connect(dsn) as conn:
            planeids = register_files(conn, sorted(directory.glob("*.fits")))
        settings = Settings.from_env(dsn)
        m1 = train_map1(settings, n_cutouts=600, epochs=1, som_epochs=10, workers=1, progress=False)
        summary = load(settings, options=LoadOptions(workers=0, progress=False))
        assert summary.planes_done == len(planeids) == 6
        m2 = train_map2(settings, epochs=10, seed=1, thumbnails=False)
        yield Loaded(dsn, planeids, m1.model_id, m2.model_id)


def _reader(dsn: str) -> psycopg.Connection:
    return psycopg.connect(database.with_user(dsn, READER_ROLE), autocommit=True)


def _decode(png: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(png))
    img.load()
    return img


def _cutout_rows(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT model_id, planeid, map1_node, object_id, map1_distance, md5(png)"
            " FROM caomai.object_cutout ORDER BY 1, 2, 3"
        ).fetchall()


def _preview_rows(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT planeid, width, height, md5(png), created_at FROM caomai.preview ORDER BY 1"
        ).fetchall()


def test_the_loader_writes_one_preview_per_plane(loaded: Loaded) -> None:
    with psycopg.connect(loaded.dsn) as conn:
        rows = conn.execute("SELECT planeid, png, width, height FROM caomai.preview").fetchall()
    assert sorted(r[0] for r in rows) == sorted(loaded.planeids)
    for _, png, width, height in rows:
        img = _decode(bytes(png))
        assert img.mode == "L" and img.size == (width, height)
        # two 200x200 CCDs without DETSEC, stacked in file order, binned again to <= 256 px
        assert (width, height) == (100, 200)
        pixels = np.asarray(img)
        assert pixels.std() > 0  # an image, not a flat field


def test_one_cutout_per_node_present_the_object_nearest_it(loaded: Loaded) -> None:
    with psycopg.connect(loaded.dsn) as conn:
        present = conn.execute(
            "SELECT planeid, map1_node, min(map1_distance) FROM caomai.object_annotation"
            " WHERE model_id = %s GROUP BY 1, 2 ORDER BY 1, 2",
            (loaded.map1_id,),
        ).fetchall()
        cutouts = conn.execute(
            "SELECT c.planeid, c.map1_node, c.map1_distance, a.map1_node, a.map1_distance, c.png"
            " FROM caomai.object_cutout AS c JOIN caomai.object_annotation AS a"
            " ON a.planeid = c.planeid AND a.model_id = c.model_id AND a.object_id = c.object_id"
            " WHERE c.model_id = %s ORDER BY 1, 2",
            (loaded.map1_id,),
        ).fetchall()
    assert [(p, n) for p, n, _ in present] == [(p, n) for p, n, *_ in cutouts]
    for (_, _, nearest), (_, node, dist, a_node, a_dist, png) in zip(present, cutouts, strict=True):
        assert node == a_node and dist == a_dist == nearest
        assert _decode(bytes(png)).size == (32, 32)


def test_a_reload_replaces_the_previews(loaded: Loaded) -> None:
    settings = Settings.from_env(loaded.dsn)
    cutouts, plane_previews = _cutout_rows(loaded.dsn), _preview_rows(loaded.dsn)
    planeid = loaded.planeids[0]
    with psycopg.connect(loaded.dsn) as conn:
        free = conn.execute(
            "SELECT min(n) FROM generate_series(0, 399) AS n WHERE n NOT IN"
            " (SELECT map1_node FROM caomai.object_cutout WHERE planeid = %s)",
            (planeid,),
        ).fetchone()[0]
        # a row the reload's data does not have: it must go
        conn.execute(
            "INSERT INTO caomai.object_cutout VALUES (%s, %s, %s, 0, 0.0, '\\x00')",
            (loaded.map1_id, planeid, free),
        )
    # without previews: this model's cutouts go, the planes' previews stay
    load(settings, reload=True, options=LoadOptions(workers=0, progress=False, previews=False))
    assert _cutout_rows(loaded.dsn) == []
    assert _preview_rows(loaded.dsn) == plane_previews
    load(settings, reload=True, options=LoadOptions(workers=0, progress=False))
    assert _cutout_rows(loaded.dsn) == cutouts
    again = _preview_rows(loaded.dsn)
    assert [r[:4] for r in again] == [r[:4] for r in plane_previews]  # same pictures
    assert all(new[4] > old[4] for new, old in zip(again, plane_previews, strict=True))


def _publisherid(dsn: str, planeid: uuid.UUID) -> str:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT publisherid FROM caom2.plane WHERE planeid = %s", (planeid,)
        ).fetchone()[0]


def _set_release(dsn: str, planeid: uuid.UUID, when: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(f"UPDATE caom2.plane SET metarelease = {when} WHERE planeid = %s", (planeid,))


def _answers(loaded: Loaded, planeid: str, publisherid: str) -> dict[str, object]:
    """Everything the read functions say about one plane, read as the web API reads."""
    with psycopg.connect(loaded.dsn) as owner:
        nodes = [
            r[0]
            for r in owner.execute(
                "SELECT DISTINCT map1_node FROM caomai.object_cutout WHERE planeid::text = %s",
                (planeid,),
            ).fetchall()
        ]
        map2_node = owner.execute(
            "SELECT map2_node FROM caomai.fingerprint WHERE planeid::text = %s", (planeid,)
        ).fetchone()
    node = nodes[0] if nodes else 0
    with _reader(loaded.dsn) as conn:
        samples1 = [
            s["planeid"] for n in nodes for s in previews.node_samples(conn, loaded.map1_id, n, 99)
        ]
        samples2 = (
            [s["planeid"] for s in previews.node_samples(conn, loaded.map2_id, map2_node[0], 99)]
            if map2_node
            else []
        )
        return {
            "by planeID": previews.plane_png(conn, planeid),
            "by publisherID": previews.plane_png(conn, publisherid),
            "object": previews.object_png(conn, loaded.map1_id, planeid, node),
            "in map1 samples": planeid in samples1,
            "in map2 samples": planeid in samples2,
        }


MISSING = {
    "by planeID": None,
    "by publisherID": None,
    "object": None,
    "in map1 samples": False,
    "in map2 samples": False,
}


def test_a_proprietary_plane_answers_as_a_missing_one(loaded: Loaded) -> None:
    planeid = loaded.planeids[1]
    pub = _publisherid(loaded.dsn, planeid)
    public = _answers(loaded, str(planeid), pub)
    assert public["by planeID"] == public["by publisherID"] is not None
    assert _decode(public["by planeID"]).mode == "L"  # type: ignore[arg-type]
    assert public["object"] is not None and public["in map1 samples"] and public["in map2 samples"]
    # nothing by that name at all
    assert _answers(loaded, str(uuid.uuid4()), "ivo://caomai.example/SYNTH?no/nop") == MISSING
    try:
        _set_release(loaded.dsn, planeid, "now() + interval '1 year'")
        assert _answers(loaded, str(planeid), pub) == MISSING
        # its release passes: it appears at once
        _set_release(loaded.dsn, planeid, "now() - interval '1 second'")
        assert _answers(loaded, str(planeid), pub) == public
    finally:
        _set_release(loaded.dsn, planeid, "now() - interval '1 day'")


@pytest.mark.parametrize(
    "ref",
    ["", "   ", "not-a-uuid", "'; DROP TABLE caom2.plane; --", "x" * 5000, "a\x00b", "{}"],
)
def test_a_malformed_reference_is_none(loaded: Loaded, ref: str) -> None:
    with _reader(loaded.dsn) as conn:
        assert previews.plane_png(conn, ref) is None
        assert previews.object_png(conn, loaded.map1_id, ref, 0) is None
        # the connection is still usable: nothing raised inside
        assert conn.execute("SELECT 1").fetchone()[0] == 1


def test_node_samples(loaded: Loaded) -> None:
    with _reader(loaded.dsn) as conn:
        node = conn.execute(
            "SELECT map1_node FROM caomai.object_cutout WHERE model_id = %s"
            " GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
            (loaded.map1_id,),
        ).fetchone()[0]
        samples = previews.node_samples(conn, loaded.map1_id, node, n=3)
        assert 1 <= len(samples) <= 3
        assert [s["distance"] for s in samples] == sorted(s["distance"] for s in samples)
        assert set(samples[0]) == {"planeid", "publisherID", "object_id", "distance"}
        for s in samples:
            png = previews.object_png(conn, loaded.map1_id, s["planeid"], node)
            assert png is not None and _decode(png).size == (32, 32)
        m2node = conn.execute(
            "SELECT map2_node FROM caomai.fingerprint WHERE map2_model_id = %s"
            " GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
            (loaded.map2_id,),
        ).fetchone()[0]
        images = previews.node_samples(conn, loaded.map2_id, m2node)
        assert images and all(s["has_preview"] for s in images)
        assert set(images[0]) == {"planeid", "publisherID", "distance", "has_preview"}
        # the same members, in the same order, as the published map_node view lists
        nearest = conn.execute(
            "SELECT stats -> 'nearest_members' FROM caomai.map_node"
            " WHERE model_id = %s AND node_id = %s",
            (loaded.map2_id, m2node),
        ).fetchone()[0]
        assert [s["planeid"] for s in images][:5] == nearest
        assert previews.node_samples(conn, 10**6, 0) == []
        assert previews.node_samples(conn, loaded.map1_id, 0, n=0) == []


def test_tap_cannot_name_the_preview_tables(loaded: Loaded) -> None:
    with running_service(loaded.dsn) as tap:
        for table in ("caomai.preview", "caomai.object_cutout"):
            r = httpx.post(
                f"{tap}/sync",
                data={"LANG": "ADQL", "QUERY": f"SELECT * FROM {table}", "RESPONSEFORMAT": "csv"},
                timeout=60,
            )
            assert r.status_code == 400, r.text
            assert "not published" in r.text
        tables = httpx.post(
            f"{tap}/sync",
            data={"QUERY": "SELECT table_name FROM TAP_SCHEMA.tables", "RESPONSEFORMAT": "csv"},
            timeout=60,
        ).text
        assert "preview" not in tables and "object_cutout" not in tables


def test_mosaic_places_ccds_by_detsec_and_survives_nan() -> None:
    """Two CCDs side by side by their DETSEC (the second flipped in x), one all NaN column."""
    left = np.full((300, 200), 10.0, np.float32)
    right = np.full((300, 200), 50.0, np.float32)
    right[:, :20] = np.nan
    mosaic = loader_previews.Mosaic(max_side=256)
    for k, (data, sec) in enumerate([(left, "[1:200,1:300]"), (right, "[400:201,1:300]")]):
        header = fits.Header()
        header["DETSEC"] = sec
        mosaic.add(ImageHDU(k + 1, f"ccd{k}", data, header, None, None, None))
    canvas = mosaic.canvas()
    assert canvas.shape == (150, 200)  # 300 x 400 binned by 2
    assert np.allclose(canvas[:, :100], 10.0)
    assert np.isnan(canvas[:, 190:]).all()  # the NaN columns, flipped to the right edge
    assert np.allclose(canvas[:, 100:190], 50.0)
    png = mosaic.png()
    assert loader_previews.png_size(png) == (200, 150) == _decode(png).size
    assert hashlib.md5(png).hexdigest() == hashlib.md5(mosaic.png()).hexdigest()


def test_a_node_keeps_only_cutouts_that_could_be_shown(loaded: Loaded) -> None:
    """Once a node holds ``keep`` cutouts, it takes only nearer ones: the table stays small
    however many planes hold objects of the node."""
    from caomai_loaders.load_write import _worth_keeping

    with psycopg.connect(loaded.dsn) as conn:
        node, n = conn.execute(
            "SELECT map1_node, count(*) FROM caomai.object_cutout WHERE model_id = %s"
            " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1",
            (loaded.map1_id,),
        ).fetchone()
        assert n >= 3
        stored = [
            r[0]
            for r in conn.execute(
                "SELECT map1_distance FROM caomai.object_cutout"
                " WHERE model_id = %s AND map1_node = %s ORDER BY 1",
                (loaded.map1_id, node),
            )
        ]
        empty = conn.execute(
            "SELECT n FROM generate_series(0, 399) AS n WHERE n NOT IN (SELECT map1_node"
            " FROM caomai.object_cutout WHERE model_id = %s) LIMIT 1",
            (loaded.map1_id,),
        ).fetchone()[0]
        nearer, farther = (stored[1] + stored[0]) / 2, stored[1] + 0.01
        candidates = [(node, 1, nearer, b"a"), (node, 2, farther, b"b"), (empty, 3, 9.0, b"c")]
        kept = _worth_keeping(conn, loaded.map1_id, candidates, keep=2)
        assert [c[1] for c in kept] == [1, 3]
        # under the bar every candidate goes in
        kept = _worth_keeping(conn, loaded.map1_id, candidates, keep=n + 1)
        assert [c[1] for c in kept] == [1, 2, 3]
