"""Vault: subjects, wrapped data keys, sealed fields with blind indexes, recordings, key rotations.

These tables hold only ciphertext, keyed hashes and tokens (see ``vault/models.py``). They
are not append-only: field updates replace rows, shredding deletes data keys, rotation
rewrites wrapped keys. On PostgreSQL, when ``TARCZA_DB_APP_ROLE`` names a role, that role
is granted SELECT, INSERT, UPDATE and DELETE on them.

Revision ID: 0003_vault
Revises: 0002_audit_log
Create Date: 2026-11-23
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003_vault"
down_revision = "0002_audit_log"
branch_labels = None
depends_on = None

TABLES = ("vault_subjects", "vault_data_keys", "vault_fields", "vault_recordings", "vault_key_rotations")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _subject_fk() -> sa.Column[Any]:
    return sa.Column("subject_token", sa.String(64), sa.ForeignKey("vault_subjects.token"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "vault_subjects",
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("dek_version", sa.Integer, nullable=False),
        sa.Column("idempotency_hash", sa.LargeBinary(32), nullable=True, unique=True),
        sa.Column("request_hash", sa.LargeBinary(32), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("shredded_at", nullable=True),
        sa.CheckConstraint("kind IN ('debtor', 'third_party')", name="kind"),
        sa.CheckConstraint("status IN ('active', 'shredded')", name="status"),
    )
    op.create_table(
        "vault_data_keys",
        _subject_fk(),
        sa.Column("dek_version", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("kek_version", sa.Integer, nullable=False),
        sa.Column("wrapped", sa.LargeBinary, nullable=False),
        _timestamp("created_at"),
        _timestamp("rewrapped_at", nullable=True),
        sa.PrimaryKeyConstraint("subject_token", "dek_version"),
    )
    op.create_index("ix_vault_data_keys_kek_version", "vault_data_keys",
                    ["kek_version", "subject_token", "dek_version"])
    op.create_table(
        "vault_fields",
        _subject_fk(),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("blind_index", sa.LargeBinary(32), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("subject_token", "field", "seq"),
    )
    op.create_index("ix_vault_fields_blind_index", "vault_fields", ["field", "blind_index"])
    op.create_table(
        "vault_recordings",
        sa.Column("id", sa.String(64), primary_key=True),
        _subject_fk(),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("dek_version", sa.Integer, nullable=False),
        _timestamp("created_at"),
        _timestamp("shredded_at", nullable=True),
    )
    op.create_index("ix_vault_recordings_subject_token", "vault_recordings", ["subject_token"])
    op.create_table(
        "vault_key_rotations",
        sa.Column("to_version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("from_version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rewrapped", sa.BigInteger, nullable=False),
        _timestamp("started_at"),
        _timestamp("finished_at", nullable=True),
        sa.CheckConstraint("status IN ('running', 'completed')", name="status"),
    )
    running = sa.text("status = 'running'")
    op.create_index("uq_vault_key_rotations_running", "vault_key_rotations", ["status"], unique=True,
                    sqlite_where=running, postgresql_where=running)
    context = op.get_context()
    role = context.config.attributes.get("app_role") if context.config else None
    if role and op.get_bind().dialect.name == "postgresql":
        grant_app_role(role)


def grant_app_role(role: str) -> None:
    """Grant ``role`` the DML the vault needs on its tables (PostgreSQL)."""
    quoted = '"' + role.replace('"', '""') + '"'
    for table in TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {quoted}")


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
