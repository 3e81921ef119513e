"""Tables of the audit log. Append-only: database triggers refuse UPDATE and DELETE.

* ``audit_entries``: one row per leaf; ``idx`` is the 0-based leaf index (a total order).
* ``audit_nodes``: every perfect subtree hash of level >= 1 (level 0 is
  ``audit_entries.leaf_hash``), so any proof or root needs O(log n) rows.
* ``audit_checkpoints``: signed checkpoints (C2SP signed notes).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

AUDIT_TABLES = ("audit_entries", "audit_nodes", "audit_checkpoints")


class AuditEntry(Base):
    __tablename__ = "audit_entries"

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))  # unique where not null (migration 0002)
    request_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))  # set when an idempotency key is
    event_type: Mapped[str] = mapped_column(String(64))
    subject_token: Mapped[str | None] = mapped_column(String(64))
    actor_id: Mapped[str] = mapped_column(String(128))
    actor_kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    leaf_input: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))

    __table_args__ = (
        Index("ix_audit_entries_subject", "subject_token", "idx"),
        Index("ix_audit_entries_type", "event_type", "idx"),
        Index("ix_audit_entries_actor", "actor_id", "idx"),
        Index("ix_audit_entries_time", "occurred_at", "idx"),
    )


class AuditNode(Base):
    __tablename__ = "audit_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoints"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
