"""Alembic environment: one database, given by `caomai db upgrade` or found like every command.

The version table is ``public.caomai_alembic_version`` so that caomai's migrations never meet
an archive's own alembic history in the same database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from caomai_db import database, models
from caomai_db.config import Settings

VERSION_TABLE = "caomai_alembic_version"

config = context.config
target_metadata = [models.caom2_metadata, models.caomai_metadata, models.uws_metadata]


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    dsn = context.get_x_argument(as_dictionary=True).get("dsn")
    return database.sqlalchemy_url(database.resolve_dsn(Settings.from_env(dsn)))


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        version_table=VERSION_TABLE,
        include_schemas=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = sa.create_engine(_url(), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        _run(conn)


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_schemas=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
