"""caomai_uws: the asynchronous (UWS 1.1) jobs of ``caomai serve``; never published.

The migrations create this table in raw SQL (0002, columns of 0005 at the end); this
definition matches what they create, names of constraints and indexes included, and
tests/test_migrations.py compares the two. ``caomai_db.tap.uws`` reads and writes the rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from .columns import table, uws_metadata

TIMESTAMPTZ = sa.DateTime(timezone=True)

#: UWS 1.1 execution phases (the CHECK constraint of phase).
PHASES = (
    "PENDING",
    "QUEUED",
    "EXECUTING",
    "COMPLETED",
    "ERROR",
    "ABORTED",
    "UNKNOWN",
    "HELD",
    "SUSPENDED",
    "ARCHIVED",
)

job = table(
    uws_metadata,
    "caomai_uws.job",
    "asynchronous TAP jobs (UWS 1.1) of caomai serve; written only by the role caomai_uws,"
    " never published",
    sa.Column("job_id", sa.Text),
    sa.Column("run_id", sa.Text),
    sa.Column("owner_id", sa.Text),
    sa.Column("phase", sa.Text, nullable=False, server_default=sa.text("'PENDING'::text")),
    sa.Column("parameters", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("creation_time", TIMESTAMPTZ, nullable=False, server_default=sa.func.now()),
    sa.Column("start_time", TIMESTAMPTZ),
    sa.Column("end_time", TIMESTAMPTZ),
    sa.Column("execution_duration", sa.Integer, nullable=False),
    sa.Column("destruction_time", TIMESTAMPTZ, nullable=False),
    sa.Column("error_summary", sa.Text),
    sa.Column("result_mime", sa.Text),
    sa.Column("result_rows", sa.BigInteger),
    sa.Column("result_overflow", sa.Boolean),
    sa.Column("result", pg.BYTEA),
    sa.Column("worker", sa.Text),
    sa.Column("plan", sa.Text),
    # 0005: leases and owners
    sa.Column("lease_expires", TIMESTAMPTZ),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("url_access", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.PrimaryKeyConstraint("job_id", name="job_pkey"),
    sa.CheckConstraint(
        "phase IN (" + ", ".join(f"'{p}'" for p in PHASES) + ")", name="job_phase_check"
    ),
    sa.Index("ix_job_phase", "phase"),
    sa.Index("ix_job_destruction_time", "destruction_time"),
    sa.Index("ix_job_owner", "owner_id", "creation_time"),
    published=False,
)

UWS_TABLES = [job]
