"""Tables of the PII vault. Only ciphertext, keyed hashes and tokens are stored here.

* ``vault_subjects``: one row per subject, named by its random token; ``status`` is
  ``active`` or ``shredded`` (a shredded subject keeps its row so its token stays taken
  and a caller gets "shredded" rather than "unknown").
* ``vault_data_keys``: the subject's data keys (AES-256), each wrapped by a key-encryption
  key of the :class:`~vault.keys.KeyProvider`; ``kek_version`` says which. Shredding
  DELETEs these rows: that is what makes the subject's data unreadable.
* ``vault_fields``: one row per field value: the sealed envelope and, for searchable
  fields, the truncated blind index (cleared when the subject is shredded).
* ``vault_recordings``: sealed blobs (recordings) of a subject: blob id, plaintext size and
  SHA-256, media type.
* ``vault_key_rotations``: one row per KEK rotation, keyed by the KEK version it rotates
  to; ``running`` until every data key is rewrapped, so an interrupted rotation resumes.

Unlike the audit tables these are not append-only: updates replace field rows, shredding
deletes keys, rotation rewrites wrapped keys. The schema is created by the Alembic
revision ``0003_vault``; these classes describe it for queries.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

VAULT_TABLES = ("vault_subjects", "vault_data_keys", "vault_fields", "vault_recordings", "vault_key_rotations")

SUBJECT_KINDS = ("debtor", "third_party")
ACTIVE = "active"
SHREDDED = "shredded"
RUNNING = "running"
COMPLETED = "completed"


class VaultSubject(Base):
    __tablename__ = "vault_subjects"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    dek_version: Mapped[int] = mapped_column(Integer)
    # SHA-256 of (principal id, caller's idempotency key): the key itself is never stored.
    idempotency_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    # Keyed hash (HMAC) of the normalised request, to tell a retry from a different request.
    request_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    shredded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("kind IN ('debtor', 'third_party')", name="kind"),
        CheckConstraint("status IN ('active', 'shredded')", name="status"),
    )


class VaultDataKey(Base):
    __tablename__ = "vault_data_keys"

    subject_token: Mapped[str] = mapped_column(String(64), ForeignKey("vault_subjects.token"), primary_key=True)
    dek_version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kek_version: Mapped[int] = mapped_column(Integer)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rewrapped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_vault_data_keys_kek_version", "kek_version", "subject_token", "dek_version"),)


class VaultField(Base):
    __tablename__ = "vault_fields"

    subject_token: Mapped[str] = mapped_column(String(64), ForeignKey("vault_subjects.token"), primary_key=True)
    field: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    blind_index: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_vault_fields_blind_index", "field", "blind_index", "subject_token",
                            sqlite_where=text("blind_index IS NOT NULL"),
                            postgresql_where=text("blind_index IS NOT NULL")),)


class VaultRecording(Base):
    __tablename__ = "vault_recordings"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_token: Mapped[str] = mapped_column(String(64), ForeignKey("vault_subjects.token"), index=True)
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    dek_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    shredded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class VaultKeyRotation(Base):
    __tablename__ = "vault_key_rotations"

    to_version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    from_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    rewrapped: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('running', 'completed')", name="status"),
        # At most one rotation runs at a time.
        Index("uq_vault_key_rotations_running", "status", unique=True,
              sqlite_where=text("status = 'running'"), postgresql_where=text("status = 'running'")),
    )
