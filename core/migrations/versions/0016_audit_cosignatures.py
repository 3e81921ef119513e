"""Witness cosignatures of audit checkpoints (C2SP tlog-cosignature), append-only like the log.

``audit_cosignatures`` holds, per checkpoint (tree size) and witness (key name and key ID), the
cosignature line the witness returned, its timestamp and when it arrived. Rows are evidence:
the same triggers as the audit tables refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL),
and ``TARCZA_DB_APP_ROLE`` is granted INSERT and SELECT only (ADR 0021).

Revision ID: 0016_audit_cosignatures
Revises: 0009_contact_sequence
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_audit_cosignatures"
down_revision = "0009_contact_sequence"
branch_labels = None
depends_on = None

TABLE = "audit_cosignatures"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("witness_name", sa.String(255), primary_key=True),
        sa.Column("key_id", sa.LargeBinary(4), primary_key=True),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("signature_line", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {TABLE}_no_{action.lower()} BEFORE {action} ON {TABLE} "
                       f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: {action} refused'); END")
        return
    op.execute(f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
               "FOR EACH ROW EXECUTE FUNCTION tarcza_audit_append_only()")
    op.execute(f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
               "FOR EACH STATEMENT EXECUTE FUNCTION tarcza_audit_append_only()")
    config = op.get_context().config
    role = config.attributes.get("app_role") if config is not None else None
    if role:
        quoted = '"' + role.replace('"', '""') + '"'
        op.execute(f"REVOKE ALL ON {TABLE} FROM {quoted}")
        op.execute(f"GRANT SELECT, INSERT ON {TABLE} TO {quoted}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}")
    op.drop_table(TABLE)
