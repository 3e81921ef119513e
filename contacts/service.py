"""The contacts service: the contact-policy firewall and the ledger of contacts.

:class:`ContactService` holds the subject's debts and cases (:attr:`ContactService.debts`,
:mod:`contacts.debts`) and contact preferences, restriction and objections
(:attr:`ContactService.subject_rules`, :mod:`contacts.preferences`).

Recording a contact (DESIGN.md, flow 1):

1. the subject must exist and not be shredded; the debt and case, if named, must be theirs;
2. the authorizer decides ``contact.record`` (role or scope, case assignment, restriction);
3. the firewall (:mod:`contacts.firewall`) evaluates the rules of ``policies/contact_rules.yaml``
   against the subject's rules, the debt and the recent contacts: a refusing violation
   appends ``contact.blocked`` (the refusal is evidence too) and raises
   :class:`ContactRefusedError` naming the rules; flagging violations are recorded with
   the contact (``policy_flags``);
4. the note is scrubbed (:mod:`vault.detect`): PII found in it, the subject's own names
   and streets included, is replaced by placeholders such as ``[PESEL#1]``; the scrubbed
   note and the note as written are sealed under the subject's key, as is a visit's GPS
   position;
5. the event is appended to the audit log (the idempotency key makes a retry return the
   first receipt), its ``contact_events`` index row (for the firewall and the console) in
   the same transaction. The row takes the subject's next contact number, guarded by a
   unique index: a contact decided on a history another contact changed meanwhile is
   refused by the log and decided again (ADR 0013), so concurrent contacts cannot pass a
   cap or a cooldown twice.

The order is the vault's: the entry first, then the effect. Services never commit; every
write runs in its own short transaction (see :mod:`vault.service` for why).
"""

from __future__ import annotations

import base64
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy import Engine

from audit.events import (
    AuditEvent,
    Channel,
    ContactBlockedPayload,
    SignaturePayload,
    build_event,
    format_time,
    sealed_b64,
)
from audit.sequencer import Receipt, SideRow, StaleDecisionError
from audit.service import AuditLog
from contacts import repository
from contacts.common import (
    CURRENCY_PATTERN,
    PURPOSE_PATTERN,
    READ_ACTION,
    RECORD_ACTION,
    CaseNotFoundError,
    ContactNotFoundError,
    DebtNotFoundError,
    Guard,
    aware,
    channel_name,
    check_id,
    check_plain,
    iso_date,
)
from contacts.debt_info import debt_infos
from contacts.debts import DebtBook, DebtInfo
from contacts.firewall import (
    ContactHistory,
    DebtState,
    PastContact,
    PlannedContact,
    SubjectState,
    Verdict,
    Violation,
    evaluate,
)
from contacts.preferences import SubjectRuleBook, subject_state
from contacts.rules import ContactRules
from core.clock import SYSTEM_CLOCK, Clock
from core.db import read_connection, write_connection
from core.errors import ConflictError, InvalidInputError, PermissionDeniedError, TarczaError
from core.logging import get_logger
from identity.principal import Principal
from policies.authorizer import Authorizer, Resource, decide_each
from vault.errors import SubjectNotFoundError
from vault.service import EventSealer, SubjectShreddedError, VaultService

__all__ = [
    "ContactReceipt",
    "ContactRecord",
    "ContactRefusedError",
    "ContactService",
    "Signature",
    "violation_json",
]

log = get_logger(__name__)

HISTORY_LIMIT: Final = 500
SUBJECT_LOCK_STRIPES: Final = 1024
MAX_DECISION_ROUNDS: Final = 50  # decided again at most this often when other contacts keep landing first
MAX_NOTE_LENGTH: Final = 20_000
KNOWN_VALUE_FIELDS: Final = ("first_name", "last_name", "address", "employer")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/\-]{0,63}")
_OUTCOME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_PURPOSE = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_EVENT_ID = re.compile(r"[0-9a-f\-]{36}")
_SEALED_KEYS = frozenset({"notes", "notes_original", "gps"})

OUTCOMES: Final[dict[str, frozenset[str]]] = {
    "phone": frozenset({"answered", "no_answer", "busy", "voicemail", "wrong_number", "refused",
                        "promise_to_pay", "third_party_answered", "disputed"}),
    "sms": frozenset({"sent", "delivered", "failed", "replied"}),
    "email": frozenset({"sent", "delivered", "bounced", "replied"}),
    "letter": frozenset({"sent", "delivered", "returned", "refused"}),
    "messenger": frozenset({"sent", "delivered", "read", "replied"}),
    "visit": frozenset({"met_debtor", "not_at_home", "refused", "third_party_present", "promise_to_pay",
                        "payment_collected", "agreement_signed", "address_invalid"}),
}
"""The outcomes each channel knows; an outcome not listed is refused, naming the channel."""

CONVERSATION_OUTCOMES: Final = frozenset({"answered", "promise_to_pay", "refused", "disputed", "replied",
                                          "met_debtor", "payment_collected", "agreement_signed"})
"""Outcomes that mean the debtor was spoken to (the cooldown rule counts these)."""


class ContactRefusedError(TarczaError):
    """The contact-policy firewall refused the contact; the rules that did are named."""

    status = 409
    code = "contact-refused"
    title = "Contact refused by policy"


@dataclass(frozen=True)
class Signature:
    document_sha256: str
    signer: Literal["debtor", "third_party", "agent"]
    signed_at: datetime
    method: str | None = None


@dataclass(frozen=True)
class ContactRecord:
    """One contact as a collection system reports it. ``notes`` and ``gps`` are personal: they are sealed."""

    subject: str
    channel: str
    direction: Literal["outbound", "inbound"]
    agent_id: str
    started_at: datetime
    ended_at: datetime | None = None
    debt_id: str | None = None
    case_id: str | None = None
    outcome: str | None = None
    recipient: Literal["debtor", "third_party"] = "debtor"
    discloses_debt: bool = True
    demands_payment: bool = False
    voluntary_payment_request: bool = False
    time_barred_notice: bool = False
    threats: tuple[str, ...] = ()
    purpose: str = "debt_collection"
    notes: str | None = None
    gps: tuple[float, float] | None = None
    gps_accuracy_m: int | None = None
    recording_id: str | None = None
    recording_announced: bool | None = None
    promise_amount_minor: int | None = None
    promise_due: date | None = None
    payment_amount_minor: int | None = None
    currency: str | None = None
    signature: Signature | None = None

    @property
    def conversation(self) -> bool:
        return self.outcome in CONVERSATION_OUTCOMES

    def __repr__(self) -> str:  # notes and GPS are personal data
        return (f"ContactRecord(subject={self.subject!r}, channel={self.channel!r}, "
                f"direction={self.direction!r}, outcome={self.outcome!r})")


@dataclass(frozen=True)
class ContactReceipt:
    """What the caller gets back: the contact's event id, where it is in the log, and any flags."""

    event_id: str
    event_type: str
    index: int
    leaf_hash: bytes
    tree_size: int
    duplicate: bool
    flags: list[str] = field(default_factory=list)
    pii_found: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "event_type": self.event_type, "index": self.index,
                "leaf_hash": base64.b64encode(self.leaf_hash).decode("ascii"), "tree_size": self.tree_size,
                "duplicate": self.duplicate, "policy_flags": self.flags, "pii_found": self.pii_found}


@dataclass(frozen=True)
class _Context:
    resource: Resource
    subject: SubjectState
    debt: DebtInfo | None
    history: ContactHistory
    head: int = 0  # the subject's highest contact number when the history was read


class _StripedLocks:
    """Locks of subjects in one process: each subject hashes onto one of ``count`` locks, taken in
    index order (so two holders of several never wait on each other in a circle)."""

    def __init__(self, count: int) -> None:
        self._locks = [threading.Lock() for _ in range(count)]

    @contextmanager
    def holding(self, subjects: Iterable[str]) -> Iterator[None]:
        stripes = sorted({zlib.crc32(s.encode("utf-8", "replace")) % len(self._locks) for s in subjects})
        taken: list[threading.Lock] = []
        try:
            for stripe in stripes:
                lock = self._locks[stripe]
                lock.acquire()
                taken.append(lock)
            yield
        finally:
            for lock in reversed(taken):
                lock.release()


class ContactService(Guard):
    """The collection evidence ledger and the contact-policy firewall in front of it."""

    def __init__(self, engine: Engine, vault: VaultService, audit: AuditLog, authorizer: Authorizer,
                 rules: ContactRules, detector: Callable[[], Any] | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(engine, vault, audit, authorizer, clock)
        self.rules = rules
        self.debts = DebtBook(engine, vault, audit, authorizer, clock)
        self.subject_rules = SubjectRuleBook(engine, vault, audit, authorizer, clock)
        self.recording_requires_announcement = True  # every recorded contact must have been announced
        self._detector_factory = detector
        self._detector: Any = None
        self._detector_lock = threading.Lock()
        self._subject_locks = _StripedLocks(SUBJECT_LOCK_STRIPES)

    # -- the firewall --------------------------------------------------------------------------

    def check(self, principal: Principal, contact: ContactRecord) -> Verdict:
        """Ask the firewall about a planned contact; nothing is recorded."""
        self._validate(contact)
        context = self._context(contact)
        self.require_on(principal, RECORD_ACTION, context.resource)
        return self._evaluate(contact, context)

    def _context(self, contact: ContactRecord) -> _Context:
        """Everything the decision and the firewall need about the contact's subject."""
        context = self._contexts([contact])[0]
        if isinstance(context, TarczaError):
            raise context
        return context

    def _contexts(self, contacts: Sequence[ContactRecord]) -> list[_Context | TarczaError]:
        """The context of each contact (or why it has none), read on one connection, each subject and
        debt once: status, cases, preferences, objections and the history the rules look back on."""
        window = _history_window(self.rules)
        since: dict[str, datetime] = {}
        for c in contacts:
            since[c.subject] = min(since.get(c.subject, c.started_at), c.started_at - window)
        debt_ids = list(dict.fromkeys(c.debt_id for c in contacts if c.debt_id is not None))
        with read_connection(self.engine) as conn:
            status = self.vault.subject_statuses(list(since), conn)
            live = [token for token in since if status.get(token) == "active"]
            # The heads before the history: a contact landing in between makes ours stale (decided
            # again), it never goes unseen.
            heads = repository.subject_heads(conn, live)
            case_ids = repository.case_ids_of(conn, live)
            rules = repository.subject_rules_of(conn, live)
            objections = repository.active_objections_of(conn, live)
            recent = repository.recent_events_of(conn, {token: since[token] for token in live})
            debt_rows = repository.debts_by_id(conn, debt_ids)
            debts = {d.id: d for d in debt_infos(conn, list(debt_rows.values()))}
        states = {token: subject_state(rules.get(token), objections[token]) for token in live}
        histories = {token: tuple(
            PastContact(channel=Channel(r["channel"]), debt_id=r["debt_id"], at=aware(r["occurred_at"]),
                        conversation=bool(r["conversation"]), direction=r["direction"]) for r in rows)
            for token, rows in recent.items()}
        out: list[_Context | TarczaError] = []
        for contact in contacts:
            token = contact.subject
            known = status.get(token)
            if known is None:
                out.append(SubjectNotFoundError("no subject has this token"))
                continue
            if known != "active":
                out.append(SubjectShreddedError("the subject was shredded; its data can no longer be read"))
                continue
            if contact.case_id is not None and contact.case_id not in case_ids[token]:
                out.append(CaseNotFoundError("the subject has no case with this id"))
                continue
            debt = debts.get(contact.debt_id) if contact.debt_id is not None else None
            if contact.debt_id is not None and debt is None:
                out.append(DebtNotFoundError("no debt has this id"))
                continue
            if debt is not None and token not in debt.party_tokens:
                out.append(InvalidInputError("the debt belongs to another subject"))
                continue
            if debt is not None and debt.subject != token:  # a guarantor or co-debtor: their own period
                debt = debt.viewed_by(token)
            state = states[token]
            resource = Resource("subject", token, case_ids=case_ids[token], restricted=state.restricted)
            out.append(_Context(resource, state, debt, ContactHistory(contacts=histories[token]), heads[token]))
        return out

    def _evaluate(self, contact: ContactRecord, context: _Context) -> Verdict:
        debt = context.debt
        debt_state = None if debt is None else DebtState(debt_id=debt.id, consumer=debt.consumer,
                                                         time_barred_on=debt.time_barred_on)
        planned = PlannedContact(
            channel=Channel(contact.channel), planned_at=contact.started_at, agent_id=contact.agent_id,
            debt_id=contact.debt_id, recipient=contact.recipient, discloses_debt=contact.discloses_debt,
            demands_payment=contact.demands_payment, purpose=contact.purpose, direction=contact.direction,
            conversation=contact.conversation if contact.outcome is not None else None,
            voluntary_payment_request=contact.voluntary_payment_request,
            time_barred_notice=contact.time_barred_notice, threats=frozenset(contact.threats))
        return evaluate(self.rules, planned, context.subject, debt_state, context.history)

    # -- recording contacts --------------------------------------------------------------------

    def record(self, principal: Principal, contact: ContactRecord,
               idempotency_key: str | None = None) -> ContactReceipt:
        """Run the firewall, scrub and seal, append the contact to the log, index it; see the module docs."""
        result = self._record_all(principal, [contact], [idempotency_key])[0]
        if isinstance(result, TarczaError):
            raise result
        return result

    def record_many(self, principal: Principal, contacts: Sequence[ContactRecord],
                    idempotency_keys: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Record contacts in order, as one group of the log; each result is a receipt or the problem
        that stopped it. Each contact is decided with the earlier contacts of the batch in its history,
        as if they had come one by one."""
        if idempotency_keys is not None and len(idempotency_keys) != len(contacts):
            raise InvalidInputError("one idempotency key per contact")
        keys: list[str | None] = list(idempotency_keys) if idempotency_keys is not None else [None] * len(contacts)
        return [{"error": r.problem()} if isinstance(r, TarczaError) else {"receipt": r.to_json()}
                for r in self._record_all(principal, contacts, keys)]

    def _record_all(self, principal: Principal, contacts: Sequence[ContactRecord],
                    keys: Sequence[str | None]) -> list[ContactReceipt | TarczaError]:
        """:meth:`_record_once`, deciding again the contacts whose subject got another contact while they
        were decided (the log refused them as stale: see ``subject_seq`` in :mod:`contacts.models`), with
        the history that now includes it. A round is lost only to a contact that landed, so racing
        contacts all land within as many rounds as there are racers (at most MAX_DECISION_ROUNDS)."""
        out = self._record_once(principal, contacts, keys)
        for _ in range(MAX_DECISION_ROUNDS):
            stale = [i for i, r in enumerate(out) if isinstance(r, StaleDecisionError)]
            if not stale:
                return out
            again = self._record_once(principal, [contacts[i] for i in stale], [keys[i] for i in stale])
            for i, result in zip(stale, again, strict=True):
                out[i] = result
        return [ConflictError("too many contacts with this subject at once; retry") if isinstance(r, StaleDecisionError)
                else r for r in out]

    def _record_once(self, principal: Principal, contacts: Sequence[ContactRecord],
                     keys: Sequence[str | None]) -> list[ContactReceipt | TarczaError]:
        """:meth:`_record_unlocked` holding this process's locks of the contacts' subjects, from reading
        their history to appending: recordings in one process wait for each other instead of losing the
        race in the log and deciding again (the log's guard still serialises other processes)."""
        with self._subject_locks.holding(c.subject for c in contacts if isinstance(c.subject, str)):
            return self._record_unlocked(principal, contacts, keys)

    def _record_unlocked(self, principal: Principal, contacts: Sequence[ContactRecord],
                         keys: Sequence[str | None]) -> list[ContactReceipt | TarczaError]:
        """The one recording path. Each contact: validated, its subject read (once per subject) and the
        decision asked (in one call); a retried key answered from the log; then, in order, the firewall
        (with the batch's earlier contacts in the history), the note scrubbed and sealed. All the
        entries go to the log as one group, each with its index row in the same transaction, so a
        logged contact is always indexed."""
        out: list[ContactReceipt | TarczaError | None] = [None] * len(contacts)
        scoped: dict[int, str | None] = {}  # the log's idempotency key of each valid contact
        todo: list[int] = []
        for i, contact in enumerate(contacts):
            try:
                self._validate(contact)
                scoped[i] = _key(principal, keys[i])
            except TarczaError as exc:
                out[i] = exc
                continue
            todo.append(i)
        contexts: dict[int, _Context] = {}
        for i, context in zip(todo, self._contexts([contacts[i] for i in todo]), strict=True):
            if isinstance(context, TarczaError):
                out[i] = context
            else:
                contexts[i] = context
        now = self.clock.now()
        decisions = decide_each(self.authorizer, principal, RECORD_ACTION, [contexts[i].resource for i in contexts],
                                purpose=None, now=now)
        for i, decision in zip(list(contexts), decisions, strict=True):
            if not decision.allowed:
                log.info("contacts_denied", action=RECORD_ACTION, subject=contacts[i].subject, rule=decision.rule)
                out[i] = PermissionDeniedError(f"{RECORD_ACTION} refused by a {decision.rule} rule",
                                               rule=decision.rule)
                del contexts[i]
        logged = self.audit.receipts_for_keys([k for i in contexts if (k := scoped[i]) is not None])
        sealers = self._sealers(principal, [contacts[i] for i in contexts])
        shown = self._shown_known_fields(principal, [contexts[i] for i in contexts if _note(contacts[i]) is not None])
        pending: dict[str, list[PastContact]] = {}
        numbers: dict[str, int] = {}  # each subject's last contact number taken in this call
        group: list[tuple[AuditEvent, str | None, SideRow | None]] = []
        planned: list[tuple[int, str, list[str], int, Verdict | None]] = []
        for i, context in contexts.items():
            contact, key = contacts[i], scoped[i]
            if key is not None and key in logged:
                try:
                    out[i] = self._answer_earlier(logged[key])
                except TarczaError as exc:
                    out[i] = exc
                continue
            earlier = pending.setdefault(contact.subject, [])
            verdict = self._evaluate(contact, replace(context, history=ContactHistory(
                contacts=context.history.contacts + tuple(earlier))))
            refusing = [v.rule for v in verdict.violations if v.action == "refuse"]
            if refusing:
                event_type, rules, found = "contact.blocked", refusing, 0
                event = build_event(event_type, actor=principal.actor, time=now, subject=contact.subject,
                                    payload=ContactBlockedPayload(
                                        channel=Channel(contact.channel), agent_id=contact.agent_id, rule=refusing[0],
                                        rules=refusing, case_id=contact.case_id, debt_id=contact.debt_id,
                                        planned_at=contact.started_at, rules_sha256=self.rules.sha256))
            else:
                rules = [v.rule for v in verdict.violations if v.action == "flag"]
                try:
                    payload, found = self._payload(contact, rules, sealers, shown.get(contact.subject, frozenset()))
                except TarczaError as exc:
                    out[i] = exc
                    continue
                event_type = _event_type(contact)
                event = build_event(event_type, actor=principal.actor, time=now, payload=payload,
                                    subject=contact.subject)
                earlier.append(PastContact(channel=Channel(contact.channel), debt_id=contact.debt_id,
                                           at=contact.started_at, direction=contact.direction,
                                           conversation=contact.conversation if contact.outcome is not None
                                           else False))
            outcome = "refuse" if refusing else ("flag" if rules else "allow")
            number = numbers[contact.subject] = numbers.get(contact.subject, context.head) + 1
            row = _index_row(event.id, event_type, contact, outcome, rules, now)
            group.append((event, key, SideRow(repository.events, {**row, "subject_seq": number},
                                              guard=("subject_token", "subject_seq"))))
            planned.append((i, event_type, rules, found, verdict if refusing else None))
        results = self.audit.append_group(group) if group else []
        for (i, event_type, rules, found, refused), result in zip(planned, results, strict=True):
            if isinstance(result, Exception):  # StaleDecisionError included: _record_all decides it again
                out[i] = result if isinstance(result, TarczaError) else ConflictError("the log refused this entry")
            elif refused is not None:
                log.info("contact_refused", subject=contacts[i].subject, rules=rules)
                out[i] = ContactRefusedError(
                    "refused by " + ", ".join(rules) + ": " + "; ".join(
                        v.message for v in refused.violations if v.action == "refuse"),
                    rules=[violation_json(v) for v in refused.violations],
                    event_id=result.event_id, index=result.index, duplicate=result.duplicate)
            else:
                out[i] = _receipt(result, event_type, rules, found)
        return [r if r is not None else TarczaError("not recorded") for r in out]

    def history(self, principal: Principal, subject: str, *, cursor: str | None = None,
                limit: int = 50) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the subject's contacts, newest first (no personal data: channel, outcome, log index)."""
        if not 0 < limit <= HISTORY_LIMIT:
            raise InvalidInputError(f"limit must be 1 to {HISTORY_LIMIT}")
        before = _parse_cursor(cursor) if cursor else None
        self.subject_known(subject)
        self.require(principal, READ_ACTION, subject)
        with read_connection(self.engine) as conn:
            rows = repository.events_of(conn, subject, before=before, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = _cursor(rows[-1]) if more and rows else None
        return [_event_json(r) for r in rows], next_cursor

    def contact(self, principal: Principal, event_id: str, *, full: bool = False,
                purpose: str | None = None) -> dict[str, Any]:
        """One recorded contact with its note: scrubbed (placeholders) in a masked read, as written in a reveal.

        Opening a sealed note is decided and logged by the vault (``vault.access``, field
        ``note``; ``gps`` too for a visit, shown only in a reveal). A shredded subject's
        contacts keep their index rows and log entries, but nothing of them opens (410).
        """
        with read_connection(self.engine) as conn:
            row = repository.get_event(conn, event_id) if _EVENT_ID.fullmatch(event_id or "") else None
        if row is None:
            raise ContactNotFoundError("no contact has this id")
        out = _event_json(row)
        payload = self.audit.get(row["log_index"]).event["payload"]
        out["payload"] = {k: v for k, v in payload.items() if k not in _SEALED_KEYS}
        note_key = "notes_original" if full and "notes_original" in payload else "notes"
        wanted = [(key, "gps" if key == "gps" else "note") for key in (note_key, "gps")
                  if key in payload and (full or key != "gps")]
        if not wanted:
            self.require(principal, READ_ACTION, row["subject_token"])
            return out
        values = self.vault.open_event_values(principal, row["subject_token"],
                                              [(field, _unb64(payload[key])) for key, field in wanted],
                                              purpose, full=full)
        opened = {key: value for (key, _), value in zip(wanted, values, strict=True)}
        out["notes"] = opened.get(note_key)
        out["view"] = "full" if full else "masked"
        if "gps" in opened:
            lat, lon = opened["gps"].split(",")
            out["gps"] = {"lat": lat, "lon": lon, "accuracy_m": payload.get("gps_accuracy_m")}
        return out

    def recent_decisions(self, since: datetime, decisions: Sequence[str] = ("flag", "refuse"),
                         limit: int = 200) -> list[dict[str, Any]]:
        """Flagged and refused contacts recorded since ``since`` (the console's dashboard)."""
        with read_connection(self.engine) as conn:
            return [_event_json(r) for r in repository.decisions_since(conn, since, decisions, limit=limit)]

    def counts_by_channel_and_day(self, since: datetime) -> list[tuple[str, date, int]]:
        """Recorded (not refused) contacts per channel per day (UTC) from ``since``: the console's chart."""
        with read_connection(self.engine) as conn:
            return repository.counts_by_channel_and_day(conn, since)

    # -- helpers -------------------------------------------------------------------------------

    def detector(self) -> Any:
        """The PII detector, built on first use (loading presidio takes a moment)."""
        if self._detector is None:
            with self._detector_lock:
                if self._detector is None:
                    if self._detector_factory is None:
                        raise TarczaError("this contacts service has no PII detector for notes")
                    self._detector = self._detector_factory()
        return self._detector

    def _sealers(self, principal: Principal, contacts: Sequence[ContactRecord]) -> dict[str, EventSealer]:
        """Sealers for the subjects of the contacts with a note or a position, read together; with the
        subjects' own values of :data:`KNOWN_VALUE_FIELDS` where a note is to be scrubbed (opened by the
        vault's gate for the note scrubber, acting for ``principal``)."""
        with_note = [c.subject for c in contacts if _note(c) is not None]
        only_gps = [c.subject for c in contacts if _note(c) is None and c.gps is not None]
        sealers = self.vault.event_sealers(with_note, KNOWN_VALUE_FIELDS, principal=principal) if with_note else {}
        rest = [t for t in only_gps if t not in sealers]
        if rest:
            sealers.update(self.vault.event_sealers(rest))
        return sealers

    def _shown_known_fields(self, principal: Principal, contexts: Sequence[_Context]) -> dict[str, frozenset[str]]:
        """Per subject, the known-value fields the principal's masked view shows in clear (none where it may
        not read the subject): a receipt counts the subject's own values found in a note only for those."""
        resources = list({c.resource.id: c.resource for c in contexts}.values())
        if not resources:
            return {}
        decisions = decide_each(self.authorizer, principal, READ_ACTION, resources, purpose=None, now=self.clock.now())
        role = principal.primary_role
        clear = frozenset(f for f in KNOWN_VALUE_FIELDS if self.vault.catalogue.mask_strategy(f, role) == "none")
        return {r.id: clear if d.allowed else frozenset() for r, d in zip(resources, decisions, strict=True)}

    def _payload(self, contact: ContactRecord, flags: list[str], sealers: dict[str, EventSealer],
                 shown: frozenset[str]) -> tuple[dict[str, Any], int]:
        """The event payload, its personal parts sealed; and how many PII values of the note the caller may be
        told of: those found by the note alone (identifiers, phones, e-mails), and the subject's own values
        only where ``shown`` (its masked view shows them in clear). A count of the subject's own values
        told to anyone else would say whether a guessed name is the subject's (issue 16, defect 6)."""
        payload: dict[str, Any] = {
            "channel": contact.channel, "direction": contact.direction, "agent_id": contact.agent_id,
            "case_id": contact.case_id, "debt_id": contact.debt_id, "outcome": contact.outcome,
            "conversation": contact.conversation if contact.outcome is not None else None,
            "started_at": contact.started_at, "ended_at": contact.ended_at,
            "recording_id": contact.recording_id, "recording_announced": contact.recording_announced,
            "promise_amount_minor": contact.promise_amount_minor, "promise_due": iso_date(contact.promise_due),
            "payment_amount_minor": contact.payment_amount_minor, "currency": contact.currency,
            "policy_flags": flags, "rules_sha256": self.rules.sha256,
            "voluntary_payment_request": contact.voluntary_payment_request or None,
            "time_barred_notice": contact.time_barred_notice or None, "threats": list(contact.threats) or None,
        }
        if contact.signature is not None:
            sig = contact.signature
            payload["signature"] = SignaturePayload(document_sha256=sig.document_sha256, signer=sig.signer,
                                                    signed_at=format_time(sig.signed_at), method=sig.method)
        note = _note(contact)
        if note is None and contact.gps is None:
            return {k: v for k, v in payload.items() if v is not None}, 0
        sealer = sealers.get(contact.subject)
        if sealer is None:  # shredded since its context was read
            raise SubjectShreddedError("the subject was shredded; its data can no longer be read")
        found = 0
        if note is not None:
            scrubbed = self.detector().scrub(note, sealer.known_values)
            payload["notes"] = sealed_b64(sealer.seal("note", scrubbed.text))
            if scrubbed.replacements:  # the note as written, for a reveal; sealed on its own
                payload["notes_original"] = sealed_b64(sealer.seal("note", note))
            payload["pii_found"] = len(scrubbed.replacements)
            found = sum(1 for r in scrubbed.replacements if r.field is None or r.field in shown)
        if contact.gps is not None:
            lat, lon = contact.gps
            payload["gps"] = sealed_b64(sealer.seal("gps", f"{lat},{lon}"))
            payload["gps_accuracy_m"] = contact.gps_accuracy_m
        return {k: v for k, v in payload.items() if v is not None}, found

    def _answer_earlier(self, receipt: Receipt) -> ContactReceipt:
        """The answer to an earlier request with the same idempotency key: its receipt, or its refusal raised."""
        with read_connection(self.engine) as conn:
            row = repository.get_event(conn, receipt.event_id)
        if row is None:
            row = self._reindex(receipt)
        rules = [r for r in row["rules"].split(",") if r]
        if row["decision"] == "refuse":
            raise ContactRefusedError("refused by " + ", ".join(rules), rules=[
                {"rule": r, "action": "refuse", "message": "refused when first asked"} for r in rules],
                event_id=row["id"], index=row["log_index"], duplicate=True)
        return ContactReceipt(receipt.event_id, row["event_type"], receipt.index, receipt.leaf_hash,
                              receipt.tree_size, True, rules)

    def _reindex(self, receipt: Receipt) -> dict[str, Any]:
        """Index a logged contact whose index row is missing (the process stopped between the two writes).

        The log entry holds everything the row does, so the row is rebuilt from it.
        """
        event = self.audit.get(receipt.index).event
        event_type, payload = event.get("type", ""), event.get("payload", {})
        if not event_type.startswith("contact.") or event_type == "contact.preferences_changed":
            raise ConflictError("this idempotency key was used for another kind of request")
        blocked = event_type == "contact.blocked"
        started = payload.get("planned_at") if blocked else payload.get("started_at")
        if not isinstance(started, str):
            raise ConflictError("the earlier request with this idempotency key cannot be re-read; use a new key")
        rules = payload.get("rules", []) if blocked else payload.get("policy_flags", [])
        row = {"id": event["id"], "subject_token": event["subject"], "debt_id": payload.get("debt_id"),
               "case_id": payload.get("case_id"), "event_type": event_type, "channel": payload["channel"],
               "direction": payload.get("direction", "outbound"), "agent_id": payload["agent_id"],
               "occurred_at": _parse_time(started), "conversation": bool(payload.get("conversation", False)),
               "outcome": payload.get("outcome"), "decision": "refuse" if blocked else ("flag" if rules else "allow"),
               "rules": repository.join_names(rules), "recording_id": payload.get("recording_id"),
               "log_index": receipt.index, "recorded_at": _parse_time(event["time"])}
        with write_connection(self.engine) as conn:
            repository.insert_event(conn, row)
        log.info("contact_reindexed", subject=event["subject"], index=receipt.index)
        return row

    def _validate(self, contact: ContactRecord) -> None:
        channel = channel_name(contact.channel)
        if contact.direction not in ("outbound", "inbound"):
            raise InvalidInputError("direction must be outbound or inbound")
        check_plain("agent_id", contact.agent_id, 128)
        if contact.started_at.tzinfo is None:
            raise InvalidInputError("started_at must carry a time zone offset")
        if contact.ended_at is not None:
            if contact.ended_at.tzinfo is None:
                raise InvalidInputError("ended_at must carry a time zone offset")
            if contact.ended_at < contact.started_at:
                raise InvalidInputError("ended_at is before started_at")
        if contact.started_at > self.clock.now() + timedelta(days=366):
            raise InvalidInputError("started_at is more than a year ahead")
        if contact.outcome is not None and contact.outcome not in OUTCOMES[channel]:
            raise InvalidInputError(f"outcome must be one of {', '.join(sorted(OUTCOMES[channel]))} for {channel}")
        for name, value in (("debt_id", contact.debt_id), ("case_id", contact.case_id),
                            ("recording_id", contact.recording_id)):
            if value is not None:
                check_id(value, name)
        if contact.recipient not in ("debtor", "third_party"):
            raise InvalidInputError("recipient must be debtor or third_party")
        if not PURPOSE_PATTERN.fullmatch(contact.purpose or ""):
            raise InvalidInputError("purpose must be a policy identifier such as debt_collection")
        if contact.gps is not None and channel != "visit":
            raise InvalidInputError("a GPS position belongs to a field visit")
        if contact.gps_accuracy_m is not None and not 0 <= contact.gps_accuracy_m <= 100_000:
            raise InvalidInputError("gps_accuracy_m must be 0 to 100000 metres")
        if contact.recording_id is not None and self.recording_requires_announcement \
                and contact.recording_announced is not True:
            raise InvalidInputError("a recorded contact needs recording_announced: true (the debtor must be told)")
        _check_outcome_details(contact)
        if contact.notes is not None and len(contact.notes) > MAX_NOTE_LENGTH:
            raise InvalidInputError(f"notes may hold at most {MAX_NOTE_LENGTH} characters")

def _check_outcome_details(contact: ContactRecord) -> None:
    """Amounts, promises, payments and signatures: present where the outcome needs them, well-formed."""
    amounts = (contact.promise_amount_minor, contact.payment_amount_minor)
    if any(a is not None and a < 0 for a in amounts):
        raise InvalidInputError("amounts must not be negative")
    if any(a is not None for a in amounts) and not CURRENCY_PATTERN.fullmatch(contact.currency or ""):
        raise InvalidInputError("an amount needs its currency (ISO 4217, e.g. PLN)")
    if contact.outcome == "promise_to_pay" and (contact.promise_amount_minor is None or contact.promise_due is None):
        raise InvalidInputError("a promise to pay needs promise_amount_minor and promise_due")
    if contact.outcome == "payment_collected" and contact.payment_amount_minor is None:
        raise InvalidInputError("a collected payment needs payment_amount_minor")
    if contact.outcome == "agreement_signed" and contact.signature is None:
        raise InvalidInputError("a signed agreement needs its signature evidence")
    if contact.signature is not None:
        if not re.fullmatch(r"[0-9a-f]{64}", contact.signature.document_sha256 or ""):
            raise InvalidInputError("signature.document_sha256 must be 64 lower-case hex digits")
        if contact.signature.signed_at.tzinfo is None:
            raise InvalidInputError("signature.signed_at must carry a time zone offset")


# -- small pure helpers --------------------------------------------------------------------------

def violation_json(violation: Violation) -> dict[str, Any]:
    """A violation as the API answers it: the rule, its action, the message, and what the rule rests on."""
    return {"rule": violation.rule, "action": violation.action, "message": violation.message,
            "source_kind": violation.source_kind, "source": violation.source}


def _history_window(rules: ContactRules) -> timedelta:
    """How far back the firewall's rules look: the longest cap window or the longest cooldown."""
    cap = max(rules.rules.frequency_cap.window_days, rules.rules.person_cap.window_days)
    cooldown = max(rules.rules.cooldown_after_conversation.hours.values(), default=0)
    return max(timedelta(days=cap), timedelta(hours=cooldown))


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _event_type(contact: ContactRecord) -> str:
    if contact.channel == "visit":
        return "contact.visit"
    if contact.direction == "inbound":
        return "contact.received"
    return "contact.completed" if contact.conversation else "contact.attempted"


def _note(contact: ContactRecord) -> str | None:
    return contact.notes if contact.notes is not None and contact.notes.strip() else None


def _index_row(event_id: str, event_type: str, contact: ContactRecord, decision: str, rules: list[str],
               now: datetime) -> dict[str, Any]:
    """A contact's ``contact_events`` row (its ``log_index`` is filled in by the log's transaction)."""
    return {"id": event_id, "subject_token": contact.subject, "debt_id": contact.debt_id,
            "case_id": contact.case_id, "event_type": event_type, "channel": contact.channel,
            "direction": contact.direction, "agent_id": contact.agent_id,
            "occurred_at": repository.utc(contact.started_at), "conversation": contact.conversation,
            "outcome": contact.outcome, "decision": decision, "rules": repository.join_names(rules),
            "recording_id": contact.recording_id, "recorded_at": repository.utc(now)}


def _key(principal: Principal, idempotency_key: str | None) -> str | None:
    if idempotency_key is None:
        return None
    if not 0 < len(idempotency_key) <= 200:
        raise InvalidInputError("an idempotency key has 1 to 200 characters")
    return f"contact:{principal.actor.id}:{idempotency_key}"


def _receipt(receipt: Receipt, event_type: str, flags: list[str], pii_found: int) -> ContactReceipt:
    return ContactReceipt(receipt.event_id, event_type, receipt.index, receipt.leaf_hash, receipt.tree_size,
                          receipt.duplicate, flags, pii_found)


def _event_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": row["id"], "subject": row["subject_token"], "event_type": row["event_type"],
            "channel": row["channel"], "direction": row["direction"], "agent_id": row["agent_id"],
            "occurred_at": format_time(aware(row["occurred_at"])), "outcome": row["outcome"],
            "conversation": bool(row["conversation"]), "decision": row["decision"],
            "rules": [r for r in row["rules"].split(",") if r], "debt_id": row["debt_id"], "case_id": row["case_id"],
            "recording_id": row["recording_id"], "log_index": row["log_index"],
            "recorded_at": format_time(aware(row["recorded_at"]))}


def _cursor(row: dict[str, Any]) -> str:
    return f"{format_time(aware(row['occurred_at']))}|{row['id']}"


def _parse_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at_text, event_id = cursor.split("|", 1)
        at = datetime.fromisoformat(at_text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError("cursor is not one this API returned") from None
    return at, event_id
