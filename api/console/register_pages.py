"""The DPO's registers on the console (Art. 14 notices, Art. 19 notifications, Art. 33(5) breaches) and a debt's page.

``/console/registers`` lists the open Art. 14 notices by deadline (one month from obtaining
the data, or the first contact), the Art. 19 notifications still to send and the breach
register with each breach's 72-hour clock, with forms to close a notice, record a
notification's outcome, record a breach and its notification. ``/console/debts/{id}``
shows a debt's legal history and its limitation period with the reasoning, each step naming
its article. Every decision is the API's own: the same services, ``gdpr.manage`` for the
registers, the contacts book's own decision for a debt.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.console.web import (
    NO_STORE,
    PREFIX,
    ConsoleRoute,
    ConsoleUser,
    FormErrors,
    PostedForm,
    User,
    parse_date,
    parse_datetime,
    redirect,
    render,
)
from api.deps import RuntimeDep
from api.runtime import Runtime
from core.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from gdpr.breaches import NewBreach

router = APIRouter(route_class=ConsoleRoute)

SHOWN: Final = 200
_NOTICES: Final = frozenset({"notice_closed", "notification_recorded", "breach_recorded", "breach_notified",
                             "register_failed"})


def _require(user: ConsoleUser) -> None:
    if not user.can("gdpr.manage"):
        raise PermissionDeniedError("gdpr.manage refused", rule="role")


def registers_summary(runtime: Runtime) -> dict[str, Any]:
    """What the dashboard shows of the registers: open notices, pending notifications, breaches awaiting notice."""
    registers = runtime.gdpr_registers
    breaches = [b for b in registers.breaches.listing(50) if b["hours_left"] is not None or b["overdue"]]
    return {"notices": registers.notices.listing("open", SHOWN), "notifications": registers.recipients.pending(SHOWN),
            "breaches": breaches}


def _page(request: Request, user: ConsoleUser, runtime: Runtime, *, errors: FormErrors | None = None,
          values: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    registers = runtime.gdpr_registers
    notice = request.query_params.get("notice")
    return render(request, "registers.html", user=user, status=status, errors=errors or FormErrors(),
                  values=values or {}, notices=registers.notices.listing("all", SHOWN),
                  notifications=registers.recipients.pending(SHOWN), breaches=registers.breaches.listing(SHOWN),
                  notice=notice if notice in _NOTICES else None, now=runtime.clock.now(), headers=NO_STORE)


@router.get("/registers", response_class=HTMLResponse)
def registers(request: Request, user: User, runtime: RuntimeDep) -> HTMLResponse:
    _require(user)
    return _page(request, user, runtime)


def _done(notice: str, anchor: str) -> Response:
    return redirect(f"{PREFIX}/registers?notice={notice}#{anchor}")


@router.post("/notices/{notice_id}/close")
def close_notice(notice_id: str, user: User, form: PostedForm, runtime: RuntimeDep) -> Response:
    """The Art. 14 information given (today or the day entered, with the channel), or an Art. 14(5) exemption."""
    _require(user)
    exemption = form.text("exemption") or None
    given_on = parse_date(form.text("given_on")) if not exemption else None
    try:
        runtime.gdpr_registers.notices.close(user.principal, notice_id, given_on=given_on,
                                             channel=form.text("channel") or None, exemption=exemption)
    except (InvalidInputError, ConflictError, NotFoundError):
        return _done("register_failed", "notices")
    return _done("notice_closed", "notices")


@router.post("/recipient-notifications/{notification_id}")
def notification_outcome(notification_id: str, user: User, form: PostedForm, runtime: RuntimeDep) -> Response:
    """A recipient told of a change (the day and the method), or why it cannot be (Art. 19)."""
    _require(user)
    try:
        runtime.gdpr_registers.recipients.record_outcome(
            user.principal, notification_id, form.text("outcome"), notified_on=parse_date(form.text("notified_on")),
            method=form.text("method") or None, reason=form.text("reason") or None)
    except (InvalidInputError, ConflictError, NotFoundError):
        return _done("register_failed", "notifications")
    return _done("notification_recorded", "notifications")


@router.post("/breaches", response_class=HTMLResponse)
def record_breach(request: Request, user: User, form: PostedForm, runtime: RuntimeDep) -> Response:
    """Add a breach to the register (Art. 33(5)); the form is shown again with what is wrong."""
    _require(user)
    errors = FormErrors()
    aware_text = errors.require(form, "aware_at")
    aware_at = parse_datetime(aware_text) if aware_text else None
    if aware_text and aware_at is None:
        errors["aware_at"] = "form.datetime_format"
    texts = {name: errors.require(form, name) for name in ("facts", "effects", "remedial_action")}
    risk = errors.require(form, "risk")
    nature, categories = tuple(form.all("nature")), tuple(form.all("data_categories"))
    if not nature:
        errors["nature"] = "form.required"
    if not categories:
        errors["data_categories"] = "form.required"
    count = form.text("subjects_count")
    values = {name: form.text(name)[:4000] for name in ("aware_at", "facts", "effects", "remedial_action", "risk",
                                                         "subjects_count")}
    if not errors and aware_at is not None:
        try:
            runtime.gdpr_registers.breaches.record(user.principal, NewBreach(
                aware_at=aware_at, nature=nature, data_categories=categories, risk=risk,
                subjects_count=int(count) if count.isdigit() else None, facts=texts["facts"],
                effects=texts["effects"], remedial_action=texts["remedial_action"]))
        except InvalidInputError:
            errors["form"] = "registers.breach_invalid"
        else:
            return _done("breach_recorded", "breaches")
    return _page(request, user, runtime, errors=errors, values=values, status=422)


@router.post("/breaches/{breach_id}/notified")
def breach_notified(breach_id: str, user: User, form: PostedForm, runtime: RuntimeDep) -> Response:
    """The supervisory authority was notified (Art. 33(1)): when, and its reference."""
    _require(user)
    at = parse_datetime(form.text("authority_notified_at"))
    try:
        if at is None:
            raise InvalidInputError("authority_notified_at is needed")
        runtime.gdpr_registers.breaches.update(user.principal, breach_id, authority_notified_at=at,
                                               authority_reference=form.text("authority_reference") or None)
    except (InvalidInputError, NotFoundError):
        return _done("register_failed", "breaches")
    return _done("breach_notified", "breaches")


@router.get("/debts/{debt_id}", response_class=HTMLResponse)
def debt_page(request: Request, debt_id: str, user: User, runtime: RuntimeDep) -> HTMLResponse:
    """A debt with its legal history, parties and limitation period, each step naming its article."""
    debt = runtime.contacts.debts.get_for(user.principal, debt_id).to_json(runtime.clock.now().date())
    return render(request, "debt.html", user=user, debt=debt, headers=NO_STORE)
