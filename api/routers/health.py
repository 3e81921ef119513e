"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import RuntimeDep
from core import migrate
from core.db import check_connection
from core.errors import DatabaseUnavailableError

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database reachable and migrations current",
            responses={503: {"description": "Not ready (problem details)"}})
def readyz(runtime: RuntimeDep) -> dict[str, Any]:
    check_connection(runtime.engine)
    current, head = migrate.current_revision(runtime.engine), migrate.head_revision()
    if current != head:
        raise DatabaseUnavailableError(
            f"database schema is at {current or 'nothing'}, expected {head}; run `tarcza db upgrade`",
        )
    return {"status": "ready", "database": runtime.engine.dialect.name, "schema": current}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
