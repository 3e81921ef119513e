"""The web console for compliance officers: a read-only status page for now."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

import core
from api.deps import RuntimeDep
from core import migrate

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/console")


@router.get("/console", response_class=HTMLResponse)
def console(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    try:
        schema = migrate.current_revision(runtime.engine) or "not initialised"
        ready = schema == migrate.head_revision()
    except Exception:  # noqa: BLE001 - the page shows the state, the log has the error
        schema, ready = "unreachable", False
    return templates.TemplateResponse(request, "console.html", {
        "version": core.__version__,
        "backend": runtime.settings.backend,
        "schema": schema,
        "ready": ready,
        "panels": CONSOLE_PANELS,
    })


CONSOLE_PANELS: list[dict[str, str]] = [
    {"title": "API documentation", "href": "/docs", "text": "Every endpoint, with its problem responses."},
    {"title": "Readiness", "href": "/readyz", "text": "Database reachable and schema current."},
    {"title": "Metrics", "href": "/metrics", "text": "Prometheus metrics of this process."},
]
