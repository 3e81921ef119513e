"""The web console for compliance officers, the DPO and auditors: ``/console``.

``router`` is what :func:`api.app.create_app` includes: ``GET /`` (to the console), ``GET
/console`` (the dashboard, or the log-in page) and everything under ``/console/`` as one
mounted router of console pages (:mod:`api.console.auth_pages`, ``dashboard``, ``subjects``,
``requests``, ``audit_pages``, ``gdpr_pages``) and their static files. The pages are not
part of the HTTP API: they are left out of the OpenAPI document, authenticate with the
session cookie instead of a bearer token, answer HTML (errors too) instead of problem
details, and are tested in a browser (tests/console/). Every decision on them is the API's
own: the Cedar policies through the same services. ADR 0012 explains the design.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from api.console import audit_pages, auth_pages, dashboard, gdpr_pages, register_pages, requests, subjects
from api.console.web import PREFIX, ConsoleRoute, User, redirect
from api.deps import RuntimeDep

STATIC_DIR = Path(__file__).resolve().parent / "static"

pages = APIRouter(include_in_schema=False)
for module in (auth_pages, dashboard, subjects, requests, audit_pages, gdpr_pages, register_pages):
    pages.include_router(module.router)
pages.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)


@router.get("/")
def root() -> RedirectResponse:
    return redirect(PREFIX)


@router.get(PREFIX, response_class=HTMLResponse)
def console(request: Request, user: User, runtime: RuntimeDep) -> HTMLResponse:
    """The dashboard (the log-in page first, without a session)."""
    return dashboard.dashboard_page(request, user, runtime)


router.routes.append(Mount(PREFIX, app=pages, name="console"))
