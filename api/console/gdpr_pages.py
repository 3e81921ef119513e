"""Retention (the dry-run report and the run), the record of processing activities, and the breach-impact query.

Each is the GDPR toolkit's own operation (``/v1/gdpr/retention/*``, ``/v1/gdpr/ropa``,
``/v1/gdpr/breach``) behind the same ``gdpr.manage`` decision. The run is a second,
confirmed POST after a dry run; it shreds, so it also needs ``gdpr.erase`` (a fresh second
factor) and each shredding goes through the erasure decision (:mod:`gdpr.erasure`). The
record of processing activities is rendered from its
``tarcza-ropa/v1`` document in the page's language; the bilingual HTML document and the
JSON are downloads.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.console.state import remember_retention, state_of
from api.console.subjects import step_up_if_needed
from api.console.web import (
    NO_STORE,
    ConsoleRoute,
    ConsoleUser,
    FormErrors,
    PostedForm,
    User,
    parse_datetime,
    render,
)
from api.deps import RuntimeDep
from api.routers.gdpr import controller
from api.runtime import Runtime
from core.errors import InvalidInputError, PermissionDeniedError

router = APIRouter(route_class=ConsoleRoute)

ACTIONS_SHOWN: Final = 500


def _require(user: ConsoleUser) -> None:
    if not user.can("gdpr.manage"):
        raise PermissionDeniedError("gdpr.manage refused", rule="role")


# -- retention --------------------------------------------------------------------------------------------


def _retention_page(request: Request, user: ConsoleUser, runtime: Runtime, *, report: dict[str, Any] | None = None,
                    errors: FormErrors | None = None, status: int = 200) -> HTMLResponse:
    with state_of(runtime).lock:
        cached = state_of(runtime).retention
    return render(request, "retention.html", user=user, status=status, errors=errors or FormErrors(), report=report,
                  cached=cached, shown=ACTIONS_SHOWN, fresh=user.second_factor_fresh(),
                  fresh_until=user.second_factor_fresh_until())


@router.get("/retention", response_class=HTMLResponse)
def retention(request: Request, user: User, runtime: RuntimeDep) -> HTMLResponse:
    _require(user)
    return _retention_page(request, user, runtime)


@router.post("/retention/dry-run", response_class=HTMLResponse)
def retention_dry_run(request: Request, user: User, form: PostedForm, runtime: RuntimeDep) -> HTMLResponse:  # noqa: ARG001
    _require(user)
    report = runtime.retention_job().dry_run().to_json()
    remember_retention(runtime, {k: v for k, v in report.items() if k != "actions"})
    return _retention_page(request, user, runtime, report=report)


@router.post("/retention/run", response_class=HTMLResponse)
def retention_run(request: Request, user: User, form: PostedForm, runtime: RuntimeDep) -> HTMLResponse:
    """Run the retention schedules: it shreds, so it needs ``gdpr.erase`` (a fresh second factor: a code is
    asked for when the session's is older); each shredding goes through the erasure decision."""
    _require(user)
    errors = FormErrors()
    if form.text("confirm") != "1":
        errors["confirm"] = "retention.confirm_needed"
    stepped = user if errors else step_up_if_needed(request, user, runtime, form.text("code"), errors)
    if errors:
        return _retention_page(request, stepped, runtime, errors=errors, status=422)
    if not stepped.can("gdpr.erase"):
        raise PermissionDeniedError("gdpr.erase refused", rule="role")
    report = runtime.retention_job().run().to_json()
    remember_retention(runtime, runtime.retention_job().dry_run().to_json(with_actions=False))
    return _retention_page(request, user, runtime, report=report)


# -- the record of processing activities (Art. 30) -------------------------------------------------------


def _record(runtime: Runtime) -> Any:
    from gdpr.ropa import build_record

    return build_record(controller(runtime), generated_at=runtime.clock.now(),
                        registers=runtime.gdpr_registers.ropa_facts())


@router.get("/ropa", response_class=HTMLResponse)
def ropa(request: Request, user: User, runtime: RuntimeDep) -> HTMLResponse:
    _require(user)
    return render(request, "ropa.html", user=user, record=_record(runtime).to_json())


@router.get("/ropa/download")
def ropa_download(user: User, runtime: RuntimeDep, format: str = "json") -> Response:
    """The record as its JSON document or the bilingual HTML document, as a file to keep."""
    _require(user)
    record = _record(runtime)
    if format == "html":
        from gdpr.ropa import render_html

        return Response(render_html(record), media_type="text/html; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="ropa.html"'})
    return Response(json.dumps(record.to_json(), indent=2, ensure_ascii=False), media_type="application/json",
                    headers={"Content-Disposition": 'attachment; filename="ropa.json"'})


# -- breach impact (Art. 33, 34) ----------------------------------------------------------------------------


def _breach_page(request: Request, user: ConsoleUser, *, errors: FormErrors | None = None,
                 values: dict[str, str] | None = None, report: dict[str, Any] | None = None,
                 status: int = 200) -> HTMLResponse:
    return render(request, "breach.html", user=user, status=status, errors=errors or FormErrors(),
                  values=values or {}, report=report, headers=NO_STORE)


@router.get("/breach", response_class=HTMLResponse)
def breach_form(request: Request, user: User) -> HTMLResponse:
    _require(user)
    return _breach_page(request, user)


@router.post("/breach", response_class=HTMLResponse)
def breach(request: Request, user: User, form: PostedForm, runtime: RuntimeDep) -> HTMLResponse:
    _require(user)
    from gdpr.breach import breach_impact

    errors = FormErrors()
    actor = errors.require(form, "actor_id")
    if len(actor) > 128:
        errors["actor_id"] = "form.too_long"
    times: dict[str, datetime | None] = {}
    for name in ("since", "until", "aware_at"):
        text = errors.require(form, name)
        parsed = parse_datetime(text) if text else None
        if text and parsed is None:
            errors[name] = "form.datetime_format"
        times[name] = parsed
    if times["since"] and times["until"] and times["until"] <= times["since"]:
        errors["until"] = "breach.window_empty"
    values = {"actor_id": actor[:128], **{name: form.text(name)[:40] for name in ("since", "until", "aware_at")}}
    if errors:
        return _breach_page(request, user, errors=errors, values=values, status=422)
    since, until, aware_at = times["since"], times["until"], times["aware_at"]
    if since is None or until is None or aware_at is None:  # pragma: no cover - each was checked above
        raise InvalidInputError("since, until and aware_at are needed")
    try:
        report = breach_impact(runtime.audit, actor, since, until, aware_at=aware_at, now=runtime.clock.now())
    except InvalidInputError:
        errors["form"] = "breach.invalid"
        return _breach_page(request, user, errors=errors, values=values, status=422)
    return _breach_page(request, user, values=values, report=report.to_json())
