"""The witness's HTTP interface (C2SP tlog-witness); submission and monitoring prefix are both ``/``.

- ``POST /add-checkpoint``: body per :mod:`witness.protocol`; 200 with the cosignature line(s)
  (``text/plain; charset=utf-8``); 409 with the latest cosigned size and a newline
  (``text/x.tlog.size``); 400, 403, 404, 413, 422 as RFC 9457 problem details (the protocol
  fixes only their status codes).
- ``GET /<lowercase hex SHA-256 of the origin>/checkpoint``: the latest checkpoint cosigned for
  that log, with the log's signature and the witness's cosignature; 404 if none.
- ``GET /healthz``: liveness.

Requests carry no authentication: the log's signature on the checkpoint is what is checked.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from core.errors import TarczaError
from core.logging import get_logger
from witness.errors import MalformedRequestError, SizeConflictError
from witness.protocol import MAX_REQUEST_BYTES, SIZE_CONTENT_TYPE
from witness.service import Witness

log = get_logger(__name__)
PROBLEM = "application/problem+json"


def _problem(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


async def _read_limited(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise _TooLargeError
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise _TooLargeError
    return bytes(body)


class _TooLargeError(Exception):
    pass


def create_witness_app(witness: Witness) -> FastAPI:
    """The ASGI app of ``witness``."""
    app = FastAPI(title="Tarcza witness", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(TarczaError)
    async def refused(request: Request, exc: TarczaError) -> Response:
        if isinstance(exc, SizeConflictError):
            # Exactly this media type (tlog-witness), without the charset Starlette adds to text/*.
            return Response(f"{exc.latest_size}\n".encode("ascii"), status_code=409,
                            headers={"Content-Type": SIZE_CONTENT_TYPE})
        body = exc.problem()
        body["instance"] = request.url.path
        return _problem(exc.status, body)

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        try:
            body = await _read_limited(request)
        except _TooLargeError:
            return _problem(413, {"type": "about:blank", "title": "Request too large", "status": 413,
                                  "detail": f"an add-checkpoint request is at most {MAX_REQUEST_BYTES} bytes"})
        if not body:
            raise MalformedRequestError("empty request body")
        lines = await run_in_threadpool(witness.add_checkpoint, body)
        return PlainTextResponse(lines)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "witness": witness.verifier().to_string()}

    @app.get("/{hashed_origin}/checkpoint")
    async def latest_checkpoint(hashed_origin: str) -> Response:
        note = await run_in_threadpool(witness.latest_note, hashed_origin.lower())
        if note is None:
            return _problem(404, {"type": "about:blank", "title": "Not found", "status": 404,
                                  "detail": "this witness has cosigned no checkpoint of that log"})
        return PlainTextResponse(note)

    return app
