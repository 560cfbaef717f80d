"""About a thousand generated requests, valid and invalid ADQL and odd requests
(tests/fuzzgen.py), against a running ``caomai serve``: never a 500 or another status than
200/400, every error a VOTable, no answer slower than the statement timeout, and every table's
rows unchanged (md5 before and after, read as the owner). ``bench/fuzz.py`` runs the same
generator for ten thousand and more."""

from __future__ import annotations

import json

import httpx
import pytest

from . import fuzzgen
from .tapserver import running_service, synthetic_database

REQUESTS = 1000
SEED = 14
TIMEOUT_S = 10


@pytest.fixture(scope="module")
def archive(cluster_dsn: str):
    with synthetic_database(cluster_dsn, 100, seed=7) as dsn:
        yield dsn


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::astropy.io.votable.exceptions.VOWarning")
def test_fuzzed_requests_never_break_the_service(archive: str) -> None:
    with running_service(archive, query_timeout_s=TIMEOUT_S) as url:
        report = fuzzgen.run(url, REQUESTS, SEED, TIMEOUT_S, owner_dsn=archive)
        assert httpx.get(f"{url}/availability", timeout=10).status_code == 200
    summary = report.summary()
    assert not report.problems, json.dumps(summary["problems"], indent=1)
    assert report.checksums_before and report.checksums_before == report.checksums_after
    kinds = summary["by_kind_and_status"]
    # the generator reaches both sides: valid queries answered, bad ones refused
    assert kinds.get("valid 200", 0) > REQUESTS // 4, kinds
    for kind in ("invalid 400", "limit 400", "request 400"):
        assert kinds.get(kind, 0) > 0, kinds
