"""Create conversations table.

Also creates a minimal ``users`` table when the database has none (a bare
development database); an existing ``users`` table is never touched. The
one chatdb creates is marked with a table comment, and only a table with
that mark is dropped again on downgrade.

Revision ID: 001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "001"
down_revision = None
branch_labels = None
depends_on = None

USERS_MARK = "created by chatdb: the database had no users table"

# Plain SQL so that `chatdb migrate --sql` prints the same decision the
# online run makes, without needing to look at the database first.
CREATE_USERS_IF_MISSING = f"""
DO $$
BEGIN
    IF to_regclass('users') IS NULL THEN
        CREATE TABLE users (
            id VARCHAR(255) PRIMARY KEY,
            created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
        );
        COMMENT ON TABLE users IS '{USERS_MARK}';
    END IF;
END
$$
"""

DROP_USERS_IF_OURS = f"""
DO $$
BEGIN
    IF to_regclass('users') IS NOT NULL
       AND obj_description(to_regclass('users'), 'pg_class') = '{USERS_MARK}' THEN
        DROP TABLE users;
    END IF;
END
$$
"""


def upgrade() -> None:
    op.execute(CREATE_USERS_IF_MISSING)
    op.create_table(
        "conversations",
        sa.Column("id", postgresql.UUID(as_uuid=True), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(20), server_default=sa.text("'active'"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("NOW()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("NOW()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="conversations_pkey"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="conversations_user_id_fkey", ondelete="CASCADE"),
        sa.CheckConstraint("status IN ('active', 'archived')", name="conversations_status_check"),
    )
    op.create_index("idx_conversations_user_id", "conversations", ["user_id"])
    op.create_index("idx_conversations_updated_at", "conversations", [sa.text("updated_at DESC")])
    op.create_index("idx_conversations_user_status", "conversations", ["user_id", "status"])


def downgrade() -> None:
    op.drop_index("idx_conversations_user_status", table_name="conversations")
    op.drop_index("idx_conversations_updated_at", table_name="conversations")
    op.drop_index("idx_conversations_user_id", table_name="conversations")
    op.drop_table("conversations")
    op.execute(DROP_USERS_IF_OURS)
