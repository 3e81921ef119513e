"""Request and answer models of the Tarcza HTTP API, as this client sends and reads them.

Request models forbid unknown fields (a typo fails here, not as a 422) and carry the server's
field names. Answer models ignore nothing the server adds: unknown members are kept in
``model_extra``, so a newer server does not break an older client; the members this client
relies on are required, so a server that dropped one fails loudly. ``tests/client`` checks both
against the server's OpenAPI document.

Fields holding personal data (notes, GPS positions, field values, search values) are left out
of ``repr()``, so a model printed in a log or a traceback shows no personal data.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["phone", "sms", "email", "letter", "messenger", "visit"]


class RequestModel(BaseModel):
    """A request body: unknown fields refused, values checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AnswerModel(BaseModel):
    """An answer: immutable, extra members kept in ``model_extra``."""

    model_config = ConfigDict(extra="allow", frozen=True)


# -- requests -----------------------------------------------------------------------------------------


class TokenRequest(RequestModel):
    """The form of ``POST /v1/oauth/token``; the client id and secret go in the Authorization header."""

    grant_type: Literal["client_credentials"] = "client_credentials"
    scope: str | None = Field(None, description="Space-separated scopes to ask for (default: all the client holds)")


class Gps(RequestModel):
    """A field visit's position; sealed by the server."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: int | None = Field(None, ge=0)


class Signature(RequestModel):
    """An e-signature collected during the contact (the document itself stays with the caller)."""

    document_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    signer: Literal["debtor", "third_party", "agent"]
    signed_at: datetime
    method: str | None = None


class Contact(RequestModel):
    """A contact with a debtor on any channel (``POST /v1/contacts``, ``/check``, ``/batch``)."""

    subject: str = Field(description="Subject token (sub_...)")
    channel: Channel
    direction: Literal["outbound", "inbound"] = "outbound"
    agent_id: str
    started_at: datetime = Field(description="With a time zone offset")
    ended_at: datetime | None = None
    debt_id: str | None = None
    case_id: str | None = None
    outcome: str | None = None
    recipient: Literal["debtor", "third_party"] = "debtor"
    discloses_debt: bool = True
    demands_payment: bool = False
    voluntary_payment_request: bool = False
    time_barred_notice: bool = False
    threats: list[Literal["court", "bailiff", "debt_register"]] = Field(default_factory=list)
    purpose: str = "debt_collection"
    notes: str | None = Field(None, repr=False, description="Free text; the server seals the PII in it")
    gps: Gps | None = Field(None, repr=False)
    recording_id: str | None = None
    recording_announced: bool | None = None
    promise_amount_minor: int | None = None
    promise_due: date | None = None
    payment_amount_minor: int | None = None
    currency: str | None = None
    signature: Signature | None = None


class ContactBatch(RequestModel):
    contacts: list[Contact] = Field(min_length=1, max_length=500)


class Debt(RequestModel):
    id: str
    subject: str
    creditor: str
    kind: str = Field(description="general, periodic, business, judgment or judgment_periodic")
    consumer: bool
    amount_minor: int = Field(ge=0)
    currency: str = "PLN"
    due_date: date
    judgment_date: date | None = None
    assigned_on: date | None = None
    creditor_kind: str | None = Field(None, description="bank, lender, telecom, utility, other_business, individual")
    held_as: Literal["controller", "processor"] = "controller"


class DebtStatusChange(RequestModel):
    status: Literal["open", "settled", "written_off"]
    settled_on: date | None = None
    judgment_date: date | None = None


class Case(RequestModel):
    id: str
    subject: str
    debt_id: str | None = None


class NewSubject(RequestModel):
    kind: str = Field(description="debtor or third_party")
    fields: dict[str, str | list[str]] = Field(repr=False, description="Catalogue field name -> value(s)")


class RevealRequest(RequestModel):
    fields: list[str] = Field(min_length=1)
    purpose: str
    justification: str | None = Field(None, repr=False)


class SearchRequest(RequestModel):
    field: str
    value: str = Field(repr=False)
    purpose: str


class NewGdprRequest(RequestModel):
    subject: str
    kind: Literal["access", "portability", "erasure", "rectification", "restriction", "objection"]
    received_on: date
    channel: Literal["email", "letter", "portal", "phone", "in_person", "epuap"]


class GdprVerification(RequestModel):
    """How the requester's identity was verified (nothing is executed before)."""

    method: Literal["id_document", "known_contact", "bank_transfer", "qualified_signature", "trusted_profile",
                    "video_call", "in_person"]
    reference: str | None = None  # where the evidence is in the firm's files, never the document's own number


# -- answers ------------------------------------------------------------------------------------------


class AccessToken(AnswerModel):
    access_token: str = Field(repr=False)
    token_type: str
    expires_in: int
    scope: str


class Health(AnswerModel):
    status: str


class Problem(AnswerModel):
    """RFC 9457 problem details, where an answer carries one in place of a result (batches)."""

    type: str
    title: str
    status: int
    detail: str | None = None


class Violation(AnswerModel):
    rule: str
    action: str
    message: str


class Verdict(AnswerModel):
    """The firewall's decision on a planned contact."""

    allowed: bool
    flagged: bool
    violations: list[Violation]
    rules_checked: list[str]
    rules_sha256: str


class ContactReceipt(AnswerModel):
    """Where a recorded contact is in the audit log (``duplicate``: a retry answered from the log)."""

    event_id: str
    event_type: str
    index: int
    leaf_hash: str
    tree_size: int
    duplicate: bool
    policy_flags: list[str]
    pii_found: int


class BatchItem(AnswerModel):
    """One contact of a batch: its receipt, or the problem that stopped it."""

    receipt: ContactReceipt | None = None
    error: Problem | None = None


class BatchResults(AnswerModel):
    results: list[BatchItem]


class ContactSummary(AnswerModel):
    """A recorded contact without personal data (history pages)."""

    event_id: str
    subject: str
    event_type: str
    channel: str
    direction: str | None
    agent_id: str | None
    occurred_at: datetime
    outcome: str | None
    conversation: bool
    decision: str
    rules: list[Any]
    debt_id: str | None
    case_id: str | None
    recording_id: str | None
    log_index: int
    recorded_at: datetime


class ContactView(ContactSummary):
    """One contact with its note: scrubbed (``view="masked"``) or as written (``view="full"``, a reveal)."""

    payload: dict[str, Any]
    notes: str | None = Field(None, repr=False)
    view: str | None = None
    gps: dict[str, Any] | None = Field(None, repr=False)


class ContactPage(AnswerModel):
    items: list[ContactSummary]
    next_cursor: str | None


class DebtInfo(AnswerModel):
    id: str
    subject: str
    creditor: str
    kind: str
    consumer: bool
    amount_minor: int
    currency: str
    due_date: date
    status: str
    judgment_date: date | None
    assigned_on: date | None
    settled_on: date | None
    time_barred_on: date | None  # None while the period does not run (proceedings pending, a suspension)
    time_barred: bool


class DebtList(AnswerModel):
    items: list[DebtInfo]


class CaseInfo(AnswerModel):
    id: str
    subject: str
    debt_id: str | None
    status: str
    opened_at: datetime
    closed_at: datetime | None


class CaseList(AnswerModel):
    items: list[CaseInfo]


class SubjectCreated(AnswerModel):
    token: str


class SubjectFields(AnswerModel):
    """Field values of a subject: masked for the caller, or in clear after a reveal."""

    subject: str
    fields: dict[str, list[str]] = Field(repr=False)


class SearchResult(AnswerModel):
    subjects: list[str]


class RecordingInfo(AnswerModel):
    recording_id: str
    subject: str
    sha256: str
    size: int
    media_type: str
    duration_ms: int | None


class AuditEntry(AnswerModel):
    """An entry of the audit log: the event as its leaf commits to it."""

    index: int
    leaf_hash: str
    event: dict[str, Any]


class AuditPage(AnswerModel):
    items: list[AuditEntry]
    next_cursor: str | None


class Checkpoint(AnswerModel):
    """A signed tree head; ``note`` is the C2SP signed note."""

    tree_size: int
    root_hash: str
    note: str
    issued_at: datetime


class InclusionProof(AnswerModel):
    """An RFC 9162 inclusion proof (hashes in base64)."""

    index: int
    tree_size: int
    leaf_hash: str
    proof: list[str]
    root_hash: str
    checkpoint: str | None


class GdprRequest(AnswerModel):
    """A data subject request with its deadline."""

    id: str
    subject: str
    kind: str
    article: str
    channel: str
    status: str
    received_on: date
    due_on: date
    extended_months: int
    extension_reason: str | None
    overdue: bool
    days_left: int | None
    verification: dict[str, Any] | None
    outcome: str | None
    created_by: str
    created_at: datetime
    closed_at: datetime | None


class GdprRequestPage(AnswerModel):
    items: list[GdprRequest]
    next_cursor: str | None
