"""Identity: users, case assignments, TOTP factors, recovery codes, sessions, API clients, secrets, tokens.

Revision ID: 0004_identity
Revises: 0003_vault
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_identity"
down_revision = "0003_vault"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _user_fk() -> sa.ForeignKey:
    return sa.ForeignKey("identity_users.id", ondelete="CASCADE")


def _client_fk() -> sa.ForeignKey:
    return sa.ForeignKey("identity_clients.id", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "identity_users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("roles", sa.String(255), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("disabled_at", TS, nullable=True),
        sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("locked_until", TS, nullable=True),
    )
    op.create_table(
        "identity_case_assignments",
        sa.Column("user_id", sa.String(36), _user_fk(), primary_key=True),
        sa.Column("case_id", sa.String(64), primary_key=True),
    )
    op.create_table(
        "identity_totp_factors",
        sa.Column("user_id", sa.String(36), _user_fk(), primary_key=True),
        sa.Column("sealed_secret", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("confirmed_at", TS, nullable=True),
        sa.Column("last_step", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "identity_recovery_codes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(36), _user_fk(), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
    )
    op.create_index("ix_identity_recovery_codes_user_id", "identity_recovery_codes", ["user_id"])
    op.create_table(
        "identity_sessions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.String(36), _user_fk(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("second_factor_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_index("ix_identity_sessions_user_id", "identity_sessions", ["user_id"])
    op.create_table(
        "identity_clients",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("scopes", sa.String(500), nullable=False),
        sa.Column("purposes", sa.String(1000), nullable=True),
        sa.Column("ip_allowlist", sa.String(2000), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_table(
        "identity_client_secrets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("client_id", sa.String(40), _client_fk(), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
    )
    op.create_index("ix_identity_client_secrets_client_id", "identity_client_secrets", ["client_id"])
    op.create_table(
        "identity_access_tokens",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("client_id", sa.String(40), _client_fk(), nullable=False),
        sa.Column("scopes", sa.String(500), nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_index("ix_identity_access_tokens_client_id", "identity_access_tokens", ["client_id"])


def downgrade() -> None:
    for table in ("identity_access_tokens", "identity_client_secrets", "identity_clients", "identity_sessions",
                  "identity_recovery_codes", "identity_totp_factors", "identity_case_assignments",
                  "identity_users"):
        op.drop_table(table)
