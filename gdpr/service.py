"""The GDPR service: data subject requests with their deadlines, erasure, restriction, objection,
rectification, exports, legal holds.

A request (Art. 15-21) is received for a subject token with the date of receipt, which
fixes its deadline (Art. 12(3), counted as Regulation 1182/71 counts periods:
:mod:`gdpr.deadlines`). Its life: ``received`` -> ``verified`` (the requester's identity
was checked; how is recorded) -> ``completed`` or ``refused``; it may be extended by one or
two months, with a reason, within the first month. Nothing is done for an unverified
request. Every step is a ``gdpr.*`` entry of the audit log, appended before the step
takes effect (the vault's rule: the entry first, then the effect).

Erasure (Art. 17) is decided by :func:`gdpr.retention.erasure_assessment` from the
subject's debts (an open claim that is not time-barred; the accounting duty after it is
settled or time-barred) and legal holds: if anything still needs the data, erasure is
refused with the reasons and the date from which it becomes possible, and, if the subject
asked for it, restricted instead to storage and the firm's own legal claims (Art. 17(3)(e), processed
as Art. 18(2) allows); otherwise the subject is crypto-shredded
(:meth:`vault.service.VaultService.shred`: keys, blind indexes and recordings) and a
tombstone entry with the token alone closes the request.

Services never commit; each step runs its own short transactions.
"""

from __future__ import annotations

import base64
import re
import secrets
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine

from audit.events import ActorKind, GdprPayload, format_time
from audit.export import export_log
from audit.repository import EntryFilter
from audit.service import AuditLog
from contacts.common import aware, iso_date
from contacts.service import ContactService
from core.clock import SYSTEM_CLOCK, Clock
from core.db import read_connection, write_connection
from core.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from core.logging import clear_of_pii_patterns, get_logger
from gdpr import recipients, repository
from gdpr.deadlines import can_extend, extended_deadline, response_deadline
from gdpr.export import (
    ArchiveSummary,
    ErasureInfo,
    ExportContact,
    ExportContents,
    ExportDebt,
    ExportRecording,
    ExportRetention,
    build_archive,
    purposes_from_policy,
    redact_third_parties,
)
from gdpr.models import REQUEST_KINDS
from gdpr.retention import ErasureAssessment, HoldFacts, erasure_assessment, facts_of, load_retention
from identity.principal import Principal
from policies.authorizer import Authorizer, Resource
from vault.service import VaultService

__all__ = ["GdprService", "RequestNotFoundError", "RequestStateError"]

log = get_logger(__name__)

ACTION: Final = "gdpr.manage"
EXPORTER: Final = Principal(id="gdpr-exporter", kind=ActorKind.SYSTEM)
"""Tarcza's own principal that opens a subject's data for their export (the request was decided already)."""
EXPORT_PURPOSE: Final = "gdpr_request"
CONTACT_TYPES: Final = frozenset({"contact.attempted", "contact.completed", "contact.received", "contact.visit"})
RECIPIENTS: Final = (
    "the creditor who assigned the receivable, for its settlement",
    "courts, bailiffs (komornik) and lawyers, where the claim is pursued in proceedings",
    "postal, telecommunication and e-mail service providers delivering letters and messages",
    "IT service providers hosting the firm's systems, under data processing agreements",
)
"""Categories of recipients (GDPR Art. 15(1)(c)); the firm adjusts them to its own processors."""
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

    def to_json(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "erased": self.erased, "restricted": self.restricted,
                "tombstone_index": self.tombstone_index, **assessment_json(self.assessment)}


def assessment_json(assessment: ErasureAssessment) -> dict[str, Any]:
    return {"allowed": assessment.allowed, "possible_from": iso_date(assessment.possible_from),
            "reasons": [{"rule": r.rule, "ref": r.ref, "until": iso_date(r.until), "detail": r.detail}
                        for r in assessment.reasons], **assessment.categories_json()}


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
               "status": "received", "verification_method": None, "verified_at": None, "verified_by": None,
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

    def verify_identity(self, principal: Principal, request_id: str, method: str) -> dict[str, Any]:
        """Record that the requester's identity was verified, and how (the document itself is not stored)."""
        if method not in VERIFICATION_METHODS:
            raise InvalidInputError(f"method must be one of {', '.join(VERIFICATION_METHODS)}")
        row = self._row(request_id)
        self._require(principal)
        if row["status"] != "received":
            raise RequestStateError(f"the request is {row['status']}; only a received request is verified")
        now = self.clock.now()
        self._log("gdpr.identity_verified", principal, row["subject_token"], request_id, row["kind"],
                  status="verified", reason=f"method:{method}")
        self._update(request_id, ("received",), {"status": "verified", "verification_method": method,
                                                 "verified_at": now, "verified_by": principal.actor.id})
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
        return self._assessment(subject)

    def erase(self, principal: Principal, request_id: str, *, restrict_if_refused: bool = False) -> ErasureOutcome:
        """Execute a verified erasure request: shred the subject, or refuse with the reasons (and restrict)."""
        row = self._verified(principal, request_id, kind="erasure")
        subject = row["subject_token"]
        assessment = self._assessment(subject)
        if not assessment.allowed:
            until = assessment.possible_from
            self._log("gdpr.erasure_refused", principal, subject, request_id, "erasure", status="refused",
                      due=until, reason=",".join(sorted({r.rule for r in assessment.reasons})))
            restricted = False
            if restrict_if_refused:
                self.contacts.subject_rules.set_restriction(principal, subject, True, request_id=request_id,
                                                            reason="erasure refused for legal claims")
                restricted = True
            outcome = "refused:" + ",".join(sorted({r.rule for r in assessment.reasons}))
            if until is not None:
                outcome += f";possible_from:{until.isoformat()}"
            self._close(principal, row, "refused", outcome + (";restricted" if restricted else ""))
            return ErasureOutcome(request_id, False, assessment, restricted)
        self.vault.shred(principal, subject)
        recipients.notify_recipients(self.engine, self.audit, principal, subject, "erasure", request_id,
                                     self.clock.now())
        receipt = self._log("gdpr.erasure_performed", principal, subject, request_id, "erasure", status="erased")
        self._close(principal, row, "completed", f"erased:tombstone_index:i{receipt}")
        return ErasureOutcome(request_id, True, assessment, tombstone_index=receipt)

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

    def export(self, principal: Principal, request_id: str, out: Path, *,
               include_recordings: bool = False) -> ArchiveSummary:
        """Answer a verified access or portability request with the subject's archive at ``out``; close it.

        The data is opened by Tarcza's own exporter (:data:`EXPORTER`, purpose ``gdpr_request``):
        its reveals are in the log as every reveal is, before anything is decrypted. Notes are
        given as written, except other people's data in them (``[redacted: PESEL]``). The log
        part is an export of every entry about the subject up to a checkpoint issued now.
        """
        row = self._verified(principal, request_id)
        if row["kind"] not in ("access", "portability"):
            raise RequestStateError(f"an archive answers an access or portability request, not {row['kind']}")
        subject = row["subject_token"]
        self.audit.issue_checkpoint()  # the archive's log part is covered by a checkpoint that includes everything
        contents = self._gather(subject, request_id, include_recordings)
        with tempfile.TemporaryDirectory(prefix="tarcza-export-log-") as work:
            log_dir = Path(work) / "log"
            export_log(self.audit, log_dir, EntryFilter(subject=subject))
            summary = build_archive(contents, log_dir, out, include_recordings=include_recordings,
                                    signer=self.audit.signer)
        self._log("gdpr.export_created", principal, subject, request_id, row["kind"], status="exported",
                  reason=f"sha256:{summary.sha256}")
        self._close(principal, row, "completed", f"exported:sha256:{summary.sha256[:16]}")
        return summary

    def _gather(self, subject: str, request_id: str, include_recordings: bool) -> ExportContents:
        """Everything about the subject, for the archive (see :meth:`export`)."""
        status = self.vault.subject_status(subject)
        entries = self.audit.query(EntryFilter(subject=subject), limit=100_000).items
        kind = next((e.event["payload"].get("subject_kind") for e in entries
                     if e.event["type"] == "vault.subject_created"), "debtor")
        fields: dict[str, list[str]] = {}
        notes: dict[int, str] = {}
        if status == "active":
            fields = self.vault.reveal(EXPORTER, subject, list(self.vault.catalogue.names()), EXPORT_PURPOSE)
            sealed = [(e.index, "note", e.event["payload"].get("notes_original") or e.event["payload"]["notes"])
                      for e in entries if e.event["type"] in CONTACT_TYPES and "notes" in e.event["payload"]]
            if sealed:
                opened = self.vault.open_event_values(EXPORTER, subject, [(f, _unb64(b)) for _, f, b in sealed],
                                                      EXPORT_PURPOSE, full=True)
                detector = self.contacts.detector()
                notes = {index: redact_third_parties(text, fields, detector)
                         for (index, _, _), text in zip(sealed, opened, strict=True)}
        contacts = [_export_contact(e.index, e.event, notes.get(e.index)) for e in entries
                    if e.event["type"] in CONTACT_TYPES or e.event["type"] == "contact.blocked"]
        recordings = [self._export_recording(subject, e.index, e.event, include_recordings and status == "active")
                      for e in entries if e.event["type"] == "recording.stored"]
        debts = [ExportDebt(id=d.id, creditor=d.creditor, assigned_on=d.assigned_on, kind=d.kind,
                            consumer=d.consumer, amount_minor=d.amount_minor, currency=d.currency,
                            due_date=d.due_date, status=d.status, time_barred_on=d.time_barred_on,
                            judgment_date=d.judgment_date, settled_on=d.settled_on)
                 for d in self.contacts.debts.of_subject(subject)]
        retention = [ExportRetention(data_category=name, period=schedule.rule, basis=schedule.basis)
                     for name, schedule in load_retention().schedules.items()]
        purposes = purposes_from_policy(self._purpose_descriptions())
        tombstone = next((e for e in entries if e.event["type"] == "gdpr.erasure_performed"), None)
        shredded = next((e for e in entries if e.event["type"] == "vault.subject_shredded"), None)
        erasure = None if shredded is None else ErasureInfo(
            erased_at=_parse_time(shredded.event["time"]), tombstone_log_index=tombstone.index if tombstone else None)
        return ExportContents(
            subject=subject, subject_kind="third_party" if kind == "third_party" else "debtor",
            status="shredded" if status == "shredded" else "active", generated_at=self.clock.now(),
            shredded_at=erasure.erased_at if erasure else None, request_id=request_id, fields=fields,
            contacts=contacts, recordings=recordings, debts=debts, purposes=purposes, recipients=RECIPIENTS,
            retention=retention, erasure=erasure, recipient_register=recipients.for_export(self.engine, subject))

    def _export_recording(self, subject: str, index: int, event: dict[str, Any], include: bool) -> ExportRecording:
        payload = event["payload"]
        recording_id = payload["recording_id"]

        def opener() -> Iterable[bytes]:
            return self.vault.read_recording(EXPORTER, subject, recording_id, EXPORT_PURPOSE)

        return ExportRecording(recording_id=recording_id, sha256=payload["sha256"], size=payload["size"],
                               created_at=_parse_time(event["time"]), media_type=payload.get("media_type"),
                               duration_ms=payload.get("duration_ms"), log_index=index,
                               open=opener if include else None)

    def _purpose_descriptions(self) -> dict[str, str]:
        parameters = getattr(self.authorizer, "parameters", None)
        purposes = getattr(parameters, "purposes", None)
        return dict(purposes) if purposes else {"debt_collection": "collecting a debt from the subject"}

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

    def _assessment(self, subject: str) -> ErasureAssessment:
        with read_connection(self.engine) as conn:
            hold_rows = repository.holds_of(conn, subject, active_only=True)
        debts = [facts_of(d) for d in self.contacts.debts.of_subject(subject)]
        holds = [HoldFacts(id=h["id"], reason=h["reason"], starts_on=h["starts_on"], ends_on=h["ends_on"])
                 for h in hold_rows]
        return erasure_assessment(debts, holds, self._today())

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
                "method": row["verification_method"], "at": format_time(aware(row["verified_at"])),
                "by": row["verified_by"]},
            "outcome": row["outcome"], "created_by": row["created_by"],
            "created_at": format_time(aware(row["created_at"])),
            "closed_at": format_time(aware(row["closed_at"])) if row["closed_at"] else None,
        }


def _export_contact(index: int, event: dict[str, Any], note: str | None) -> ExportContact:
    payload = event["payload"]
    blocked = event["type"] == "contact.blocked"
    return ExportContact(
        log_index=index, event_id=event["id"], event_type=event["type"],
        time=_parse_time(payload.get("planned_at" if blocked else "started_at") or event["time"]),
        channel=payload["channel"], direction=payload.get("direction"), outcome=payload.get("outcome"),
        agent_id=payload.get("agent_id"), debt_id=payload.get("debt_id"), case_id=payload.get("case_id"), note=note,
        decision=f"blocked: {payload.get('rule')}" if blocked else "allowed",
        flags=tuple(payload.get("rules", []) if blocked else payload.get("policy_flags", [])),
        recording_id=payload.get("recording_id"))


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


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
