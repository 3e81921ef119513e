"""The evidence of a data subject request's identity verification: a reference to it, beside method and verifier.

``gdpr_requests.verification_reference`` names the evidence in the firm's own files (a case-file
or document-register reference, never the identity document's own number: the service refuses
text that looks like personal data). With ``verification_method``, ``verified_by`` and
``verified_at`` it says how, on what evidence and by whom the requester was identified before
anything was done for them (GDPR Art. 12(6); issue 16, ADR 0014). Existing rows have none (NULL).

Revision ID: 0010_verification_evidence
Revises: 0009_contact_sequence
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_verification_evidence"
down_revision = "0016_audit_cosignatures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gdpr_requests") as batch:
        batch.add_column(sa.Column("verification_reference", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gdpr_requests") as batch:
        batch.drop_column("verification_reference")
