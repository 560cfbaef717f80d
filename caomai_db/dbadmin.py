"""Schema administration: migrations, status, plane-metadata sync.

Used by the CLI (`caomai db ...`) and by the tests, always against one DSN.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from . import database
from .config import Settings
from .paths import ALEMBIC_INI

VERSION_TABLE = "caomai_alembic_version"

#: Tables whose rows `caomai db status` counts.
COUNTED = [
    "caom2.observation",
    "caom2.plane",
    "caom2.artifact",
    "caomai.model",
    "caomai.map_node",
    "caomai.fingerprint",
    "caomai.object_annotation",
    "caomai.load_queue",
]


def alembic_config(dsn: str) -> Config:
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("sqlalchemy.url", database.sqlalchemy_url(dsn).replace("%", "%%"))
    return cfg


def upgrade(dsn: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(dsn), revision)


def downgrade(dsn: str, revision: str) -> None:
    command.downgrade(alembic_config(dsn), revision)


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("postgresql://x@/x")).get_current_head()


def current_revision(dsn: str) -> str | None:
    eng = database.engine(dsn)
    try:
        with eng.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            return ctx.get_current_revision()
    finally:
        eng.dispose()


def history() -> str:
    buf = io.StringIO()
    with redirect_stdout(buf):
        command.history(alembic_config("postgresql://x@/x"))
    return buf.getvalue()


@dataclass
class Status:
    server: str
    dsn: str
    version: str = ""
    extensions: dict[str, str] = field(default_factory=dict)
    revision: str | None = None
    head: str = ""
    counts: dict[str, str] = field(default_factory=dict)
    running: bool = True

    @property
    def at_head(self) -> bool:
        return self.revision == self.head

    def render(self) -> str:
        lines = [f"server:     {self.server}", f"dsn:        {self.dsn}"]
        if not self.running:
            lines.append("state:      stopped (any caomai command starts it)")
            return "\n".join(lines)
        lines.append(f"postgresql: {self.version}")
        ext = ", ".join(f"{k} {v}" for k, v in sorted(self.extensions.items())) or "none"
        lines.append(f"extensions: {ext}")
        state = "at head" if self.at_head else ("empty" if self.revision is None else "behind head")
        lines.append(f"migration:  {self.revision or '-'} (head {self.head}, {state})")
        if self.counts:
            lines.append("rows:")
            width = max(len(k) for k in self.counts)
            for k, v in self.counts.items():
                lines.append(f"  {k:<{width}}  {v}")
        return "\n".join(lines)


def _safe_dsn(dsn: str) -> str:
    """The DSN without its password, for printing."""
    parts = urlsplit(dsn)
    if parts.password:
        return dsn.replace(f":{parts.password}@", ":***@")
    return dsn


def status(settings: Settings) -> Status:
    if settings.embedded:
        embedded = database.cluster(settings)
        server = f"embedded PostgreSQL in {settings.pgdata}"
        if not embedded.running():
            return Status(server=server, dsn="-", running=False, head=head_revision())
        dsn = embedded.dsn()
    else:
        server = "external PostgreSQL (CAOMAI_DSN / --dsn)"
        dsn = settings.dsn or ""
    out = Status(server=server, dsn=_safe_dsn(dsn), head=head_revision())
    with database.connect(dsn, autocommit=True, vector=False) as conn:
        out.version = conn.execute("SHOW server_version").fetchone()[0]
        out.extensions = dict(
            conn.execute("SELECT extname, extversion FROM pg_extension").fetchall()
        )
        has_version_table = conn.execute(
            "SELECT to_regclass(%s)", (f"public.{VERSION_TABLE}",)
        ).fetchone()[0]
        if has_version_table:
            row = conn.execute(f"SELECT version_num FROM public.{VERSION_TABLE}").fetchone()
            out.revision = row[0] if row else None
        for name in COUNTED:
            if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is None:
                continue
            out.counts[name] = _count(conn, name)
    return out


def _count(conn, name: str) -> str:
    """Exact for ordinary sizes; the planner's estimate past a million rows (count(*) is slow)."""
    estimate = conn.execute(
        "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint FROM pg_class c"
        " WHERE c.oid = %s::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass)",
        (name, name),
    ).fetchone()[0]
    if estimate > 1_000_000:
        return f"~{estimate:,} (estimate)"
    return f"{conn.execute(f'SELECT count(*) FROM {name}').fetchone()[0]:,}"


def sync_plane_meta(dsn: str) -> int:
    """Copy publisherID/metaRelease/metaReadGroups from caom2.Plane into the caomai tables."""
    with database.connect(dsn, vector=False) as conn:
        n = conn.execute("SELECT caomai.sync_plane_meta()").fetchone()[0]
        conn.commit()
    return int(n)
