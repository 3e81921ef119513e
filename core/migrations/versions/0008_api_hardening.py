"""API hardening: stored answers of idempotent POSTs, and API clients bound to a TLS certificate.

``http_idempotency`` keeps, per principal and ``Idempotency-Key``, the fingerprint of the first
request and its answer (sealed: an answer may carry a secret or personal data), until
``expires_at``. ``identity_clients.cert_sha256`` is the SHA-256 of the DER certificate a client
must present over mutual TLS (NULL: no binding). On PostgreSQL, when ``TARCZA_DB_APP_ROLE`` names
a role, it is granted SELECT, INSERT, UPDATE and DELETE on ``http_idempotency``.

Revision ID: 0008_api_hardening
Revises: 0007_gdpr
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_api_hardening"
down_revision = "0007_gdpr"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "http_idempotency",
        sa.Column("principal", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(300), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),  # NULL while the first request runs
        sa.Column("response", sa.LargeBinary, nullable=True),  # sealed answer
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_index("ix_http_idempotency_expires_at", "http_idempotency", ["expires_at"])
    with op.batch_alter_table("identity_clients") as batch:
        batch.add_column(sa.Column("cert_sha256", sa.String(64), nullable=True))
    context = op.get_context()
    role = context.config.attributes.get("app_role") if context.config else None
    if role and op.get_bind().dialect.name == "postgresql":
        quoted = '"' + role.replace('"', '""') + '"'
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON http_idempotency TO {quoted}")


def downgrade() -> None:
    with op.batch_alter_table("identity_clients") as batch:
        batch.drop_column("cert_sha256")
    op.drop_index("ix_http_idempotency_expires_at", "http_idempotency")
    op.drop_table("http_idempotency")
