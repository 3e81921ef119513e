"""The event catalogue (each type, its payload model and who may author it) and building an event.

Every entry of the audit log is one :class:`AuditEvent`. Its leaf input is the event's
canonical JSON (RFC 8785), so anyone holding the exported entry can recompute the leaf
hash without Tarcza's code. The payload models are in :mod:`audit.payloads`, the bytes side
(canonical JSON, the time spelling) in :mod:`audit.canonical`.

Invariants:

* the log never sees plaintext personal data: personal fields of a payload are
  :data:`Sealed` values (base64url of bytes sealed by the vault under the subject's key),
  and every other string in a payload is checked by :func:`core.pii.find_personal_data`
  (after Unicode and separator normalisation) and refused if it looks like a PESEL, NIP,
  IBAN, card number, e-mail, phone or another person's number; ids and codes
  (:data:`Code`) may only use ASCII letters, digits and ``_ . : / + -``;
* payloads are closed: each event type has a pydantic model with ``extra="forbid"``;
* every event type names its authors (:class:`EventType`): Tarcza itself (:class:`System`, the one
  component that writes it) or an outside principal allowed an action (:class:`External`). Only
  external types may be appended from outside (:func:`external_event_type`); readers that trust an
  entry rely on this (ADR 0017);
* the canonical form is a pure function of the event (no clock, no randomness).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import uuid6
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from audit.canonical import canonical_json, format_time, parse_leaf_input
from audit.errors import SystemEventTypeError
from audit.payloads import (
    _SUBJECT_TOKEN,
    CODE_PATTERN,
    SUBJECT_TOKEN_PATTERN,
    BreachPayload,
    BreakGlassReviewedPayload,
    CanonicalTime,
    CasePayload,
    Channel,
    CheckpointIssuedPayload,
    Code,
    ContactBlockedPayload,
    ContactPayload,
    ContactPreferencesPayload,
    DebtEventPayload,
    DebtPartyPayload,
    DebtPayload,
    ErasureOverridePayload,
    GdprPayload,
    IdentityPayload,
    KeyRotatedPayload,
    LogVerifiedPayload,
    NotePayload,
    NoticePayload,
    Payload,
    PolicyLoadedPayload,
    RecipientPayload,
    RecordingAccessPayload,
    RecordingPayload,
    RuleId,
    Sealed,
    Sha256Hex,
    SignaturePayload,
    Text,
    Token,
    VaultAccessPayload,
    VaultSearchPayload,
    VaultSubjectPayload,
    _no_plain_pii,
    sealed_b64,
)
from core.errors import InvalidInputError

EVENT_FORMAT_VERSION = 1


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


# -- who may author an event -------------------------------------------------------------------------


@dataclass(frozen=True)
class System:
    """Written by Tarcza only: by ``component``, the service that owns the event."""

    component: str


@dataclass(frozen=True)
class External:
    """Written by an outside principal whom the policies allow ``action`` (a client needs ``scope``)."""

    action: str
    scope: str
    sealed_from_plaintext: tuple[str, ...] = ()
    """Payload fields the caller sends in plain text and the server seals under the subject's key."""


@dataclass(frozen=True)
class EventType:
    """One type of the catalogue: its closed payload model and who may author it."""

    payload: type[Payload]
    authors: System | External


CATALOGUE: dict[str, EventType] = {
    "contact.attempted": EventType(ContactPayload, System("contacts")),
    "contact.completed": EventType(ContactPayload, System("contacts")),
    "contact.received": EventType(ContactPayload, System("contacts")),
    "contact.visit": EventType(ContactPayload, System("contacts")),
    "contact.blocked": EventType(ContactBlockedPayload, System("contacts")),
    "contact.preferences_changed": EventType(ContactPreferencesPayload, System("contacts.preferences")),
    "debt.recorded": EventType(DebtPayload, System("contacts.debts")),
    "debt.updated": EventType(DebtPayload, System("contacts.debts")),
    "debt.event_recorded": EventType(DebtEventPayload, System("contacts.debts")),
    "debt.party_linked": EventType(DebtPartyPayload, System("contacts.debts")),
    "case.opened": EventType(CasePayload, System("contacts.debts")),
    "case.closed": EventType(CasePayload, System("contacts.debts")),
    "recording.stored": EventType(RecordingPayload, System("vault")),
    "recording.played": EventType(RecordingAccessPayload, System("vault")),
    "recording.shredded": EventType(RecordingAccessPayload, System("vault")),
    "vault.subject_created": EventType(VaultSubjectPayload, System("vault")),
    "vault.field_updated": EventType(VaultSubjectPayload, System("vault")),
    "vault.access": EventType(VaultAccessPayload, System("vault")),
    "vault.search": EventType(VaultSearchPayload, System("vault")),
    "vault.key_rotated": EventType(KeyRotatedPayload, System("vault")),
    "vault.subject_shredded": EventType(VaultSubjectPayload, System("vault")),
    "identity.login_succeeded": EventType(IdentityPayload, System("identity")),
    "identity.login_failed": EventType(IdentityPayload, System("identity")),
    "identity.second_factor_failed": EventType(IdentityPayload, System("identity")),
    "identity.locked_out": EventType(IdentityPayload, System("identity")),
    "identity.recovery_code_used": EventType(IdentityPayload, System("identity")),
    "identity.totp_enrolled": EventType(IdentityPayload, System("identity")),
    "identity.totp_reset": EventType(IdentityPayload, System("identity")),
    "identity.client_created": EventType(IdentityPayload, System("identity")),
    "identity.client_rotated": EventType(IdentityPayload, System("identity")),
    "identity.client_revoked": EventType(IdentityPayload, System("identity")),
    "identity.logout": EventType(IdentityPayload, System("identity")),
    "identity.step_up": EventType(IdentityPayload, System("identity")),
    "identity.user_created": EventType(IdentityPayload, System("identity")),
    "identity.user_disabled": EventType(IdentityPayload, System("identity")),
    "identity.user_updated": EventType(IdentityPayload, System("identity")),
    "gdpr.request_received": EventType(GdprPayload, System("gdpr")),
    "gdpr.identity_verified": EventType(GdprPayload, System("gdpr")),
    "gdpr.request_extended": EventType(GdprPayload, System("gdpr")),
    "gdpr.request_completed": EventType(GdprPayload, System("gdpr")),
    "gdpr.request_refused": EventType(GdprPayload, System("gdpr")),
    "gdpr.erasure_refused": EventType(GdprPayload, System("gdpr")),
    "gdpr.export_created": EventType(GdprPayload, System("gdpr")),
    "gdpr.erasure_performed": EventType(GdprPayload, System("gdpr")),
    "gdpr.erasure_overridden": EventType(ErasureOverridePayload, System("gdpr.erasure")),
    "gdpr.restriction_applied": EventType(GdprPayload, System("contacts.preferences")),
    "gdpr.restriction_lifted": EventType(GdprPayload, System("contacts.preferences")),
    "gdpr.objection_recorded": EventType(GdprPayload, System("contacts.preferences")),
    "gdpr.rectification_applied": EventType(GdprPayload, System("gdpr")),
    "gdpr.retention_applied": EventType(GdprPayload, System("gdpr.retention_job")),
    "gdpr.legal_hold_set": EventType(GdprPayload, System("gdpr")),
    "gdpr.legal_hold_released": EventType(GdprPayload, System("gdpr")),
    "gdpr.notice_opened": EventType(NoticePayload, System("gdpr.notices")),
    "gdpr.notice_closed": EventType(NoticePayload, System("gdpr.notices")),
    "gdpr.recipient_recorded": EventType(RecipientPayload, System("gdpr.recipients")),
    "gdpr.recipient_notification": EventType(RecipientPayload, System("gdpr.recipients")),
    "gdpr.breach_recorded": EventType(BreachPayload, System("gdpr.breaches")),
    "gdpr.breach_updated": EventType(BreachPayload, System("gdpr.breaches")),
    "policy.loaded": EventType(PolicyLoadedPayload, System("policies.engine")),
    "policy.break_glass_reviewed": EventType(BreakGlassReviewedPayload, System("policies.review")),
    "checkpoint.issued": EventType(CheckpointIssuedPayload, System("api.cli.audit")),
    "audit.log_verified": EventType(LogVerifiedPayload, System("api.console")),
    "operator.note": EventType(NotePayload, External("audit.append", "audit:append",
                                                     sealed_from_plaintext=("details",))),
}
"""Every event type, its payload and its authors. Only :class:`External` types may be appended from
outside Tarcza (the HTTP append, ``tarcza audit append``); contacts go through ``/v1/contacts``, where
the contact-policy firewall decides, and every other event is written by the component named."""


def external_event_type(event_type: str) -> External:
    """The authors of an event type an outside principal may append; :class:`SystemEventTypeError` (403)
    naming the type and its owner if only Tarcza writes it, InvalidInputError if there is no such type."""
    known = CATALOGUE.get(event_type)
    if known is None:
        raise InvalidInputError(f"unknown event type {event_type!r}", event_type=event_type)
    if isinstance(known.authors, System):
        raise SystemEventTypeError(
            f"event type {event_type!r} is written only by Tarcza ({known.authors.component}); "
            "it cannot be appended from outside", event_type=event_type, author=known.authors.component)
    return known.authors


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
        """What an idempotent retry must repeat: type, actor, subject and payload (not id or time).

        Fields the server seals from the caller's plain text count by presence only: a retry seals
        the same text again into other bytes (a fresh nonce), and is still the same request."""
        payload = self.payload
        known = CATALOGUE.get(self.type)
        if known is not None and isinstance(known.authors, External) and known.authors.sealed_from_plaintext:
            payload = {k: ("(sealed)" if k in known.authors.sealed_from_plaintext else v) for k, v in payload.items()}
        return hashlib.sha256(canonical_json({
            "type": self.type, "actor": {"id": self.actor.id, "kind": self.actor.kind.value},
            "subject": self.subject, "payload": payload,
        })).digest()


def build_event(
    event_type: str, *, actor: Actor, time: datetime, payload: dict[str, Any] | Payload,
    subject: str | None = None, event_id: str | None = None,
) -> AuditEvent:
    """Validate a payload against the catalogue and build the event; InvalidInputError if refused."""
    known = CATALOGUE.get(event_type)
    if known is None:
        raise InvalidInputError(f"unknown event type {event_type!r}", event_type=event_type)
    model = known.payload
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
    except InvalidInputError as exc:  # personal data in a plain field (see audit.payloads._no_plain_pii)
        raise InvalidInputError(f"event {event_type!r} refused: {exc.detail}", event_type=event_type) from None
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


# The payload models and the bytes side live in audit.payloads and audit.canonical; callers import them here.
__all__ = [
    "CATALOGUE",
    "CODE_PATTERN",
    "EVENT_FORMAT_VERSION",
    "SUBJECT_TOKEN_PATTERN",
    "Actor",
    "ActorKind",
    "AuditEvent",
    "BreachPayload",
    "BreakGlassReviewedPayload",
    "CanonicalTime",
    "CasePayload",
    "Channel",
    "CheckpointIssuedPayload",
    "Code",
    "ContactBlockedPayload",
    "ContactPayload",
    "ContactPreferencesPayload",
    "DebtEventPayload",
    "DebtPartyPayload",
    "DebtPayload",
    "ErasureOverridePayload",
    "EventType",
    "External",
    "GdprPayload",
    "IdentityPayload",
    "KeyRotatedPayload",
    "LogVerifiedPayload",
    "NotePayload",
    "NoticePayload",
    "Payload",
    "PolicyLoadedPayload",
    "RecipientPayload",
    "RecordingAccessPayload",
    "RecordingPayload",
    "RuleId",
    "Sealed",
    "Sha256Hex",
    "SignaturePayload",
    "System",
    "Text",
    "Token",
    "VaultAccessPayload",
    "VaultSearchPayload",
    "VaultSubjectPayload",
    "build_event",
    "build_events",
    "canonical_json",
    "external_event_type",
    "format_time",
    "new_event_id",
    "parse_leaf_input",
    "sealed_b64",
]
