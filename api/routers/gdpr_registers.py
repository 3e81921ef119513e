"""HTTP API of the DPO's registers: Art. 14 notices, Art. 19 recipients and notifications, the Art. 33(5) breaches.

Every route needs ``gdpr.manage`` (the DPO and compliance officers; clients with
``gdpr:manage``), as the other GDPR routes. Every change is a ``gdpr.*`` audit entry first.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from api.auth import require_action
from api.deps import RuntimeDep
from api.idempotency import ApiRoute, Idempotent
from api.routers.vault import PROBLEMS, SubjectToken
from api.schemas import Cursor, Day, Instant, Page, limit_query, page_json, page_of
from identity.principal import Principal

router = APIRouter(tags=["gdpr"], route_class=ApiRoute)

Manager = Annotated[Principal, Depends(require_action("gdpr.manage"))]
RegisterId = Annotated[str, PathParam(max_length=40)]
Plain = Annotated[str, Field(min_length=1, max_length=4000)]


class NoticeClosing(BaseModel):
    """The Art. 14 information was given (``given_on`` and ``channel``), or is not due (``exemption``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"given_on": "2026-11-20", "channel": "letter"}, {"exemption": "already_informed"}]})
    given_on: Day | None = None
    channel: Literal["letter", "email", "portal", "sms_link", "in_person"] | None = None
    exemption: Literal["already_informed", "disproportionate_effort", "required_by_law",
                       "professional_secrecy"] | None = Field(None, description="An Art. 14(5) ground")


class NewRecipient(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "kind": "debt_register", "name": "BIG InfoMonitor S.A.", "disclosed_on": "2026-10-01",
        "debt_id": "D-2024-000123"}]})
    kind: Literal["creditor", "assignee", "debt_register", "bailiff", "court", "lawyer", "other"]
    name: str = Field(min_length=1, max_length=200, description="The organisation the data was disclosed to")
    disclosed_on: Day
    debt_id: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,63}$")


class NotificationOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"outcome": "notified", "notified_on": "2026-11-25", "method": "api"}]})
    outcome: Literal["notified", "impossible", "disproportionate"]
    notified_on: Day | None = None
    method: Literal["letter", "email", "api", "portal", "epuap"] | None = None
    reason: str | None = Field(None, max_length=200, description="Why the recipient cannot be told")


class NewBreachModel(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "aware_at": "2026-11-24T09:30:00+01:00", "nature": ["confidentiality"], "data_categories": ["contact"],
        "subjects_count": 120, "actor_id": "collector-17",
        "facts": "A collector's laptop with an exported call list was stolen from a car.",
        "effects": "Names and phone numbers of 120 debtors may be known to the thief.",
        "remedial_action": "Session revoked, device wiped remotely, police notified.", "risk": "risk"}]})
    aware_at: Instant = Field(description="When the firm became aware: the 72-hour clock starts (Art. 33(1))")
    occurred_from: Instant | None = None
    occurred_until: Instant | None = None
    nature: list[Literal["confidentiality", "integrity", "availability"]] = Field(min_length=1, max_length=3)
    data_categories: list[Literal["identification", "contact", "financial", "notes", "location", "recordings",
                                  "contact_events"]] = Field(min_length=1, max_length=7)
    subjects_count: int | None = Field(None, ge=0, le=10**9)
    actor_id: str | None = Field(None, max_length=128, description="The compromised user or API client, if any")
    facts: Plain
    effects: Plain
    remedial_action: Plain
    risk: Literal["unlikely", "risk", "high"] = Field(description="unlikely: no notification (say why); high: "
                                                                  "tell the subjects too (Art. 34)")
    not_notified_reason: str | None = Field(None, max_length=300)


class BreachChange(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "authority_notified_at": "2026-11-25T14:00:00+01:00", "authority_reference": "DKN.5110.123.2026"}]})
    authority_notified_at: Instant | None = None
    authority_reference: str | None = Field(None, max_length=100)
    subjects_notified_at: Instant | None = None
    not_notified_reason: str | None = Field(None, max_length=300)
    remedial_action: str | None = Field(None, max_length=4000)
    effects: str | None = Field(None, max_length=4000)
    risk: Literal["unlikely", "risk", "high"] | None = None


# -- Art. 14 notices -------------------------------------------------------------------------------


@router.get("/v1/gdpr/notices", response_model=Page, responses=PROBLEMS,
            summary="Art. 14 notices by deadline (one month from obtaining the data, or the first contact)")
def list_notices(runtime: RuntimeDep, _principal: Manager,
                 view: Annotated[Literal["open", "overdue", "due_soon", "closed", "all"], Query()] = "open",
                 cursor: Cursor = None, limit: Annotated[int, limit_query(100, 500)] = 100) -> dict[str, Any]:
    items, position = page_of(runtime.gdpr_registers.notices.listing(view),
                              lambda n: f"{n['due_on']}|{n['id']}", cursor, limit)
    return page_json(items, position)


@router.get("/v1/subjects/{token}/notices", responses=PROBLEMS, summary="The subject's Art. 14 notices")
def subject_notices(token: SubjectToken, runtime: RuntimeDep, _principal: Manager) -> dict[str, Any]:
    runtime.vault.subject_status(token)
    return {"subject": token, "items": runtime.gdpr_registers.notices.of_subject(token)}


@router.post("/v1/gdpr/notices/{notice_id}/close", responses=PROBLEMS,
             summary="Record the Art. 14 information given (day, channel) or not due (an Art. 14(5) ground)")
def close_notice(notice_id: RegisterId, body: NoticeClosing, runtime: RuntimeDep,
                 principal: Manager) -> dict[str, Any]:
    return runtime.gdpr_registers.notices.close(principal, notice_id, given_on=body.given_on, channel=body.channel,
                                                exemption=body.exemption)


# -- Art. 19 recipients ----------------------------------------------------------------------------


@router.post("/v1/subjects/{token}/recipients", status_code=201, responses=PROBLEMS,
             summary="Record a recipient of the subject's data (Art. 19): creditor, debt register, bailiff...")
def add_recipient(token: SubjectToken, body: NewRecipient, runtime: RuntimeDep, principal: Manager,
                  idempotency: Idempotent) -> dict[str, Any]:  # noqa: ARG001 - see api.idempotency
    runtime.vault.subject_status(token)
    return runtime.gdpr_registers.recipients.add(principal, token, kind=body.kind, name=body.name,
                                                 disclosed_on=body.disclosed_on, debt_id=body.debt_id)


@router.get("/v1/subjects/{token}/recipients", responses=PROBLEMS,
            summary="The subject's recipients, each with the notifications of changes (Art. 19)")
def subject_recipients(token: SubjectToken, runtime: RuntimeDep, _principal: Manager) -> dict[str, Any]:
    runtime.vault.subject_status(token)
    return {"subject": token, "items": runtime.gdpr_registers.recipients.of_subject(token)}


@router.get("/v1/gdpr/recipient-notifications", responses=PROBLEMS,
            summary="Art. 19 notifications still to send (after a rectification, erasure or restriction)")
def pending_notifications(runtime: RuntimeDep, _principal: Manager,
                          limit: Annotated[int, limit_query(100, 500)] = 100) -> dict[str, Any]:
    return {"items": runtime.gdpr_registers.recipients.pending(limit)}


@router.post("/v1/gdpr/recipient-notifications/{notification_id}", responses=PROBLEMS,
             summary="Record that a recipient was told (day, method), or why it could not be (Art. 19)")
def notification_outcome(notification_id: RegisterId, body: NotificationOutcome, runtime: RuntimeDep,
                         principal: Manager) -> dict[str, Any]:
    return runtime.gdpr_registers.recipients.record_outcome(principal, notification_id, body.outcome,
                                                            notified_on=body.notified_on, method=body.method,
                                                            reason=body.reason)


# -- Art. 33(5) breaches ---------------------------------------------------------------------------


@router.post("/v1/gdpr/breaches", status_code=201, responses=PROBLEMS,
             summary="Record a personal data breach in the register (Art. 33(5)): facts, effects, remedial action")
def record_breach(body: NewBreachModel, runtime: RuntimeDep, principal: Manager,
                  idempotency: Idempotent) -> dict[str, Any]:  # noqa: ARG001 - see api.idempotency
    from gdpr.breaches import NewBreach

    return runtime.gdpr_registers.breaches.record(principal, NewBreach(
        aware_at=body.aware_at, occurred_from=body.occurred_from, occurred_until=body.occurred_until,
        nature=tuple(body.nature), data_categories=tuple(body.data_categories), subjects_count=body.subjects_count,
        actor_id=body.actor_id, facts=body.facts, effects=body.effects, remedial_action=body.remedial_action,
        risk=body.risk, not_notified_reason=body.not_notified_reason))


@router.get("/v1/gdpr/breaches", response_model=Page, responses=PROBLEMS,
            summary="The breach register, by the moment of awareness, with each one's 72-hour clock")
def list_breaches(runtime: RuntimeDep, _principal: Manager, cursor: Cursor = None,
                  limit: Annotated[int, limit_query(100, 500)] = 100) -> dict[str, Any]:
    items, position = page_of(runtime.gdpr_registers.breaches.listing(),
                              lambda b: f"{b['aware_at']}|{b['id']}", cursor, limit)
    return page_json(items, position)


@router.get("/v1/gdpr/breaches/{breach_id}", responses=PROBLEMS, summary="One breach of the register")
def get_breach(breach_id: RegisterId, runtime: RuntimeDep, _principal: Manager) -> dict[str, Any]:
    return runtime.gdpr_registers.breaches.get(breach_id)


@router.post("/v1/gdpr/breaches/{breach_id}/update", responses=PROBLEMS,
             summary="Record the notification of the authority (Art. 33) or the subjects (Art. 34), or more facts")
def update_breach(breach_id: RegisterId, body: BreachChange, runtime: RuntimeDep, principal: Manager) -> dict[str, Any]:
    return runtime.gdpr_registers.breaches.update(
        principal, breach_id, authority_notified_at=body.authority_notified_at,
        authority_reference=body.authority_reference, subjects_notified_at=body.subjects_notified_at,
        not_notified_reason=body.not_notified_reason, remedial_action=body.remedial_action, effects=body.effects,
        risk=body.risk)
