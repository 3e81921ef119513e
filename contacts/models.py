"""Tables of the collection evidence: debts, cases, contact rules of a subject, objections, contacts.

The audit log is the record of every contact; these tables are the index the firewall and
the console query (caps, cooldowns, history, denials) and the facts the rules need. None
holds personal data in clear: subjects are tokens, agents are ids, notes and GPS positions
live sealed in the log entry, never here.

* ``contact_debts``: a debt of a subject: the creditor it was assigned from and what kind of
  creditor that is, its kind for the limitation clock (:mod:`contacts.limitation`), due
  date, amount in minor units, status (``open``, ``settled``, ``written_off``), and whether
  the firm holds it as controller (it bought the claim) or as the creditor's processor.
  ``judgment_date`` is read no more: since ``0013`` a judgment is an event of the history.
* ``contact_debt_events``: the debt's legal history (:mod:`contacts.legal_events`), one row
  per event in the order recorded (``seq``), with the log index of its ``debt.event_recorded``.
* ``contact_debt_parties``: guarantors and co-debtors of a debt, by subject token.
* ``contact_cases``: a collection case on a debt, which agents are assigned to
  (``identity_case_assignments`` holds the assignment, by case id).
* ``contact_subject_rules``: what the subject asked for or what applies to them: time zone,
  channels they opted out of, channels where they agreed to weekend contact, the
  cease-contact flag and a GDPR Art. 18 restriction.
* ``contact_objections``: GDPR Art. 21 objections, per purpose and optionally per channel.
* ``contact_events``: one row per recorded or refused contact, keyed by its audit event id,
  with the log index: the firewall's history and the console's lists.

The schema is created by the Alembic revisions ``0005_contacts`` and ``0013_debts_in_law``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

CONTACT_TABLES = ("contact_debts", "contact_cases", "contact_subject_rules", "contact_objections", "contact_events",
                  "contact_debt_events", "contact_debt_parties")

DEBT_STATUSES = ("open", "settled", "written_off")
PARTY_ROLES = ("guarantor", "co_debtor")
HELD_AS = ("controller", "processor")
CASE_STATUSES = ("open", "closed")
DECISIONS = ("allow", "flag", "refuse")


class Debt(Base):
    __tablename__ = "contact_debts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_token: Mapped[str] = mapped_column(String(64), ForeignKey("vault_subjects.token"), index=True)
    creditor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(24))
    consumer: Mapped[bool] = mapped_column(Boolean)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    due_date: Mapped[date] = mapped_column(Date)
    judgment_date: Mapped[date | None] = mapped_column(Date)
    assigned_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    settled_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    creditor_kind: Mapped[str | None] = mapped_column(String(24))
    held_as: Mapped[str] = mapped_column(String(16), server_default="controller")

    __table_args__ = (CheckConstraint("status IN ('open', 'settled', 'written_off')", name="status"),)


class DebtEvent(Base):
    __tablename__ = "contact_debt_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the audit event id
    debt_id: Mapped[str] = mapped_column(String(64), ForeignKey("contact_debts.id"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    occurred_on: Mapped[date] = mapped_column(Date)
    party: Mapped[str | None] = mapped_column(String(64), ForeignKey("vault_subjects.token"), index=True)
    source: Mapped[str] = mapped_column(String(200))
    assignee: Mapped[str | None] = mapped_column(String(200))
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    ground: Mapped[str | None] = mapped_column(String(32))
    withdrawn: Mapped[bool] = mapped_column(Boolean)
    log_index: Mapped[int | None] = mapped_column(BigInteger)
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("debt_id", "seq", name="uq_contact_debt_events_seq"),)


class DebtParty(Base):
    __tablename__ = "contact_debt_parties"

    debt_id: Mapped[str] = mapped_column(String(64), ForeignKey("contact_debts.id"), primary_key=True)
    subject_token: Mapped[str] = mapped_column(String(64), ForeignKey("vault_subjects.token"), primary_key=True,
                                               index=True)
    role: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("role IN ('guarantor', 'co_debtor')", name="role"),)


class Case(Base):
    __tablename__ = "contact_cases"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_token: Mapped[str] = mapped_column(String(64), ForeignKey("vault_subjects.token"), index=True)
    debt_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("contact_debts.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("status IN ('open', 'closed')", name="status"),)


class SubjectRules(Base):
    __tablename__ = "contact_subject_rules"

    subject_token: Mapped[str] = mapped_column(String(64), ForeignKey("vault_subjects.token"), primary_key=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    opted_out_channels: Mapped[str] = mapped_column(String(100))  # comma-separated channel names
    weekend_channels: Mapped[str] = mapped_column(String(100))
    cease_contact: Mapped[bool] = mapped_column(Boolean)
    restricted_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Objection(Base):
    __tablename__ = "contact_objections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_token: Mapped[str] = mapped_column(String(64), ForeignKey("vault_subjects.token"), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ContactEvent(Base):
    __tablename__ = "contact_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the audit event id
    subject_token: Mapped[str] = mapped_column(String(64), ForeignKey("vault_subjects.token"))
    debt_id: Mapped[str | None] = mapped_column(String(64))
    case_id: Mapped[str | None] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(8))
    agent_id: Mapped[str] = mapped_column(String(128))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    conversation: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str | None] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(8))
    rules: Mapped[str] = mapped_column(String(300))  # comma-separated rule ids that flagged or refused
    recording_id: Mapped[str | None] = mapped_column(String(64))
    log_index: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # 1, 2, 3... per subject, taken in the log entry's transaction (NULL: indexed before 0009 or
    # rebuilt from the log); unique, so two contacts decided on one history cannot both land.
    subject_seq: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint("decision IN ('allow', 'flag', 'refuse')", name="decision"),
        Index("uq_contact_events_subject_seq", "subject_token", "subject_seq", unique=True),
        Index("ix_contact_events_subject_time", "subject_token", "occurred_at"),
        Index("ix_contact_events_decision_time", "decision", "recorded_at"),
    )
