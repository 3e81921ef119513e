"""HTTP API of the collection evidence: the contact-policy firewall, contacts, preferences (debts: debts.py).

Every route is gated like the vault's (:func:`api.routers.vault.subject_gate`): the gate asks
whether the principal could be allowed the route's action on some subject; the contacts
service decides again on the real subject (case assignment, restriction).

``POST /v1/contacts`` runs the whole path (firewall, scrubbing of notes, sealing, append)
and answers with a receipt: the event id, its log index and leaf hash, and the rules that
flagged it. A refused contact is answered 409 ``contact-refused`` naming the rules; the
refusal itself is in the log. With an ``Idempotency-Key`` a retried request gets the first
answer (receipt or refusal, marked ``duplicate`` and ``Idempotent-Replayed``) and records
nothing more: the service deduplicates by the key in the log's own transaction; the HTTP
layer only refuses the key reused for another request (api/idempotency.py).

Notes and GPS positions are personal data: they travel only in request bodies, are sealed
before anything is stored, and are never echoed.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import RuntimeDep
from api.idempotency import ApiRoute, Idempotency, Idempotent, IdempotentByService
from api.routers.vault import NO_STORE, PROBLEMS, SubjectToken, subject_gate
from api.schemas import Cursor, Day, Instant, Page, decode_cursor, limit_query, page_json
from contacts.preferences import Preferences
from contacts.service import ContactRecord, Signature, violation_json
from identity.principal import Principal

router = APIRouter(tags=["contacts"], route_class=ApiRoute)

RECORD: Final = "contact.record"
Recorder = Annotated[Principal, Depends(subject_gate(RECORD))]
Reader = Annotated[Principal, Depends(subject_gate("read_masked"))]
GdprManager = Annotated[Principal, Depends(subject_gate("gdpr.manage"))]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,63}$")]
ChannelName = Literal["phone", "sms", "email", "letter", "messenger", "visit"]
MAX_BATCH = 500


class SignatureModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the signed document")
    signer: Literal["debtor", "third_party", "agent"]
    signed_at: Instant
    method: str | None = Field(None, max_length=40, pattern=r"^[a-z][a-z0-9_]{0,39}$")


class GpsModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: int | None = Field(None, ge=0, le=100_000)


class ContactModel(BaseModel):
    """A contact on any channel; for a field visit ``started_at``/``ended_at`` are arrival and departure."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "subject": "sub_Q2xq0y7Wm4b1Zr8kTgVh3A", "channel": "phone", "direction": "outbound",
        "agent_id": "agent-017", "started_at": "2026-11-23T10:15:00+01:00", "ended_at": "2026-11-23T10:19:30+01:00",
        "debt_id": "D-2024-000123", "outcome": "promise_to_pay", "promise_amount_minor": 50000,
        "promise_due": "2026-12-05", "currency": "PLN", "demands_payment": True,
        "notes": "Dłużnik obiecał wpłatę do 5 grudnia."}]})
    subject: str = Field(max_length=64, description="Subject token (sub_...)")
    channel: ChannelName
    direction: Literal["outbound", "inbound"] = "outbound"
    agent_id: str = Field(min_length=1, max_length=128)
    started_at: Instant = Field(description="When it started (planned time for a check); with an offset")
    ended_at: Instant | None = None
    debt_id: Id | None = None
    case_id: Id | None = None
    outcome: str | None = Field(None, max_length=32, pattern=r"^[a-z][a-z0-9_]{0,31}$")
    recipient: Literal["debtor", "third_party"] = "debtor"
    discloses_debt: bool = True
    demands_payment: bool = Field(False, description="Demands payment (refused on a consumer's time-barred claim, "
                                                     "art. 117 § 2¹ k.c.)")
    voluntary_payment_request: bool = Field(False, description="Asks for voluntary payment without demanding it")
    time_barred_notice: bool = Field(False, description="Tells the debtor the claim is time-barred")
    threats: list[Literal["court", "bailiff", "debt_register"]] = Field(
        [], max_length=3, description="What the contact threatens the debtor with")
    purpose: str = Field("debt_collection", max_length=64, pattern=r"^[a-z][a-z0-9_.:-]{0,63}$")
    notes: str | None = Field(None, max_length=20_000, description="Free text; PII in it is found, sealed, replaced")
    gps: GpsModel | None = Field(None, description="A field visit's position (sealed)")
    recording_id: str | None = Field(None, max_length=64)
    recording_announced: bool | None = Field(None, description="The debtor was told the contact is recorded")
    promise_amount_minor: int | None = Field(None, ge=0, le=10**15)
    promise_due: Day | None = None
    payment_amount_minor: int | None = Field(None, ge=0, le=10**15)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    signature: SignatureModel | None = None

    def record(self) -> ContactRecord:
        sig = self.signature
        return ContactRecord(
            subject=self.subject, channel=self.channel, direction=self.direction, agent_id=self.agent_id,
            started_at=self.started_at, ended_at=self.ended_at, debt_id=self.debt_id, case_id=self.case_id,
            outcome=self.outcome, recipient=self.recipient, discloses_debt=self.discloses_debt,
            demands_payment=self.demands_payment, voluntary_payment_request=self.voluntary_payment_request,
            time_barred_notice=self.time_barred_notice, threats=tuple(self.threats), purpose=self.purpose,
            notes=self.notes,
            gps=(self.gps.lat, self.gps.lon) if self.gps else None,
            gps_accuracy_m=self.gps.accuracy_m if self.gps else None, recording_id=self.recording_id,
            recording_announced=self.recording_announced, promise_amount_minor=self.promise_amount_minor,
            promise_due=self.promise_due, payment_amount_minor=self.payment_amount_minor, currency=self.currency,
            signature=Signature(sig.document_sha256, sig.signer, sig.signed_at, sig.method) if sig else None)


class BatchModel(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"contacts": [{
        "subject": "sub_Q2xq0y7Wm4b1Zr8kTgVh3A", "channel": "sms", "agent_id": "dialer-3",
        "started_at": "2026-11-23T10:15:00+01:00", "outcome": "sent", "notes": "Przypomnienie o racie."}]}]})
    contacts: list[ContactModel] = Field(min_length=1, max_length=MAX_BATCH)


class PreferencesModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opted_out_channels: list[ChannelName] | None = Field(None, max_length=6)
    weekend_channels: list[ChannelName] | None = Field(None, max_length=6,
                                                       description="Channels where weekend contact was agreed")
    cease_contact: bool | None = None
    time_zone: str | None = Field(None, max_length=64, description="IANA time zone of the debtor")


class RestrictionModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    restricted: bool
    request_id: Id = "direct"
    reason: str | None = Field(None, max_length=200, pattern=r"^[a-z][a-z0-9_ .:-]{0,199}$")


class ObjectionModel(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "purpose": "debt_collection", "channel": "phone", "request_id": "dsr_r5T8kLm2Qx9Zw1Pv"}]})
    purpose: str = Field(max_length=64, pattern=r"^[a-z][a-z0-9_.:-]{0,63}$")
    channel: ChannelName | None = None
    withdraw: bool = False
    request_id: Id = "direct"


def _verdict_json(verdict: Any, rules_sha256: str) -> dict[str, Any]:
    return {"allowed": verdict.allowed, "flagged": verdict.flagged,
            "violations": [violation_json(v) for v in verdict.violations],
            "rules_checked": list(verdict.rules_checked), "rules_sha256": rules_sha256}


def _preferences_json(subject: str, state: Any) -> dict[str, Any]:
    return {"subject": subject, "time_zone": state.time_zone, "opted_out_channels": sorted(state.opted_out_channels),
            "weekend_channels": sorted(state.weekend_contact_allowed), "cease_contact": state.cease_contact,
            "restricted": state.restricted,
            "objections": [{"purpose": p, "channel": c} for p, c in sorted(state.objections, key=str)]}


# -- the firewall and contacts ---------------------------------------------------------------------


@router.post("/v1/contacts/check", responses=PROBLEMS,
             summary="Ask the contact-policy firewall: allow or deny a planned contact, with the rules that decided")
def check_contact(body: ContactModel, runtime: RuntimeDep, principal: Recorder) -> dict[str, Any]:
    contacts = runtime.contacts
    return _verdict_json(contacts.check(principal, body.record()), contacts.rules.sha256)


@router.post("/v1/contacts", status_code=201, responses=PROBLEMS,
             summary="Record a contact: firewall, PII scrubbing of notes, sealing, audit append; returns a receipt")
def record_contact(body: ContactModel, runtime: RuntimeDep, principal: Recorder,
                   idempotency: IdempotentByService) -> dict[str, Any]:
    receipt = runtime.contacts.record(principal, body.record(), None if idempotency is None else idempotency.key)
    _replayed(idempotency, receipt.duplicate)
    return receipt.to_json()


@router.post("/v1/contacts/batch", responses=PROBLEMS,
             summary=f"Record up to {MAX_BATCH} contacts; one result per contact (a receipt or a problem)")
def record_contacts(body: BatchModel, runtime: RuntimeDep, principal: Recorder,
                    idempotency: IdempotentByService) -> dict[str, Any]:
    """Each contact is decided and recorded on its own, in order; with an ``Idempotency-Key``, the
    i-th contact uses ``<key>#<i>``, so a retried batch records only what the first did not."""
    results = runtime.contacts.record_many(
        principal, [c.record() for c in body.contacts],
        None if idempotency is None else [f"{idempotency.key}#{i}" for i in range(len(body.contacts))])
    _replayed(idempotency, bool(results) and all(
        r.get("receipt", {}).get("duplicate") is True or r.get("error", {}).get("duplicate") is True
        for r in results))
    return {"results": results}


def _replayed(idempotency: Idempotency | None, duplicate: bool) -> None:
    """Mark the answer replayed when the service answered from its earlier record."""
    if idempotency is not None and duplicate:
        idempotency.replayed = True


@router.get("/v1/contacts/{event_id}", responses=PROBLEMS,
            summary="One contact with its note: scrubbed (placeholders) by default; view=full reveals it (logged)")
def get_contact(
    event_id: Annotated[str, Path(max_length=36)], response: Response, runtime: RuntimeDep, principal: Reader,
    view: Annotated[Literal["masked", "full"], Query(
        description="full: the note with its PII and the GPS position (a reveal: purpose, fresh 2FA)")] = "masked",
    purpose: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z][a-z0-9_.:-]{0,63}$")] = None,
) -> dict[str, Any]:
    response.headers.update(NO_STORE)
    return runtime.contacts.contact(principal, event_id, full=view == "full", purpose=purpose)


@router.get("/v1/subjects/{token}/contacts", response_model=Page, responses=PROBLEMS,
            summary="The subject's contacts, newest first (channel, outcome, decision, log index; no personal data)")
def contact_history(
    token: SubjectToken, runtime: RuntimeDep, principal: Reader,
    cursor: Cursor = None, limit: Annotated[int, limit_query(50, 500)] = 50,
) -> dict[str, Any]:
    items, position = runtime.contacts.history(principal, token, cursor=decode_cursor(cursor), limit=limit)
    return page_json(items, position)


# -- what the subject asked for --------------------------------------------------------------------


@router.get("/v1/subjects/{token}/contact-preferences", responses=PROBLEMS,
            summary="The subject's contact rules: opt-outs, weekend consent, cease contact, restriction, objections")
def get_preferences(token: SubjectToken, response: Response, runtime: RuntimeDep,
                    principal: Reader) -> dict[str, Any]:
    response.headers.update(NO_STORE)
    return _preferences_json(token, runtime.contacts.subject_rules.state_for(principal, token))


@router.put("/v1/subjects/{token}/contact-preferences", responses=PROBLEMS,
            summary="Change the subject's opt-outs, weekend consent, cease-contact flag or time zone")
def set_preferences(token: SubjectToken, body: PreferencesModel, runtime: RuntimeDep,
                    principal: Recorder) -> dict[str, Any]:
    state = runtime.contacts.subject_rules.set(principal, token, Preferences(
        opted_out_channels=body.opted_out_channels, weekend_channels=body.weekend_channels,
        cease_contact=body.cease_contact, time_zone=body.time_zone))
    return _preferences_json(token, state)


@router.put("/v1/subjects/{token}/restriction", responses=PROBLEMS,
            summary="Apply or lift a GDPR Art. 18 restriction (contacts only for legal claims; reveals by the DPO)")
def set_restriction(token: SubjectToken, body: RestrictionModel, runtime: RuntimeDep,
                    principal: GdprManager) -> dict[str, Any]:
    state = runtime.contacts.subject_rules.set_restriction(principal, token, body.restricted,
                                                           request_id=body.request_id, reason=body.reason)
    return _preferences_json(token, state)


@router.post("/v1/subjects/{token}/objections", responses=PROBLEMS,
             summary="Record or withdraw a GDPR Art. 21 objection to a purpose, on one channel or all")
def record_objection(token: SubjectToken, body: ObjectionModel, runtime: RuntimeDep, principal: GdprManager,
                     idempotency: Idempotent) -> dict[str, Any]:  # noqa: ARG001 - see api.idempotency
    state = runtime.contacts.subject_rules.record_objection(principal, token, body.purpose, body.channel,
                                                            request_id=body.request_id, withdraw=body.withdraw)
    return _preferences_json(token, state)
