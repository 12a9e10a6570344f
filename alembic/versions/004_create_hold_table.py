"""Create chatdb_hold, the legal holds that keep conversations from being deleted.

chatdb's own bookkeeping table, additional to the plan's two tables: a row per
hold, on one user (all their conversations, present and future) or on one
conversation. No foreign key: a hold must not stop the application deleting
its own rows, nor vanish with them (see chatdb/holds.py).

Revision ID: 004
Revises: 003
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "004"
down_revision = "003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chatdb_hold",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("conversation_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="chatdb_hold_pkey"),
        sa.CheckConstraint("num_nonnulls(user_id, conversation_id) = 1", name="chatdb_hold_target_check"),
        sa.CheckConstraint("length(btrim(reason)) > 0", name="chatdb_hold_reason_check"),
        comment="chatdb: legal holds; a held conversation is never deleted by chatdb",
    )
    op.create_index("ix_chatdb_hold_user_id", "chatdb_hold", ["user_id"])
    op.create_index("ix_chatdb_hold_conversation_id", "chatdb_hold", ["conversation_id"])


def downgrade() -> None:
    op.drop_table("chatdb_hold")
