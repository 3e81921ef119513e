"""HTTP API of the PII vault: subjects, fields, masked views, reveals, search, recordings, erasure, keys.

Routes decide nothing and record nothing themselves: the vault's gate (:mod:`vault.access`) does.

1. The route's gate (a dependency, before the body is read) asks the gate whether this principal
   could be allowed the route's action on *some* subject (:meth:`vault.access.Gate.check_route`:
   a stand-in subject the principal is assigned to, a purpose it could state and, for a reveal,
   a break-glass justification), so what it decides is role or scope and the second factor; that
   is the outcome docs/authorisation-matrix.md lists per route. The gate records a refusal.
2. The gate then decides again on the real subject, purpose and justification (purposes of the
   role, case assignment, GDPR restriction, break-glass), writes the audit entry, and only then
   decrypts; a recording's ``Range`` is weighed against its size only after an allowed decision.
3. Erasure goes through the one erasure decision (:mod:`gdpr.erasure`), never straight to shredding.

Personal data never travels in a URL: a reveal and a search send their fields, values and
purpose in a POST body, and answers holding personal data (masked or not) are sent with
``Cache-Control: no-store``. Request models name fields by catalogue identifier only, so a
validation error (which never echoes input: api/errors.py) carries no value either.

Idempotency (api/idempotency.py): ``POST /v1/subjects`` with an ``Idempotency-Key`` returns the
same token when retried with the same body (the vault deduplicates: both answers are 201, the
retry's marked ``Idempotent-Replayed``), and 422 ``idempotency-key-reuse`` for the same key
with another body. A recording upload with a key is answered once; a retry gets that answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any, Final

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.auth import PrincipalDep, denied, require_action
from api.deps import RuntimeDep
from api.errors import UnsupportedMediaTypeError
from api.idempotency import ApiRoute, IdempotentByService, IdempotentUpload
from api.runtime import Runtime
from core.errors import InvalidInputError
from identity.principal import Principal
from policies.authorizer import Decision
from vault.access import Playback
from vault.blobs import RecordingTooLargeError
from vault.service import MAX_BULK_REVEAL, Action

router = APIRouter(tags=["vault"], route_class=ApiRoute)

NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem details, WWW-Authenticate)"},
    403: {"description": "Refused by a policy rule (problem details naming the rule kind)"},
    404: {"description": "No such subject or recording (problem details)"},
    409: {"description": "Conflict (problem details)"},
    410: {"description": "The subject was crypto-shredded (problem details)"},
    422: {"description": "Invalid input: names the field and the rule, never the value (problem details)"},
}
_UPLOAD_BODY: Final = {"requestBody": {"required": True, "description": "The recording itself; Content-Type is "
                                       "its media type (e.g. audio/ogg)", "content": {
                                           "application/octet-stream": {"schema": {"type": "string",
                                                                                   "format": "binary"}}}}}

FieldName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
FieldValue = Annotated[str, StringConstraints(max_length=10_000)]
Purpose = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.:-]{0,63}$")]
SubjectToken = Annotated[str, Path(max_length=64, description="Subject token (sub_...)")]


# -- the route gate -------------------------------------------------------------------------------


def could_allow(runtime: Runtime, principal: Principal, action: str, *, purpose: bool = False,
                justification: bool = False) -> Decision:
    """Whether ``action`` could be allowed on some subject (the gate's :meth:`~vault.access.Gate.could_allow`)."""
    return runtime.vault.gate.could_allow(principal, action, purpose=purpose, justification=justification)


def subject_gate(action: str, *, purpose: bool = False, justification: bool = False) -> Callable[..., Principal]:
    """A dependency: the current principal, if the gate says the route's action could be allowed; else 403.

    The gate (:meth:`vault.access.Gate.check_route`) decides and records a refusal; the route only
    answers it.
    """

    def dependency(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> Principal:
        decision = runtime.vault.gate.check_route(principal, action, purpose=purpose, justification=justification,
                                                  token=request.path_params.get("token"),
                                                  recording_id=request.path_params.get("recording_id"))
        if decision.allowed:
            return principal
        raise denied(action, decision)

    dependency.__name__ = f"gate_{action.replace('.', '_')}"
    return dependency


Creator = Annotated[Principal, Depends(subject_gate(Action.CREATE))]
Updater = Annotated[Principal, Depends(subject_gate(Action.UPDATE))]
MaskedReader = Annotated[Principal, Depends(subject_gate(Action.READ_MASKED))]
Revealer = Annotated[Principal, Depends(subject_gate(Action.REVEAL, purpose=True, justification=True))]
Searcher = Annotated[Principal, Depends(subject_gate(Action.SEARCH))]
Recorder = Annotated[Principal, Depends(subject_gate(Action.STORE_RECORDING))]
Player = Annotated[Principal, Depends(subject_gate(Action.PLAY_RECORDING, purpose=True))]
Eraser = Annotated[Principal, Depends(subject_gate(Action.SHRED))]
KeyRotator = Annotated[Principal, Depends(require_action("keys.rotate"))]


# -- subjects and fields --------------------------------------------------------------------------


class CreateSubjectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "kind": "debtor", "fields": {"first_name": "Jan", "last_name": "Nowak", "pesel": "37031162302",
                                     "phone": ["+48 601 234 567"], "email": "jan.nowak@example.pl"}}]})
    kind: str = Field(max_length=32, description="debtor or third_party")
    fields: dict[FieldName, FieldValue | list[FieldValue]] = Field(
        min_length=1, max_length=64, description="Catalogue field name -> a value, or a list for multi-valued fields")


class UpdateFieldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: list[FieldValue] = Field(min_length=1, max_length=50, description="Every value the field holds from now")


class RevealRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "fields": ["first_name", "last_name", "phone"], "purpose": "debt_collection"}]})
    fields: list[FieldName] = Field(min_length=1, max_length=64)
    purpose: Purpose = Field(description="Why: a purpose of policies/authorisation.yaml, e.g. debt_collection")
    justification: str | None = Field(None, min_length=1, max_length=2000,
                                       description="Break-glass justification (compliance officers); sealed in the log")


class BulkRevealRequest(RevealRequest):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "subjects": ["sub_Q2xq0y7Wm4b1Zr8kTgVh3A", "sub_Hk3Lp9Zx0Qw2Ev5Rt7Yu1B"], "fields": ["first_name", "address"],
        "purpose": "debt_collection"}]})
    subjects: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        min_length=1, max_length=MAX_BULK_REVEAL, description=f"Subject tokens (1 to {MAX_BULK_REVEAL})")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "field": "pesel", "value": "37031162302", "purpose": "debt_collection"}]})
    field: FieldName
    value: FieldValue = Field(description="The exact value (normalised as when stored), matched by blind index")
    purpose: Purpose


@router.post("/v1/subjects", status_code=201, responses=PROBLEMS,
             summary="Create a subject with sealed fields; returns its token")
def create_subject(body: CreateSubjectRequest, response: Response, runtime: RuntimeDep, principal: Creator,
                   idempotency: IdempotentByService) -> dict[str, str]:
    key = None if idempotency is None else idempotency.key
    token = runtime.vault.create_subject(principal, body.kind, body.fields, key)
    response.headers["Location"] = f"/v1/subjects/{token}"
    return {"token": token}


@router.put("/v1/subjects/{token}/fields/{field}", status_code=204, response_class=Response, responses=PROBLEMS,
            summary="Replace every value of one field")
def update_field(
    token: SubjectToken, field: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,62}$")],
    body: UpdateFieldRequest, runtime: RuntimeDep, principal: Updater,
) -> Response:
    runtime.vault.update_field(principal, token, field, body.values)
    return Response(status_code=204)


@router.get("/v1/subjects/{token}", responses=PROBLEMS, summary="The subject's fields, masked for your role")
def masked_view(
    token: SubjectToken, response: Response, runtime: RuntimeDep, principal: MaskedReader,
    fields: Annotated[str | None, Query(max_length=2000, pattern=r"^[a-z][a-z0-9_]{0,62}(,[a-z][a-z0-9_]{0,62})*$",
                                        description="Comma-separated field names (default: all)")] = None,
    purpose: Annotated[str | None, Query(max_length=64, description="Optional purpose, for the log")] = None,
) -> dict[str, Any]:
    names = None if fields is None else [n for n in fields.split(",") if n]
    values = runtime.vault.masked_view(principal, token, names, purpose=purpose)
    response.headers.update(NO_STORE)
    return {"subject": token, "fields": values}


@router.post("/v1/subjects/{token}/reveal", responses=PROBLEMS,
             summary="Reveal fields in clear, for a stated purpose (fresh second factor; logged first)")
def reveal(token: SubjectToken, body: RevealRequest, response: Response, runtime: RuntimeDep,
           principal: Revealer) -> dict[str, Any]:
    values = runtime.vault.reveal(principal, token, body.fields, body.purpose, body.justification)
    response.headers.update(NO_STORE)
    return {"subject": token, "fields": values}


@router.post("/v1/subjects/reveal", responses=PROBLEMS,
             summary="Reveal the same fields of many subjects (each decided and logged first; errors in place)")
def reveal_many(body: BulkRevealRequest, response: Response, runtime: RuntimeDep,
                principal: Revealer) -> dict[str, Any]:
    """For batch jobs (a letters run): one call, one shared audit commit, one result per subject.

    A subject that is unknown, shredded or refused (case assignment, restriction) gets a
    problem-details ``error`` in its place; the others their ``fields``. Every decided
    subject has its own ``vault.access`` entry, committed before anything is decrypted.
    """
    results = runtime.vault.reveal_many(principal, body.subjects, body.fields, body.purpose, body.justification)
    response.headers.update(NO_STORE)
    return {"results": [r.to_json() for r in results]}


@router.post("/v1/subjects/search", responses=PROBLEMS,
             summary="Tokens of subjects holding exactly this value (blind index; the value stays in the body)")
def search(body: SearchRequest, response: Response, runtime: RuntimeDep, principal: Searcher) -> dict[str, Any]:
    tokens = runtime.vault.search(principal, body.field, body.value, body.purpose)
    response.headers.update(NO_STORE)
    return {"subjects": tokens}


@router.delete("/v1/subjects/{token}", responses={
    **PROBLEMS, 409: {"description": "The erasure decision refuses it: legal holds, open claims or the accounting "
                                     "duty keep the data (problem details with the reasons and possible_from)"}},
    summary="Erase a subject by crypto-shredding (GDPR Art. 17), if the erasure decision allows it; idempotent")
def shred(token: SubjectToken, runtime: RuntimeDep, principal: Eraser) -> dict[str, Any]:
    """The same decision as a request's erasure (:mod:`gdpr.erasure`): a fresh second factor for people,
    then holds, open claims and the accounting duty; a refusal is 409 and logged (request ``direct``)."""
    report = runtime.gdpr.erasure.erase_directly(principal, token)
    return {"subject": report.subject, "fields": report.fields, "recordings": report.recordings,
            "already_shredded": report.already_shredded}


# -- recordings -----------------------------------------------------------------------------------


async def _stream_into(request: Request, consume: Callable[[Iterator[bytes]], Any]) -> Any:
    """Run ``consume`` in a worker thread, feeding it the request body chunk by chunk as it arrives."""
    chunks: AsyncIterator[bytes] = request.stream()

    async def next_chunk() -> bytes | None:
        try:
            return await anext(chunks)
        except StopAsyncIteration:
            return None

    def body() -> Iterator[bytes]:
        while (chunk := anyio.from_thread.run(next_chunk)) is not None:
            if chunk:
                yield chunk

    return await anyio.to_thread.run_sync(consume, body())


@router.post("/v1/subjects/{token}/recordings", status_code=201, responses={
    **PROBLEMS, 413: {"description": "Larger than TARCZA_MAX_RECORDING_BYTES (problem details)"},
    415: {"description": "A media type not in TARCZA_RECORDING_MEDIA_TYPES (problem details)"}},
    openapi_extra=_UPLOAD_BODY,
    summary="Upload a recording of the subject; encrypted segment by segment as it streams in")
async def upload_recording(
    token: SubjectToken, request: Request, runtime: RuntimeDep, principal: Recorder,
    idempotency: IdempotentUpload,  # noqa: ARG001 - see api.idempotency
    announced: Annotated[bool | None, Query(description="The debtor was told the conversation is recorded "
                                                        "(policy requires true)")] = None,
    duration_ms: Annotated[int | None, Query(ge=0, le=7 * 24 * 3600 * 1000, description=(
        "Length of the recording; read from the header for WAV when omitted"))] = None,
    content_length: Annotated[int | None, Header(alias="content-length", ge=0)] = None,
) -> dict[str, Any]:
    """The SHA-256, size and duration of the plaintext go into the ``recording.stored`` entry."""
    settings = runtime.settings
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not media_type:
        raise InvalidInputError("send the recording's media type as Content-Type, e.g. audio/ogg")
    allowed = {t.strip().lower() for t in settings.recording_media_types.split(",") if t.strip()}
    if media_type not in allowed:
        raise UnsupportedMediaTypeError(f"recordings may be {', '.join(sorted(allowed))}")
    if announced is not True:
        raise InvalidInputError("a recording needs announced=true: the debtor must be told it is recorded")
    limit = settings.max_recording_bytes
    if content_length is not None and content_length > limit:
        raise RecordingTooLargeError(f"a recording may hold at most {limit} bytes")
    vault = runtime.vault
    info = await _stream_into(request, lambda body: vault.store_recording(
        principal, token, body, media_type, max_bytes=limit, duration_ms=duration_ms, announced=True))
    return {**info.to_json(), "announced": True}


@router.get("/v1/subjects/{token}/recordings/{recording_id}", response_class=StreamingResponse, responses={
    **PROBLEMS, 200: {"content": {"application/octet-stream": {}}, "description": "The whole recording"},
    206: {"description": "The requested byte range (Content-Range)"},
    416: {"description": "Range not satisfiable (problem details, Content-Range: bytes */size)"}},
    summary="Play a recording for a stated purpose; honours a single Range header (logged first)")
def play_recording(
    token: SubjectToken, recording_id: Annotated[str, Path(max_length=64)], runtime: RuntimeDep, principal: Player,
    purpose: Annotated[str, Query(max_length=64, description="Why: a purpose of policies/authorisation.yaml")],
    range_header: Annotated[str | None, Header(alias="range", max_length=100)] = None,
) -> StreamingResponse:
    """The gate decides on the subject first; only then is the ``Range`` weighed against the size (416)."""
    return playback_response(runtime.vault.play(principal, token, recording_id, purpose, range_header=range_header))


def playback_response(playback: Playback) -> StreamingResponse:
    """The HTTP answer of an allowed playback: 200 whole, or 206 with ``Content-Range``; never cached."""
    info, start = playback.info, playback.start
    end = info.size if playback.end is None else playback.end
    headers = {**NO_STORE, "Accept-Ranges": "bytes", "Content-Length": str(end - start)}
    if playback.partial:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
    return StreamingResponse(playback.chunks, status_code=206 if playback.partial else 200,
                             media_type=info.media_type, headers=headers)


# -- keys -----------------------------------------------------------------------------------------


@router.post("/v1/keys/rotate", responses={**PROBLEMS, 503: {"description": "Key provider unavailable"}},
             summary="Rotate the key-encryption key: rewrap every data key (synchronous; resumes an interrupted one)")
def rotate_keys(runtime: RuntimeDep, principal: KeyRotator,
                batch_size: Annotated[int, Query(ge=1, le=10_000)] = 200) -> dict[str, object]:
    return runtime.vault.rotate_keys(batch_size=batch_size, actor=principal.actor).to_json()
