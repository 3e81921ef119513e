"""HTTP API of the audit log: append, query, checkpoints, proofs, export and verification.

Every route needs a bearer token (session or client) and an allowing policy decision for
its action (``audit.read``, ``audit.append``, ``audit.export``): see docs/authorisation-matrix.md.
Appended events are attributed to the authenticated principal, never to a header.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response, UploadFile
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import require_action
from api.deps import RuntimeDep
from audit.repository import EntryFilter
from core.errors import InvalidInputError
from identity.principal import Principal

router = APIRouter(prefix="/v1/audit", tags=["audit"])
PROBLEMS: dict[int | str, dict[str, Any]] = {
    422: {"description": "Invalid input (problem details)"}, 404: {"description": "Not found (problem details)"},
    409: {"description": "Conflict (problem details)"},
}


class AppendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="Event type from the catalogue, e.g. contact.attempted")
    subject: str | None = Field(None, description="Subject token the event concerns")
    payload: dict[str, Any] = Field(default_factory=dict, description="Payload; personal fields sealed (base64url)")
    event_id: str | None = Field(None, description="Optional UUID chosen by the caller")


Reader = Annotated[Principal, Depends(require_action("audit.read"))]
Appender = Annotated[Principal, Depends(require_action("audit.append"))]
Exporter = Annotated[Principal, Depends(require_action("audit.export"))]


@router.post("/events", status_code=201, responses={**PROBLEMS, 200: {"description": "Idempotent retry"}},
             summary="Append an event (durable on response)")
def append_event(
    body: AppendRequest, runtime: RuntimeDep, response: Response, principal: Appender,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    receipt = runtime.audit.record(body.type, actor=principal.actor, payload=body.payload,
                                   subject=body.subject, idempotency_key=idempotency_key, event_id=body.event_id)
    if receipt.duplicate:
        response.status_code = 200
    return receipt.to_json()


@router.get("/events", responses=PROBLEMS, summary="Query entries (oldest first, cursor pagination)")
def list_events(
    runtime: RuntimeDep, _: Reader,
    subject: str | None = None,
    type: Annotated[str | None, Query(description="Event type or prefix like contact.*")] = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    from_index: Annotated[int | None, Query(ge=0)] = None,
    to_index: Annotated[int | None, Query(ge=0, description="Inclusive")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    flt = EntryFilter(subject=subject, event_type=type, actor=actor, since=since, until=until, start=from_index,
                      end=None if to_index is None else to_index + 1)
    page = runtime.audit.query(flt, cursor=cursor, limit=limit)
    return {"items": [i.to_json() for i in page.items], "next_cursor": page.next_cursor}


@router.get("/events/{index}", responses=PROBLEMS, summary="One entry by index")
def get_event(index: int, runtime: RuntimeDep, _: Reader) -> dict[str, Any]:
    return runtime.audit.get(index).to_json()


@router.post("/checkpoints", status_code=201, summary="Issue a checkpoint of the current tree now")
def issue_checkpoint(runtime: RuntimeDep, _: Appender) -> dict[str, Any]:
    return runtime.audit.issue_checkpoint().to_json()


@router.get("/checkpoints", summary="Checkpoints issued, oldest first")
def list_checkpoints(
    runtime: RuntimeDep, _: Reader,
    after_size: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    items = [c for c in runtime.audit.checkpoints() if after_size is None or c.tree_size > after_size]
    page = items[:limit]
    return {"items": [c.to_json() for c in page],
            "next_after_size": page[-1].tree_size if len(items) > limit and page else None}


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
def inclusion_proof(runtime: RuntimeDep, _: Reader, index: Annotated[int, Query(ge=0)],
                    size: Annotated[int | None, Query(ge=1)] = None) -> dict[str, Any]:
    return runtime.audit.inclusion_proof(index, size).to_json()


@router.get("/proofs/consistency", responses=PROBLEMS, summary="RFC 9162 consistency proof (base64 hashes)")
def consistency_proof(runtime: RuntimeDep, _: Reader, from_size: Annotated[int, Query(alias="from", ge=0)],
                      to_size: Annotated[int | None, Query(alias="to", ge=0)] = None) -> dict[str, Any]:
    return runtime.audit.consistency_proof(from_size, to_size).to_json()


@router.get("/export", responses={**PROBLEMS, 200: {"content": {"application/gzip": {}}}},
            summary="Export entries with proofs as a .tar.gz for offline verification")
def export(
    runtime: RuntimeDep, _: Exporter, subject: str | None = None,
    type: str | None = None,
    actor: str | None = None, since: datetime | None = None, until: datetime | None = None,
    from_index: Annotated[int | None, Query(ge=0)] = None, to_index: Annotated[int | None, Query(ge=0)] = None,
) -> StreamingResponse:
    from audit.export import export_log

    flt = EntryFilter(subject=subject, event_type=type, actor=actor, since=since, until=until, start=from_index,
                      end=None if to_index is None else to_index + 1)
    with tempfile.TemporaryDirectory(prefix="tarcza-export-") as tmp:
        out = Path(tmp) / "audit-export"
        summary = export_log(runtime.audit, out, flt)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(out, arcname="audit-export")
    buffer.seek(0)
    name = f"audit-export-{summary.tree_size}.tar.gz"
    return StreamingResponse(buffer, media_type="application/gzip",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.post("/verify", responses=PROBLEMS, summary="Verify the whole stored log (leaves, nodes, checkpoints)")
def verify_database(runtime: RuntimeDep, _: Reader) -> dict[str, Any]:
    return runtime.audit.verify_database().to_json()


@router.post("/verify-export", responses=PROBLEMS, summary="Verify an uploaded export (.tar.gz) as offline")
def verify_export_upload(_: Reader, file: UploadFile, trusted_checkpoint: str | None = None) -> dict[str, Any]:
    from audit.verify import verify_export

    with tempfile.TemporaryDirectory(prefix="tarcza-verify-") as tmp:
        try:
            with tarfile.open(fileobj=file.file, mode="r:gz") as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError):
            raise InvalidInputError("the upload is not a .tar.gz audit export") from None
        roots = [p.parent for p in Path(tmp).rglob("manifest.json")]
        if len(roots) != 1:
            raise InvalidInputError("the archive must hold exactly one export (one manifest.json)")
        return verify_export(roots[0], trusted_checkpoint=trusted_checkpoint).to_json()
