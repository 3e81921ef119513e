"""GDPR: data subject requests (deadlines, verification, status, outcome) and legal holds.

No personal data in clear (see ``gdpr/models.py``). On PostgreSQL, when ``TARCZA_DB_APP_ROLE``
names a role, that role is granted SELECT, INSERT and UPDATE on both tables.

Revision ID: 0007_gdpr
Revises: 0006_blind_index_covering
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_gdpr"
down_revision = "0006_blind_index_covering"
branch_labels = None
depends_on = None

TABLES = ("gdpr_requests", "gdpr_legal_holds")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gdpr_requests",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("subject_token", sa.String(64), sa.ForeignKey("vault_subjects.token"), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("received_on", sa.Date, nullable=False),
        sa.Column("due_on", sa.Date, nullable=False),
        sa.Column("extended_months", sa.Integer, nullable=False),
        sa.Column("extension_reason", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("verification_method", sa.String(40), nullable=True),
        sa.Column("verified_at", TS, nullable=True),
        sa.Column("verified_by", sa.String(128), nullable=True),
        sa.Column("outcome", sa.String(300), nullable=True),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.CheckConstraint("kind IN ('access', 'portability', 'erasure', 'rectification', 'restriction', "
                           "'objection')", name="kind"),
        sa.CheckConstraint("status IN ('received', 'verified', 'completed', 'refused')", name="status"),
    )
    op.create_index("ix_gdpr_requests_open_due", "gdpr_requests", ["status", "due_on"])
    op.create_table(
        "gdpr_legal_holds",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("subject_token", sa.String(64), sa.ForeignKey("vault_subjects.token"), nullable=False, index=True),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("starts_on", sa.Date, nullable=False),
        sa.Column("ends_on", sa.Date, nullable=True),
        sa.Column("released_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    context = op.get_context()
    role = context.config.attributes.get("app_role") if context.config else None
    if role and op.get_bind().dialect.name == "postgresql":
        quoted = '"' + role.replace('"', '""') + '"'
        for table in TABLES:
            op.execute(f"GRANT SELECT, INSERT, UPDATE ON {table} TO {quoted}")


def downgrade() -> None:
    op.drop_index("ix_gdpr_requests_open_due", "gdpr_requests")
    for table in reversed(TABLES):
        op.drop_table(table)
