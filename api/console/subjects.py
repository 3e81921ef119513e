"""The subject page: masked data, reveal with a purpose (step-up), contacts, recordings, requests, holds.

Masked everywhere. The page reads the subject through the vault's masked view (itself a
``vault.access`` entry, ``view: masked``) and shows every value masked: where a role's
entry in ``policies/fields.yaml`` is ``none`` (the role may see the field in clear without
a reveal), the console still applies the field's own mask, so a value in clear appears
only in the answer to a reveal.

Reveal. The form names fields, a purpose and, for a compliance officer, the break-glass
justification; when the session's second factor is older than the policies allow, a TOTP
(or recovery) code is asked for inline and verified as step-up (identity's
``step_up``) first. The values come from :meth:`vault.service.VaultService.reveal`,
which appends the ``vault.access`` entry before it decrypts; the answer page shows them
once, with the index of that entry, and is never cached (``no-store``). Playback of a
recording works the same way and streams through a short-lived grant bound to the session.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Final

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, Response

from api.auth import client_ip, identity_transaction
from api.console.web import (
    NO_STORE,
    PREFIX,
    ConsoleRoute,
    ConsoleUser,
    Form,
    FormErrors,
    PostedForm,
    User,
    parse_date,
    redirect,
    render,
)
from api.deps import RuntimeDep
from api.routers.vault import playback_response
from api.runtime import Runtime
from audit.repository import EntryFilter
from core.errors import AuthenticationError, InvalidInputError, NotFoundError, PermissionDeniedError, RateLimitedError
from identity.principal import Role
from vault.masking import mask
from vault.service import Action, SubjectShreddedError
from vault.tokens import RECORDING_PREFIX, SUBJECT_PREFIX, is_token

from .state import grant_playback, playback_grant

router = APIRouter(route_class=ConsoleRoute)

HISTORY_PAGE: Final = 50
_CODE: Final = re.compile(r"^[a-z][a-z0-9_:;.,/-]{0,199}$")
_CASE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,63}$")
_TOTP: Final = re.compile(r"^\d{6}$")


# -- finding a subject ----------------------------------------------------------------------------------


def _find_page(request: Request, user: ConsoleUser, runtime: Runtime, *, errors: FormErrors | None = None,
               values: dict[str, str] | None = None, results: list[str] | None = None,
               status: int = 200) -> HTMLResponse:
    return render(request, "subjects.html", user=user, status=status, errors=errors or FormErrors(),
                  values=values or {}, results=results, purposes=_purposes(runtime),
                  search_fields=runtime.vault.catalogue.blind_indexed(), headers=NO_STORE)


@router.get("/subjects", response_class=HTMLResponse)
def find_subject(request: Request, user: User, runtime: RuntimeDep) -> Response:
    token = request.query_params.get("token")
    if token is None:
        return _find_page(request, user, runtime)
    token = token.strip()
    if is_token(token, SUBJECT_PREFIX):
        return redirect(f"{PREFIX}/subjects/{token}")
    errors = FormErrors(token="form.required" if not token else "subjects.token_format")
    return _find_page(request, user, runtime, errors=errors, values={"token": token[:64]}, status=422)


@router.post("/subjects/search", response_class=HTMLResponse)
def search_subjects(request: Request, user: User, form: PostedForm, runtime: RuntimeDep) -> HTMLResponse:
    """Find subjects by an exact value (blind index); the value is neither shown again nor put in a URL."""
    page_gate(runtime, user, Action.SEARCH, "", purpose=True)
    errors = FormErrors()
    field = errors.require(form, "field")
    if field and field not in runtime.vault.catalogue.blind_indexed():
        errors["field"] = "form.choose"
    value = errors.require(form, "value")
    purpose = errors.require(form, "purpose", "form.choose")
    if purpose and purpose not in runtime.authorizer.purposes:
        errors["purpose"] = "form.choose"
    values = {"field": field, "purpose": purpose}
    if not errors:
        try:
            results = runtime.vault.search(user.principal, field, value, purpose)
        except InvalidInputError:
            errors["value"] = "subjects.value_invalid"
        else:
            return _find_page(request, user, runtime, values=values, results=results)
    return _find_page(request, user, runtime, errors=errors, values=values, status=422)


# -- the subject page -----------------------------------------------------------------------------------


def _purposes(runtime: Runtime) -> list[tuple[str, str]]:
    return sorted(runtime.authorizer.parameters.purposes.items())


def console_masked(runtime: Runtime, user: ConsoleUser, fields: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    """The masked view as the console shows it: a field the role may see in clear gets the field's own mask."""
    catalogue = runtime.vault.catalogue
    role = user.principal.primary_role
    out: list[tuple[str, list[str]]] = []
    for name, shown in fields.items():
        if catalogue.mask_strategy(name, role) == "none":
            shown = [mask(catalogue.get(name).mask, value) for value in shown]
        out.append((name, shown))
    return out


def subject_page(request: Request, user: ConsoleUser, runtime: Runtime, token: str, *,
                 errors: FormErrors | None = None, values: dict[str, Any] | None = None,
                 status: int = 200, notice: str | None = None) -> HTMLResponse:
    if not is_token(token, SUBJECT_PREFIX):
        raise NotFoundError("no such subject")
    principal = user.principal
    shredded = False
    fields: list[tuple[str, list[str]]] = []
    try:
        fields = console_masked(runtime, user, runtime.vault.masked_view(principal, token))
    except SubjectShreddedError:
        shredded = True
    context: dict[str, Any] = {"token": token, "shredded": shredded, "fields": fields}
    if not shredded:
        context["history"], context["history_next"] = runtime.contacts.history(principal, token, limit=HISTORY_PAGE)
        context["debts"] = [d.to_json(runtime.clock.now().date()) for d in runtime.contacts.debts.of(principal, token)]
        context["recordings"] = runtime.vault.recordings_of(token).get(token, [])
        context["rules"] = runtime.contacts.subject_rules.state_for(principal, token)
    gdpr = user.can("gdpr.manage")
    if gdpr:
        context["requests"], _ = runtime.gdpr.requests(principal, view="all", subject=token, limit=100)
        context["holds"] = runtime.gdpr.holds_of(principal, token)
        if not shredded:
            context["assessment"] = runtime.gdpr.assess_erasure(principal, token)
    return render(request, "subject.html", user=user, status=status, errors=errors or FormErrors(),
                  values=values or {}, gdpr=gdpr, purposes=_purposes(runtime), notice=notice,
                  break_glass=break_glass_only(user), can_reveal=_can_reveal(user),
                  fresh_until=user.second_factor_fresh_until(), fresh=user.second_factor_fresh(),
                  min_justification=runtime.authorizer.parameters.break_glass_min_justification,
                  headers=NO_STORE, **context)


@router.get("/subjects/{token}", response_class=HTMLResponse)
def show_subject(request: Request, token: str, user: User, runtime: RuntimeDep) -> HTMLResponse:
    return subject_page(request, user, runtime, token, notice=request.query_params.get("notice"))


def _can_reveal(user: ConsoleUser) -> bool:
    """Whether the user has a role the reveal policies name (a subject-level rule may still refuse)."""
    return bool(user.principal.roles & {Role.DPO, Role.COMPLIANCE_OFFICER, Role.COLLECTOR, Role.FIELD_AGENT})


def break_glass_only(user: ConsoleUser) -> bool:
    """A compliance officer reveals only by break-glass (a written justification), unless another role permits."""
    roles = user.principal.roles
    return Role.COMPLIANCE_OFFICER in roles and not roles & {Role.DPO, Role.COLLECTOR, Role.FIELD_AGENT}


# -- step-up --------------------------------------------------------------------------------------------


def _code_needed(user: ConsoleUser, form: Form, errors: FormErrors, field: str = "code") -> None:
    """A code is required when the session's second factor is no longer fresh enough to reveal."""
    if not form.text(field) and not user.second_factor_fresh():
        errors[field] = "reveal.code_needed"


def step_up_if_needed(request: Request, user: ConsoleUser, runtime: Runtime, code: str,
                      errors: FormErrors, field: str = "code") -> ConsoleUser:
    """The user with a fresh second factor: the session's if still fresh and no code was given, else a step-up."""
    compact = code.replace(" ", "")
    if not compact:
        if not user.second_factor_fresh():
            errors[field] = "reveal.code_needed"
        return user
    totp, recovery = (compact, None) if _TOTP.fullmatch(compact) else (None, code)
    try:
        with identity_transaction(runtime) as identity:
            at = identity.auth.step_up(user.principal, totp_code=totp, recovery_code=recovery,
                                       source_ip=client_ip(request))
    except RateLimitedError:
        errors[field] = "login.throttled_short"
        return user
    except AuthenticationError:
        errors[field] = "reveal.code_wrong"
        return user
    return replace(user, principal=replace(user.principal, second_factor_at=at))


# -- reveal ---------------------------------------------------------------------------------------------


def page_gate(runtime: Runtime, user: ConsoleUser, action: str, token: str, *, purpose: bool = False,
              justification: bool = False, recording_id: str | None = None) -> None:
    """The page's gate (the vault's, as the API's routes ask it): could the user be allowed ``action`` on some
    subject once they step up (the form asks for a code inline)? A refusal is recorded by the gate, then raised."""
    decision = runtime.vault.gate.check_route(user.principal, action, purpose=purpose, justification=justification,
                                              token=token, recording_id=recording_id, after_step_up=True)
    if not decision.allowed:
        raise PermissionDeniedError(f"{action} refused by a {decision.rule} rule", rule=decision.rule)


@router.post("/subjects/{token}/reveal", response_class=HTMLResponse)
def reveal(request: Request, token: str, user: User, form: PostedForm, runtime: RuntimeDep) -> HTMLResponse:
    if not is_token(token, SUBJECT_PREFIX):
        raise NotFoundError("no such subject")
    page_gate(runtime, user, Action.REVEAL, token, purpose=True, justification=True)
    errors = FormErrors()
    catalogue = runtime.vault.catalogue
    chosen = [f for f in form.all("fields") if f in catalogue.names()]
    if not chosen or len(chosen) != len(form.all("fields")):
        errors["fields"] = "reveal.fields_needed"
    purpose = errors.require(form, "purpose", "form.choose")
    if purpose and purpose not in runtime.authorizer.purposes:
        errors["purpose"] = "form.choose"
    justification = form.text("justification")
    minimum = runtime.authorizer.parameters.break_glass_min_justification
    if break_glass_only(user) and len(justification) < minimum:
        errors["justification"] = "reveal.justification_short"
    if len(justification) > 2000:
        errors["justification"] = "form.too_long"
    _code_needed(user, form, errors)
    values = {"fields": chosen, "purpose": purpose, "justification": justification}
    if errors:
        return subject_page(request, user, runtime, token, errors=errors, values=values, status=422)
    stepped = step_up_if_needed(request, user, runtime, form.text("code"), errors)
    if errors:
        return subject_page(request, stepped, runtime, token, errors=errors, values=values, status=422)
    size_before = runtime.audit.size()
    try:
        revealed = runtime.vault.reveal(stepped.principal, token, chosen, purpose, justification or None)
    except PermissionDeniedError as exc:
        errors["form"] = "reveal.refused"
        return subject_page(request, stepped, runtime, token, errors=errors, values={**values, "rule": exc.extra.get(
            "rule", "role")}, status=403)
    entry = _access_entry(runtime, stepped, token, size_before)
    return render(request, "reveal.html", user=stepped, token=token, revealed=list(revealed.items()),
                  purpose=purpose, entry=entry, headers=NO_STORE)


def _access_entry(runtime: Runtime, user: ConsoleUser, token: str, size_before: int) -> int | None:
    """The index of the ``vault.access`` entry of the reveal just made (appended before any value was opened)."""
    page = runtime.audit.query(EntryFilter(subject=token, event_type="vault.access", actor=user.principal.id,
                                           start=max(0, size_before - 1)), limit=50)
    found = [e.index for e in page.items if e.event["payload"].get("view") == "full"
             and e.event["payload"].get("decision") == "allow"]
    return found[-1] if found else None


# -- recordings -----------------------------------------------------------------------------------------


def _recording(runtime: Runtime, user: ConsoleUser, token: str, recording_id: str) -> Any:
    """The recording's facts, decided and recorded by the vault's gate as a masked read of the subject."""
    if not is_token(token, SUBJECT_PREFIX) or not is_token(recording_id, RECORDING_PREFIX):
        raise NotFoundError("no such recording")
    return runtime.vault.recording_facts(user.principal, token, recording_id)


def _play_page(request: Request, user: ConsoleUser, runtime: Runtime, token: str, recording_id: str, *,
               errors: FormErrors | None = None, values: dict[str, str] | None = None, status: int = 200,
               grant: str | None = None, rule: str | None = None) -> HTMLResponse:
    info = _recording(runtime, user, token, recording_id)
    return render(request, "play.html", user=user, status=status, errors=errors or FormErrors(), values=values or {},
                  token=token, info=info, purposes=_purposes(runtime), grant=grant, rule=rule,
                  fresh=user.second_factor_fresh(), fresh_until=user.second_factor_fresh_until(), headers=NO_STORE)


@router.get("/subjects/{token}/recordings/{recording_id}", response_class=HTMLResponse)
def play_form(request: Request, token: str, recording_id: str, user: User, runtime: RuntimeDep) -> HTMLResponse:
    return _play_page(request, user, runtime, token, recording_id)


@router.post("/subjects/{token}/recordings/{recording_id}", response_class=HTMLResponse)
def play(request: Request, token: str, recording_id: str, user: User, form: PostedForm,
         runtime: RuntimeDep) -> HTMLResponse:
    """Decide playback (purpose, step-up) through the vault's gate, then answer a page whose player streams
    through a grant. A refusal (recorded by the gate) is an error page: it shows nothing of the recording."""
    if not is_token(token, SUBJECT_PREFIX) or not is_token(recording_id, RECORDING_PREFIX):
        raise NotFoundError("no such recording")
    page_gate(runtime, user, Action.PLAY_RECORDING, token, purpose=True, recording_id=recording_id)
    errors = FormErrors()
    purpose = errors.require(form, "purpose", "form.choose")
    if purpose and purpose not in runtime.authorizer.purposes:
        errors["purpose"] = "form.choose"
    _code_needed(user, form, errors)
    values = {"purpose": purpose}
    if not errors:
        user = step_up_if_needed(request, user, runtime, form.text("code"), errors)
    if errors:
        return _play_page(request, user, runtime, token, recording_id, errors=errors, values=values, status=422)
    runtime.vault.gate.require(user.principal, Action.PLAY_RECORDING, token, purpose=purpose, fields=[],
                               recording_id=recording_id)
    grant = grant_playback(runtime, user.principal.session_id or "", token, recording_id, purpose)
    return _play_page(request, user, runtime, token, recording_id, values=values, grant=grant)


@router.get("/subjects/{token}/recordings/{recording_id}/media")
def media(token: str, recording_id: str, user: User, runtime: RuntimeDep, grant: str = "",
          range_header: str | None = Header(None, alias="range", max_length=100)) -> Response:
    """The recording's bytes (one ``Range`` honoured), each request decided and logged by the gate before it
    decrypts (and before the range is weighed against the size)."""
    found = playback_grant(runtime, grant, user.principal.session_id)
    if found is None or (found.subject, found.recording_id) != (token, recording_id):
        raise PermissionDeniedError("no playback grant", rule="second_factor")
    return playback_response(runtime.vault.play(user.principal, token, recording_id, found.purpose,
                                                range_header=range_header))


# -- legal holds ----------------------------------------------------------------------------------------


def hold_errors(form: Form) -> tuple[FormErrors, dict[str, str]]:
    errors = FormErrors()
    reason = errors.require(form, "hold_reason")
    if reason and not _CODE.fullmatch(reason):
        errors["hold_reason"] = "form.code_format"
    starts = errors.require(form, "hold_starts_on")
    if starts and parse_date(starts) is None:
        errors["hold_starts_on"] = "form.date_format"
    ends = form.text("hold_ends_on")
    if ends and parse_date(ends) is None:
        errors["hold_ends_on"] = "form.date_format"
    start_day, end_day = parse_date(starts), parse_date(ends)
    if start_day and end_day and end_day < start_day:
        errors["hold_ends_on"] = "holds.ends_before_start"
    case_id = form.text("hold_case_id")
    if case_id and not _CASE.fullmatch(case_id):
        errors["hold_case_id"] = "form.id_format"
    return errors, {"hold_reason": reason, "hold_starts_on": starts, "hold_ends_on": ends, "hold_case_id": case_id}


@router.post("/subjects/{token}/holds", response_class=HTMLResponse)
def add_hold(request: Request, token: str, user: User, form: PostedForm, runtime: RuntimeDep) -> Response:
    if not user.can("gdpr.manage"):
        raise PermissionDeniedError("gdpr.manage refused", rule="role")
    errors, values = hold_errors(form)
    if errors:
        return subject_page(request, user, runtime, token, errors=errors, values=values, status=422)
    starts, ends = parse_date(values["hold_starts_on"]), parse_date(values["hold_ends_on"])
    assert starts is not None  # noqa: S101 - checked above
    runtime.gdpr.add_hold(user.principal, token, values["hold_reason"], starts, ends, values["hold_case_id"] or None)
    return redirect(f"{PREFIX}/subjects/{token}?notice=hold_added#holds")


@router.post("/subjects/{token}/holds/{hold_id}/release")
def release_hold(token: str, hold_id: str, user: User, form: PostedForm, runtime: RuntimeDep) -> Response:  # noqa: ARG001
    runtime.gdpr.release_hold(user.principal, hold_id[:40])  # idempotent
    return redirect(f"{PREFIX}/subjects/{token}?notice=hold_released#holds")
