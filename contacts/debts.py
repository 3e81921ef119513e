"""Debts and collection cases: what a contact is about, with each debt's legal history and limitation period.

A debt carries no personal data: the creditor it was assigned from (an organisation) and
what kind of creditor that is, its claim kind (:mod:`contacts.claim_kinds`, checked against
the creditor), amount in minor units, due date, status, and whether the firm holds it as
controller (bought) or as the creditor's processor. Its legal history is a list of events
(:mod:`contacts.legal_events`: judgments, payment orders, court actions, enforcement,
mediation, acknowledgements, part payments, suspension, assignments), each a
``debt.event_recorded`` entry of the audit log with its row in ``contact_debt_events``
committed in the entry's own transaction. The limitation period is read from the history on
every read (:mod:`contacts.debt_info`), never stored. Guarantors and co-debtors are linked
to the debt (``debt.party_linked``); each has their own period (art. 372, 881 k.c.). A case
is a collection case on a subject (and one of their debts); agents are assigned to it by id
(``tarcza user assign``), which the authorisation policies use for field agents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from sqlalchemy.exc import IntegrityError

from audit.events import CasePayload, DebtEventPayload, DebtPartyPayload, DebtPayload, build_event, format_time
from audit.sequencer import SideRow, StaleDecisionError
from contacts import repository
from contacts.claim_kinds import base_kind_for, check_claim_kind
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
from contacts.debt_info import DebtInfo, debt_info, debt_infos
from contacts.legal_events import LegalEvent, LegalEventKind
from contacts.limitation import ClaimKind, read_limitation
from contacts.models import HELD_AS, PARTY_ROLES
from core.db import read_connection, write_connection
from core.errors import ConflictError, InvalidInputError
from identity.principal import Principal

__all__ = ["DebtBook", "DebtInfo", "NewDebt", "debt_info"]

MAX_EVENT_ROUNDS: Final = 20  # decided again at most this often when other events keep landing first
_PLAUSIBLE: Final = timedelta(days=36600)


@dataclass(frozen=True)
class NewDebt:
    """A debt assigned to the firm for collection (no personal data: ids, amounts, dates).

    ``judgment_date`` (the day a judgment became final) is recorded as the first event of the
    debt's history; ``creditor_kind`` (:data:`contacts.claim_kinds.CREDITOR_KINDS`) is checked
    against ``kind`` and ``consumer``; ``held_as`` is ``controller`` (the firm bought the
    claim) or ``processor`` (it collects for the creditor).
    """

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
    creditor_kind: str | None = None
    held_as: str = "controller"


class DebtBook(Guard):
    """Debts, their history and parties, and cases of subjects, each change in the audit log."""

    def add(self, principal: Principal, debt: NewDebt) -> DebtInfo:
        """Record a debt of a subject; the same debt posted again is a no-op returning it."""
        check_id(debt.id, "debt id")
        kind = base_kind_for(debt.kind, debt.creditor_kind)
        check_claim_kind(kind, debt.creditor_kind, debt.consumer)
        if debt.held_as not in HELD_AS:
            raise InvalidInputError(f"held_as must be one of {', '.join(HELD_AS)}")
        if not CURRENCY_PATTERN.fullmatch(debt.currency):
            raise InvalidInputError("currency must be an ISO 4217 code such as PLN")
        if debt.amount_minor < 0:
            raise InvalidInputError("amount_minor must not be negative")
        check_plain("creditor", debt.creditor, 200)
        today = self.clock.now().date()
        if debt.judgment_date is not None and not (
                debt.due_date - _PLAUSIBLE <= debt.judgment_date <= today):
            raise InvalidInputError("judgment_date is implausible (before the due date by a century, or in the future)")
        self.subject_active(debt.subject)
        self.require(principal, RECORD_ACTION, debt.subject)
        with read_connection(self.engine) as conn:
            existing = repository.get_debt(conn, debt.id)
            info = debt_infos(conn, [existing])[0] if existing is not None else None
        if info is not None:
            if (info.subject, info.creditor, info.kind, info.consumer, info.amount_minor, info.currency,
                    info.due_date, info.judgment_date, info.creditor_kind, info.held_as) != (
                    debt.subject, debt.creditor, kind.value, debt.consumer, debt.amount_minor, debt.currency,
                    debt.due_date, debt.judgment_date, debt.creditor_kind, debt.held_as):
                raise ConflictError("a different debt with this id exists")
            return info
        read_limitation(kind, debt.due_date)  # a period past the calendar is refused before anything is written
        now = self.clock.now()
        receipt = self.audit.record("debt.recorded", actor=principal.actor, subject=debt.subject, payload=DebtPayload(
            debt_id=debt.id, creditor=debt.creditor, kind=kind.value, consumer=debt.consumer,
            amount_minor=debt.amount_minor, currency=debt.currency, due_date=debt.due_date.isoformat(),
            judgment_date=iso_date(debt.judgment_date), status="open", creditor_kind=debt.creditor_kind,
            held_as=debt.held_as))
        row = {"id": debt.id, "subject_token": debt.subject, "creditor": debt.creditor, "kind": kind.value,
               "consumer": debt.consumer, "currency": debt.currency, "amount_minor": debt.amount_minor,
               "due_date": debt.due_date, "judgment_date": None, "assigned_on": debt.assigned_on,
               "status": "open", "settled_on": None, "created_at": now, "updated_at": now,
               "creditor_kind": debt.creditor_kind, "held_as": debt.held_as}
        events = [] if debt.judgment_date is None else [_event_row(
            event_id=receipt.event_id, debt_id=debt.id, seq=1, recorded_by=principal.actor.id, now=now,
            event=LegalEvent(kind=LegalEventKind.JUDGMENT, on=debt.judgment_date, source="judgment_date"),
            log_index=receipt.index)]
        try:
            with write_connection(self.engine) as conn:
                repository.insert_debt(conn, row)
                for event_row in events:
                    repository.insert_debt_event(conn, event_row)
        except IntegrityError:
            raise ConflictError("another request recorded a debt with this id; retry") from None
        return debt_info(row, events)

    def set_status(self, principal: Principal, debt_id: str, status: str, *,
                   settled_on: date | None = None, judgment_date: date | None = None) -> DebtInfo:
        """Mark a debt settled or written off (with the date), or open again; a ``judgment_date`` is
        recorded as a judgment event of the history (as ``POST /v1/debts/{id}/events`` would)."""
        if status not in ("open", "settled", "written_off"):
            raise InvalidInputError("status must be open, settled or written_off")
        if status == "open" and settled_on is not None:
            raise InvalidInputError("an open debt has no settlement date")
        debt = self.get(debt_id)
        self.require(principal, RECORD_ACTION, debt.subject)
        if judgment_date is not None and judgment_date != debt.judgment_date:
            debt = self.record_event(principal, debt_id, LegalEvent(
                kind=LegalEventKind.JUDGMENT, on=judgment_date, source="status route"))
        settled = settled_on if status != "open" else None
        if status != "open" and settled is None:
            settled = self.clock.now().date()
        if (status, settled) == (debt.status, debt.settled_on):
            return debt
        values: dict[str, Any] = {"status": status, "settled_on": settled, "updated_at": self.clock.now()}
        self.audit.record("debt.updated", actor=principal.actor, subject=debt.subject, payload=DebtPayload(
            debt_id=debt_id, status=status, settled_on=iso_date(settled)))
        with write_connection(self.engine) as conn:
            repository.update_debt(conn, debt_id, values)
        return self.get(debt_id)

    # -- the legal history and the parties -------------------------------------------------------

    def record_event(self, principal: Principal, debt_id: str, event: LegalEvent) -> DebtInfo:
        """Add an event to the debt's legal history (logged first, its row in the entry's transaction);
        answers the debt with its period read again. An event that would make the history
        inconsistent (an end with no start...) or names someone who is no party is refused."""
        debt = self.get(debt_id)
        self.require(principal, RECORD_ACTION, debt.subject)
        today = self.clock.now().date()
        if event.on > today:
            raise InvalidInputError(f"{event.kind.value}: {event.on} is in the future; record what took effect")
        if event.on < debt.due_date - _PLAUSIBLE:
            raise InvalidInputError(f"{event.kind.value}: {event.on} is implausible for a debt due {debt.due_date}")
        if event.source:
            check_plain("source", event.source, 200)
        if event.assignee is not None:
            check_plain("assignee", event.assignee, 200)
        parties = {debt.subject, *(p.subject for p in debt.parties)}
        if event.party is not None and event.party not in parties:
            raise InvalidInputError("the event's party must be the debtor or a guarantor or co-debtor of the debt")
        for _ in range(MAX_EVENT_ROUNDS):
            history = [*debt.events, event]
            after = read_limitation(ClaimKind(debt.kind), debt.due_date, history, party=event.party or debt.subject)
            for party in parties:  # every party's reading must hold together
                read_limitation(ClaimKind(debt.kind), debt.due_date, history, party=party)
            seq = len(debt.events) + 1
            now = self.clock.now()
            entry = build_event("debt.event_recorded", actor=principal.actor, time=now,
                                subject=event.party or debt.subject, payload=DebtEventPayload(
                                    debt_id=debt_id, event=event.kind.value, on=event.on.isoformat(), seq=seq,
                                    party=event.party, source=event.source or None, assignee=event.assignee,
                                    amount_minor=event.amount_minor, ground=event.ground, withdrawn=event.withdrawn,
                                    limitation_end=iso_date(after.end)))
            row = _event_row(event_id=entry.id, debt_id=debt_id, seq=seq, recorded_by=principal.actor.id, now=now,
                             event=event, log_index=None)
            try:
                self.audit.append(entry, side=SideRow(repository.debt_events, row, guard=("debt_id", "seq")))
            except StaleDecisionError:
                debt = self.get(debt_id)  # another event landed first: read the history again and decide again
                continue
            return self.get(debt_id)
        raise ConflictError("the debt's history kept changing while this event was recorded; retry")

    def link_party(self, principal: Principal, debt_id: str, subject: str, role: str) -> DebtInfo:
        """Link a guarantor or co-debtor (a subject) to a debt; linking them again with the same role is a no-op."""
        if role not in PARTY_ROLES:
            raise InvalidInputError(f"role must be one of {', '.join(PARTY_ROLES)}")
        debt = self.get(debt_id)
        if subject == debt.subject:
            raise InvalidInputError("the debtor is not a guarantor or co-debtor of their own debt")
        self.subject_active(subject)
        self.require(principal, RECORD_ACTION, debt.subject)
        self.require(principal, RECORD_ACTION, subject)
        known = next((p for p in debt.parties if p.subject == subject), None)
        if known is not None:
            if known.role != role:
                raise ConflictError(f"the subject is already linked to this debt as {known.role}")
            return debt
        self.audit.record("debt.party_linked", actor=principal.actor, subject=subject,
                          payload=DebtPartyPayload(debt_id=debt_id, party=subject, role=role))
        try:
            with write_connection(self.engine) as conn:
                repository.insert_party(conn, {"debt_id": debt_id, "subject_token": subject, "role": role,
                                               "recorded_at": self.clock.now()})
        except IntegrityError:
            raise ConflictError("another request linked this subject to the debt; read it again") from None
        return self.get(debt_id)

    def get(self, debt_id: str, viewer: str | None = None) -> DebtInfo:
        """A debt with its history and parties, read for ``viewer`` (default: the debtor)."""
        with read_connection(self.engine) as conn:
            row = repository.get_debt(conn, debt_id) if ID_PATTERN.fullmatch(debt_id or "") else None
            if row is None:
                raise DebtNotFoundError("no debt has this id")
            return debt_infos(conn, [row], viewer)[0]

    def get_for(self, principal: Principal, debt_id: str) -> DebtInfo:
        """A debt, if the principal may read its subject."""
        debt = self.get(debt_id)
        self.require(principal, READ_ACTION, debt.subject)
        return debt

    def of_subject(self, subject: str) -> list[DebtInfo]:
        """The subject's debts, as debtor and as guarantor or co-debtor (each read for the subject), for
        Tarcza's own decisions (erasure, retention): no authorisation asked."""
        with read_connection(self.engine) as conn:
            own = repository.debts_of(conn, subject)
            other = repository.debts_as_party(conn, subject)
            return debt_infos(conn, [*own, *(row for row, _ in other)], subject)

    def of(self, principal: Principal, subject: str) -> list[DebtInfo]:
        self.subject_known(subject)
        self.require(principal, READ_ACTION, subject)
        return self.of_subject(subject)

    def open_case(self, principal: Principal, case_id: str, subject: str, debt_id: str | None = None) -> dict[str, Any]:
        """Open a collection case on a subject (and one of their debts); agents are assigned to it by id."""
        check_id(case_id, "case id")
        self.subject_active(subject)
        if debt_id is not None and subject not in self.get(debt_id).party_tokens:
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


def _event_row(*, event_id: str, debt_id: str, seq: int, recorded_by: str, now: Any, event: LegalEvent,
               log_index: int | None) -> dict[str, Any]:
    return {"id": event_id, "debt_id": debt_id, "seq": seq, "kind": event.kind.value, "occurred_on": event.on,
            "party": event.party, "source": event.source, "assignee": event.assignee,
            "amount_minor": event.amount_minor, "ground": event.ground, "withdrawn": event.withdrawn,
            "log_index": log_index, "recorded_by": recorded_by, "recorded_at": now}


def case_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "subject": row["subject_token"], "debt_id": row["debt_id"], "status": row["status"],
            "opened_at": format_time(aware(row["opened_at"])),
            "closed_at": format_time(aware(row["closed_at"])) if row["closed_at"] else None}


