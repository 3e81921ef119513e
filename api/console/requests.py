"""Data subject requests: the list by deadline, a new request, and one request's steps.

Each step is the GDPR service's (``runtime.gdpr``), the one ``/v1/gdpr/requests/*`` runs,
with its checks (state, deadline arithmetic, the audit entry first). An erasure is shown
as a decision first: what :meth:`~gdpr.service.GdprService.assess_erasure` says today,
with every legal reason that keeps the data and the date erasure becomes possible, and
only a second, confirmed POST executes it, through the one erasure decision
(:mod:`gdpr.erasure`): a fresh second factor (a code is asked for inline when the session's
is older), and, for the DPO only, a justified override that waits for review. The archive
of an access or portability request is the officer's reveal through the vault's gate
(purpose ``gdpr_request``; a compliance officer by break-glass with a justification; a fresh
second factor), produced on POST and downloaded as the answer (it is not kept).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.background import BackgroundTask

from api.console.subjects import break_glass_only, page_gate, step_up_if_needed
from api.console.web import (
    NO_STORE,
    PREFIX,
    ConsoleRoute,
    ConsoleUser,
    FormErrors,
    PostedForm,
    User,
    parse_date,
    redirect,
    render,
)
from api.deps import RuntimeDep
from api.runtime import Runtime
from audit.events import Channel
from core.errors import ConflictError, InvalidInputError, PermissionDeniedError
from gdpr.erasure import Override
from gdpr.models import REQUEST_KINDS
from gdpr.service import CHANNELS, EXTENSION_REASONS, VERIFICATION_METHODS
from identity.principal import Role
from vault.errors import SubjectNotFoundError
from vault.service import MAX_JUSTIFICATION, Action
from vault.tokens import SUBJECT_PREFIX, is_token

router = APIRouter(route_class=ConsoleRoute)

VIEWS: Final = ("open", "overdue", "due_soon", "closed", "all")
PAGE: Final = 50
_ID: Final = re.compile(r"^dsr_[A-Za-z0-9_-]{1,36}$")
_CODE: Final = re.compile(r"^[a-z][a-z0-9_:;.,/-]{0,199}$")
_PURPOSE: Final = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
_FIELD: Final = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_REFERENCE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,99}$")


def _require(user: ConsoleUser) -> None:
    if not user.can("gdpr.manage"):
        raise PermissionDeniedError("gdpr.manage refused", rule="role")


# -- the list and a new request -------------------------------------------------------------------------


def list_page(request: Request, user: ConsoleUser, runtime: Runtime, *, errors: FormErrors | None = None,
              values: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    _require(user)
    view = request.query_params.get("view", "open")
    view = view if view in VIEWS else "open"
    cursor = request.query_params.get("cursor") or None
    try:
        items, next_cursor = runtime.gdpr.requests(user.principal, view=view, cursor=cursor, limit=PAGE)
    except InvalidInputError:
        items, next_cursor = runtime.gdpr.requests(user.principal, view=view, limit=PAGE)
    today = runtime.clock.now().date()
    defaults = {"received_on": today.isoformat(), "kind": "access", "channel": "letter"}
    return render(request, "requests.html", user=user, status=status, errors=errors or FormErrors(),
                  values={**defaults, **(values or {})}, items=items, view=view, views=VIEWS,
                  next_cursor=next_cursor, kinds=REQUEST_KINDS, channels=CHANNELS, today=today.isoformat(),
                  request_subject=request.query_params.get("subject", "")[:64])


@router.get("/requests", response_class=HTMLResponse)
def requests_list(request: Request, user: User, runtime: RuntimeDep) -> HTMLResponse:
    return list_page(request, user, runtime)


@router.post("/requests", response_class=HTMLResponse)
def create_request(request: Request, user: User, form: PostedForm, runtime: RuntimeDep) -> Response:
    _require(user)
    errors = FormErrors()
    subject = errors.require(form, "subject")
    if subject and not is_token(subject, SUBJECT_PREFIX):
        errors["subject"] = "subjects.token_format"
    kind = errors.require(form, "kind", "form.choose")
    if kind and kind not in REQUEST_KINDS:
        errors["kind"] = "form.choose"
    channel = errors.require(form, "channel", "form.choose")
    if channel and channel not in CHANNELS:
        errors["channel"] = "form.choose"
    received = errors.require(form, "received_on")
    received_on = parse_date(received) if received else None
    if received and received_on is None:
        errors["received_on"] = "form.date_format"
    elif received_on is not None and received_on > runtime.clock.now().date():
        errors["received_on"] = "requests.received_future"
    values = {"subject": subject[:64], "kind": kind, "channel": channel, "received_on": received}
    if not errors:
        assert received_on is not None  # noqa: S101 - checked above
        try:
            created = runtime.gdpr.receive(user.principal, subject, kind, received_on, channel)
        except SubjectNotFoundError:
            errors["subject"] = "subjects.unknown"
        else:
            return redirect(f"{PREFIX}/requests/{created['id']}?notice=created")
    return list_page(request, user, runtime, errors=errors, values=values, status=422)


# -- one request ----------------------------------------------------------------------------------------


def _request_id(request_id: str) -> str:
    if not _ID.fullmatch(request_id):
        from gdpr.service import RequestNotFoundError

        raise RequestNotFoundError("no request has this id")
    return request_id


def detail_page(request: Request, user: ConsoleUser, runtime: Runtime, request_id: str, *,
                errors: FormErrors | None = None, values: dict[str, Any] | None = None, status: int = 200,
                notice: str | None = None) -> HTMLResponse:
    _require(user)
    item = runtime.gdpr.get(user.principal, _request_id(request_id))
    return render(request, "request.html", user=user, status=status, errors=errors or FormErrors(),
                  values=values or {}, item=item, notice=notice, methods=VERIFICATION_METHODS,
                  reasons=EXTENSION_REASONS, purposes=sorted(runtime.authorizer.purposes),
                  channels=[c.value for c in Channel], fields=runtime.vault.catalogue.names(),
                  fresh=user.second_factor_fresh(), fresh_until=user.second_factor_fresh_until(),
                  min_justification=runtime.authorizer.parameters.break_glass_min_justification)


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def show_request(request: Request, request_id: str, user: User, runtime: RuntimeDep) -> HTMLResponse:
    return detail_page(request, user, runtime, request_id, notice=request.query_params.get("notice"))


def _step(request: Request, user: ConsoleUser, runtime: Runtime, request_id: str, errors: FormErrors,
          values: dict[str, Any], action: Any, notice: str) -> Response:
    """Run one step unless the form had errors; a state conflict is shown on the page, not as an error page."""
    if not errors:
        try:
            action()
        except ConflictError as exc:
            errors["form"] = "requests.state"
            values = {**values, "conflict": exc.detail}
            return detail_page(request, user, runtime, request_id, errors=errors, values=values, status=409)
        except InvalidInputError as exc:
            errors["form"] = "requests.invalid"
            values = {**values, "conflict": exc.detail}
        else:
            return redirect(f"{PREFIX}/requests/{request_id}?notice={notice}")
    return detail_page(request, user, runtime, request_id, errors=errors, values=values, status=422)


@router.post("/requests/{request_id}/verify", response_class=HTMLResponse)
def verify(request: Request, request_id: str, user: User, form: PostedForm, runtime: RuntimeDep) -> Response:
    _require(user)
    errors = FormErrors()
    method = errors.require(form, "method", "form.choose")
    if method and method not in VERIFICATION_METHODS:
        errors["method"] = "form.choose"
    reference = form.text("reference")
    if reference and not _REFERENCE.fullmatch(reference):
        errors["reference"] = "form.id_format"
    return _step(request, user, runtime, _request_id(request_id), errors, {"method": method},
                 lambda: runtime.gdpr.verify_identity(user.principal, request_id, method, reference or None),
                 "verified")


@router.post("/requests/{request_id}/extend", response_class=HTMLResponse)
def extend(request: Request, request_id: str, user: User, form: PostedForm, runtime: RuntimeDep) -> Response:
    _require(user)
    errors = FormErrors()
    months = errors.require(form, "months", "form.choose")
    if months and months not in ("1", "2"):
        errors["months"] = "form.choose"
    reason = errors.require(form, "reason", "form.choose")
    if reason and reason not in EXTENSION_REASONS:
        errors["reason"] = "form.choose"
    return _step(request, user, runtime, _request_id(request_id), errors, {"months": months, "reason": reason},
                 lambda: runtime.gdpr.extend(user.principal, request_id, int(months), reason), "extended")


def _closing(request: Request, request_id: str, user: ConsoleUser, form: PostedForm, runtime: Runtime,
             field: str, complete: bool) -> Response:
    _require(user)
    errors = FormErrors()
    code = errors.require(form, field)
    if code and not _CODE.fullmatch(code):
        errors[field] = "form.code_format"
    service = runtime.gdpr.complete if complete else runtime.gdpr.refuse
    return _step(request, user, runtime, _request_id(request_id), errors, {field: code},
                 lambda: service(user.principal, request_id, code), "completed" if complete else "refused")


@router.post("/requests/{request_id}/complete", response_class=HTMLResponse)
def complete(request: Request, request_id: str, user: User, form: PostedForm, runtime: RuntimeDep) -> Response:
    return _closing(request, request_id, user, form, runtime, "outcome", complete=True)


@router.post("/requests/{request_id}/refuse", response_class=HTMLResponse)
def refuse(request: Request, request_id: str, user: User, form: PostedForm, runtime: RuntimeDep) -> Response:
    return _closing(request, request_id, user, form, runtime, "refusal", complete=False)


@router.post("/requests/{request_id}/restrict", response_class=HTMLResponse)
def restrict(request: Request, request_id: str, user: User, form: PostedForm, runtime: RuntimeDep) -> Response:
    _require(user)
    lift = form.text("lift") == "1"
    informed = form.text("subject_informed") == "1"
    errors = FormErrors()
    if lift and not informed:
        errors["subject_informed"] = "requests.inform_first"
    return _step(request, user, runtime, _request_id(request_id), errors, {"lift": lift},
                 lambda: runtime.gdpr.restrict(user.principal, request_id, lift=lift, subject_informed=informed),
                 "completed")


@router.post("/requests/{request_id}/object", response_class=HTMLResponse)
def object_to(request: Request, request_id: str, user: User, form: PostedForm, runtime: RuntimeDep) -> Response:
    _require(user)
    errors = FormErrors()
    purpose = errors.require(form, "objection_purpose", "form.choose")
    if purpose and (not _PURPOSE.fullmatch(purpose) or purpose not in runtime.authorizer.purposes):
        errors["objection_purpose"] = "form.choose"
    channel = form.text("objection_channel")
    if channel and channel not in {c.value for c in Channel}:
        errors["objection_channel"] = "form.choose"
    return _step(request, user, runtime, _request_id(request_id), errors,
                 {"objection_purpose": purpose, "objection_channel": channel},
                 lambda: runtime.gdpr.object(user.principal, request_id, purpose, channel or None), "completed")


@router.post("/requests/{request_id}/rectify", response_class=HTMLResponse)
def rectify(request: Request, request_id: str, user: User, form: PostedForm, runtime: RuntimeDep) -> Response:
    """Replace a field's values; the new values are personal data, so they are never shown back."""
    _require(user)
    errors = FormErrors()
    field = errors.require(form, "rectify_field", "form.choose")
    if field and (not _FIELD.fullmatch(field) or field not in runtime.vault.catalogue.names()):
        errors["rectify_field"] = "form.choose"
    values = [line.strip() for line in form.get("rectify_values", "").splitlines() if line.strip()]
    if not values:
        errors["rectify_values"] = "form.required"
    elif len(values) > 50:
        errors["rectify_values"] = "form.too_long"
    if not errors:
        try:
            runtime.gdpr.rectify(user.principal, request_id, field, values)
        except ConflictError as exc:
            errors["form"] = "requests.state"
            return detail_page(request, user, runtime, request_id, errors=errors,
                               values={"rectify_field": field, "conflict": exc.detail}, status=409)
        except InvalidInputError:
            errors["rectify_values"] = "requests.values_invalid"
        else:
            return redirect(f"{PREFIX}/requests/{request_id}?notice=completed")
    return detail_page(request, user, runtime, _request_id(request_id), errors=errors,
                       values={"rectify_field": field}, status=422)


# -- export ---------------------------------------------------------------------------------------------


@router.post("/requests/{request_id}/export")
def export(request: Request, request_id: str, user: User, form: PostedForm, runtime: RuntimeDep) -> Response:
    """Produce the subject's archive (Art. 15, 20) and answer it as a download; the request is closed.

    The export is the officer's reveal: a code is asked for when the session's second factor is
    no longer fresh, a compliance officer gives a break-glass justification, and a refusal by the
    vault's gate (recorded there) is shown on the request's page.
    """
    _require(user)
    request_id = _request_id(request_id)
    page_gate(runtime, user, Action.REVEAL, "", purpose=True, justification=True)
    errors = FormErrors()
    justification = form.text("justification")
    if break_glass_only(user) and len(justification) < runtime.authorizer.parameters.break_glass_min_justification:
        errors["justification"] = "reveal.justification_short"
    if len(justification) > MAX_JUSTIFICATION:
        errors["justification"] = "form.too_long"
    stepped = user if errors else step_up_if_needed(request, user, runtime, form.text("code"), errors)
    if errors:
        return detail_page(request, stepped, runtime, request_id, errors=errors, status=422)
    workdir = Path(tempfile.mkdtemp(prefix="tarcza-console-export-"))
    out = workdir / f"{request_id}.zip"
    try:
        runtime.gdpr.export(stepped.principal, request_id, out, include_recordings=form.text("recordings") == "1",
                            justification=justification or None)
    except ConflictError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        return detail_page(request, stepped, runtime, request_id, errors=FormErrors(form="requests.state"),
                           values={"conflict": exc.detail}, status=409)
    except PermissionDeniedError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        return detail_page(request, stepped, runtime, request_id, errors=FormErrors(form="reveal.refused"),
                           values={"rule": exc.extra.get("rule", "role")}, status=403)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return FileResponse(out, media_type="application/zip", filename=out.name, headers=dict(NO_STORE),
                        background=BackgroundTask(shutil.rmtree, workdir, ignore_errors=True))


# -- erasure: the decision, then the confirmed execution --------------------------------------------------


def _erasure_page(request: Request, user: ConsoleUser, runtime: Runtime, request_id: str, *,
                  errors: FormErrors | None = None, status: int = 200) -> HTMLResponse:
    _require(user)
    item = runtime.gdpr.get(user.principal, _request_id(request_id))
    assessment = runtime.gdpr.assess_erasure(user.principal, item["subject"])
    return render(request, "erase.html", user=user, status=status, errors=errors or FormErrors(), item=item,
                  assessment=assessment, outcome=None, fresh=user.second_factor_fresh(),
                  fresh_until=user.second_factor_fresh_until(), can_override=user.has_role(Role.DPO),
                  min_justification=runtime.authorizer.parameters.break_glass_min_justification)


@router.get("/requests/{request_id}/erase", response_class=HTMLResponse)
def erasure_decision(request: Request, request_id: str, user: User, runtime: RuntimeDep) -> HTMLResponse:
    return _erasure_page(request, user, runtime, request_id)


@router.post("/requests/{request_id}/erase", response_class=HTMLResponse)
def erase(request: Request, request_id: str, user: User, form: PostedForm, runtime: RuntimeDep) -> HTMLResponse:
    """Execute an erasure through the erasure decision, after a fresh second factor (a code when needed)."""
    _require(user)
    errors = FormErrors()
    if form.text("confirm") != "1":
        errors["confirm"] = "erase.confirm_needed"
    override = form.text("override_justification")
    if len(override) > MAX_JUSTIFICATION:
        errors["override_justification"] = "form.too_long"
    stepped = user if errors else step_up_if_needed(request, user, runtime, form.text("code"), errors)
    if errors:
        return _erasure_page(request, stepped, runtime, request_id, errors=errors, status=422)
    try:
        outcome = runtime.gdpr.erase(stepped.principal, _request_id(request_id),
                                     restrict_if_refused=form.text("restrict_if_refused") == "1",
                                     override=Override(override) if override else None)
    except ConflictError as exc:
        return detail_page(request, stepped, runtime, request_id, errors=FormErrors(form="requests.state"),
                           values={"conflict": exc.detail}, status=409)
    except PermissionDeniedError:
        return _erasure_page(request, stepped, runtime, request_id, errors=FormErrors(form="reveal.refused"),
                             status=403)
    item = runtime.gdpr.get(stepped.principal, request_id)
    return render(request, "erase.html", user=stepped, errors=FormErrors(), item=item,
                  assessment=outcome.assessment, outcome=outcome)
