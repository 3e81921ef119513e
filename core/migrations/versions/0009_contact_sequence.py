"""Contacts with one subject are decided one after another: a per-subject sequence on the index.

``contact_events.subject_seq`` numbers a subject's indexed contact entries 1, 2, 3...; the
recorder reads the subject's highest number with the history its firewall looks back on, and the
entry's index row, inserted in the log entry's own transaction, takes the next one. The unique
index makes the second of two recordings decided on the same history fail in that transaction
(it is then decided again on the new history), so a frequency cap or a cooldown cannot be passed
twice at once (ADR 0013). Rows indexed before this revision, and rows rebuilt from the log, have
no number (NULL; the unique index ignores them).

Revision ID: 0009_contact_sequence
Revises: 0008_api_hardening
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_contact_sequence"
down_revision = "0008_api_hardening"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contact_events") as batch:
        batch.add_column(sa.Column("subject_seq", sa.BigInteger, nullable=True))
    op.create_index("uq_contact_events_subject_seq", "contact_events", ["subject_token", "subject_seq"],
                    unique=True)


def downgrade() -> None:
    op.drop_index("uq_contact_events_subject_seq", "contact_events")
    with op.batch_alter_table("contact_events") as batch:
        batch.drop_column("subject_seq")
