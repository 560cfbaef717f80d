"""Real frames that ship in packages go through registration, training and loading.

CFHT FOCAM (a370II), HST WFPC2 (a478hst), DSS m13 with its Rice and gzip tile-compressed copies,
astropy's comp.fits and a JPEG (hubble_deep_field): each gets a fingerprint, with a sane number
of detections, or a recorded clear error - never a crash.
"""

from __future__ import annotations

import numpy as np
import pytest

from caomai_db import database
from caomai_db.config import Settings
from caomai_loaders.load import LoadOptions, load
from caomai_loaders.train import train_map1, train_map2

from . import databases
from .load_helpers import register_files
from .realframes import real_frames

#: detections we expect (sep, 2 sigma, 5 pixels): broad ranges, they are real images
EXPECTED = {
    "a370II": (800, 2500),  # ~1000 sources in the CFHT 3.6m FOCAM frame of Abell 370
    "a478hst": (200, 3000),
    "m13": (60, 1000),
    "m13_rice": (60, 1000),
    "m13_gzip": (60, 1000),
    "comp": (20, 1000),
    "hubble_deep_field": (300, 5000),
}


@pytest.fixture(scope="module")
def loaded(cluster_dsn: str):
    dsn = databases.create(cluster_dsn, "rf_")
    frames = real_frames()
    with database.connect(dsn) as conn:
        ids = dict(
            zip(frames, register_files(conn, list(frames.values()), collection="REAL"), strict=True)
        )
    settings = Settings.from_env(dsn)
    train_map1(settings, n_cutouts=2000, epochs=2, som_epochs=20, workers=1, progress=False)
    summary = load(settings, options=LoadOptions(workers=1, progress=False))
    train_map2(settings, thumbnails=True)
    yield dsn, ids, summary
    databases.drop(dsn)


def test_every_real_frame_gets_a_fingerprint_with_sane_counts(loaded) -> None:
    dsn, ids, summary = loaded
    assert summary.planes_failed == 0, summary.failures
    assert summary.planes_done == len(ids)
    with database.connect(dsn) as conn:
        rows = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT planeid, n_detected, n_sampled, fp, map2_node FROM caomai.fingerprint"
            ).fetchall()
        }
    for name, planeid in ids.items():
        n_detected, n_sampled, fp, map2_node = rows[planeid]
        lo, hi = EXPECTED[name]
        assert lo <= n_detected <= hi, (name, n_detected)
        assert n_sampled == min(n_detected, 1000)
        assert np.linalg.norm(fp.to_numpy()) == pytest.approx(1.0, abs=1e-4)
        assert 0 <= map2_node < 400
    # the tile-compressed copies of m13 hold the same image: nearly the same fingerprint
    plain = rows[ids["m13"]][2].to_numpy()
    for copy in ("m13_rice", "m13_gzip"):
        assert float(plain @ rows[ids[copy]][2].to_numpy()) > 0.9


def test_sky_positions_come_from_the_wcs_when_there_is_one(loaded) -> None:
    dsn, ids, _ = loaded
    with database.connect(dsn) as conn:
        a370 = conn.execute(
            "SELECT count(*), avg(ra), avg(dec), count(*) FILTER (WHERE ra IS NULL)"
            " FROM caomai.object_annotation WHERE planeid = %s",
            (ids["a370II"],),
        ).fetchone()
        jpeg = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE ra IS NULL)"
            " FROM caomai.object_annotation WHERE planeid = %s",
            (ids["hubble_deep_field"],),
        ).fetchone()
    assert a370[0] == 1000 and a370[3] == 0
    assert abs(a370[1] - 39.97) < 0.1 and abs(a370[2] + 1.57) < 0.1  # Abell 370
    assert jpeg[0] > 0 and jpeg[1] == jpeg[0]  # a JPEG has no WCS: positions in pixels only
