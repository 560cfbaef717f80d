"""The `caomai` command.

The database commands live here; other installed packages add theirs through the
``caomai.commands`` entry point group (see :func:`build_parser`).

Every subcommand works on the database given by ``--dsn``/``CAOMAI_DSN`` or, with neither,
on the embedded cluster under ``CAOMAI_HOME`` (started on demand).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from importlib.metadata import entry_points

import psycopg
from sqlalchemy import exc as sa_exc

from . import database, dbadmin
from .config import Settings
from .errors import CaomaiError
from .tap import cli as tap_cli

#: entry point group of the functions that add subcommands to `caomai` (pyproject.toml)
COMMANDS_GROUP = "caomai.commands"

Handler = Callable[[argparse.Namespace, Settings], int]


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(getattr(args, "dsn", None))


# -- caomai db ... --------------------------------------------------------------------------


def cmd_db_start(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.embedded:
        print("CAOMAI_DSN/--dsn points at an external server; nothing to start", file=sys.stderr)
        return 1
    print(database.cluster(settings).start())
    return 0


def cmd_db_stop(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.embedded:
        print("CAOMAI_DSN/--dsn points at an external server; nothing to stop", file=sys.stderr)
        return 1
    stopped = database.cluster(settings).stop()
    print("stopped" if stopped else "not running")
    return 0


def cmd_db_dsn(args: argparse.Namespace, settings: Settings) -> int:
    dsn = database.resolve_dsn(settings)
    print(database.reader_dsn(settings, dsn) if args.reader else dsn)
    return 0


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    dsn = database.resolve_dsn(settings)
    dbadmin.upgrade(dsn, args.revision)
    print(f"database at {dbadmin.current_revision(dsn) or 'base'}")
    return 0


def cmd_db_downgrade(args: argparse.Namespace, settings: Settings) -> int:
    dsn = database.resolve_dsn(settings)
    dbadmin.downgrade(dsn, args.revision)
    print(f"database at {dbadmin.current_revision(dsn) or 'base'}")
    return 0


def cmd_db_status(args: argparse.Namespace, settings: Settings) -> int:
    st = dbadmin.status(settings)
    print(st.render())
    return 0 if st.running else 3


def cmd_db_history(args: argparse.Namespace, settings: Settings) -> int:
    print(dbadmin.history(), end="")
    return 0


def cmd_db_sync_meta(args: argparse.Namespace, settings: Settings) -> int:
    n = dbadmin.sync_plane_meta(database.resolve_dsn(settings))
    print(f"{n} caomai rows brought in step with caom2.Plane")
    return 0


def cmd_tap_schema(args: argparse.Namespace, settings: Settings) -> int:
    from .paths import TAP_SCHEMA_DIR
    from .tapschema import export_sql

    out = args.out or (TAP_SCHEMA_DIR / "caomai.tap_schema.sql")
    text = export_sql()
    if str(out) == "-":
        sys.stdout.write(text)
    else:
        with open(out, "w") as fh:
            fh.write(text)
        print(f"wrote {out}")
    return 0


# -- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: the database's commands, then every installed registrar's.

    The database package knows no other package of caomai: the loaders (simulate, register,
    train, load, demo, ...) add their subcommands through the ``caomai.commands`` entry point
    group, each entry a function taking the subparsers object.
    """
    parser = argparse.ArgumentParser(
        prog="caomai",
        description="Content-based image search for astronomical archives, in ADQL.",
    )
    parser.add_argument(
        "--dsn",
        help="PostgreSQL (>= 15, pgvector >= 0.8) to use instead of the embedded one "
        "(default: $CAOMAI_DSN, else the embedded cluster under $CAOMAI_HOME)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = sub.add_parser("db", help="the database: start/stop, migrations, status")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    p = dbsub.add_parser("start", help="start the embedded cluster (reuses a running one)")
    p.set_defaults(handler=cmd_db_start)
    p = dbsub.add_parser("stop", help="stop the embedded cluster cleanly")
    p.set_defaults(handler=cmd_db_stop)
    p = dbsub.add_parser("dsn", help='print the DSN in use: psql "$(caomai db dsn)"')
    p.add_argument("--reader", action="store_true", help="the read-only query role's DSN")
    p.set_defaults(handler=cmd_db_dsn)
    p = dbsub.add_parser("upgrade", help="apply migrations (default: up to head)")
    p.add_argument("revision", nargs="?", default="head")
    p.set_defaults(handler=cmd_db_upgrade)
    p = dbsub.add_parser("downgrade", help="revert migrations down to REV ('base' removes all)")
    p.add_argument("revision")
    p.set_defaults(handler=cmd_db_downgrade)
    p = dbsub.add_parser("status", help="server, version, extensions, migration, row counts")
    p.set_defaults(handler=cmd_db_status)
    p = dbsub.add_parser("history", help="list the migrations")
    p.set_defaults(handler=cmd_db_history)
    p = dbsub.add_parser(
        "sync-meta",
        help="copy publisherID/metaRelease/metaReadGroups from caom2.Plane into caomai tables "
        "(run after each harvest when the archive owns caom2)",
    )
    p.set_defaults(handler=cmd_db_sync_meta)

    p = sub.add_parser(
        "tap-schema",
        help="write the TAP_SCHEMA 1.1 rows of the caomai tables for an archive's own TAP service",
    )
    p.add_argument(
        "--out", help="file to write ('-' for stdout; default tap_schema/caomai.tap_schema.sql)"
    )
    p.set_defaults(handler=cmd_tap_schema)

    tap_cli.register(sub)  # caomai serve, caomai tap-dachs
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        entry.load()(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    settings = _settings(args)
    try:
        return args.handler(args, settings)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except sa_exc.DBAPIError as exc:
        print(f"caomai: {str(exc.orig).strip()}", file=sys.stderr)
        return 1
    except (CaomaiError, OSError, psycopg.Error, sa_exc.SQLAlchemyError) as exc:
        # caomai's own errors (caomai_db/errors.py) say what to do; anything else is a bug
        # and keeps its traceback
        print(f"caomai: {str(exc).strip()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
