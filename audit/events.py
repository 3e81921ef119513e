"""The typed event catalogue and the canonical bytes of an event.

Every entry of the audit log is one :class:`AuditEvent`. Its leaf input is the event's
canonical JSON (RFC 8785), so anyone holding the exported entry can recompute the leaf
hash without Tarcza's code.

Invariants:

* the log never sees plaintext personal data: personal fields of a payload are
  :data:`Sealed` values (base64url of bytes sealed by the vault under the subject's key),
  and every other string in a payload is checked by :func:`core.logging.mask_text` and
  refused if it looks like a PESEL, NIP, IBAN, card number, e-mail or phone number;
* payloads are closed: each event type has a pydantic model with ``extra="forbid"``;
* the canonical form is a pure function of the event (no clock, no randomness).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import rfc8785
import uuid6
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from core.errors import InvalidInputError
from core.logging import mask_text

EVENT_FORMAT_VERSION = 1
SUBJECT_TOKEN_PATTERN = r"^[A-Za-z0-9_\-]{8,64}$"  # noqa: S105 - a pattern, not a secret


def _check_sealed(value: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url sealed bytes") from None
    if len(raw) < 16:
        raise ValueError("too short to be sealed bytes")
    return value


Sealed = Annotated[str, AfterValidator(_check_sealed)]
"""Bytes sealed by the vault, as unpadded or padded base64url text."""


def _no_plain_pii(value: str) -> str:
    if mask_text(value) != value:
        raise ValueError("looks like personal data; seal it in the vault and pass the sealed bytes")
    return value


Text = Annotated[str, Field(max_length=500), AfterValidator(_no_plain_pii)]
"""A short plain string that must not carry personal data (codes, ids, reasons)."""

Token = Annotated[str, Field(pattern=SUBJECT_TOKEN_PATTERN)]
_SUBJECT_TOKEN = re.compile(SUBJECT_TOKEN_PATTERN)


def sealed_b64(data: bytes) -> str:
    """Encode sealed bytes for a payload."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_event_id() -> str:
    """A fresh event id: a time-ordered UUIDv7 (RFC 9562).

    Time order keeps the unique index on event ids append-mostly: random UUIDv4 ids
    dirtied a random index page per entry and cost half the append rate (ADR 0006).
    """
    return str(uuid6.uuid7())


class ActorKind(StrEnum):
    USER = "user"
    CLIENT = "client"
    SYSTEM = "system"


class Actor(BaseModel):
    """Who caused the event: a person (user), a system (API client) or Tarcza itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_no_plain_pii)]
    kind: ActorKind


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Channel(StrEnum):
    PHONE = "phone"
    SMS = "sms"
    EMAIL = "email"
    LETTER = "letter"
    MESSENGER = "messenger"
    VISIT = "visit"


CanonicalTime = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$")]
"""A time inside a nested payload object, already in the canonical spelling (:func:`format_time`)."""
RuleId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class SignaturePayload(Payload):
    """E-signature evidence for a document signed during a contact (a visit's agreement)."""

    document_sha256: Sha256Hex
    signer: Literal["debtor", "third_party", "agent"]
    signed_at: CanonicalTime
    method: Text | None = None  # e.g. "qualified", "advanced", "handwritten_tablet"


class ContactPayload(Payload):
    channel: Channel
    direction: Literal["outbound", "inbound"]
    agent_id: Text
    case_id: Text | None = None
    debt_id: Text | None = None
    outcome: Text | None = None
    conversation: bool | None = None
    notes: Sealed | None = None  # the scrubbed note (placeholders such as [PESEL#1]), sealed
    notes_original: Sealed | None = None  # the note as written, sealed (only when PII was found in it)
    pii_found: int | None = Field(None, ge=0)
    gps: Sealed | None = None
    gps_accuracy_m: int | None = Field(None, ge=0)
    recording_id: Text | None = None
    recording_announced: bool | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    promise_amount_minor: int | None = Field(None, ge=0)
    promise_due: Text | None = None
    payment_amount_minor: int | None = Field(None, ge=0)
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    signature: SignaturePayload | None = None
    policy_flags: list[RuleId] = []
    rules_sha256: Sha256Hex | None = None
    voluntary_payment_request: bool | None = None  # a request to pay that demands nothing (art. 117 § 2¹ k.c.)
    time_barred_notice: bool | None = None  # the debtor was told the claim is time-barred
    threats: list[RuleId] | None = None  # what the contact threatened (court, bailiff, debt_register)


class ContactBlockedPayload(Payload):
    channel: Channel
    agent_id: Text
    rule: Text
    rules: list[RuleId] = []
    case_id: Text | None = None
    debt_id: Text | None = None
    planned_at: datetime | None = None
    rules_sha256: Sha256Hex | None = None


class DebtPayload(Payload):
    debt_id: Text
    creditor: Text | None = None
    kind: Text | None = None
    consumer: bool | None = None
    amount_minor: int | None = Field(None, ge=0)
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    due_date: Text | None = None
    judgment_date: Text | None = None
    status: Text | None = None
    settled_on: Text | None = None
    creditor_kind: Text | None = None
    held_as: Text | None = None


class DebtEventPayload(Payload):
    """An event of a debt's legal history (contacts/legal_events.py), and the period it leaves."""

    debt_id: Text
    event: Text  # the kind: judgment, payment_order, enforcement_started, acknowledgement, ...
    on: Text  # the day it took effect (YYYY-MM-DD)
    seq: int = Field(ge=1)
    party: Token | None = None  # the guarantor or co-debtor it concerns; None: the debtor or every party
    source: Text | None = None
    assignee: Text | None = None
    amount_minor: int | None = Field(None, ge=0)
    ground: Text | None = None
    withdrawn: bool = False
    limitation_end: Text | None = None  # the last day of the period after it; None: not running


class DebtPartyPayload(Payload):
    """A guarantor or co-debtor linked to a debt."""

    debt_id: Text
    party: Token
    role: Literal["guarantor", "co_debtor"]


class CasePayload(Payload):
    case_id: Text
    debt_id: Text | None = None
    status: Text


class ContactPreferencesPayload(Payload):
    opted_out_channels: list[Channel] = []
    weekend_channels: list[Channel] = []
    cease_contact: bool = False
    time_zone: Text


class RecordingPayload(Payload):
    recording_id: Text
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    size: int = Field(ge=0)
    media_type: Text | None = None
    contact_event_id: Text | None = None
    duration_ms: int | None = Field(None, ge=0)
    announced: bool | None = None  # the debtor was told the conversation is recorded


class RecordingAccessPayload(Payload):
    recording_id: Text
    purpose: Text
    range_start: int | None = None
    range_end: int | None = None


class VaultAccessPayload(Payload):
    fields: list[Text]
    purpose: Text
    decision: Literal["allow", "deny"]
    view: Literal["masked", "full"] = "full"
    break_glass: bool = False
    justification: Sealed | None = None
    reason: Text | None = None
    action: Text | None = None  # the vault action asked for (reveal, read_masked, search, shred, ...)
    recording_id: Text | None = None  # for an access to a recording


class VaultSubjectPayload(Payload):
    fields: list[Text] = []
    subject_kind: Text | None = None


class VaultSearchPayload(Payload):
    field: Text
    matches: int = Field(ge=0)
    purpose: Text
    subjects: list[Token] = []  # the tokens returned, so a subject's export shows searches that found it


class KeyRotatedPayload(Payload):
    from_version: int
    to_version: int
    rewrapped: int = Field(ge=0)


class IdentityPayload(Payload):
    user_id: Text | None = None
    client_id: Text | None = None
    reason: Text | None = None
    source_ip: Text | None = None


class GdprPayload(Payload):
    request_id: Text
    article: Text | None = None
    status: Text | None = None
    reason: Text | None = None
    due: datetime | None = None


class NoticePayload(Payload):
    """The Art. 14 duty to inform after obtaining data elsewhere: opened, given, or exempt."""

    notice_id: Text
    status: Literal["open", "given", "exempt"]
    debt_id: Text | None = None
    obtained_on: Text | None = None
    due_on: Text | None = None
    given_on: Text | None = None
    channel: Text | None = None
    exemption: Text | None = None


class RecipientPayload(Payload):
    """A recipient of the subject's data (Art. 19), or a notification to one of a change."""

    recipient_id: Text
    kind: Text
    name: Text | None = None
    debt_id: Text | None = None
    notification_id: Text | None = None
    action: Literal["rectification", "erasure", "restriction"] | None = None
    request_id: Text | None = None
    status: Text | None = None
    method: Text | None = None


class BreachPayload(Payload):
    """An entry of the breach register (Art. 33(5)); the texts themselves are bound by their SHA-256."""

    breach_id: Text
    risk: Literal["unlikely", "risk", "high"]
    aware_at: datetime
    notify_by: datetime
    subjects_count: int | None = Field(None, ge=0)
    texts_sha256: Sha256Hex
    authority_notified_at: datetime | None = None
    subjects_notified_at: datetime | None = None


class PolicyLoadedPayload(Payload):
    policy_set: Text
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    policies: int = Field(ge=0)


class BreakGlassReviewedPayload(Payload):
    """A break-glass reveal reviewed (by the DPO or an auditor): the log index of its ``vault.access``
    entry and the verdict. No free text: the reasons belong in the firm's own case file."""

    entry_index: int = Field(ge=0)
    verdict: Literal["justified", "unjustified"]


class CheckpointIssuedPayload(Payload):
    tree_size: int = Field(ge=0)
    root_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class NotePayload(Payload):
    """Free-form operator entry (``tarcza audit append``): a code and sealed details."""

    code: Text
    details: Sealed | None = None


CATALOGUE: dict[str, type[Payload]] = {
    "contact.attempted": ContactPayload,
    "contact.completed": ContactPayload,
    "contact.received": ContactPayload,
    "contact.visit": ContactPayload,
    "contact.blocked": ContactBlockedPayload,
    "contact.preferences_changed": ContactPreferencesPayload,
    "debt.recorded": DebtPayload,
    "debt.updated": DebtPayload,
    "debt.event_recorded": DebtEventPayload,
    "debt.party_linked": DebtPartyPayload,
    "case.opened": CasePayload,
    "case.closed": CasePayload,
    "recording.stored": RecordingPayload,
    "recording.played": RecordingAccessPayload,
    "recording.shredded": RecordingAccessPayload,
    "vault.subject_created": VaultSubjectPayload,
    "vault.field_updated": VaultSubjectPayload,
    "vault.access": VaultAccessPayload,
    "vault.search": VaultSearchPayload,
    "vault.key_rotated": KeyRotatedPayload,
    "vault.subject_shredded": VaultSubjectPayload,
    "identity.login_succeeded": IdentityPayload,
    "identity.login_failed": IdentityPayload,
    "identity.second_factor_failed": IdentityPayload,
    "identity.locked_out": IdentityPayload,
    "identity.recovery_code_used": IdentityPayload,
    "identity.totp_enrolled": IdentityPayload,
    "identity.totp_reset": IdentityPayload,
    "identity.client_created": IdentityPayload,
    "identity.client_rotated": IdentityPayload,
    "identity.client_revoked": IdentityPayload,
    "identity.logout": IdentityPayload,
    "identity.step_up": IdentityPayload,
    "identity.user_created": IdentityPayload,
    "identity.user_disabled": IdentityPayload,
    "identity.user_updated": IdentityPayload,
    "gdpr.request_received": GdprPayload,
    "gdpr.identity_verified": GdprPayload,
    "gdpr.request_extended": GdprPayload,
    "gdpr.request_completed": GdprPayload,
    "gdpr.request_refused": GdprPayload,
    "gdpr.erasure_refused": GdprPayload,
    "gdpr.export_created": GdprPayload,
    "gdpr.erasure_performed": GdprPayload,
    "gdpr.restriction_applied": GdprPayload,
    "gdpr.restriction_lifted": GdprPayload,
    "gdpr.objection_recorded": GdprPayload,
    "gdpr.rectification_applied": GdprPayload,
    "gdpr.retention_applied": GdprPayload,
    "gdpr.legal_hold_set": GdprPayload,
    "gdpr.legal_hold_released": GdprPayload,
    "gdpr.notice_opened": NoticePayload,
    "gdpr.notice_closed": NoticePayload,
    "gdpr.recipient_recorded": RecipientPayload,
    "gdpr.recipient_notification": RecipientPayload,
    "gdpr.breach_recorded": BreachPayload,
    "gdpr.breach_updated": BreachPayload,
    "policy.loaded": PolicyLoadedPayload,
    "policy.break_glass_reviewed": BreakGlassReviewedPayload,
    "checkpoint.issued": CheckpointIssuedPayload,
    "operator.note": NotePayload,
}


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("event time must be timezone-aware")
    return value.astimezone(UTC)


class AuditEvent(BaseModel):
    """One entry of the log, before it has an index."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1  # EVENT_FORMAT_VERSION
    id: str = Field(default_factory=new_event_id, pattern=r"^[0-9a-f\-]{36}$")
    type: str
    time: Annotated[datetime, AfterValidator(_utc)]
    actor: Actor
    subject: Token | None = None
    payload: dict[str, Any]

    def canonical(self) -> bytes:
        """The leaf input: RFC 8785 canonical JSON of the event."""
        return canonical_json(self.json_value())

    def json_value(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": self.v, "id": self.id, "type": self.type, "time": format_time(self.time),
            "actor": {"id": self.actor.id, "kind": self.actor.kind._value_}, "payload": self.payload,
        }
        if self.subject is not None:
            out["subject"] = self.subject
        return out

    def request_fingerprint(self) -> bytes:
        """What an idempotent retry must repeat: type, actor, subject and payload (not id or time)."""
        return hashlib.sha256(canonical_json({
            "type": self.type, "actor": {"id": self.actor.id, "kind": self.actor.kind.value},
            "subject": self.subject, "payload": self.payload,
        })).digest()


def canonical_json(value: dict[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of an event value.

    Events hold only ASCII keys, strings, integers, booleans, null, lists and objects (no
    floats: the catalogue has none, see tests). In that domain the JCS rules (keys sorted by
    UTF-16 code unit, no whitespace, only ``"``, ``\\`` and control characters escaped,
    lowercase ``\\u00xx``) are exactly what the standard library's ``json`` writes with
    these options, many times faster than a general JCS serializer. ``rfc8785`` stays the
    reference: the verifier's event check and a property test use it.
    """
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError("event text holds an unpaired surrogate (not valid Unicode)") from None


def format_time(value: datetime) -> str:
    """RFC 3339 UTC with microseconds, the one spelling used in canonical events."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def build_event(
    event_type: str, *, actor: Actor, time: datetime, payload: dict[str, Any] | Payload,
    subject: str | None = None, event_id: str | None = None,
) -> AuditEvent:
    """Validate a payload against the catalogue and build the event; InvalidInputError if refused."""
    model = CATALOGUE.get(event_type)
    if model is None:
        raise InvalidInputError(f"unknown event type {event_type!r}", event_type=event_type)
    try:
        typed = payload if isinstance(payload, model) else model.model_validate(
            payload.model_dump() if isinstance(payload, Payload) else payload)
        data: dict[str, Any] = {
            "type": event_type, "time": time, "actor": actor, "subject": subject,
            "payload": typed.model_dump(mode="json", exclude_none=True),
        }
        if event_id is not None:
            data["id"] = event_id
        event = AuditEvent.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(
            f"event {event_type!r} refused: " + "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:5]),
            event_type=event_type,
        ) from None
    # Times inside payloads must use the canonical spelling too.
    event.payload.update(_canonical_times(model, typed))
    return event


def build_events(
    event_type: str, *, actor: Actor, time: datetime, payload: dict[str, Any] | Payload, subjects: Sequence[str],
) -> list[AuditEvent]:
    """The same event about each of ``subjects`` (each with its own id), validated once.

    Equal to :func:`build_event` for each subject in turn; bulk paths (a thousand subjects
    created at once) use it because validating the payload is most of an event's cost.
    """
    if not subjects:
        return []
    first = build_event(event_type, actor=actor, time=time, payload=payload, subject=subjects[0])
    out = [first]
    for subject in subjects[1:]:
        if not isinstance(subject, str) or _SUBJECT_TOKEN.fullmatch(subject) is None:
            raise InvalidInputError(f"event {event_type!r} refused: subject: not a subject token",
                                    event_type=event_type)
        out.append(first.model_copy(update={"id": new_event_id(), "subject": subject,
                                            "payload": dict(first.payload)}))
    return out


def _canonical_times(model: type[Payload], typed: Payload) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in model.model_fields:
        value = getattr(typed, name)
        if isinstance(value, datetime):
            out[name] = format_time(_utc(value))
    return out


def parse_leaf_input(data: bytes) -> dict[str, Any]:
    """Parse an exported leaf input and check that it is canonical; ValueError if not."""
    value = json.loads(data.decode("utf-8"))
    if not isinstance(value, dict) or rfc8785.dumps(value) != data:
        raise ValueError("leaf input is not canonical JSON (RFC 8785)")
    return value
