"""Debts as the law sees them: a debt's legal history, its parties, and the DPO's registers.

* ``contact_debt_events``: the legal history of a debt (judgment, payment order, court action,
  enforcement, mediation, acknowledgement, part payment, suspension, assignment), one row per
  event, each also a ``debt.event_recorded`` entry of the audit log (:mod:`contacts.legal_events`).
* ``contact_debt_parties``: guarantors and co-debtors of a debt (subject tokens and a role).
* ``contact_debts.creditor_kind`` (bank, lender, telecom, ...; checked against the claim kind)
  and ``contact_debts.held_as`` (``controller``: the firm bought the claim; ``processor``: it
  collects for the creditor).
* ``gdpr_notices`` (Art. 14 information after the data was obtained), ``gdpr_recipients`` and
  ``gdpr_recipient_notifications`` (Art. 19), ``gdpr_breaches`` (the Art. 33(5) register).

Repair (issue 17, defect 1): a debt recorded with a ``judgment_date`` (through ``POST /v1/debts``
or ``POST /v1/debts/{id}/status``) gets that judgment as an event of its history, and the old
judgment kinds become the claim's base kind (``judgment`` -> ``general``, ``judgment_periodic``
-> ``periodic``): a judgment on a ``general`` debt no longer makes every read fail. The
``judgment_date`` column is kept (the log's earlier ``debt.*`` entries name it) but no longer read.

No personal data in clear: tokens, organisation names, codes, dates. On PostgreSQL, when
``TARCZA_DB_APP_ROLE`` names a role, it is granted SELECT, INSERT and UPDATE on the new tables.

Revision ID: 0013_debts_in_law
Revises: 0009_contact_sequence
Create Date: 2026-11-24
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0013_debts_in_law"
down_revision = "0010_verification_evidence"
branch_labels = None
depends_on = None

TABLES = ("contact_debt_events", "contact_debt_parties", "gdpr_notices", "gdpr_recipients",
          "gdpr_recipient_notifications", "gdpr_breaches")
TS = sa.DateTime(timezone=True)
MIGRATED_BY = "migration-0013"
_BASE_KINDS = {"judgment": "general", "judgment_periodic": "periodic"}


def _subject(name: str = "subject_token", *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(64), sa.ForeignKey("vault_subjects.token"), nullable=nullable, index=True)


def upgrade() -> None:
    with op.batch_alter_table("contact_debts") as batch:
        batch.add_column(sa.Column("creditor_kind", sa.String(24), nullable=True))
        batch.add_column(sa.Column("held_as", sa.String(16), nullable=False, server_default="controller"))
    op.create_table(
        "contact_debt_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("debt_id", sa.String(64), sa.ForeignKey("contact_debts.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("occurred_on", sa.Date, nullable=False),
        _subject("party", nullable=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("assignee", sa.String(200), nullable=True),
        sa.Column("amount_minor", sa.BigInteger, nullable=True),
        sa.Column("ground", sa.String(32), nullable=True),
        sa.Column("withdrawn", sa.Boolean, nullable=False),
        sa.Column("log_index", sa.BigInteger, nullable=True),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.UniqueConstraint("debt_id", "seq", name="uq_contact_debt_events_seq"),
    )
    op.create_table(
        "contact_debt_parties",
        sa.Column("debt_id", sa.String(64), sa.ForeignKey("contact_debts.id"), primary_key=True),
        sa.Column("subject_token", sa.String(64), sa.ForeignKey("vault_subjects.token"), primary_key=True,
                  index=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.CheckConstraint("role IN ('guarantor', 'co_debtor')", name="role"),
    )
    op.create_table(
        "gdpr_notices",
        sa.Column("id", sa.String(40), primary_key=True),
        _subject(),
        sa.Column("debt_id", sa.String(64), nullable=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("obtained_on", sa.Date, nullable=False),
        sa.Column("due_on", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("given_on", sa.Date, nullable=True),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("exemption", sa.String(32), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("status IN ('open', 'given', 'exempt')", name="status"),
    )
    op.create_index("ix_gdpr_notices_status_due", "gdpr_notices", ["status", "due_on"])
    op.create_table(
        "gdpr_recipients",
        sa.Column("id", sa.String(40), primary_key=True),
        _subject(),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("debt_id", sa.String(64), nullable=True),
        sa.Column("disclosed_on", sa.Date, nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
    )
    op.create_table(
        "gdpr_recipient_notifications",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("recipient_id", sa.String(40), sa.ForeignKey("gdpr_recipients.id"), nullable=False, index=True),
        _subject(),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("notified_on", sa.Date, nullable=True),
        sa.Column("method", sa.String(16), nullable=True),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("action IN ('rectification', 'erasure', 'restriction')", name="action"),
        sa.CheckConstraint("status IN ('pending', 'notified', 'impossible', 'disproportionate')", name="status"),
    )
    op.create_table(
        "gdpr_breaches",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("aware_at", TS, nullable=False),
        sa.Column("occurred_from", TS, nullable=True),
        sa.Column("occurred_until", TS, nullable=True),
        sa.Column("nature", sa.String(100), nullable=False),
        sa.Column("data_categories", sa.String(200), nullable=False),
        sa.Column("subjects_count", sa.Integer, nullable=True),
        sa.Column("actor_id", sa.String(128), nullable=True),
        sa.Column("facts", sa.Text, nullable=False),
        sa.Column("effects", sa.Text, nullable=False),
        sa.Column("remedial_action", sa.Text, nullable=False),
        sa.Column("risk", sa.String(16), nullable=False),
        sa.Column("authority_notified_at", TS, nullable=True),
        sa.Column("authority_reference", sa.String(100), nullable=True),
        sa.Column("subjects_notified_at", TS, nullable=True),
        sa.Column("not_notified_reason", sa.String(300), nullable=True),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("risk IN ('unlikely', 'risk', 'high')", name="risk"),
    )
    _repair_judgments()
    context = op.get_context()
    role = context.config.attributes.get("app_role") if context.config else None
    if role and op.get_bind().dialect.name == "postgresql":
        quoted = '"' + role.replace('"', '""') + '"'
        for table in TABLES:
            op.execute(f"GRANT SELECT, INSERT, UPDATE ON {table} TO {quoted}")


def _repair_judgments() -> None:
    """Each debt's ``judgment_date`` becomes a judgment event; the old judgment kinds their base kind."""
    bind = op.get_bind()
    debts = sa.table("contact_debts", sa.column("id", sa.String), sa.column("kind", sa.String),
                     sa.column("judgment_date", sa.Date))
    events = sa.table("contact_debt_events", *(sa.column(name) for name in (
        "id", "debt_id", "seq", "kind", "occurred_on", "party", "source", "assignee", "amount_minor", "ground",
        "withdrawn", "log_index", "recorded_by", "recorded_at")))
    now = datetime.now(UTC)
    rows = bind.execute(sa.select(debts.c.id, debts.c.kind, debts.c.judgment_date)
                        .where(debts.c.judgment_date.is_not(None))).all()
    if rows:
        bind.execute(sa.insert(events), [{
            "id": str(uuid.uuid4()), "debt_id": debt_id, "seq": 1, "kind": "judgment", "occurred_on": judgment,
            "party": None, "source": "judgment_date (before 0013)", "assignee": None, "amount_minor": None,
            "ground": None, "withdrawn": False, "log_index": None, "recorded_by": MIGRATED_BY, "recorded_at": now,
        } for debt_id, _kind, judgment in rows])
    for old, base in _BASE_KINDS.items():
        bind.execute(sa.update(debts).where(debts.c.kind == old).values(kind=base))


def downgrade() -> None:
    for table in reversed(TABLES):
        if table == "gdpr_notices":
            op.drop_index("ix_gdpr_notices_status_due", "gdpr_notices")
        op.drop_table(table)
    with op.batch_alter_table("contact_debts") as batch:
        batch.drop_column("held_as")
        batch.drop_column("creditor_kind")
