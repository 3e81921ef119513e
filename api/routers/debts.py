"""HTTP API of debts as the law sees them: debts, their legal history and parties, and collection cases.

Gated like the contacts routes (:func:`api.routers.vault.subject_gate`); the debt book decides
again on the real subject. A debt's answer carries its limitation period with the reasoning
(``limitation.steps``: each step names its article), read from the debt's legal history on
every read. ``POST /v1/debts/{id}/events`` adds an event (judgment, payment order, court
action, enforcement, mediation, acknowledgement, part payment, suspension, assignment) and
answers the debt with its period read again; an assignment also records the assignee as a
recipient of the debtor's data (GDPR Art. 19, :mod:`gdpr.recipients`).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, get_args

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from api.deps import RuntimeDep
from api.idempotency import ApiRoute, Idempotent
from api.routers.vault import PROBLEMS, SubjectToken, subject_gate
from api.schemas import Cursor, Day, Page, limit_query, page_json, page_of
from contacts.claim_kinds import CREDITOR_KINDS
from contacts.debts import NewDebt
from contacts.legal_events import SUSPENSION_GROUNDS, LegalEvent, LegalEventKind
from identity.principal import Principal

router = APIRouter(tags=["debts"], route_class=ApiRoute)

Recorder = Annotated[Principal, Depends(subject_gate("contact.record"))]
Reader = Annotated[Principal, Depends(subject_gate("read_masked"))]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,63}$")]
DebtId = Annotated[str, Path(max_length=64)]
ClaimKindName = Literal["general", "periodic", "business", "judgment", "judgment_periodic"]
CreditorKind = Literal["bank", "lender", "telecom", "utility", "other_business", "individual"]
EventKind = Literal[
    "assignment", "judgment", "payment_order", "court_action_started", "court_action_ended", "enforcement_started",
    "enforcement_ended", "mediation_started", "mediation_ended", "acknowledgement", "part_payment",
    "suspension_started", "suspension_ended"]
Text = Annotated[str, Field(min_length=1, max_length=200)]
_KINDS_HELP: Final = (
    "The claim's kind for the limitation clock (art. 118 k.c.): general (six years), periodic (three years, "
    "periodic performances), business (three years, a claim connected with running a business: any claim of a "
    "bank, lender, telecom or other entrepreneur, also against a consumer). judgment and judgment_periodic are "
    "accepted for compatibility: they are stored as their base kind with a judgment event (judgment_date).")
assert set(CREDITOR_KINDS) == set(get_args(CreditorKind))  # noqa: S101 - the schema enum is the code's list
assert {k.value for k in LegalEventKind} == set(get_args(EventKind))  # noqa: S101 - likewise


class DebtModel(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "id": "D-2024-000123", "subject": "sub_Q2xq0y7Wm4b1Zr8kTgVh3A", "creditor": "Przykładowy Telekom S.A.",
        "creditor_kind": "telecom", "kind": "business", "consumer": True, "amount_minor": 125000, "currency": "PLN",
        "due_date": "2023-04-30", "assigned_on": "2024-02-01", "held_as": "controller"}]})
    id: Id
    subject: str = Field(max_length=64)
    creditor: str = Field(min_length=1, max_length=200, description="The creditor the debt was assigned from")
    creditor_kind: CreditorKind | None = Field(
        None, description="What kind of creditor: the claim kind is checked against it (a business creditor's claim "
                          "is never general); leave out only where unknown (then nothing is checked)")
    kind: ClaimKindName = Field(description=_KINDS_HELP)
    consumer: bool = Field(description="The debtor is a consumer (art. 22¹ k.c.): art. 117 § 2¹ applies")
    amount_minor: int = Field(ge=0, le=10**15)
    currency: str = Field("PLN", pattern=r"^[A-Z]{3}$")
    due_date: Day = Field(description="The first day the creditor could demand payment (the period runs from it)")
    judgment_date: Day | None = Field(None, description="A judgment already final: recorded as a judgment event")
    assigned_on: Day | None = Field(None, description="The day the firm obtained the claim (and the data)")
    held_as: Literal["controller", "processor"] = Field(
        "controller", description="controller: the firm bought the claim; processor: it collects for the creditor")


class DebtStatusModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["open", "settled", "written_off"]
    settled_on: Day | None = None
    judgment_date: Day | None = Field(None, description="Recorded as a judgment event (see POST .../events)")


class DebtEventModel(BaseModel):
    """An event of the debt's legal history; ``on`` is the day it took effect (a judgment: the day it became final)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "judgment", "on": "2023-05-04", "source": "SR Warszawa-Mokotów I C 123/22"},
        {"kind": "part_payment", "on": "2024-02-10", "amount_minor": 15000, "source": "wyciąg 2024/02/118"},
        {"kind": "enforcement_started", "on": "2024-03-01", "source": "Km 77/24"},
        {"kind": "assignment", "on": "2025-01-15", "assignee": "Przykładowy Fundusz NSFIZ"}]})
    kind: EventKind = Field(description="See contacts/legal_events.py: each kind names its article")
    on: Day
    source: str = Field("", max_length=200, description="Where it is documented: a docket, a deed, a statement")
    party: str | None = Field(None, max_length=64, description="The guarantor or co-debtor it concerns; "
                                                               "left out: the debtor (or, for some kinds, every party)")
    assignee: Text | None = Field(None, description="For an assignment: the organisation the claim went to")
    amount_minor: int | None = Field(None, gt=0, le=10**15, description="For a part payment")
    ground: Literal[SUSPENSION_GROUNDS] | None = Field(  # type: ignore[valid-type]
        None, description="For a suspension: force_majeure (art. 121 pkt 4 k.c.)")
    withdrawn: bool = Field(False, description="A court action that ended withdrawn or returned (no effect)")


class PartyModel(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "subject": "sub_G7pQ2xq0y7Wm4b1Zr8kTgV", "role": "guarantor"}]})
    subject: str = Field(max_length=64, description="The guarantor's or co-debtor's subject token")
    role: Literal["guarantor", "co_debtor"]


class CaseModel(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "id": "C-2026-0042", "subject": "sub_Q2xq0y7Wm4b1Zr8kTgVh3A", "debt_id": "D-2024-000123"}]})
    id: Id
    subject: str = Field(max_length=64)
    debt_id: Id | None = None


# -- debts -----------------------------------------------------------------------------------------


@router.post("/v1/debts", status_code=201, responses=PROBLEMS,
             summary="Record a debt of a subject (idempotent by debt id); answers with its limitation period")
def add_debt(body: DebtModel, runtime: RuntimeDep, principal: Recorder,
             idempotency: Idempotent) -> dict[str, Any]:  # noqa: ARG001 - see api.idempotency
    info = runtime.contacts.debts.add(principal, NewDebt(
        id=body.id, subject=body.subject, creditor=body.creditor, kind=body.kind, consumer=body.consumer,
        amount_minor=body.amount_minor, currency=body.currency, due_date=body.due_date,
        judgment_date=body.judgment_date, assigned_on=body.assigned_on, creditor_kind=body.creditor_kind,
        held_as=body.held_as))
    runtime.gdpr_registers.debt_recorded(principal, info)
    return info.to_json(runtime.clock.now().date())


@router.get("/v1/debts/{debt_id}", responses=PROBLEMS,
            summary="A debt with its legal history, parties and limitation period, each step naming its article")
def get_debt(debt_id: DebtId, runtime: RuntimeDep, principal: Reader) -> dict[str, Any]:
    return runtime.contacts.debts.get_for(principal, debt_id).to_json(runtime.clock.now().date())


@router.post("/v1/debts/{debt_id}/status", responses=PROBLEMS,
             summary="Mark a debt settled, written off or open again (a judgment_date is recorded as an event)")
def set_debt_status(debt_id: DebtId, body: DebtStatusModel, runtime: RuntimeDep,
                    principal: Recorder) -> dict[str, Any]:
    info = runtime.contacts.debts.set_status(principal, debt_id, body.status, settled_on=body.settled_on,
                                            judgment_date=body.judgment_date)
    return info.to_json(runtime.clock.now().date())


@router.post("/v1/debts/{debt_id}/events", status_code=201, responses=PROBLEMS,
             summary="Record an event of the debt's legal history; answers the debt with its period read again")
def record_debt_event(debt_id: DebtId, body: DebtEventModel, runtime: RuntimeDep, principal: Recorder,
                      idempotency: Idempotent) -> dict[str, Any]:  # noqa: ARG001 - see api.idempotency
    event = LegalEvent(kind=LegalEventKind(body.kind), on=body.on, source=body.source.strip(), party=body.party,
                       assignee=body.assignee, amount_minor=body.amount_minor, ground=body.ground,
                       withdrawn=body.withdrawn)
    info = runtime.contacts.debts.record_event(principal, debt_id, event)
    if event.kind is LegalEventKind.ASSIGNMENT and event.assignee is not None:
        runtime.gdpr_registers.assigned(principal, info, event.assignee, event.on)
    return info.to_json(runtime.clock.now().date())


@router.post("/v1/debts/{debt_id}/parties", status_code=201, responses=PROBLEMS,
             summary="Link a guarantor or co-debtor to a debt (idempotent); each has their own limitation period")
def link_party(debt_id: DebtId, body: PartyModel, runtime: RuntimeDep, principal: Recorder,
               idempotency: Idempotent) -> dict[str, Any]:  # noqa: ARG001 - see api.idempotency
    info = runtime.contacts.debts.link_party(principal, debt_id, body.subject, body.role)
    runtime.gdpr_registers.party_linked(principal, info, body.subject)
    return info.to_json(runtime.clock.now().date())


@router.get("/v1/subjects/{token}/debts", response_model=Page, responses=PROBLEMS,
            summary="The subject's debts, as debtor and as guarantor or co-debtor (role), by debt id")
def subject_debts(token: SubjectToken, runtime: RuntimeDep, principal: Reader,
                  cursor: Cursor = None, limit: Annotated[int, limit_query(100, 500)] = 100) -> dict[str, Any]:
    today = runtime.clock.now().date()
    debts, position = page_of(runtime.contacts.debts.of(principal, token), lambda d: d.id, cursor, limit)
    return page_json([d.to_json(today) for d in debts], position)


# -- cases -----------------------------------------------------------------------------------------


@router.post("/v1/cases", status_code=201, responses=PROBLEMS,
             summary="Open a collection case on a subject (idempotent by case id); agents are assigned by case id")
def open_case(body: CaseModel, runtime: RuntimeDep, principal: Recorder,
              idempotency: Idempotent) -> dict[str, Any]:  # noqa: ARG001 - see api.idempotency
    return runtime.contacts.debts.open_case(principal, body.id, body.subject, body.debt_id)


@router.post("/v1/cases/{case_id}/close", responses=PROBLEMS, summary="Close a case (idempotent)")
def close_case(case_id: Annotated[str, Path(max_length=64)], runtime: RuntimeDep,
               principal: Recorder) -> dict[str, Any]:
    return runtime.contacts.debts.close_case(principal, case_id)


@router.get("/v1/subjects/{token}/cases", response_model=Page, responses=PROBLEMS,
            summary="The subject's cases (by case id)")
def subject_cases(token: SubjectToken, runtime: RuntimeDep, principal: Reader,
                  cursor: Cursor = None, limit: Annotated[int, limit_query(100, 500)] = 100) -> dict[str, Any]:
    cases, position = page_of(runtime.contacts.debts.cases_of(principal, token), lambda c: str(c["id"]), cursor,
                              limit)
    return page_json(cases, position)
