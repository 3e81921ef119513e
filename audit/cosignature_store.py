"""Witness cosignatures of the log's checkpoints: the ``audit_cosignatures`` table and its queries.

Kept beside ``audit/models.py`` and ``audit/repository.py`` rather than in them, so the witness
slice stays in its own modules (ADR 0021). Insert and select only; the table is append-only
(migration 0016), like the log itself.

A cosignature is stored only after :func:`audit.cosignature.verify_cosignatures` accepted it for
the checkpoint's stored note under the configured witness key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import BigInteger, Connection, DateTime, LargeBinary, String, Table, Text, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from audit.cosignature import Cosignature, CosignerKey
from audit.repository import checkpoints
from core.db import Base


class AuditCosignature(Base):
    __tablename__ = "audit_cosignatures"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    witness_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    key_id: Mapped[bytes] = mapped_column(LargeBinary(4), primary_key=True)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    signature_line: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


cosignatures = cast(Table, AuditCosignature.__table__)


@dataclass(frozen=True)
class WitnessProgress:
    """The newest checkpoint a witness cosigned, as this log knows it."""

    tree_size: int
    issued_at: datetime


def insert_cosignature(conn: Connection, tree_size: int, cosignature: Cosignature, received_at: datetime) -> bool:
    """Store a verified cosignature of the checkpoint of ``tree_size``; False if that witness's is stored."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(cosignatures).values(
        tree_size=tree_size, witness_name=cosignature.key.name, key_id=cosignature.key.key_id,
        timestamp=cosignature.timestamp, signature_line=cosignature.line, received_at=received_at,
    ).on_conflict_do_nothing().returning(cosignatures.c.tree_size)
    return conn.execute(statement).first() is not None  # no row back: already stored


def lines_for(conn: Connection, tree_sizes: Iterable[int]) -> dict[int, list[str]]:
    """The stored cosignature lines per tree size, in a stable order (witness name, key ID)."""
    sizes = sorted(set(tree_sizes))
    if not sizes:
        return {}
    rows = conn.execute(select(cosignatures.c.tree_size, cosignatures.c.signature_line)
                        .where(cosignatures.c.tree_size.in_(sizes))
                        .order_by(cosignatures.c.tree_size, cosignatures.c.witness_name, cosignatures.c.key_id))
    out: dict[int, list[str]] = {}
    for size, line in rows:
        out.setdefault(int(size), []).append(str(line))
    return out


def newest_cosigned(conn: Connection, key: CosignerKey) -> WitnessProgress | None:
    """The newest checkpoint ``key`` cosigned (its size and when the log issued it), or None."""
    size = conn.execute(select(func.max(cosignatures.c.tree_size)).where(
        cosignatures.c.witness_name == key.name, cosignatures.c.key_id == key.key_id)).scalar()
    if size is None:
        return None
    issued = conn.execute(select(checkpoints.c.issued_at).where(checkpoints.c.tree_size == size)).scalar_one()
    return WitnessProgress(int(size), issued)
