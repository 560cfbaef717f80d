"""The helpers every table definition uses, and the MetaData objects the tables belong to.

Columns are created in lower case (CADC's CAOM2 tables are created unquoted, so PostgreSQL
stores ``planeid``); the camel-case name TAP users see (``planeID``) lives in the column's
``info`` together with its description, unit, UCD and utype (``col()``), and a table's TAP
name, description and ``published`` flag live in the table's ``info`` (``table()``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: CAOM2 subset created for standalone use (skipped when an archive's caom2 tables exist).
caom2_metadata = sa.MetaData(schema="caom2", naming_convention=NAMING)
#: caomai's own schema.
caomai_metadata = sa.MetaData(schema="caomai", naming_convention=NAMING)
#: Views and other objects whose SQL lives in sql/; described here for TAP_SCHEMA only.
views_metadata = sa.MetaData()
#: TAP_SCHEMA 1.1 (created only when the database has none; an archive keeps its own).
tap_schema_metadata = sa.MetaData(schema="tap_schema", naming_convention=NAMING)
#: The TAP service's asynchronous jobs (migrations 0002, 0005); never published. No naming
#: convention: the migrations created them in raw SQL, with PostgreSQL's default names.
uws_metadata = sa.MetaData(schema="caomai_uws")

TIMESTAMP = sa.DateTime(timezone=False)


def col(
    tap_name: str,
    type_: Any,
    description: str,
    *args: Any,
    unit: str | None = None,
    ucd: str | None = None,
    utype: str | None = None,
    xtype: str | None = None,
    principal: bool = False,
    std: bool = False,
    indexed: bool = False,
    published: bool = True,
    arraysize: str | None = None,
    **kwargs: Any,
) -> sa.Column:
    """A column whose TAP metadata travels with it."""
    info = {
        "arraysize": arraysize,
        "tap_name": tap_name,
        "description": description,
        "unit": unit,
        "ucd": ucd,
        "utype": utype,
        "xtype": xtype,
        "principal": principal,
        "std": std,
        "indexed": indexed,
        "published": published,
    }
    return sa.Column(tap_name.lower(), type_, *args, info=info, comment=description, **kwargs)


def table(
    metadata: sa.MetaData,
    tap_name: str,
    description: str,
    *columns: Any,
    published: bool = True,
    utype: str | None = None,
    table_type: str = "table",
    reader: bool = False,
    **kwargs: Any,
) -> sa.Table:
    """A table whose TAP metadata travels with it.

    ``reader``: an unpublished table the read-only role may still SELECT (the web API reads
    previews through that role's connection); TAP queries cannot name it, since the ADQL layer
    knows only what TAP_SCHEMA publishes.
    """
    schema, name = tap_name.split(".")
    info = {
        "tap_name": tap_name,
        "description": description,
        "published": published,
        "reader": reader,
        "utype": utype,
        "table_type": table_type,
    }
    return sa.Table(
        name.lower(),
        metadata,
        *columns,
        schema=schema.lower(),
        info=info,
        comment=description,
        **kwargs,
    )


def plane_access_columns() -> list[sa.Column]:
    """The columns every plane-scoped caomai table carries, kept in step with caom2.Plane.

    CADC's TAP service hides proprietary rows only in tables that carry these columns, and
    ObsCore users join on ``obs_publisher_did = publisherID``.
    """
    return [
        col(
            "publisherID",
            sa.String(512),
            "publisher identifier of the plane (ObsCore obs_publisher_did)",
            nullable=False,
            ucd="meta.ref.ivoid",
            xtype="uri",
            principal=True,
            indexed=True,
        ),
        col(
            "metaRelease",
            TIMESTAMP,
            "date the plane's metadata becomes public (UTC); copied from caom2.Plane",
            ucd="time.release",
            xtype="timestamp",
        ),
        col(
            "metaReadGroups",
            sa.Text,
            "groups allowed to read the plane's metadata before metaRelease; copied from caom2.Plane",
        ),
    ]
