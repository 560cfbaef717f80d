"""Asynchronous jobs: leases for several servers on one database, and owners.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24

Until now one ``caomai serve`` process per database was assumed: at start-up it queued again
every job left QUEUED or EXECUTING, including those another live server was running. Now a
server claims a queued job (``FOR UPDATE SKIP LOCKED``) and holds a lease on it that it renews
while the query runs:

- ``lease_expires``: when the claim of the server named in ``worker`` runs out unless renewed;
  a job whose lease ran out (its server died) is queued again by whichever server sees it;
- ``attempts``: how often a server claimed the job; a job whose server died twice is put in
  ERROR instead of being queued a third time, so a query that kills servers does not loop;
- ``url_access``: the job may be reached by its (unguessable) URL alone, without the owner's
  cookie; true for jobs created by a client that sent no owner cookie (STILTS never sends
  cookies) until that cookie comes back.

Jobs EXECUTING when this revision is applied had no lease: their lease is set to expire now,
so a server queues them again (what start-up did before). Jobs without an owner (created
before this revision) keep being reachable by URL.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE caomai_uws.job ADD COLUMN lease_expires timestamptz,"
        " ADD COLUMN attempts integer NOT NULL DEFAULT 0,"
        " ADD COLUMN url_access boolean NOT NULL DEFAULT false"
    )
    op.execute("UPDATE caomai_uws.job SET lease_expires = now() WHERE phase = 'EXECUTING'")
    op.execute("UPDATE caomai_uws.job SET url_access = true WHERE owner_id IS NULL")
    op.execute("CREATE INDEX ix_job_owner ON caomai_uws.job (owner_id, creation_time)")


def downgrade() -> None:
    op.execute("DROP INDEX caomai_uws.ix_job_owner")
    op.execute(
        "ALTER TABLE caomai_uws.job DROP COLUMN url_access, DROP COLUMN attempts,"
        " DROP COLUMN lease_expires"
    )
