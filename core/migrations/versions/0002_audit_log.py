"""Audit log: entries, Merkle nodes, checkpoints; append-only triggers; app-role grants.

On both backends, triggers refuse UPDATE and DELETE on the three tables (and TRUNCATE on
PostgreSQL). On PostgreSQL, when ``TARCZA_DB_APP_ROLE`` names a role, that role is granted
INSERT and SELECT only on them (ALL revoked first), so even a compromised application
cannot rewrite history; run the migration as the owner, and the application as that role.

Revision ID: 0002_audit_log
Revises: 0001_foundation
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_audit_log"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

TABLES = ("audit_entries", "audit_nodes", "audit_checkpoints")


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("request_hash", sa.LargeBinary(32), nullable=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("subject_token", sa.String(64), nullable=True),
        sa.Column("actor_id", sa.String(128), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leaf_input", sa.LargeBinary, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_index("uq_audit_entries_idempotency_key", "audit_entries", ["idempotency_key"], unique=True,
                    sqlite_where=sa.text("idempotency_key IS NOT NULL"),
                    postgresql_where=sa.text("idempotency_key IS NOT NULL"))
    op.create_index("ix_audit_entries_subject", "audit_entries", ["subject_token", "idx"])
    op.create_index("ix_audit_entries_type", "audit_entries", ["event_type", "idx"])
    op.create_index("ix_audit_entries_actor", "audit_entries", ["actor_id", "idx"])
    op.create_index("ix_audit_entries_time", "audit_entries", ["occurred_at", "idx"])
    op.create_table(
        "audit_nodes",
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for table in TABLES:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END"
                )
    else:
        op.execute(
            "CREATE FUNCTION tarcza_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP "
            "USING ERRCODE = 'insufficient_privilege'; END $$"
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION tarcza_audit_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION tarcza_audit_append_only()"
            )
        config = op.get_context().config
        role = config.attributes.get("app_role") if config is not None else None
        if role:
            grant_app_role(role)


def grant_app_role(role: str) -> None:
    """Grant ``role`` INSERT and SELECT only on the audit tables (PostgreSQL)."""
    quoted = '"' + role.replace('"', '""') + '"'
    for table in TABLES:
        op.execute(f"REVOKE ALL ON {table} FROM {quoted}")
        op.execute(f"GRANT SELECT, INSERT ON {table} TO {quoted}")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS tarcza_audit_append_only()")
    for table in reversed(TABLES):
        op.drop_table(table)
