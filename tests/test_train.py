"""`caomai train map1` through the CLI: model files, caomai.model and caomai.map_node rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from caomai_db import database
from caomai_db.cli import main as caomai
from caomai_db.config import Settings
from caomai_loaders import image_vector, modelstore, shape
from caomai_loaders.maps import Map1
from caomai_loaders.objects import file_objects

from .load_helpers import make_archive, register_files


def test_train_map1_registers_model_nodes_and_files(
    db: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    make_archive(tmp_path, per_kind=2)
    # two filters, one with a short exposure time (a sky twice as bright per second)
    files = sorted(tmp_path.glob("*.fits"))
    for i, f in enumerate(files):
        fits.setval(f, "FILTER", value="r" if i % 2 else "i.MP9703")
        fits.setval(f, "EXPTIME", value=50.0 if i == 1 else 100.0)
    # six planes: every band's reference is kept here (an archive needs 10 a band)
    monkeypatch.setattr(image_vector, "MIN_SKY_REFERENCE", 3)
    with database.connect(db) as conn:
        planeids = register_files(conn, sorted(tmp_path.glob("*.fits")))
    args = [
        "--dsn",
        db,
        "train",
        "map1",
        "--cutouts",
        "400",
        "--epochs",
        "3",
        "--workers",
        "1",
        "--batch-size",
        "64",
    ]
    assert caomai([*args, "--som-epochs", "10", "--name", "m1", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == "m1"
    settings = Settings.from_env(db)
    with database.connect(db) as conn:
        row = modelstore.get_model(conn, "m1")
        assert row.active and row.kind == "map1" and (row.grid_rows, row.grid_cols) == (20, 20)
        assert row.dim == 64 and row.artifact_checksum.startswith("sha256:")
        assert row.parameters["cutouts"] == 400 and row.parameters["planes"] == 6
        assert row.parameters["training"]["loss_last"] < row.parameters["training"]["loss_first"]
        nodes = conn.execute(
            "SELECT node_id, grid_row, grid_col, member_count, thumbnail, stats, codebook"
            " FROM caomai.map_node WHERE model_id = %s ORDER BY node_id",
            (row.model_id,),
        ).fetchall()
    assert len(nodes) == 400
    assert all(n[1] * 20 + n[2] == n[0] for n in nodes)
    assert sum(n[3] for n in nodes) == 400
    with_members = [n for n in nodes if n[3] > 0]
    assert len(with_members) > 100
    assert all(n[4] is not None and bytes(n[4]).startswith(b"\x89PNG") for n in with_members)
    assert all(n[4] is None for n in nodes if n[3] == 0)
    assert all(n[5]["members"] == n[3] for n in nodes)
    assert all("elongation_median" in n[5] for n in with_members)
    # the SOM is fitted on the 64-d embedding plus the six standardised shape features
    assert all(len(n[6]) == 64 + len(shape.NAMES) for n in nodes)

    path = modelstore.verify(settings, row)
    assert path == settings.models_dir / "m1" / "model.pt"
    assert modelstore.training_planes(settings, row) == {str(p) for p in planeids}
    map1 = Map1.from_payload(modelstore.load_payload(settings, row))
    assert map1.som.codebook.shape == (400, 64 + len(shape.NAMES)) and map1.transform == "sqrt"
    assert map1.shape_weight == shape.DEFAULT_WEIGHT and map1.shape_center.shape == (
        len(shape.NAMES),
    )
    assert np.all(map1.shape_scale > 0)
    assert np.array_equal(map1.shape_emphasis, shape.emphasis())
    # a model keeps the detection it was trained with; a file from before the line search's
    # baseline loads without it
    assert map1.detect.line_baseline is True and map1.detect.line_spread_ref > 0
    assert map1.detect.line_saturated_run is True
    payload = modelstore.load_payload(settings, row)
    for name in ("line_baseline", "line_spread_ref", "line_saturated_run"):
        del payload["detect"][name]
    older = Map1.from_payload(payload).detect
    assert older.line_baseline is False and older.line_spread_ref == 0.0
    assert older.line_saturated_run is False
    # the usual sky of each band: the median rate over its training planes
    skies = {f.stem: file_objects(f, max_objects=50, preview=False).sky for f in files}
    assert {s["band"] for s in skies.values()} == {"TESTCAM r", "TESTCAM i.MP9703"}
    for band in ("TESTCAM r", "TESTCAM i.MP9703"):
        rates = [image_vector.log_sky_rate(s) for s in skies.values() if s["band"] == band]
        assert map1.sky_rate[band] == pytest.approx(np.median(rates), abs=1e-3)
    assert row.parameters["sky_rate"] == map1.sky_rate
    assert map1.sky_reference("TESTCAM r") == map1.sky_rate["TESTCAM r"]
    assert map1.sky_reference("TESTCAM g") is None and map1.sky_reference(None) is None
    # a file from before the table has none: every band is read against the fixed threshold
    del payload["image"]
    assert Map1.from_payload(payload).sky_rate == {}

    # a second model, registered but not active; names are unique
    assert caomai([*args, "--name", "m2", "--no-activate", "--no-progress"]) == 0
    assert caomai([*args, "--name", "m2", "--no-progress"]) == 1
    assert "exists already" in capsys.readouterr().err
    assert caomai(["--dsn", db, "model", "list"]) == 0
    listing = capsys.readouterr().out
    assert "m1" in listing and "m2" in listing
    assert caomai(["--dsn", db, "model", "activate", "m2"]) == 0
    with database.connect(db) as conn:
        assert modelstore.active_model(conn, "map1").name == "m2"
    assert caomai(["--dsn", db, "model", "show", "m1"]) == 0
    shown = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert shown["name"] == "m1" and shown["active"] is False


def test_training_on_nothing_says_what_is_missing(db: str, capsys) -> None:
    assert caomai(["--dsn", db, "train", "map1", "--no-progress"]) == 1
    assert "no planes selected" in capsys.readouterr().err
    assert caomai(["--dsn", db, "train", "map2"]) == 1
    assert "no map1 model is active" in capsys.readouterr().err
    assert caomai(["--dsn", db, "load", "--no-progress"]) == 1
    assert "no map1 model is active" in capsys.readouterr().err
    assert caomai(["--dsn", db, "train", "map1", "--planes", "o.nonsense = 1"]) == 1
    assert "--planes" in capsys.readouterr().err


@pytest.mark.parametrize("device", ["cuda", "tpu"])
def test_an_unavailable_device_is_refused(db: str, device: str, capsys) -> None:
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert caomai(["--dsn", db, "train", "map1", "--device", device, "--no-progress"]) == 1
    assert "--device" in capsys.readouterr().err
