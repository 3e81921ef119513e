"""Vault: the blind-index index also holds the subject token, so a search reads the index alone.

A lookup by blind index needs only the subject tokens; with ``subject_token`` in the index
(field, blind_index, subject_token) SQLite answers from the index (a covering index) and
PostgreSQL can use an index-only scan, instead of one table page per match. The index is
partial (``blind_index IS NOT NULL``): fields without a blind index (addresses, notes,
positions) and shredded subjects' fields have no entry, which keeps it smaller to write.

Revision ID: 0006_blind_index_covering
Revises: 0005_contacts
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_blind_index_covering"
down_revision = "0005_contacts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_vault_fields_blind_index", "vault_fields")
    op.create_index("ix_vault_fields_blind_index", "vault_fields", ["field", "blind_index", "subject_token"],
                    sqlite_where=sa.text("blind_index IS NOT NULL"),
                    postgresql_where=sa.text("blind_index IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_vault_fields_blind_index", "vault_fields")
    op.create_index("ix_vault_fields_blind_index", "vault_fields", ["field", "blind_index"])
