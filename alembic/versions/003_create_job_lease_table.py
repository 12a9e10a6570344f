"""Create chatdb_job_lease, the lease that keeps maintenance jobs apart.

chatdb's own bookkeeping table, additional to the plan's two tables: a row
per lock, written only by chatdb's jobs (see chatdb/jobs/lease.py).

Revision ID: 003
Revises: 002
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "003"
down_revision = "002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chatdb_job_lease",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("token", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("job", sa.String(63), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.BigInteger(), nullable=False),
        sa.Column("process", sa.String(255), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="chatdb_job_lease_pkey"),
        sa.UniqueConstraint("token", name="chatdb_job_lease_token_key"),
        comment="chatdb: the lease of the maintenance job running now (one row per lock)",
    )


def downgrade() -> None:
    op.drop_table("chatdb_job_lease")
