"""Log-in (password and TOTP or a recovery code), first-time TOTP enrolment, log-out, the language switch.

These are identity's own operations (the ones ``/v1/auth/*`` runs), so throttling, the
audit entries and the session rules are identity's; this module only turns them into
pages and the session cookie (:mod:`api.console.web`).
"""

from __future__ import annotations

import base64
import re
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import core
from api.auth import client_ip, identity_transaction
from api.console.i18n import LANGUAGE_COOKIE, LANGUAGES
from api.console.web import (
    NO_STORE,
    PREFIX,
    AnonymousForm,
    AnyUser,
    ConsoleRoute,
    FormErrors,
    PostedForm,
    clear_session_cookie,
    ensure_pre_cookie,
    redirect,
    render,
    safe_next,
    set_pre_cookie,
    set_session_cookie,
)
from api.deps import RuntimeDep
from api.runtime import Runtime
from core import migrate
from core.errors import AuthenticationError, NotFoundError, RateLimitedError
from core.logging import get_logger
from identity.errors import SecondFactorRequiredError, TotpStateError
from identity.factors import Enrolment

router = APIRouter(route_class=ConsoleRoute)
log = get_logger("tarcza.console")

_TOTP: Final = re.compile(r"\d{6}")
LANGUAGE_MAX_AGE: Final = 365 * 24 * 3600


def _split_code(code: str) -> tuple[str | None, str | None]:
    """A six-digit code is a TOTP code; anything else is tried as a recovery code."""
    compact = code.replace(" ", "")
    if not compact:
        return None, None
    return (compact, None) if _TOTP.fullmatch(compact) else (None, code)


def _status(runtime: Runtime) -> dict[str, Any]:
    """What an operator needs when log-in cannot work: the version, the database and whether the schema is current."""
    try:
        schema = migrate.current_revision(runtime.engine)
        ready = schema == migrate.head_revision()
    except Exception as exc:  # noqa: BLE001 - the page shows the state, the log has the error
        schema, ready = None, False
        log.warning("console_status_unreadable", error=type(exc).__name__)
    return {"version": core.__version__, "backend": runtime.settings.backend, "schema": schema, "ready": ready}


def _login_page(request: Request, runtime: Runtime, *, errors: FormErrors | None = None,
                values: dict[str, str] | None = None, status: int = 200, notice: str | None = None,
                retry_after: int | None = None) -> HTMLResponse:
    new_pre = ensure_pre_cookie(request)
    response = render(request, "login.html", status=status, errors=errors or FormErrors(), values=values or {},
                      next_path=safe_next(request.query_params.get("next") or (values or {}).get("next")),
                      notice=notice, retry_after=retry_after, service=_status(runtime), headers=NO_STORE)
    set_pre_cookie(request, response, new_pre)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    notice = ("login.ended" if request.query_params.get("ended") else
              "login.logged_out" if request.query_params.get("logged_out") else None)
    return _login_page(request, runtime, notice=notice)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, form: AnonymousForm, runtime: RuntimeDep) -> Response:
    errors = FormErrors()
    username = errors.require(form, "username")
    password = form.get("password", "")
    if not password:
        errors["password"] = "form.required"  # noqa: S105 - a message key, not a password
    values = {"username": username, "next": form.text("next")}
    if errors:
        return _login_page(request, runtime, errors=errors, values=values, status=422)
    totp_code, recovery_code = _split_code(form.text("code"))
    try:
        with identity_transaction(runtime) as identity:
            issued = identity.auth.login(username[:64], password[:1024], totp_code=totp_code,
                                         recovery_code=recovery_code, source_ip=client_ip(request))
    except SecondFactorRequiredError:
        errors["code"] = "login.code_needed"
        return _login_page(request, runtime, errors=errors, values=values, status=422)
    except RateLimitedError as exc:
        errors["form"] = "login.throttled"
        return _login_page(request, runtime, errors=errors, values=values, status=429,
                           retry_after=int(exc.extra.get("retry_after", 1)))
    except AuthenticationError:
        errors["form"] = "login.invalid"
        return _login_page(request, runtime, errors=errors, values=values, status=422)
    target = safe_next(form.text("next")) if issued.totp_enrolled else f"{PREFIX}/enrol"
    response = redirect(target)
    max_age = max(1, int((issued.expires_at - runtime.clock.now()).total_seconds()))
    set_session_cookie(request, response, issued.token, max_age)
    return response


@router.post("/logout")
def logout(request: Request, user: AnyUser, form: PostedForm, runtime: RuntimeDep) -> Response:  # noqa: ARG001
    with identity_transaction(runtime) as identity:
        identity.revoke_bearer(user.principal)
    response = redirect(f"{PREFIX}/login?logged_out=1")
    clear_session_cookie(request, response)
    return response


# -- first-time TOTP enrolment ------------------------------------------------------------------------


def _pending_or_new(runtime: RuntimeDep, user: AnyUser) -> Enrolment:
    """The pending enrolment (so reloading keeps the secret the app already scanned), or a new one."""
    with identity_transaction(runtime) as identity:
        account = identity.users.get(user.principal.id)
        try:
            return identity.factors.pending(account)
        except NotFoundError:
            return identity.factors.begin(account)


def _enrol_page(request: Request, user: AnyUser, enrolment: Enrolment, *, errors: FormErrors | None = None,
                status: int = 200) -> HTMLResponse:
    qr = "data:image/png;base64," + base64.b64encode(enrolment.qr_png()).decode("ascii")
    secret_groups = " ".join(enrolment.secret[i:i + 4] for i in range(0, len(enrolment.secret), 4))
    return render(request, "enrol.html", user=user, status=status, errors=errors or FormErrors(), qr=qr,
                  secret=secret_groups, headers=NO_STORE)


@router.get("/enrol", response_class=HTMLResponse)
def enrol_page(request: Request, user: AnyUser, runtime: RuntimeDep) -> Response:
    if user.enrolled:
        return redirect(PREFIX)
    try:
        enrolment = _pending_or_new(runtime, user)
    except TotpStateError:  # enrolled meanwhile (another tab): log in again with the code
        return redirect(PREFIX)
    return _enrol_page(request, user, enrolment)


@router.post("/enrol", response_class=HTMLResponse)
def enrol(request: Request, user: AnyUser, form: PostedForm, runtime: RuntimeDep) -> Response:
    if user.enrolled:
        return redirect(PREFIX)
    errors = FormErrors()
    code = errors.require(form, "code").replace(" ", "")
    if code and not _TOTP.fullmatch(code):
        errors["code"] = "enrol.code_format"
    if not errors:
        try:
            with identity_transaction(runtime) as identity:
                codes = identity.auth.confirm_enrolment(user.principal, code, source_ip=client_ip(request))
        except RateLimitedError:
            errors["code"] = "login.throttled_short"
        except AuthenticationError:
            errors["code"] = "enrol.code_wrong"
        else:
            return render(request, "recovery_codes.html", user=user, codes=codes, headers=NO_STORE)
    return _enrol_page(request, user, _pending_or_new(runtime, user), errors=errors, status=422)


# -- language ---------------------------------------------------------------------------------------


@router.get("/lang/{language}")
def set_language(request: Request, language: str) -> RedirectResponse:
    """Keep the chosen language in a cookie and go back where the switch was used."""
    response = redirect(safe_next(request.query_params.get("next")))
    if language in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, language, max_age=LANGUAGE_MAX_AGE, path=PREFIX,
                            secure=request.url.scheme == "https", samesite="strict")
    return response
