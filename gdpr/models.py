"""Tables of the GDPR toolkit: data subject requests and legal holds. No personal data in clear.

* ``gdpr_requests``: one row per request (access, portability, erasure, rectification,
  restriction, objection) about a subject token: how and when it was received, its
  deadline (GDPR Art. 12(3), :mod:`gdpr.deadlines`) and any extension with its reason
  code, the identity verification (method, a reference to the evidence, when, by whom), the status
  and the outcome.
  Every change is also a ``gdpr.*`` entry of the audit log, which is the record; this
  table is what the lists (overdue, due soon) query.
* ``gdpr_legal_holds``: a hold on a subject (optionally one case): reason, owner, dates;
  while active it blocks erasure and retention.

The schema is created by the Alembic revisions ``0007_gdpr`` and ``0010_verification_evidence``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

GDPR_TABLES = ("gdpr_requests", "gdpr_legal_holds")
REQUEST_KINDS = ("access", "portability", "erasure", "rectification", "restriction", "objection")
REQUEST_STATUSES = ("received", "verified", "completed", "refused")


class DataSubjectRequest(Base):
    __tablename__ = "gdpr_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_token: Mapped[str] = mapped_column(String(64), ForeignKey("vault_subjects.token"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    received_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    extended_months: Mapped[int] = mapped_column()
    extension_reason: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    verification_method: Mapped[str | None] = mapped_column(String(40))
    verification_reference: Mapped[str | None] = mapped_column(String(100))  # the evidence, in the firm's files
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verified_by: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str | None] = mapped_column(String(300))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("kind IN ('access', 'portability', 'erasure', 'rectification', 'restriction', "
                        "'objection')", name="kind"),
        CheckConstraint("status IN ('received', 'verified', 'completed', 'refused')", name="status"),
        Index("ix_gdpr_requests_open_due", "status", "due_on"),
    )


class LegalHold(Base):
    __tablename__ = "gdpr_legal_holds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_token: Mapped[str] = mapped_column(String(64), ForeignKey("vault_subjects.token"), index=True)
    case_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(128))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
