"""What each event says: one closed pydantic model per payload, and the field types they are built of.

Invariants: a payload is closed (``extra="forbid"``); a personal value is only ever :data:`Sealed`
(bytes the vault sealed under the subject's key); every other string is :data:`Text` (short free
text) or :data:`Code` (ids, codes, dates), and both refuse what :func:`core.pii.find_personal_data`
finds. Which component may write which payload is :data:`audit.events.CATALOGUE`.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo

from core.errors import InvalidInputError
from core.pii import find_personal_data

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


def _no_plain_pii(value: str, info: ValidationInfo) -> str:
    """Refuse ``value`` if it holds personal data, with a 422 naming the field (never the value).

    It raises :class:`InvalidInputError`, not ``ValueError``, so that pydantic does not wrap it:
    a service that builds a payload model from a caller's text answers 422, not 500."""
    kind = find_personal_data(value)
    if kind is not None:
        raise InvalidInputError(f"{info.field_name or 'value'}: looks like personal data ({kind}); seal it in the "
                                "vault and pass the sealed bytes")
    return value


Text = Annotated[str, Field(max_length=500), AfterValidator(_no_plain_pii)]
"""Short free text that must not carry personal data: a reason, an organisation's name, a legal citation."""

CODE_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:/+\-]{0,199}$"
Code = Annotated[str, Field(max_length=200, pattern=CODE_PATTERN), AfterValidator(_no_plain_pii)]
"""An id, a code, a date or a media type: ASCII letters, digits and ``_ . : / + -``, no spaces, checked
for personal data too (a name has no business in one; a number in disguise is still refused)."""

Token = Annotated[str, Field(pattern=SUBJECT_TOKEN_PATTERN)]
_SUBJECT_TOKEN = re.compile(SUBJECT_TOKEN_PATTERN)


def sealed_b64(data: bytes) -> str:
    """Encode sealed bytes for a payload."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


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
    method: Code | None = None  # e.g. "qualified", "advanced", "handwritten_tablet"


class ContactPayload(Payload):
    channel: Channel
    direction: Literal["outbound", "inbound"]
    agent_id: Code
    case_id: Code | None = None
    debt_id: Code | None = None
    outcome: Code | None = None
    conversation: bool | None = None
    notes: Sealed | None = None  # the scrubbed note (placeholders such as [PESEL#1]), sealed
    notes_original: Sealed | None = None  # the note as written, sealed (only when PII was found in it)
    pii_found: int | None = Field(None, ge=0)
    gps: Sealed | None = None
    gps_accuracy_m: int | None = Field(None, ge=0)
    recording_id: Code | None = None
    recording_announced: bool | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    promise_amount_minor: int | None = Field(None, ge=0)
    promise_due: Code | None = None
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
    agent_id: Code
    rule: Code
    rules: list[RuleId] = []
    case_id: Code | None = None
    debt_id: Code | None = None
    planned_at: datetime | None = None
    rules_sha256: Sha256Hex | None = None


class DebtPayload(Payload):
    debt_id: Code
    creditor: Text | None = None  # an organisation's name: free text
    kind: Code | None = None
    consumer: bool | None = None
    amount_minor: int | None = Field(None, ge=0)
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    due_date: Code | None = None
    judgment_date: Code | None = None
    status: Code | None = None
    settled_on: Code | None = None
    creditor_kind: Code | None = None
    held_as: Code | None = None


class DebtEventPayload(Payload):
    """An event of a debt's legal history (contacts/legal_events.py), and the period it leaves."""

    debt_id: Code
    event: Code  # the kind: judgment, payment_order, enforcement_started, acknowledgement, ...
    on: Code  # the day it took effect (YYYY-MM-DD)
    seq: int = Field(ge=1)
    party: Token | None = None  # the guarantor or co-debtor it concerns; None: the debtor or every party
    source: Text | None = None  # where the event is evidenced (a court file reference, a document code)
    assignee: Text | None = None  # an organisation's name: free text
    amount_minor: int | None = Field(None, ge=0)
    ground: Text | None = None
    withdrawn: bool = False
    limitation_end: Code | None = None  # the last day of the period after it; None: not running


class DebtPartyPayload(Payload):
    """A guarantor or co-debtor linked to a debt."""

    debt_id: Code
    party: Token
    role: Literal["guarantor", "co_debtor"]


class CasePayload(Payload):
    case_id: Code
    debt_id: Code | None = None
    status: Code


class ContactPreferencesPayload(Payload):
    opted_out_channels: list[Channel] = []
    weekend_channels: list[Channel] = []
    cease_contact: bool = False
    time_zone: Code


class RecordingPayload(Payload):
    recording_id: Code
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    size: int = Field(ge=0)
    media_type: Code | None = None
    contact_event_id: Code | None = None
    duration_ms: int | None = Field(None, ge=0)
    announced: bool | None = None  # the debtor was told the conversation is recorded


class RecordingAccessPayload(Payload):
    recording_id: Code
    purpose: Code
    range_start: int | None = None
    range_end: int | None = None


class VaultAccessPayload(Payload):
    fields: list[Code]
    purpose: Text
    decision: Literal["allow", "deny"]
    view: Literal["masked", "full"] = "full"
    break_glass: bool = False
    justification: Sealed | None = None
    reason: Text | None = None
    action: Code | None = None  # the vault action asked for (reveal, read_masked, search, shred, ...)
    recording_id: Code | None = None  # for an access to a recording
    via: Code | None = None  # the component of Tarcza acting for the actor (e.g. gdpr-exporter)
    review: bool | None = None  # true: waits for the DPO's or an auditor's review (break-glass, legal_claim)


class VaultSubjectPayload(Payload):
    fields: list[Code] = []
    subject_kind: Code | None = None


class VaultSearchPayload(Payload):
    field: Code
    matches: int = Field(ge=0)
    purpose: Text
    subjects: list[Token] = []  # the tokens returned, so a subject's export shows searches that found it


class KeyRotatedPayload(Payload):
    from_version: int
    to_version: int
    rewrapped: int = Field(ge=0)


class IdentityPayload(Payload):
    user_id: Code | None = None
    client_id: Code | None = None
    reason: Text | None = None
    source_ip: Text | None = None  # an address (an IPv6 one may carry a zone: fe80::1%eth0)


class GdprPayload(Payload):
    request_id: Code
    article: Text | None = None
    status: Code | None = None
    reason: Text | None = None
    due: datetime | None = None


class ErasureOverridePayload(Payload):
    """The DPO erased a subject against the erasure decision: the rules overridden and the justification
    (sealed under the subject's key: it is shredded with the subject). Reviewed like a break-glass reveal."""

    request_id: Code
    overridden: list[RuleId]
    justification: Sealed
    due: datetime | None = None  # when erasure would have become possible (None: a hold with no end)


class NoticePayload(Payload):
    """The Art. 14 duty to inform after obtaining data elsewhere: opened, given, or exempt."""

    notice_id: Code
    status: Literal["open", "given", "exempt"]
    debt_id: Code | None = None
    obtained_on: Code | None = None
    due_on: Code | None = None
    given_on: Code | None = None
    channel: Code | None = None
    exemption: Code | None = None


class RecipientPayload(Payload):
    """A recipient of the subject's data (Art. 19), or a notification to one of a change."""

    recipient_id: Code
    kind: Code
    name: Text | None = None  # an organisation's name: free text
    debt_id: Code | None = None
    notification_id: Code | None = None
    action: Literal["rectification", "erasure", "restriction"] | None = None
    request_id: Code | None = None
    status: Code | None = None
    method: Code | None = None


class BreachPayload(Payload):
    """An entry of the breach register (Art. 33(5)); the texts themselves are bound by their SHA-256."""

    breach_id: Code
    risk: Literal["unlikely", "risk", "high"]
    aware_at: datetime
    notify_by: datetime
    subjects_count: int | None = Field(None, ge=0)
    texts_sha256: Sha256Hex
    authority_notified_at: datetime | None = None
    subjects_notified_at: datetime | None = None


class PolicyLoadedPayload(Payload):
    policy_set: Code
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    policies: int = Field(ge=0)


class BreakGlassReviewedPayload(Payload):
    """A break-glass reveal reviewed (by the DPO or an auditor): the log index of its ``vault.access``
    entry, that entry's leaf hash (the verdict is on those exact bytes) and the verdict. No free text:
    the reasons belong in the firm's own case file.

    ``entry_leaf_hash`` is also what tells a review written by :mod:`policies.review` from one forged
    through the old open append (ADR 0017): that API checked payloads against this closed model
    before the field existed, so no forged entry can carry it."""

    entry_index: int = Field(ge=0)
    entry_leaf_hash: Sha256Hex
    verdict: Literal["justified", "unjustified"]


class CheckpointIssuedPayload(Payload):
    tree_size: int = Field(ge=0)
    root_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class LogVerifiedPayload(Payload):
    """The outcome of a full verification of the stored log, started from the console."""

    ok: bool
    entries: int | None = Field(None, ge=0)
    checkpoints: int | None = Field(None, ge=0)
    root_hash: Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{43}=$")] | None = None  # base64 SHA-256
    failed_index: int | None = Field(None, ge=0)
    failed_what: Code | None = None  # the check that failed: leaf, node, checkpoint, audit-tampered...


class NotePayload(Payload):
    """An operator's note (``POST /v1/audit/events``, ``tarcza audit append``): a code, and details the
    server sealed under the subject's key from the plain text the operator sent."""

    code: Code
    details: Sealed | None = None
