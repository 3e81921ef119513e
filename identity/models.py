"""Tables of identity: users, their second factors, sessions, API clients and their tokens.

Invariants:

* no secret is stored in clear: passwords are argon2id hashes, session tokens, access
  tokens, client secrets and recovery codes are SHA-256 hashes (all of them are random
  with at least 80 bits; see docs/adr/0005-authorisation.md), and TOTP secrets are sealed
  with AES-256-GCM under the identity key (:mod:`identity.secretbox`);
* every time is timezone-aware UTC, on SQLite too (:class:`UTCDateTime`);
* users and clients are never deleted, only disabled or revoked, so audit entries keep
  pointing at something.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from core.db import Base


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite returns naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("identity stores timezone-aware datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - drivers return datetimes
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class User(Base):
    __tablename__ = "identity_users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[str] = mapped_column(String(255))  # space-separated role names, sorted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, roles={self.roles!r})"


class CaseAssignment(Base):
    __tablename__ = "identity_case_assignments"

    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("identity_users.id", ondelete="CASCADE"),
                                         primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class TotpFactor(Base):
    """A user's TOTP secret, sealed; ``confirmed_at`` is set by the first valid code."""

    __tablename__ = "identity_totp_factors"

    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("identity_users.id", ondelete="CASCADE"),
                                         primary_key=True)
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # newest accepted time-step

    def __repr__(self) -> str:
        return f"TotpFactor(user_id={self.user_id!r}, confirmed={self.confirmed_at is not None})"


class RecoveryCode(Base):
    __tablename__ = "identity_recovery_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("identity_users.id", ondelete="CASCADE"),
                                         index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:
        return f"RecoveryCode(id={self.id!r}, used={self.used_at is not None})"


class LoginSession(Base):
    __tablename__ = "identity_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("identity_users.id", ondelete="CASCADE"),
                                         index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # absolute end
    second_factor_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:
        return f"LoginSession(id={self.id!r}, user_id={self.user_id!r})"


class ApiClient(Base):
    __tablename__ = "identity_clients"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[str] = mapped_column(String(500))  # space-separated
    purposes: Mapped[str | None] = mapped_column(String(1000), nullable=True)  # space-separated; None: any
    ip_allowlist: Mapped[str | None] = mapped_column(String(2000), nullable=True)  # space-separated CIDRs
    cert_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)  # bound TLS client certificate
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:
        return f"ApiClient(id={self.id!r}, scopes={self.scopes!r})"


class ClientSecret(Base):
    """One secret of a client; after a rotation the old one lives until ``expires_at``."""

    __tablename__ = "identity_client_secrets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(40), ForeignKey("identity_clients.id", ondelete="CASCADE"),
                                           index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:
        return f"ClientSecret(id={self.id!r}, client_id={self.client_id!r})"


class AccessToken(Base):
    __tablename__ = "identity_access_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(40), ForeignKey("identity_clients.id", ondelete="CASCADE"),
                                           index=True)
    scopes: Mapped[str] = mapped_column(String(500))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:
        return f"AccessToken(id={self.id!r}, client_id={self.client_id!r})"
