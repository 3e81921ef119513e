"""The GDPR service: data subject requests with their deadlines, erasure, restriction, objection,
rectification, exports, legal holds.

A request (Art. 15-21) is received for a subject token with the date of receipt, which
fixes its deadline (Art. 12(3), counted as Regulation 1182/71 counts periods:
:mod:`gdpr.deadlines`). Its life: ``received`` -> ``verified`` (the requester's identity
was checked; how is recorded) -> ``completed`` or ``refused``; it may be extended by one or
two months, with a reason, within the first month. Nothing is done for an unverified
request. Every step is a ``gdpr.*`` entry of the audit log, appended before the step
takes effect (the vault's rule: the entry first, then the effect).

Erasure (Art. 17) is the one erasure decision's (:mod:`gdpr.erasure`, ADR 0015): a fresh
second factor, then :func:`gdpr.retention.erasure_assessment` of the subject's debts (an open
claim that is not time-barred; the accounting duty after it is settled or time-barred) and
legal holds: if anything still needs the data, erasure is refused with the reasons and the date
from which it becomes possible, and, if the subject asked for it, restricted instead
to storage and the firm's own legal claims (Art. 17(3)(e), processed as Art. 18(2) allows), unless the DPO
overrides it (justified, logged, reviewed); otherwise the
subject is crypto-shredded (keys, blind indexes and recordings) and a tombstone entry with the
token alone closes the request. The identity verification records its method, a reference to
the evidence and who verified it. An export is the officer's reveal (:mod:`gdpr.exporting`,
ADR 0014).

Services never commit; each step runs its own short transactions.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine

from audit.events import GdprPayload, format_time
from audit.service import AuditLog
from contacts.common import aware, iso_date
from contacts.service import ContactService
from core.clock import SYSTEM_CLOCK, Clock
from core.db import read_connection, write_connection
from core.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from core.logging import clear_of_pii_patterns, get_logger, mask_text
from gdpr import recipients, repository
from gdpr.archive import ArchiveSummary
from gdpr.deadlines import can_extend, extended_deadline, response_deadline
from gdpr.erasure import ErasureDecision, Override, assessment_json
from gdpr.exporting import SubjectExporter
from gdpr.models import REQUEST_KINDS
from gdpr.retention import ErasureAssessment
from identity.principal import Principal
from policies.authorizer import Authorizer, Resource
from vault.service import VaultService

__all__ = ["GdprService", "RequestNotFoundError", "RequestStateError", "assessment_json"]

log = get_logger(__name__)

ACTION: Final = "gdpr.manage"
_REFERENCE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/\-]{0,99}")
CHANNELS: Final = ("email", "letter", "portal", "phone", "in_person", "epuap")
VERIFICATION_METHODS: Final = ("id_document", "known_contact", "bank_transfer", "qualified_signature",
                               "trusted_profile", "video_call", "in_person")
EXTENSION_REASONS: Final = ("complexity", "number_of_requests")
ARTICLES: Final = {"access": "15", "portability": "20", "erasure": "17", "rectification": "16",
                   "restriction": "18", "objection": "21"}
OPEN: Final = ("received", "verified")
LIST_LIMIT: Final = 500
_ID_BYTES: Final = 12
_CODE: Final = re.compile(r"[a-z][a-z0-9_:;.,/-]{0,199}")


class RequestNotFoundError(NotFoundError):
    code = "request-not-found"
    title = "Request not found"


class RequestStateError(ConflictError):
    """The request is not in a state that allows this step (e.g. acting before the identity is verified)."""

    code = "request-state"
    title = "Request state does not allow this"


class HoldNotFoundError(NotFoundError):
    code = "hold-not-found"
    title = "Legal hold not found"


@dataclass(frozen=True)
class ErasureOutcome:
    """What an erasure request came to: erased, or refused with the reasons (and maybe restricted)."""

    request_id: str
    erased: bool
    assessment: ErasureAssessment
    restricted: bool = False
    tombstone_index: int | None = None
    overridden: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "erased": self.erased, "restricted": self.restricted,
                "tombstone_index": self.tombstone_index, "overridden": list(self.overridden),
                **assessment_json(self.assessment)}


class GdprService:
    """Data subject requests and their execution, over the vault and the contacts service."""

    def __init__(self, engine: Engine, vault: VaultService, contacts: ContactService, audit: AuditLog,
                 authorizer: Authorizer, clock: Clock = SYSTEM_CLOCK) -> None:
        self.engine = engine
        self.vault = vault
        self.contacts = contacts
        self.audit = audit
        self.authorizer = authorizer
        self.clock = clock
        self.erasure = ErasureDecision(vault, contacts, clock)
        self.exporter = SubjectExporter(vault, contacts, audit, authorizer, clock)

    # -- requests ------------------------------------------------------------------------------

    def receive(self, principal: Principal, subject: str, kind: str, received_on: date,
                channel: str) -> dict[str, Any]:
        """Register a request received on ``received_on``; its deadline follows from that date."""
        if kind not in REQUEST_KINDS:
            raise InvalidInputError(f"kind must be one of {', '.join(REQUEST_KINDS)}")
        if channel not in CHANNELS:
            raise InvalidInputError(f"channel must be one of {', '.join(CHANNELS)}")
        today = self._today()
        if received_on > today:
            raise InvalidInputError("received_on is in the future")
        self.vault.subject_status(subject)  # SubjectNotFoundError for an unknown token
        self._require(principal)
        now = self.clock.now()
        due = response_deadline(received_on)
        request_id = clear_of_pii_patterns(lambda: "dsr_" + secrets.token_urlsafe(_ID_BYTES))
        self._log("gdpr.request_received", principal, subject, request_id, kind, status="received", due=due,
                  reason=f"channel:{channel}")
        row = {"id": request_id, "subject_token": subject, "kind": kind, "channel": channel,
               "received_on": received_on, "due_on": due, "extended_months": 0, "extension_reason": None,
               "status": "received", "verification_method": None, "verification_reference": None,
               "verified_at": None, "verified_by": None,
               "outcome": None, "created_by": principal.actor.id, "created_at": now, "updated_at": now,
               "closed_at": None}
        with write_connection(self.engine) as conn:
            repository.insert_request(conn, row)
        return self._json(row)

    def get(self, principal: Principal, request_id: str) -> dict[str, Any]:
        self._require(principal)
        return self._json(self._row(request_id))

    def requests(self, principal: Principal, *, view: str = "open", subject: str | None = None,
             cursor: str | None = None, limit: int = 100) -> tuple[list[dict[str, Any]], str | None]:
        """Requests by deadline: ``open``, ``overdue``, ``due_soon`` (7 days), ``closed`` or ``all``."""
        if not 0 < limit <= LIST_LIMIT:
            raise InvalidInputError(f"limit must be 1 to {LIST_LIMIT}")
        self._require(principal)
        today = self._today()
        statuses: tuple[str, ...] | None
        due_by: date | None = None
        if view == "open":
            statuses = OPEN
        elif view == "overdue":
            statuses, due_by = OPEN, date.fromordinal(today.toordinal() - 1)
        elif view == "due_soon":
            statuses, due_by = OPEN, date.fromordinal(today.toordinal() + 7)
        elif view == "closed":
            statuses = ("completed", "refused")
        elif view == "all":
            statuses = None
        else:
            raise InvalidInputError("view must be open, overdue, due_soon, closed or all")
        after = _parse_cursor(cursor) if cursor else None
        with read_connection(self.engine) as conn:
            rows = repository.list_requests(conn, statuses=statuses, due_by=due_by, subject=subject, after=after,
                                            limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = f"{rows[-1]['due_on'].isoformat()}|{rows[-1]['id']}" if more and rows else None
        return [self._json(r) for r in rows], next_cursor

    def verify_identity(self, principal: Principal, request_id: str, method: str,
                        reference: str | None = None) -> dict[str, Any]:
        """Record that the requester's identity was verified: how (``method``), the evidence (``reference``, a
        reference to the firm's file, never the document's own number) and who verified it."""
        if method not in VERIFICATION_METHODS:
            raise InvalidInputError(f"method must be one of {', '.join(VERIFICATION_METHODS)}")
        if reference is not None and (not isinstance(reference, str) or not _REFERENCE.fullmatch(reference)
                                      or mask_text(reference) != reference):
            raise InvalidInputError("reference must name the evidence in the firm's files (letters, digits, "
                                    ". _ : / -), never personal data such as the document's number")
        row = self._row(request_id)
        self._require(principal)
        if row["status"] != "received":
            raise RequestStateError(f"the request is {row['status']}; only a received request is verified")
        now = self.clock.now()
        self._log("gdpr.identity_verified", principal, row["subject_token"], request_id, row["kind"],
                  status="verified", reason=f"method:{method}" + (f";reference:{reference}" if reference else ""))
        self._update(request_id, ("received",), {"status": "verified", "verification_method": method,
                                                 "verification_reference": reference, "verified_at": now,
                                                 "verified_by": principal.actor.id})
        return self._json(self._row(request_id))

    def extend(self, principal: Principal, request_id: str, months: int, reason: str) -> dict[str, Any]:
        """Extend the deadline by one or two further months (Art. 12(3)), within the first month only."""
        if months not in (1, 2):
            raise InvalidInputError("a request may be extended by 1 or 2 months")
        if reason not in EXTENSION_REASONS:
            raise InvalidInputError(f"reason must be one of {', '.join(EXTENSION_REASONS)}")
        row = self._row(request_id)
        self._require(principal)
        if row["status"] not in OPEN:
            raise RequestStateError(f"the request is {row['status']}")
        if not can_extend(row["received_on"], self._today()):
            raise RequestStateError("the first month has passed: the extension had to be notified within it")
        if months <= row["extended_months"]:
            raise RequestStateError(f"the request is already extended by {row['extended_months']} month(s)")
        due = extended_deadline(row["received_on"], months)
        self._log("gdpr.request_extended", principal, row["subject_token"], request_id, row["kind"],
                  status=row["status"], due=due, reason=reason)
        self._update(request_id, OPEN, {"due_on": due, "extended_months": months, "extension_reason": reason})
        return self._json(self._row(request_id))

    def refuse(self, principal: Principal, request_id: str, reason: str) -> dict[str, Any]:
        """Refuse a request (e.g. identity not verified, manifestly unfounded: Art. 12(5)); logged with the reason."""
        _check_code(reason, "reason")
        row = self._row(request_id)
        self._require(principal)
        if row["status"] not in OPEN:
            raise RequestStateError(f"the request is already {row['status']}")
        self._close(principal, row, "refused", f"refused:{reason}")
        return self._json(self._row(request_id))

    def complete(self, principal: Principal, request_id: str, outcome: str) -> dict[str, Any]:
        """Close a verified request as answered, with a short outcome code."""
        _check_code(outcome, "outcome")
        row = self._verified(principal, request_id)
        self._close(principal, row, "completed", outcome)
        return self._json(self._row(request_id))

    # -- executing requests --------------------------------------------------------------------

    def assess_erasure(self, principal: Principal, subject: str) -> ErasureAssessment:
        """What would an erasure of the subject come to today: allowed, or refused with reasons and a date."""
        self.vault.subject_status(subject)
        self._require(principal)
        return self.erasure.assess(subject)

    def erase(self, principal: Principal, request_id: str, *, restrict_if_refused: bool = False,
              override: Override | None = None) -> ErasureOutcome:
        """Execute a verified erasure request through the one erasure decision (:mod:`gdpr.erasure`): shred
        the subject, or refuse with the reasons (and restrict); ``override`` is the DPO's named action."""
        row = self._verified(principal, request_id, kind="erasure")
        subject = row["subject_token"]
        outcome = self.erasure.erase(principal, subject, request_id=request_id, override=override)
        assessment = outcome.assessment
        if not outcome.erased:
            until = assessment.possible_from
            restricted = False
            if restrict_if_refused:
                self.contacts.subject_rules.set_restriction(principal, subject, True, request_id=request_id,
                                                            reason="erasure refused for legal claims")
                restricted = True
            closing = "refused:" + ",".join(sorted({r.rule for r in assessment.reasons}))
            if until is not None:
                closing += f";possible_from:{until.isoformat()}"
            self._close(principal, row, "refused", closing + (";restricted" if restricted else ""))
            return ErasureOutcome(request_id, False, assessment, restricted)
        recipients.notify_recipients(self.engine, self.audit, principal, subject, "erasure", request_id,
                                     self.clock.now())
        receipt = self._log("gdpr.erasure_performed", principal, subject, request_id, "erasure", status="erased")
        closing = f"erased:tombstone_index:i{receipt}" + (";override" if outcome.overridden else "")
        self._close(principal, row, "completed", closing)
        return ErasureOutcome(request_id, True, assessment, tombstone_index=receipt, overridden=outcome.overridden)

    def restrict(self, principal: Principal, request_id: str, *, lift: bool = False,
                 subject_informed: bool = False) -> dict[str, Any]:
        """Execute a verified restriction request (Art. 18): contacts stop except for legal claims.

        Lifting it needs ``subject_informed``: the subject must be told before (Art. 18(3)).
        """
        row = self._verified(principal, request_id, kind="restriction")
        if lift and not subject_informed:
            raise RequestStateError("inform the subject before the restriction is lifted (Art. 18(3)), then confirm")
        self.contacts.subject_rules.set_restriction(principal, row["subject_token"], not lift, request_id=request_id,
                                                    reason="subject informed" if lift else None)
        if not lift:
            recipients.notify_recipients(self.engine, self.audit, principal, row["subject_token"], "restriction",
                                         request_id, self.clock.now())
        self._close(principal, row, "completed", "restriction:lifted:subject_informed" if lift
                    else "restriction:applied")
        return self._json(self._row(request_id))

    def object(self, principal: Principal, request_id: str, purpose: str, channel: str | None = None) -> dict[str, Any]:
        """Execute a verified objection (Art. 21) to a purpose, on one channel or all; the firewall honours it."""
        row = self._verified(principal, request_id, kind="objection")
        self.contacts.subject_rules.record_objection(principal, row["subject_token"], purpose, channel,
                                                     request_id=request_id)
        self._close(principal, row, "completed", f"objection:{purpose}/{channel or 'all'}")
        return self._json(self._row(request_id))

    def rectify(self, principal: Principal, request_id: str, field: str, values: Sequence[str]) -> dict[str, Any]:
        """Execute a verified rectification (Art. 16): the field's values are replaced (the old ones are not
        kept in clear: they were sealed, and their rows are gone); the change is logged with the field name."""
        row = self._verified(principal, request_id, kind="rectification")
        self.vault.update_field(principal, row["subject_token"], field, list(values))
        recipients.notify_recipients(self.engine, self.audit, principal, row["subject_token"], "rectification",
                                     request_id, self.clock.now())
        self._log("gdpr.rectification_applied", principal, row["subject_token"], request_id, "rectification",
                  status="applied", reason=f"field:{field}")
        self._close(principal, row, "completed", f"rectified:{field}")
        return self._json(self._row(request_id))

    def export(self, principal: Principal, request_id: str, out: Path, *, include_recordings: bool = False,
               justification: str | None = None) -> ArchiveSummary:
        """Answer a verified access or portability request with the subject's archive at ``out``; close it.

        The archive is the officer's reveal (:class:`gdpr.exporting.SubjectExporter`, ADR 0014); a refusal
        leaves the request open and nothing written.
        """
        row = self._verified(principal, request_id)
        if row["kind"] not in ("access", "portability"):
            raise RequestStateError(f"an archive answers an access or portability request, not {row['kind']}")
        subject = row["subject_token"]
        summary = self.exporter.build(principal, subject, request_id, out, include_recordings=include_recordings,
                                      justification=justification)
        self._log("gdpr.export_created", principal, subject, request_id, row["kind"], status="exported",
                  reason=f"sha256:{summary.sha256}")
        self._close(principal, row, "completed", f"exported:sha256:{summary.sha256}")
        return summary

    # -- legal holds ---------------------------------------------------------------------------

    def add_hold(self, principal: Principal, subject: str, reason: str, starts_on: date,
                 ends_on: date | None = None, case_id: str | None = None) -> dict[str, Any]:
        """Place a legal hold on a subject: erasure and retention skip it while it is active."""
        _check_code(reason, "reason")
        if ends_on is not None and ends_on < starts_on:
            raise InvalidInputError("ends_on is before starts_on")
        self.vault.subject_status(subject)
        self._require(principal)
        now = self.clock.now()
        hold_id = clear_of_pii_patterns(lambda: "hold_" + secrets.token_urlsafe(_ID_BYTES))
        self.audit.record("gdpr.legal_hold_set", actor=principal.actor, subject=subject, payload=GdprPayload(
            request_id=hold_id, status="active", reason=reason, due=_midnight(ends_on)))
        row = {"id": hold_id, "subject_token": subject, "case_id": case_id, "reason": reason,
               "owner": principal.actor.id, "starts_on": starts_on, "ends_on": ends_on, "released_at": None,
               "created_at": now}
        with write_connection(self.engine) as conn:
            repository.insert_hold(conn, row)
        return _hold_json(row)

    def release_hold(self, principal: Principal, hold_id: str) -> dict[str, Any]:
        with read_connection(self.engine) as conn:
            row = repository.get_hold(conn, hold_id)
        if row is None:
            raise HoldNotFoundError("no legal hold has this id")
        self._require(principal)
        if row["released_at"] is None:
            self.audit.record("gdpr.legal_hold_released", actor=principal.actor, subject=row["subject_token"],
                              payload=GdprPayload(request_id=hold_id, status="released", reason=row["reason"]))
            with write_connection(self.engine) as conn:
                repository.release_hold(conn, hold_id, self.clock.now())
                row = repository.get_hold(conn, hold_id) or row
        return _hold_json(row)

    def holds_of(self, principal: Principal, subject: str, *, active_only: bool = False) -> list[dict[str, Any]]:
        self.vault.subject_status(subject)
        self._require(principal)
        with read_connection(self.engine) as conn:
            return [_hold_json(r) for r in repository.holds_of(conn, subject, active_only=active_only)]

    def active_holds(self, principal: Principal, limit: int = 200) -> list[dict[str, Any]]:
        """Legal holds not released, of every subject, newest first (the console's dashboard)."""
        self._require(principal)
        with read_connection(self.engine) as conn:
            return [_hold_json(r) for r in repository.active_holds(conn, limit)]

    # -- helpers -------------------------------------------------------------------------------

    def _verified(self, principal: Principal, request_id: str, kind: str | None = None) -> dict[str, Any]:
        row = self._row(request_id)
        self._require(principal)
        if kind is not None and row["kind"] != kind:
            raise RequestStateError(f"this is an {row['kind']} request, not {kind}")
        if row["status"] != "verified":
            raise RequestStateError(
                "verify the requester's identity first" if row["status"] == "received"
                else f"the request is already {row['status']}")
        return row

    def _close(self, principal: Principal, row: dict[str, Any], status: str, outcome: str) -> None:
        event = "gdpr.request_completed" if status == "completed" else "gdpr.request_refused"
        self._log(event, principal, row["subject_token"], row["id"], row["kind"], status=status, reason=outcome)
        self._update(row["id"], OPEN, {"status": status, "outcome": outcome[:300], "closed_at": self.clock.now()})

    def _update(self, request_id: str, expected: tuple[str, ...], values: dict[str, Any]) -> None:
        with write_connection(self.engine) as conn:
            if not repository.update_request(conn, request_id, expected,
                                             {**values, "updated_at": self.clock.now()}):
                raise RequestStateError("the request changed meanwhile; read it again")

    def _log(self, event_type: str, principal: Principal, subject: str, request_id: str, kind: str, *,
             status: str, due: date | None = None, reason: str | None = None) -> int:
        receipt = self.audit.record(event_type, actor=principal.actor, subject=subject, payload=GdprPayload(
            request_id=request_id, article=ARTICLES.get(kind), status=status, reason=reason, due=_midnight(due)))
        return receipt.index

    def _row(self, request_id: str) -> dict[str, Any]:
        with read_connection(self.engine) as conn:
            row = repository.get_request(conn, request_id) if isinstance(request_id, str) and len(
                request_id) <= 40 else None
        if row is None:
            raise RequestNotFoundError("no request has this id")
        return row

    def _require(self, principal: Principal) -> None:
        decision = self.authorizer.decide(principal, ACTION, Resource("gdpr_request"), purpose=None,
                                          now=self.clock.now())
        if not decision.allowed:
            raise PermissionDeniedError(f"{ACTION} refused by a {decision.rule} rule", rule=decision.rule)

    def _today(self) -> date:
        return self.clock.now().date()

    def _json(self, row: dict[str, Any]) -> dict[str, Any]:
        today = self._today()
        due: date = row["due_on"]
        is_open = row["status"] in OPEN
        return {
            "id": row["id"], "subject": row["subject_token"], "kind": row["kind"], "article": ARTICLES[row["kind"]],
            "channel": row["channel"], "status": row["status"], "received_on": row["received_on"].isoformat(),
            "due_on": due.isoformat(), "extended_months": row["extended_months"],
            "extension_reason": row["extension_reason"], "overdue": is_open and today > due,
            "days_left": (due - today).days if is_open else None,
            "verification": None if row["verified_at"] is None else {
                "method": row["verification_method"], "reference": row.get("verification_reference"),
                "at": format_time(aware(row["verified_at"])), "by": row["verified_by"]},
            "outcome": row["outcome"], "created_by": row["created_by"],
            "created_at": format_time(aware(row["created_at"])),
            "closed_at": format_time(aware(row["closed_at"])) if row["closed_at"] else None,
        }


def _midnight(day: date | None) -> datetime | None:
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)


def _check_code(value: str, name: str) -> None:
    if not isinstance(value, str) or not _CODE.fullmatch(value):
        raise InvalidInputError(f"{name} must be a short code (lower-case letters, digits, _ : ; . , / -)")


def _hold_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "subject": row["subject_token"], "case_id": row["case_id"], "reason": row["reason"],
            "owner": row["owner"], "starts_on": row["starts_on"].isoformat(), "ends_on": iso_date(row["ends_on"]),
            "active": row["released_at"] is None,
            "released_at": format_time(aware(row["released_at"])) if row["released_at"] else None}


def _parse_cursor(cursor: str) -> tuple[date, str]:
    try:
        due, request_id = cursor.split("|", 1)
        return date.fromisoformat(due), request_id
    except ValueError:
        raise InvalidInputError("cursor is not one this API returned") from None
