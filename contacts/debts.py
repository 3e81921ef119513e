"""Debts and collection cases: what a contact is about, with the limitation clock of each debt.

A debt carries no personal data: the creditor it was assigned from (an organisation), its
kind for the limitation clock (:mod:`contacts.limitation`), amount in minor units, due and
judgment dates, status. Its limitation date is computed, never stored. A case is a
collection case on a subject (and one of their debts); agents are assigned to it by id
(``tarcza user assign``), which the authorisation policies use for field agents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from audit.events import CasePayload, DebtPayload, format_time
from contacts import repository
from contacts.common import (
    CURRENCY_PATTERN,
    ID_PATTERN,
    READ_ACTION,
    RECORD_ACTION,
    CaseNotFoundError,
    DebtNotFoundError,
    Guard,
    aware,
    check_id,
    check_plain,
    iso_date,
)
from contacts.limitation import ClaimKind, time_barred_on
from core.db import read_connection, write_connection
from core.errors import ConflictError, InvalidInputError
from identity.principal import Principal

__all__ = ["DebtBook", "DebtInfo", "NewDebt"]


@dataclass(frozen=True)
class NewDebt:
    """A debt assigned to the firm for collection (no personal data: ids, amounts, dates)."""

    id: str
    subject: str
    creditor: str
    kind: str
    consumer: bool
    amount_minor: int
    due_date: date
    currency: str = "PLN"
    judgment_date: date | None = None
    assigned_on: date | None = None


@dataclass(frozen=True)
class DebtInfo:
    id: str
    subject: str
    creditor: str
    kind: str
    consumer: bool
    amount_minor: int
    currency: str
    due_date: date
    judgment_date: date | None
    assigned_on: date | None
    status: str
    settled_on: date | None
    time_barred_on: date

    def time_barred(self, today: date) -> bool:
        return today >= self.time_barred_on

    def to_json(self, today: date) -> dict[str, Any]:
        return {
            "id": self.id, "subject": self.subject, "creditor": self.creditor, "kind": self.kind,
            "consumer": self.consumer, "amount_minor": self.amount_minor, "currency": self.currency,
            "due_date": self.due_date.isoformat(), "status": self.status,
            "judgment_date": iso_date(self.judgment_date), "assigned_on": iso_date(self.assigned_on),
            "settled_on": iso_date(self.settled_on), "time_barred_on": self.time_barred_on.isoformat(),
            "time_barred": self.time_barred(today),
        }


class DebtBook(Guard):
    """Debts and cases of subjects, each change in the audit log (``debt.*``, ``case.*``)."""

    def add(self, principal: Principal, debt: NewDebt) -> DebtInfo:
        """Record a debt of a subject; the same debt posted again is a no-op returning it."""
        check_id(debt.id, "debt id")
        kind = _debt_kind(debt.kind)
        if not CURRENCY_PATTERN.fullmatch(debt.currency):
            raise InvalidInputError("currency must be an ISO 4217 code such as PLN")
        if debt.amount_minor < 0:
            raise InvalidInputError("amount_minor must not be negative")
        check_plain("creditor", debt.creditor, 200)
        if debt.judgment_date is not None and debt.judgment_date < debt.due_date - timedelta(days=36600):
            raise InvalidInputError("judgment_date is implausible")
        self.subject_active(debt.subject)
        self.require(principal, RECORD_ACTION, debt.subject)
        with read_connection(self.engine) as conn:
            existing = repository.get_debt(conn, debt.id)
        if existing is not None:
            info = debt_info(existing)
            if (info.subject, info.creditor, info.kind, info.consumer, info.amount_minor, info.currency,
                    info.due_date, info.judgment_date) != (debt.subject, debt.creditor, kind.value, debt.consumer,
                                                           debt.amount_minor, debt.currency, debt.due_date,
                                                           debt.judgment_date):
                raise ConflictError("a different debt with this id exists")
            return info
        now = self.clock.now()
        self.audit.record("debt.recorded", actor=principal.actor, subject=debt.subject, payload=DebtPayload(
            debt_id=debt.id, creditor=debt.creditor, kind=kind.value, consumer=debt.consumer,
            amount_minor=debt.amount_minor, currency=debt.currency, due_date=debt.due_date.isoformat(),
            judgment_date=iso_date(debt.judgment_date), status="open"))
        row = {"id": debt.id, "subject_token": debt.subject, "creditor": debt.creditor, "kind": kind.value,
               "consumer": debt.consumer, "currency": debt.currency, "amount_minor": debt.amount_minor,
               "due_date": debt.due_date, "judgment_date": debt.judgment_date, "assigned_on": debt.assigned_on,
               "status": "open", "settled_on": None, "created_at": now, "updated_at": now}
        try:
            with write_connection(self.engine) as conn:
                repository.insert_debt(conn, row)
        except IntegrityError:
            raise ConflictError("another request recorded a debt with this id; retry") from None
        return debt_info(row)

    def set_status(self, principal: Principal, debt_id: str, status: str, *,
                        settled_on: date | None = None, judgment_date: date | None = None) -> DebtInfo:
        """Mark a debt settled or written off (with the date), or open again; or record a final judgment."""
        if status not in ("open", "settled", "written_off"):
            raise InvalidInputError("status must be open, settled or written_off")
        if status == "open" and settled_on is not None:
            raise InvalidInputError("an open debt has no settlement date")
        debt = self.get(debt_id)
        self.require(principal, RECORD_ACTION, debt.subject)
        settled = settled_on if status != "open" else None
        if status != "open" and settled is None:
            settled = self.clock.now().date()
        values: dict[str, Any] = {"status": status, "settled_on": settled, "updated_at": self.clock.now()}
        if judgment_date is not None:
            values["judgment_date"] = judgment_date
        self.audit.record("debt.updated", actor=principal.actor, subject=debt.subject, payload=DebtPayload(
            debt_id=debt_id, status=status, settled_on=iso_date(settled), judgment_date=iso_date(judgment_date)))
        with write_connection(self.engine) as conn:
            repository.update_debt(conn, debt_id, values)
        return self.get(debt_id)

    def get(self, debt_id: str) -> DebtInfo:
        with read_connection(self.engine) as conn:
            row = repository.get_debt(conn, debt_id) if ID_PATTERN.fullmatch(debt_id or "") else None
        if row is None:
            raise DebtNotFoundError("no debt has this id")
        return debt_info(row)

    def get_for(self, principal: Principal, debt_id: str) -> DebtInfo:
        """A debt, if the principal may read its subject."""
        debt = self.get(debt_id)
        self.require(principal, READ_ACTION, debt.subject)
        return debt

    def of_subject(self, subject: str) -> list[DebtInfo]:
        """The subject's debts, for Tarcza's own decisions (erasure, retention): no authorisation asked."""
        with read_connection(self.engine) as conn:
            return [debt_info(row) for row in repository.debts_of(conn, subject)]

    def of(self, principal: Principal, subject: str) -> list[DebtInfo]:
        self.subject_known(subject)
        self.require(principal, READ_ACTION, subject)
        with read_connection(self.engine) as conn:
            return [debt_info(row) for row in repository.debts_of(conn, subject)]

    def open_case(self, principal: Principal, case_id: str, subject: str, debt_id: str | None = None) -> dict[str, Any]:
        """Open a collection case on a subject (and one of their debts); agents are assigned to it by id."""
        check_id(case_id, "case id")
        self.subject_active(subject)
        if debt_id is not None and self.get(debt_id).subject != subject:
            raise InvalidInputError("the debt belongs to another subject")
        self.require(principal, RECORD_ACTION, subject)
        with read_connection(self.engine) as conn:
            existing = repository.get_case(conn, case_id)
        if existing is not None:
            if (existing["subject_token"], existing["debt_id"]) != (subject, debt_id):
                raise ConflictError("a different case with this id exists")
            return case_json(existing)
        now = self.clock.now()
        self.audit.record("case.opened", actor=principal.actor, subject=subject,
                          payload=CasePayload(case_id=case_id, debt_id=debt_id, status="open"))
        row = {"id": case_id, "subject_token": subject, "debt_id": debt_id, "status": "open", "opened_at": now,
               "closed_at": None}
        try:
            with write_connection(self.engine) as conn:
                repository.insert_case(conn, row)
        except IntegrityError:
            raise ConflictError("another request opened a case with this id; retry") from None
        return case_json(row)

    def close_case(self, principal: Principal, case_id: str) -> dict[str, Any]:
        with read_connection(self.engine) as conn:
            row = repository.get_case(conn, case_id) if ID_PATTERN.fullmatch(case_id or "") else None
        if row is None:
            raise CaseNotFoundError("no case has this id")
        self.require(principal, RECORD_ACTION, row["subject_token"])
        if row["status"] == "closed":
            return case_json(row)
        self.audit.record("case.closed", actor=principal.actor, subject=row["subject_token"],
                          payload=CasePayload(case_id=case_id, debt_id=row["debt_id"], status="closed"))
        with write_connection(self.engine) as conn:
            repository.close_case(conn, case_id, self.clock.now())
            updated = repository.get_case(conn, case_id)
        assert updated is not None  # noqa: S101 - the row was read above and cases are never deleted
        return case_json(updated)

    def cases_of(self, principal: Principal, subject: str) -> list[dict[str, Any]]:
        self.subject_known(subject)
        self.require(principal, READ_ACTION, subject)
        with read_connection(self.engine) as conn:
            return [case_json(row) for row in repository.cases_of(conn, subject)]


def _debt_kind(value: str) -> ClaimKind:
    try:
        return ClaimKind(value)
    except ValueError:
        raise InvalidInputError(f"kind must be one of {', '.join(k.value for k in ClaimKind)}") from None


def debt_info(row: dict[str, Any]) -> DebtInfo:
    kind = ClaimKind(row["kind"])
    return DebtInfo(
        id=row["id"], subject=row["subject_token"], creditor=row["creditor"], kind=kind.value,
        consumer=bool(row["consumer"]), amount_minor=int(row["amount_minor"]), currency=row["currency"],
        due_date=row["due_date"], judgment_date=row["judgment_date"], assigned_on=row["assigned_on"],
        status=row["status"], settled_on=row["settled_on"],
        time_barred_on=time_barred_on(kind, row["due_date"], judgment_date=row["judgment_date"]))


def case_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "subject": row["subject_token"], "debt_id": row["debt_id"], "status": row["status"],
            "opened_at": format_time(aware(row["opened_at"])),
            "closed_at": format_time(aware(row["closed_at"])) if row["closed_at"] else None}


