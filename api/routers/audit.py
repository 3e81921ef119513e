"""HTTP API of the audit log: append, query, checkpoints, proofs, export and verification.

Every route needs a bearer token (session or client) and an allowing policy decision for
its action (``audit.read``, ``audit.append``, ``audit.export``): see docs/authorisation-matrix.md.
Appended events are attributed to the authenticated principal, never to a header.

An append with an ``Idempotency-Key`` is deduplicated by the log itself (the key, scoped to
the principal, is stored with the entry): a retry answers 200 with the first receipt marked
``duplicate`` (and ``Idempotent-Replayed``), even after a crash between the append and the answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Response, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import require_action
from api.deps import RuntimeDep
from api.idempotency import ApiRoute, Idempotent, IdempotentByService
from api.schemas import Cursor, Instant, InvalidCursorError, Page, decode_cursor, limit_query, page_json
from audit.repository import EntryFilter
from identity.principal import Principal

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=ApiRoute)
PROBLEMS: dict[int | str, dict[str, Any]] = {
    422: {"description": "Invalid input (problem details)"}, 404: {"description": "Not found (problem details)"},
    409: {"description": "Conflict (problem details)"},
}


class AppendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "type": "operator.note", "subject": "sub_Q2xq0y7Wm4b1Zr8kTgVh3A",
        "payload": {"code": "callback_requested", "details": "Asked to be called after 17:00."}}]})
    type: str = Field(min_length=1, max_length=64, description=(
        "An event type outside principals may author (today: operator.note). Types only Tarcza writes "
        "(contacts, reveals, reviews, identity, GDPR, policies, checkpoints) are refused with 403"))
    subject: str | None = Field(None, max_length=64, description="Subject token the event concerns")
    payload: dict[str, Any] = Field(default_factory=dict, max_length=100, description=(
        "Payload; free text such as a note's details in plain text: Tarcza seals it under the subject's key"))
    event_id: str | None = Field(None, max_length=36, description="Optional UUID chosen by the caller")


Reader = Annotated[Principal, Depends(require_action("audit.read"))]
Appender = Annotated[Principal, Depends(require_action("audit.append"))]
Exporter = Annotated[Principal, Depends(require_action("audit.export"))]


@router.post("/events", status_code=201, responses={
    **PROBLEMS, 200: {"description": "Idempotent retry"},
    403: {"description": "Not allowed to append, or a type only Tarcza writes (problem details naming it)"}},
    summary="Append an operator note (durable on response)")
def append_event(body: AppendRequest, runtime: RuntimeDep, response: Response, principal: Appender,
                 idempotency: IdempotentByService) -> dict[str, Any]:
    """Only types the catalogue lists as external (ADR 0017); free text is sealed here, under the subject's key."""
    from api.external_events import append_from_outside

    key = None if idempotency is None else f"{principal.id}:{idempotency.key}"  # the key is the principal's
    receipt = append_from_outside(runtime, body.type, actor=principal.actor, payload=body.payload,
                                  subject=body.subject, idempotency_key=key, event_id=body.event_id)
    if receipt.duplicate:
        response.status_code = 200
        if idempotency is not None:
            idempotency.replayed = True
    return receipt.to_json()


Subject = Annotated[str | None, Query(max_length=64, description="Subject token (sub_...)")]
EventType = Annotated[str | None, Query(max_length=64, description="Event type or prefix like contact.*")]
ActorId = Annotated[str | None, Query(max_length=128, description="The user's or API client's id")]
Index = Annotated[int | None, Query(ge=0, le=2**62)]


@router.get("/events", response_model=Page, responses=PROBLEMS, summary="Query entries (oldest first)")
def list_events(
    runtime: RuntimeDep, _: Reader,
    subject: Subject = None, type: EventType = None, actor: ActorId = None,
    since: Instant | None = None, until: Instant | None = None,
    from_index: Index = None,
    to_index: Annotated[int | None, Query(ge=0, le=2**62, description="Inclusive")] = None,
    cursor: Cursor = None, limit: Annotated[int, limit_query(100, 1000)] = 100,
) -> dict[str, Any]:
    flt = EntryFilter(subject=subject, event_type=type, actor=actor, since=since, until=until, start=from_index,
                      end=None if to_index is None else to_index + 1)
    page = runtime.audit.query(flt, cursor=decode_cursor(cursor), limit=limit)
    return page_json([i.to_json() for i in page.items], page.next_cursor)


@router.get("/events/{index}", responses=PROBLEMS, summary="One entry by index")
def get_event(index: Annotated[int, PathParam(ge=0, le=2**62)], runtime: RuntimeDep, _: Reader) -> dict[str, Any]:
    return runtime.audit.get(index).to_json()


@router.post("/checkpoints", status_code=201, summary="Issue a checkpoint of the current tree now")
def issue_checkpoint(runtime: RuntimeDep, _: Appender,
                     idempotency: Idempotent) -> dict[str, Any]:  # noqa: ARG001 - see api.idempotency
    return runtime.audit.issue_checkpoint().to_json()


@router.get("/checkpoints", response_model=Page, summary="Checkpoints issued, oldest first")
def list_checkpoints(
    runtime: RuntimeDep, _: Reader,
    after_size: Annotated[int | None, Query(ge=0, le=2**62, description="Only checkpoints of a larger tree")] = None,
    cursor: Cursor = None, limit: Annotated[int, limit_query(100, 1000)] = 100,
) -> dict[str, Any]:
    position = decode_cursor(cursor)
    if position is not None:
        if not position.isascii() or not position.isdigit() or len(position) > 19:
            raise InvalidCursorError("cursor is not one this server issued")
        after_size = int(position)
    items = runtime.audit.checkpoints(after_size=after_size, limit=limit + 1)
    page = items[:limit]
    return page_json([c.to_json() for c in page], str(page[-1].tree_size) if len(items) > limit else None)


@router.get("/checkpoint", response_class=PlainTextResponse, responses=PROBLEMS,
            summary="The newest checkpoint as a C2SP signed note (text/plain)")
def latest_checkpoint(runtime: RuntimeDep, _: Reader) -> PlainTextResponse:
    info = runtime.audit.latest_checkpoint()
    if info is None:
        from core.errors import NotFoundError

        raise NotFoundError("no checkpoint has been issued yet")
    return PlainTextResponse(info.note)


@router.get("/verifier-key", response_class=PlainTextResponse, summary="The log's verifier key (signed-note format)")
def verifier_key(runtime: RuntimeDep, _: Reader) -> PlainTextResponse:
    return PlainTextResponse(runtime.audit.verifier().to_string() + "\n")


@router.get("/proofs/inclusion", responses=PROBLEMS, summary="RFC 9162 inclusion proof (base64 hashes)")
def inclusion_proof(runtime: RuntimeDep, _: Reader, index: Annotated[int, Query(ge=0, le=2**62)],
                    size: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> dict[str, Any]:
    return runtime.audit.inclusion_proof(index, size).to_json()


@router.get("/proofs/consistency", responses=PROBLEMS, summary="RFC 9162 consistency proof (base64 hashes)")
def consistency_proof(runtime: RuntimeDep, _: Reader, from_size: Annotated[int, Query(alias="from", ge=0, le=2**62)],
                      to_size: Annotated[int | None, Query(alias="to", ge=0, le=2**62)] = None) -> dict[str, Any]:
    return runtime.audit.consistency_proof(from_size, to_size).to_json()


@router.get("/export", responses={**PROBLEMS, 200: {"content": {"application/gzip": {}}}},
            summary="Export entries with proofs as a .tar.gz for offline verification")
def export(
    runtime: RuntimeDep, _: Exporter, subject: Subject = None, type: EventType = None, actor: ActorId = None,
    since: Instant | None = None, until: Instant | None = None, from_index: Index = None, to_index: Index = None,
) -> StreamingResponse:
    from audit.export import export_archive

    flt = EntryFilter(subject=subject, event_type=type, actor=actor, since=since, until=until, start=from_index,
                      end=None if to_index is None else to_index + 1)
    buffer, name = export_archive(runtime.audit, flt)
    return StreamingResponse(buffer, media_type="application/gzip",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.post("/verify", responses=PROBLEMS, summary="Verify the whole stored log (leaves, nodes, checkpoints)")
def verify_database(runtime: RuntimeDep, _: Reader) -> dict[str, Any]:
    return runtime.audit.verify_database().to_json()


class ExportUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: UploadFile = Field(description="The .tar.gz of `GET /v1/audit/export` (or `tarcza audit export`)")


@router.post("/verify-export", responses={**PROBLEMS, 413: {"description": "Unpacks to too much (problem details)"}},
             summary="Verify an uploaded export (.tar.gz) against this server's own key and log")
def verify_export_upload(
    runtime: RuntimeDep, _: Reader, upload: Annotated[ExportUpload, Form()],
    trusted_checkpoint: Annotated[str | None, Query(max_length=4096, description=(
        "A checkpoint (signed note) kept from earlier: the export must be consistent with it"))] = None,
    witness: Annotated[list[str] | None, Query(max_length=20, description=(
        "Witness verifier keys (signed-note vkey, type 0x04) whose cosignatures of the checkpoint count"))] = None,
    min_witnesses: Annotated[int | None, Query(ge=0, le=20, description=(
        "How many of the given witnesses must have cosigned the checkpoint (default: all)"))] = None,
) -> dict[str, Any]:
    """The upload is checked with this server's log key (never a key inside it), against this log's tree and
    newest checkpoint, unpacked within TARCZA_MAX_UNPACKED_EXPORT_BYTES (and 100 times its size); with
    witness keys, its checkpoint must carry their cosignatures."""
    from audit.cosignature import CosignerKey
    from audit.verify import UploadLimits, verify_upload

    witnesses = [CosignerKey.from_string(value) for value in witness or []]  # a bad key: 422
    limits = UploadLimits(max_bytes=runtime.settings.max_unpacked_export_bytes)
    return verify_upload(runtime.audit, upload.file.file, limits=limits, trusted_checkpoint=trusted_checkpoint,
                         witnesses=witnesses, min_witnesses=min_witnesses)
