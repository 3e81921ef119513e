"""Tables of the registers a DPO keeps besides requests: Art. 14 notices, Art. 19 recipients, Art. 33(5) breaches.

* ``gdpr_notices``: the duty to inform a subject whose data the firm obtained from someone
  else (GDPR Art. 14), one per acquisition (a debt bought from a creditor): where the data
  came from, when, the last day (Art. 14(3)(a)), and whether and how it was given, or the
  exemption relied on (Art. 14(5)). The first contact may end the period earlier
  (Art. 14(3)(b)): that is computed on reading (:mod:`gdpr.notices`).
* ``gdpr_recipients``: who the subject's data was disclosed to (the creditor, debt registers,
  bailiffs, an assignee...), since when (Art. 19, 15(1)(c)).
* ``gdpr_recipient_notifications``: each recipient told (or to be told) of a rectification,
  an erasure or a restriction (Art. 19), with the request that caused it.
* ``gdpr_breaches``: the breach register (Art. 33(5)): facts, effects, remedial action, the
  risk assessed, and the notifications of the authority (Art. 33(1)) and of the subjects (Art. 34).

No personal data of a subject: tokens, organisation names, codes, dates. The breach texts
describe an incident and are refused if they look like personal data (identifiers, phone
numbers, e-mail addresses). The schema is created by the Alembic revision ``0013_debts_in_law``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

REGISTER_TABLES = ("gdpr_notices", "gdpr_recipients", "gdpr_recipient_notifications", "gdpr_breaches")
NOTICE_STATUSES = ("open", "given", "exempt")
RECIPIENT_KINDS = ("creditor", "assignee", "debt_register", "bailiff", "court", "lawyer", "other")
NOTIFIED_ACTIONS = ("rectification", "erasure", "restriction")
NOTIFICATION_STATUSES = ("pending", "notified", "impossible", "disproportionate")
BREACH_RISKS = ("unlikely", "risk", "high")


class Notice(Base):
    __tablename__ = "gdpr_notices"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_token: Mapped[str] = mapped_column(String(64), ForeignKey("vault_subjects.token"), index=True)
    debt_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(200))
    obtained_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    given_on: Mapped[date | None] = mapped_column(Date)
    channel: Mapped[str | None] = mapped_column(String(16))
    exemption: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("status IN ('open', 'given', 'exempt')", name="status"),)


class Recipient(Base):
    __tablename__ = "gdpr_recipients"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_token: Mapped[str] = mapped_column(String(64), ForeignKey("vault_subjects.token"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    name: Mapped[str] = mapped_column(String(200))
    debt_id: Mapped[str | None] = mapped_column(String(64))
    disclosed_on: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RecipientNotification(Base):
    __tablename__ = "gdpr_recipient_notifications"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    recipient_id: Mapped[str] = mapped_column(String(40), ForeignKey("gdpr_recipients.id"), index=True)
    subject_token: Mapped[str] = mapped_column(String(64), ForeignKey("vault_subjects.token"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))
    notified_on: Mapped[date | None] = mapped_column(Date)
    method: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("action IN ('rectification', 'erasure', 'restriction')", name="action"),
        CheckConstraint("status IN ('pending', 'notified', 'impossible', 'disproportionate')", name="status"),
    )


class Breach(Base):
    __tablename__ = "gdpr_breaches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    aware_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    occurred_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    occurred_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    nature: Mapped[str] = mapped_column(String(100))  # comma-separated: confidentiality, integrity, availability
    data_categories: Mapped[str] = mapped_column(String(200))  # comma-separated data categories
    subjects_count: Mapped[int | None] = mapped_column(Integer)
    actor_id: Mapped[str | None] = mapped_column(String(128))
    facts: Mapped[str] = mapped_column(Text)
    effects: Mapped[str] = mapped_column(Text)
    remedial_action: Mapped[str] = mapped_column(Text)
    risk: Mapped[str] = mapped_column(String(16))
    authority_notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    authority_reference: Mapped[str | None] = mapped_column(String(100))
    subjects_notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    not_notified_reason: Mapped[str | None] = mapped_column(String(300))
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("risk IN ('unlikely', 'risk', 'high')", name="risk"),)
