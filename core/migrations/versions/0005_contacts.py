"""Contacts: debts, cases, a subject's contact rules, objections, and the index of contact events.

No personal data in clear (see ``contacts/models.py``). On PostgreSQL, when
``TARCZA_DB_APP_ROLE`` names a role, that role is granted SELECT, INSERT, UPDATE and DELETE
on the tables that change, and SELECT and INSERT on ``contact_events``.

Revision ID: 0005_contacts
Revises: 0004_identity
Create Date: 2026-11-23
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005_contacts"
down_revision = "0004_identity"
branch_labels = None
depends_on = None

TABLES = ("contact_debts", "contact_cases", "contact_subject_rules", "contact_objections", "contact_events")
TS = sa.DateTime(timezone=True)


def _subject_fk(*, primary_key: bool = False) -> sa.Column[Any]:
    return sa.Column("subject_token", sa.String(64), sa.ForeignKey("vault_subjects.token"), nullable=False,
                     primary_key=primary_key, index=not primary_key)


def upgrade() -> None:
    op.create_table(
        "contact_debts",
        sa.Column("id", sa.String(64), primary_key=True),
        _subject_fk(),
        sa.Column("creditor", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("consumer", sa.Boolean, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("judgment_date", sa.Date, nullable=True),
        sa.Column("assigned_on", sa.Date, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("settled_on", sa.Date, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("status IN ('open', 'settled', 'written_off')", name="status"),
    )
    op.create_table(
        "contact_cases",
        sa.Column("id", sa.String(64), primary_key=True),
        _subject_fk(),
        sa.Column("debt_id", sa.String(64), sa.ForeignKey("contact_debts.id"), nullable=True, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.CheckConstraint("status IN ('open', 'closed')", name="status"),
    )
    op.create_table(
        "contact_subject_rules",
        _subject_fk(primary_key=True),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("opted_out_channels", sa.String(100), nullable=False),
        sa.Column("weekend_channels", sa.String(100), nullable=False),
        sa.Column("cease_contact", sa.Boolean, nullable=False),
        sa.Column("restricted_since", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "contact_objections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _subject_fk(),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("withdrawn_at", TS, nullable=True),
    )
    op.create_table(
        "contact_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("subject_token", sa.String(64), sa.ForeignKey("vault_subjects.token"), nullable=False),
        sa.Column("debt_id", sa.String(64), nullable=True),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("conversation", sa.Boolean, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("rules", sa.String(300), nullable=False),
        sa.Column("recording_id", sa.String(64), nullable=True),
        sa.Column("log_index", sa.BigInteger, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.CheckConstraint("decision IN ('allow', 'flag', 'refuse')", name="decision"),
    )
    op.create_index("ix_contact_events_subject_time", "contact_events", ["subject_token", "occurred_at"])
    op.create_index("ix_contact_events_decision_time", "contact_events", ["decision", "recorded_at"])
    context = op.get_context()
    role = context.config.attributes.get("app_role") if context.config else None
    if role and op.get_bind().dialect.name == "postgresql":
        grant_app_role(role)


def grant_app_role(role: str) -> None:
    """Grant ``role`` the DML the contacts tables need (PostgreSQL); contact events are never changed."""
    quoted = '"' + role.replace('"', '""') + '"'
    for table in TABLES:
        rights = "SELECT, INSERT" if table == "contact_events" else "SELECT, INSERT, UPDATE, DELETE"
        op.execute(f"GRANT {rights} ON {table} TO {quoted}")
    op.execute(f"GRANT USAGE ON SEQUENCE contact_objections_id_seq TO {quoted}")


def downgrade() -> None:
    op.drop_index("ix_contact_events_decision_time", "contact_events")
    op.drop_index("ix_contact_events_subject_time", "contact_events")
    for table in reversed(TABLES):
        op.drop_table(table)
