"""SQLAlchemy 2 typed models for chatdb's two tables.

The schema is the plan's DDL exactly: names of constraints and indexes
are the ones PostgreSQL gives when that DDL runs, so the migrations, the
models and a database built from the plan's SQL all agree.

``users`` belongs to the existing application ("Phase II"). chatdb only
references it: :data:`users` is declared here so foreign keys resolve, but
chatdb's migrations and drift checks never treat it as chatdb's own.

:data:`job_leases` and :data:`holds` are chatdb's own bookkeeping, additional to
the plan: the lease that keeps maintenance jobs apart (see :mod:`chatdb.jobs.lease`)
and the legal holds that keep conversations from being deleted (:mod:`chatdb.holds`).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# The names PostgreSQL itself picks, so metadata-driven DDL matches the plan's SQL.
NAMING_CONVENTION = {
    "pk": "%(table_name)s_pkey",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "uq": "%(table_name)s_%(column_0_name)s_key",
    "ix": "ix_%(table_name)s_%(column_0_name)s",
}

CHATDB_TABLES = ("conversations", "messages")  # the plan's tables
LEASE_TABLE = "chatdb_job_lease"
HOLD_TABLE = "chatdb_hold"
BOOKKEEPING_TABLES = (LEASE_TABLE, HOLD_TABLE)  # chatdb's own, additional to the plan
USER_MESSAGE_MAX_LENGTH = 1000


class ConversationStatus(str, enum.Enum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class MessageRole(str, enum.Enum):
    USER = "user"
    ASSISTANT = "assistant"


class EnumText(TypeDecorator[enum.Enum]):
    """A ``VARCHAR`` holding an enum's value, as the plan's DDL has it.

    The database enforces the allowed values with a CHECK constraint; this
    type only converts between the enum and its string on the way in and out.
    """

    impl = String(20)
    cache_ok = True

    def __init__(self, enum_cls: type[enum.Enum]) -> None:
        super().__init__()
        self.enum_cls = enum_cls

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return str(self.enum_cls(value).value)

    def process_result_value(self, value: Any, dialect: Any) -> enum.Enum | None:
        return None if value is None else self.enum_cls(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Phase II's table, declared with only the column chatdb depends on.
users = Table(
    "users",
    Base.metadata,
    Column("id", String(255), primary_key=True),
    info={"owner": "phase2"},
)


# One row per lock ("maintenance"), held by one job at a time until it ends or expires.
# The token is unique, which makes it a key column: replacing it (taking over an
# expired lease) needs a row lock that a batch's FOR KEY SHARE on the row blocks,
# while a heartbeat (heartbeat_at, expires_at only) does not.
job_leases = Table(
    LEASE_TABLE,
    Base.metadata,
    Column("name", String(63), primary_key=True),
    Column("token", UUID(as_uuid=True), nullable=False, unique=True),
    Column("job", String(63), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", BigInteger, nullable=False),
    # Where that pid is meaningful (boot, pid namespace) and when the process started:
    # lets a job on the same machine see at once that the holder is gone.
    Column("process", String(255), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    comment="chatdb: the lease of the maintenance job running now (one row per lock)",
    info={"owner": "chatdb"},
)

# A legal hold on one user (every conversation of theirs, present and future) or on one
# conversation, current while ``until`` is null or later than now. No foreign keys: the
# application may still delete its rows, and the hold stays on record when it does.
holds = Table(
    HOLD_TABLE,
    Base.metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("user_id", String(255), nullable=True, index=True),
    Column("conversation_id", UUID(as_uuid=True), nullable=True, index=True),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("until", DateTime(timezone=True), nullable=True),
    Column("created_by", String(255), nullable=False),
    CheckConstraint("num_nonnulls(user_id, conversation_id) = 1", name="chatdb_hold_target_check"),
    CheckConstraint("length(btrim(reason)) > 0", name="chatdb_hold_reason_check"),
    comment="chatdb: legal holds; a held conversation is never deleted by chatdb",
    info={"owner": "chatdb"},
)


def _enum_values(enum_cls: type[enum.Enum]) -> str:
    return ", ".join(f"'{member.value}'" for member in enum_cls)


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    user_id: Mapped[str] = mapped_column(String(255), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    status: Mapped[ConversationStatus] = mapped_column(
        EnumText(ConversationStatus),
        nullable=False,
        server_default=text("'active'::character varying"),
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="(Message.created_at, Message.id)",
    )

    __table_args__ = (
        CheckConstraint(f"status IN ({_enum_values(ConversationStatus)})", name="conversations_status_check"),
        Index("idx_conversations_user_id", "user_id"),
        Index("idx_conversations_updated_at", text("updated_at DESC")),
        Index("idx_conversations_user_status", "user_id", "status"),
    )

    def __repr__(self) -> str:
        return f"Conversation(id={self.id!s}, user_id={self.user_id!r}, status={self.status!r})"


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[str] = mapped_column(String(255), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    role: Mapped[MessageRole] = mapped_column(EnumText(MessageRole), nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    # The column is called "metadata" in the database; the attribute cannot be,
    # because declarative classes reserve ``metadata`` for the MetaData object.
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    conversation: Mapped[Conversation] = relationship(back_populates="messages")

    __table_args__ = (
        CheckConstraint(f"role IN ({_enum_values(MessageRole)})", name="messages_role_check"),
        CheckConstraint(
            f"role != 'user' OR length(content) <= {USER_MESSAGE_MAX_LENGTH}",
            name="chk_user_message_length",
        ),
        Index("idx_messages_conversation_id", "conversation_id"),
        Index("idx_messages_conversation_created", "conversation_id", text("created_at DESC")),
    )

    def __repr__(self) -> str:
        return f"Message(id={self.id!s}, role={self.role!r}, conversation_id={self.conversation_id!s})"
