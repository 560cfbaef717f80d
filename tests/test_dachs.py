"""The DaCHS side: generated files are current, and DaCHS's own ADQL translator (Debian's
python3-gavo under /usr/bin/python3) with our UDF module gives the rows our service gives."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

from caomai_db import database, datatypes
from caomai_db.adql import dachs
from caomai_db.config import Settings
from caomai_db.tap import examples
from caomai_db.tap.service import TapService

from .system import needs, require
from .tapserver import synthetic_database

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"


def _has_gavo() -> bool:
    try:
        probe = subprocess.run(
            [SYSTEM_PYTHON, "-c", "import gavo.adql, psycopg2"], capture_output=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _field_types() -> dict[str, str]:
    """information_schema's data_type -> the type DaCHS's field infos want, from the one type
    map (what DaCHS reads from an RD, as caomai_db.adql.dachs writes it)."""
    out = {}
    for t in datatypes.TYPES:
        name = "timestamp without time zone" if t.sql == "timestamp" else t.sql
        timestamp = t.xtype == "timestamp"
        out[name] = "timestamp" if timestamp else datatypes.sql_for_votable(t.votable)
    out["ARRAY"] = "real[]"  # information_schema does not say of what: the fingerprints
    return out


def test_committed_dachs_files_are_current() -> None:
    for rel, text in dachs.files().items():
        assert (ROOT / "tap_schema" / "dachs" / rel).read_text() == text, (
            "run `caomai tap-dachs` and commit tap_schema/dachs/"
        )


@needs(_has_gavo(), "python3-gavo")
def test_dachs_translates_the_readme_examples_like_our_service(
    cluster_dsn: str, tmp_path: Path
) -> None:
    require(_has_gavo(), "python3-gavo")
    queries = examples.readme_queries()
    given = tmp_path / "queries.json"
    given.write_text(json.dumps({"queries": queries, "types": _field_types()}))
    with synthetic_database(cluster_dsn, 300, seed=3, proprietary_fraction=0.0) as dsn:
        reader = database.reader_dsn(Settings.from_env(dsn), dsn)
        out = subprocess.run(
            [
                SYSTEM_PYTHON,
                str(ROOT / "tests" / "dachs" / "translate_examples.py"),
                reader,
                str(given),
                str(ROOT / "tap_schema" / "dachs"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        results = [json.loads(line) for line in out.stdout.splitlines()]
        assert len(results) == len(queries) >= 3
        svc = TapService(Settings.from_env(dsn), pool_size=1)
        try:
            for r in results:
                assert "caomai." in r["sql"] and r["rows"], r
                ours = svc.run_query({"QUERY": r["adql"], "RESPONSEFORMAT": "csv"}, timeout_s=60)
                assert ours.error is None, ours.error
                rows = list(csv.reader(io.StringIO(ours.body.decode())))[1:]
                assert [row[0] for row in rows] == [row[0] for row in r["rows"]], r["sql"]
        finally:
            svc.close()


def test_readme_function_reference_is_the_registry() -> None:
    from caomai_db.adql import udfs

    assert udfs.markdown_reference() in (ROOT / "README.md").read_text(), (
        "paste caomai_db.adql.udfs.markdown_reference() into the README"
    )
