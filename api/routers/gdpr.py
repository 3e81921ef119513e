"""HTTP API of the GDPR toolkit: data subject requests, their execution, legal holds, subject exports.

Every route needs ``gdpr.manage`` (the DPO and compliance officers with a verified second
factor; API clients with the ``gdpr:manage`` scope). A request is registered with its date
of receipt, which fixes its deadline; nothing is executed before the requester's identity
is verified (409 ``request-state`` otherwise). Every step is a ``gdpr.*`` audit entry.

Two steps need more, because they are something else too:

* the **export** is a reveal by the officer who runs it (purpose ``gdpr_request``): the route's
  gate is the reveal's (a fresh second factor; ``subjects:reveal`` for clients; a compliance
  officer by break-glass, with a ``justification`` in the body), and the vault's gate decides and
  records every opening on the real subject (ADR 0014);
* **erasure** (a request's ``/erase``, ``DELETE /v1/subjects/{token}``, the retention run) goes
  through the one erasure decision (:mod:`gdpr.erasure`) and needs ``gdpr.erase`` (a fresh second
  factor for people); the DPO's ``override`` is a named, justified, reviewed action (ADR 0015).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from api.auth import require_action
from api.deps import RuntimeDep
from api.idempotency import ApiRoute, Idempotent
from api.routers.vault import NO_STORE, PROBLEMS, SubjectToken, subject_gate
from api.schemas import Cursor, Day, Instant, Page, decode_cursor, limit_query, page_json, page_of
from gdpr.erasure import ERASE, Override, assessment_json
from identity.principal import Principal
from vault.service import Action

router = APIRouter(tags=["gdpr"], route_class=ApiRoute)

Manager = Annotated[Principal, Depends(require_action("gdpr.manage"))]
Eraser = Annotated[Principal, Depends(require_action(ERASE))]
ExportRevealer = Annotated[Principal, Depends(subject_gate(Action.REVEAL, purpose=True, justification=True))]
RequestId = Annotated[str, PathParam(max_length=40, description="Request id (dsr_...)")]
Code = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[a-z][a-z0-9_:;.,/-]{0,199}$")]


class NewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "subject": "sub_Q2xq0y7Wm4b1Zr8kTgVh3A", "kind": "access", "received_on": "2026-11-20", "channel": "letter"}]})
    subject: str = Field(max_length=64)
    kind: Literal["access", "portability", "erasure", "rectification", "restriction", "objection"]
    received_on: Day = Field(description="The day the request reached the firm: the deadline runs from it")
    channel: Literal["email", "letter", "portal", "phone", "in_person", "epuap"]


class Verification(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "method": "id_document", "reference": "DSR-FILE/2026/0042"}]})
    method: Literal["id_document", "known_contact", "bank_transfer", "qualified_signature", "trusted_profile",
                    "video_call", "in_person"]
    reference: str | None = Field(None, max_length=100, description=(
        "Where the evidence is in the firm's files (a case-file or register reference); never the document's "
        "own number or other personal data"))


class Extension(BaseModel):
    model_config = ConfigDict(extra="forbid")
    months: Literal[1, 2]
    reason: Literal["complexity", "number_of_requests"]


class Closing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Code = Field(description="A short code: the outcome, or the reason for a refusal")


class OverrideBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    justification: str = Field(min_length=1, max_length=2000, description=(
        "Why the data is erased although the erasure decision keeps it (at least the break-glass length); "
        "sealed under the subject's key, shredded with it"))


class Erasure(BaseModel):
    model_config = ConfigDict(extra="forbid")
    restrict_if_refused: bool = Field(False, description="Restrict processing (Art. 18) if erasure is refused")
    override: OverrideBody | None = Field(None, description=(
        "The DPO only, with a fresh second factor: erase against the decision; logged and reviewed"))


class ExportOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    justification: str | None = Field(None, min_length=1, max_length=2000, description=(
        "Break-glass justification (compliance officers): the export is a reveal; sealed in the log, reviewed"))


class Restriction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lift: bool = False
    subject_informed: bool = Field(False, description="Lifting needs the subject told first (Art. 18(3))")


class ObjectionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: str = Field(max_length=64, pattern=r"^[a-z][a-z0-9_.:-]{0,63}$")
    channel: Literal["phone", "sms", "email", "letter", "messenger", "visit"] | None = None


class Rectification(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "field": "address", "values": ["ul. Długa 5/2, 00-238 Warszawa"]}]})
    field: str = Field(max_length=64, pattern=r"^[a-z][a-z0-9_]{0,62}$")
    values: list[Annotated[str, Field(max_length=10_000)]] = Field(min_length=1, max_length=50)


class NewHold(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "subject": "sub_Q2xq0y7Wm4b1Zr8kTgVh3A", "reason": "court_proceedings", "starts_on": "2026-11-20",
        "case_id": "C-2026-0042"}]})
    subject: str = Field(max_length=64)
    reason: Code
    starts_on: Day
    ends_on: Day | None = None
    case_id: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,63}$")


@router.post("/v1/gdpr/requests", status_code=201, responses=PROBLEMS,
             summary="Register a data subject request; answers with its deadline (Art. 12(3), Reg. 1182/71)")
def receive(body: NewRequest, runtime: RuntimeDep, principal: Manager,
            idempotency: Idempotent) -> dict[str, Any]:  # noqa: ARG001 - see api.idempotency
    return runtime.gdpr.receive(principal, body.subject, body.kind, body.received_on, body.channel)


@router.get("/v1/gdpr/requests", response_model=Page, responses=PROBLEMS,
            summary="Requests by deadline: open, overdue, due soon, closed")
def list_requests(
    runtime: RuntimeDep, principal: Manager,
    view: Annotated[Literal["open", "overdue", "due_soon", "closed", "all"], Query()] = "open",
    subject: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Cursor = None, limit: Annotated[int, limit_query(100, 500)] = 100,
) -> dict[str, Any]:
    items, position = runtime.gdpr.requests(principal, view=view, subject=subject, cursor=decode_cursor(cursor),
                                            limit=limit)
    return page_json(items, position)


@router.get("/v1/gdpr/requests/{request_id}", responses=PROBLEMS, summary="One request")
def get_request(request_id: RequestId, runtime: RuntimeDep, principal: Manager) -> dict[str, Any]:
    return runtime.gdpr.get(principal, request_id)


@router.post("/v1/gdpr/requests/{request_id}/verify", responses=PROBLEMS,
             summary="Record that the requester's identity was verified, and how")
def verify(request_id: RequestId, body: Verification, runtime: RuntimeDep, principal: Manager) -> dict[str, Any]:
    return runtime.gdpr.verify_identity(principal, request_id, body.method, body.reference)


@router.post("/v1/gdpr/requests/{request_id}/extend", responses=PROBLEMS,
             summary="Extend the deadline by 1 or 2 months, with the reason (within the first month)")
def extend(request_id: RequestId, body: Extension, runtime: RuntimeDep, principal: Manager) -> dict[str, Any]:
    return runtime.gdpr.extend(principal, request_id, body.months, body.reason)


@router.post("/v1/gdpr/requests/{request_id}/complete", responses=PROBLEMS, summary="Close a verified request")
def complete(request_id: RequestId, body: Closing, runtime: RuntimeDep, principal: Manager) -> dict[str, Any]:
    return runtime.gdpr.complete(principal, request_id, body.code)


@router.post("/v1/gdpr/requests/{request_id}/refuse", responses=PROBLEMS, summary="Refuse a request, with the reason")
def refuse(request_id: RequestId, body: Closing, runtime: RuntimeDep, principal: Manager) -> dict[str, Any]:
    return runtime.gdpr.refuse(principal, request_id, body.code)


@router.post("/v1/gdpr/requests/{request_id}/erase", responses=PROBLEMS,
             summary="Execute an erasure request through the erasure decision: crypto-shred, or refuse with the "
                     "legal reasons and the date (the DPO may override, justified and reviewed)")
def erase(request_id: RequestId, body: Erasure, runtime: RuntimeDep, principal: Eraser) -> dict[str, Any]:
    override = None if body.override is None else Override(body.override.justification)
    return runtime.gdpr.erase(principal, request_id, restrict_if_refused=body.restrict_if_refused,
                              override=override).to_json()


@router.post("/v1/gdpr/requests/{request_id}/restrict", responses=PROBLEMS,
             summary="Execute a restriction request (Art. 18), or lift a restriction")
def restrict(request_id: RequestId, body: Restriction, runtime: RuntimeDep, principal: Manager) -> dict[str, Any]:
    return runtime.gdpr.restrict(principal, request_id, lift=body.lift, subject_informed=body.subject_informed)


@router.post("/v1/gdpr/requests/{request_id}/object", responses=PROBLEMS,
             summary="Execute an objection (Art. 21) to a purpose, on one channel or all")
def object_to(request_id: RequestId, body: ObjectionBody, runtime: RuntimeDep, principal: Manager) -> dict[str, Any]:
    return runtime.gdpr.object(principal, request_id, body.purpose, body.channel)


@router.post("/v1/gdpr/requests/{request_id}/rectify", responses=PROBLEMS,
             summary="Execute a rectification (Art. 16): replace a field's values (the old ones are not kept)")
def rectify(request_id: RequestId, body: Rectification, runtime: RuntimeDep, principal: Manager) -> dict[str, Any]:
    return runtime.gdpr.rectify(principal, request_id, body.field, body.values)


@router.post("/v1/gdpr/requests/{request_id}/export", responses={
    **PROBLEMS, 200: {"content": {"application/zip": {}}, "description": "The subject's archive"}},
    response_class=FileResponse,
    summary="Produce the subject's archive for an access or portability request (Art. 15, 20); closes it")
def export(request_id: RequestId, runtime: RuntimeDep, principal: Manager, revealer: ExportRevealer,  # noqa: ARG001
           idempotency: Idempotent,  # noqa: ARG001 - see api.idempotency
           body: ExportOptions | None = None,
           recordings: Annotated[bool, Query(description="Include the recordings themselves")] = False,
           ) -> FileResponse:
    """A reveal by the caller for the purpose gdpr_request: decided and logged by the vault's gate first."""
    workdir = Path(tempfile.mkdtemp(prefix="tarcza-export-"))
    out = workdir / f"{request_id}.zip"
    try:
        runtime.gdpr.export(principal, request_id, out, include_recordings=recordings,
                            justification=None if body is None else body.justification)
    except BaseException:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
        raise

    def cleanup() -> None:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)

    return FileResponse(out, media_type="application/zip", filename=out.name, headers=dict(NO_STORE),
                        background=BackgroundTask(cleanup))


@router.get("/v1/subjects/{token}/erasure-assessment", responses=PROBLEMS,
            summary="What an erasure of the subject would come to today, and why (no effect)")
def erasure_assessment(token: SubjectToken, runtime: RuntimeDep, principal: Manager) -> dict[str, Any]:

    return {"subject": token, **assessment_json(runtime.gdpr.assess_erasure(principal, token))}


@router.post("/v1/gdpr/holds", status_code=201, responses=PROBLEMS,
             summary="Place a legal hold on a subject: erasure and retention skip it while active")
def add_hold(body: NewHold, runtime: RuntimeDep, principal: Manager,
             idempotency: Idempotent) -> dict[str, Any]:  # noqa: ARG001 - see api.idempotency
    return runtime.gdpr.add_hold(principal, body.subject, body.reason, body.starts_on, body.ends_on, body.case_id)


@router.post("/v1/gdpr/holds/{hold_id}/release", responses=PROBLEMS, summary="Release a legal hold (idempotent)")
def release_hold(hold_id: Annotated[str, PathParam(max_length=40)], runtime: RuntimeDep,
                 principal: Manager) -> dict[str, Any]:
    return runtime.gdpr.release_hold(principal, hold_id)


@router.get("/v1/subjects/{token}/holds", response_model=Page, responses=PROBLEMS,
            summary="The subject's legal holds (by hold id)")
def subject_holds(token: SubjectToken, runtime: RuntimeDep, principal: Manager,
                  active: Annotated[bool, Query(description="Only holds not released")] = False,
                  cursor: Cursor = None, limit: Annotated[int, limit_query(100, 500)] = 100) -> dict[str, Any]:
    holds, position = page_of(runtime.gdpr.holds_of(principal, token, active_only=active), lambda h: str(h["id"]),
                              cursor, limit)
    return page_json(holds, position)


@router.post("/v1/gdpr/retention/dry-run", responses=PROBLEMS,
             summary="What the retention schedules make due today, and why (changes nothing)")
def retention_dry_run(runtime: RuntimeDep, _principal: Manager,
                      limit: Annotated[int, Query(ge=0, le=10_000, description="Actions listed (counts are all)")]
                      = 1000) -> dict[str, Any]:
    report = runtime.retention_job().dry_run()
    out = report.to_json(with_actions=False)
    out["actions"] = report.actions[:limit]
    return out


@router.post("/v1/gdpr/retention/run", responses=PROBLEMS,
             summary="Apply the retention schedules now: shred subjects and delete recordings that are due "
                     "(idempotent; every action logged first)")
def retention_run(runtime: RuntimeDep, _principal: Eraser) -> dict[str, Any]:
    return runtime.retention_job().run().to_json(with_actions=False)


class BreachQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actor_id: str = Field(min_length=1, max_length=128, description="The compromised user's or API client's id")
    since: Instant
    until: Instant
    aware_at: Instant = Field(description="When the firm became aware of the breach: the 72-hour clock starts")


@router.post("/v1/gdpr/breach", responses=PROBLEMS,
             summary="Breach impact (Art. 33, 34): the subjects whose data an actor revealed or exported in a "
                     "window, and the 72-hour clock")
def breach(body: BreachQuery, response: Response, runtime: RuntimeDep, _principal: Manager) -> dict[str, Any]:
    from gdpr.breach import breach_impact

    response.headers.update(NO_STORE)
    report = breach_impact(runtime.audit, body.actor_id, body.since, body.until, aware_at=body.aware_at,
                           now=runtime.clock.now())
    return report.to_json()


@router.get("/v1/gdpr/ropa", responses={**PROBLEMS, 200: {"content": {"application/json": {}, "text/html": {}}}},
            summary="The record of processing activities (Art. 30), generated from the policy files")
def ropa(runtime: RuntimeDep, _principal: Manager,
         format: Annotated[Literal["json", "html"], Query(description="json or html")] = "json") -> Response:
    from gdpr.ropa import build_record, render_html

    record = build_record(controller(runtime), generated_at=runtime.clock.now(),
                          registers=runtime.gdpr_registers.ropa_facts())
    if format == "html":
        return HTMLResponse(render_html(record))
    return JSONResponse(record.to_json())


def controller(runtime: Any) -> Any:
    """The firm as the settings describe it (TARCZA_CONTROLLER_*)."""
    from gdpr.ropa import Controller

    s = runtime.settings
    return Controller(name=s.controller_name, address=s.controller_address, contact=s.controller_contact,
                      dpo_contact=s.dpo_contact)
