"""`caomai demo` / `make demo`: the main job, end to end, on the embedded database."""

from __future__ import annotations

from . import database, dbadmin
from .config import Settings


def run_demo(settings: Settings) -> int:
    dsn = database.resolve_dsn(settings)
    print(f"database: {dsn}")
    dbadmin.upgrade(dsn, "head")
    status = dbadmin.status(settings)
    print(status.render())
    if not status.at_head:
        print("the schema is not at head")
        return 1
    print("\nthe embedded database keeps running; `caomai db stop` stops it.")
    return 0
