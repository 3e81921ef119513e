"""The console's plumbing: the session cookie, CSRF, forms, rendering, and errors as pages.

Session. Logging in opens an identity session (the same as ``POST /v1/auth/login``); its
``tzs_`` token is kept in the cookie :data:`SESSION_COOKIE` (``HttpOnly; SameSite=Strict;
Path=/console``, ``Secure`` over TLS) and resolved per request with identity's
``resolve_bearer``, so identity's idle and absolute timeouts, logout and account
disabling apply as they do to the API. The token never reaches a page or a URL.

CSRF. Every form carries a hidden ``csrf`` field, checked on every POST before anything
else is read: an HMAC-SHA-256 of a fixed label under the session token (which only the
browser's HttpOnly cookie holds), so it is bound to the session, needs no server state
and changes at each login. Before login the same is done under a random pre-session
cookie (:data:`PRE_COOKIE`). SameSite=Strict is a second line, not the only one.

Errors. :class:`ConsoleRoute` turns what a handler raises into a page: no session ->
the log-in page (303), a password-only session -> TOTP enrolment, a refused policy ->
403 naming the rule kind, not found -> 404, other Tarcza errors -> their status with
their detail (details never carry personal data: core/errors.py). Bad form input is not
an error: handlers render the form again with messages next to the fields (422).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import quote

import jinja2
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from api.auth import client_ip, identity_transaction
from api.console.i18n import LANGUAGE_COOKIE, Translator, choose_language
from api.deps import RuntimeDep
from api.runtime import Runtime
from core.errors import AuthenticationError, NotFoundError, PermissionDeniedError, TarczaError
from core.logging import get_logger
from identity.principal import Principal, Role
from identity.tokens import SESSION_PREFIX

log = get_logger("tarcza.console")

PREFIX: Final = "/console"
SESSION_COOKIE: Final = "tarcza_console"
PRE_COOKIE: Final = "tarcza_console_pre"
CSRF_FIELD: Final = "csrf"
NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_CSRF_LABEL: Final = b"tarcza-console-csrf-v1"
_TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
MAX_FIELD: Final = 10_000


# -- who is asking ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleUser:
    """The person behind the session cookie, with what the pages need about them."""

    principal: Principal
    username: str
    token: str = field(repr=False)
    runtime: Runtime = field(repr=False)

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)

    @property
    def enrolled(self) -> bool:
        """A second factor was verified in this session (password-only sessions may only enrol)."""
        return self.principal.second_factor_at is not None

    def can(self, action: str) -> bool:
        """Whether the policies allow ``action`` on the system now (the same decision the API asks)."""
        decision = self.runtime.authorizer.decide(self.principal, action, _system(), purpose=None,
                                                  now=self.runtime.clock.now())
        return decision.allowed

    def may_open_subjects(self) -> bool:
        """Whether the user could read some subject masked (the gate the API's subject routes ask)."""
        from api.routers.vault import could_allow
        from vault.service import Action

        return could_allow(self.runtime, self.principal, Action.READ_MASKED).allowed

    def has_role(self, role: Role) -> bool:
        return role in self.principal.roles

    def second_factor_fresh_until(self) -> datetime | None:
        at = self.principal.second_factor_at
        return None if at is None else at + self.runtime.authorizer.parameters.second_factor_max_age

    def second_factor_fresh(self) -> bool:
        until = self.second_factor_fresh_until()
        return until is not None and self.runtime.clock.now() < until


def _system() -> Any:
    from api.auth import SYSTEM_RESOURCE

    return SYSTEM_RESOURCE


class LoginRequiredError(Exception):
    """No live session: the log-in page, then back to ``next``."""

    def __init__(self, next_path: str = PREFIX, *, ended: bool = False) -> None:
        super().__init__("log in")
        self.next_path = next_path
        self.ended = ended


class EnrolmentRequiredError(Exception):
    """A password-only session: TOTP enrolment first."""


class CsrfError(Exception):
    """A POST without the session's CSRF token."""


def csrf_token(secret: str) -> str:
    mac = hmac.new(secret.encode("utf-8"), _CSRF_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def check_csrf(secret: str | None, submitted: str | None) -> None:
    if not secret or not submitted or not hmac.compare_digest(csrf_token(secret), submitted):
        raise CsrfError()


def safe_next(value: str | None) -> str:
    """``value`` if it is a path of the console, else the dashboard (no open redirects)."""
    if value and value.startswith(PREFIX) and "\\" not in value and "/.." not in value and value.isprintable() and (
            len(value) == len(PREFIX) or value[len(PREFIX)] in "/?"):
        return value
    return PREFIX


def language_of(request: Request) -> str:
    return choose_language(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))


def current_user(request: Request, runtime: RuntimeDep) -> ConsoleUser:
    """The person of the session cookie; :class:`LoginRequiredError` without a live session."""
    token = request.cookies.get(SESSION_COOKIE)
    next_path = (request.url.path + (f"?{request.url.query}" if request.url.query else "")
                 if request.method == "GET" else PREFIX)  # a form's target is no page to come back to
    if not token or not token.startswith(SESSION_PREFIX) or len(token) > 200:
        raise LoginRequiredError(safe_next(next_path))
    try:
        with identity_transaction(runtime) as identity:
            principal = identity.resolve_bearer(token, source_ip=client_ip(request))
            username = identity.users.get(principal.id).username
    except (AuthenticationError, NotFoundError):
        raise LoginRequiredError(safe_next(next_path), ended=True) from None
    return ConsoleUser(principal, username, token, runtime)


def enrolled_user(user: Annotated[ConsoleUser, Depends(current_user)]) -> ConsoleUser:
    """The current user, once their session has a verified second factor."""
    if not user.enrolled:
        raise EnrolmentRequiredError()
    return user


AnyUser = Annotated[ConsoleUser, Depends(current_user)]
User = Annotated[ConsoleUser, Depends(enrolled_user)]


# -- forms --------------------------------------------------------------------------------------------


class Form(dict[str, str]):
    """A submitted form's text fields: ``form[name]`` is the first value, :meth:`all` every one."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        self.multi: dict[str, list[str]] = {}
        for key, value in items:
            self.setdefault(key, value)
            self.multi.setdefault(key, []).append(value)

    def text(self, name: str) -> str:
        return self.get(name, "").strip()

    def all(self, name: str) -> list[str]:
        return list(self.multi.get(name, ()))


async def _read_form(request: Request) -> Form:
    data = await request.form(max_files=0, max_fields=200)
    return Form((key, value[:MAX_FIELD]) for key, value in data.multi_items() if isinstance(value, str))


async def posted_form(request: Request, user: AnyUser) -> Form:
    """The form of a POST by a logged-in user, after its CSRF token is checked."""
    form = await _read_form(request)
    check_csrf(user.token, form.get(CSRF_FIELD))
    return form


async def anonymous_form(request: Request) -> Form:
    """The form of a POST made before login (the log-in form), checked against the pre-session cookie."""
    form = await _read_form(request)
    check_csrf(request.cookies.get(PRE_COOKIE), form.get(CSRF_FIELD))
    return form


PostedForm = Annotated[Form, Depends(posted_form)]
AnonymousForm = Annotated[Form, Depends(anonymous_form)]


class FormErrors(dict[str, str]):
    """Field name -> message key of what is wrong with it (translated when rendered)."""

    def require(self, form: Mapping[str, str], name: str, key: str = "form.required") -> str:
        value = form.get(name, "").strip()
        if not value:
            self[name] = key
        return value


def parse_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse_datetime(value: str) -> datetime | None:
    """A ``datetime-local`` value (or ISO 8601 text), read as UTC when it names no offset."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# -- rendering ----------------------------------------------------------------------------------------


def _when(value: Any) -> str:
    """A time as ``2026-11-23 10:05 UTC`` (an ISO string, a datetime or None)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["urlpart"] = lambda value: quote(str(value), safe="")
    return env


TEMPLATES: Final = _environment()


def render(request: Request, template: str, *, user: ConsoleUser | None = None, status: int = 200,
           headers: Mapping[str, str] | None = None, **context: Any) -> HTMLResponse:
    """A page: ``template`` with the translator, the user, the CSRF token and the navigation."""
    language = language_of(request)
    t = Translator(language)
    csrf = user.csrf if user is not None else csrf_token(request.cookies.get(PRE_COOKIE) or "")
    html = TEMPLATES.get_template(template).render(
        t=t, lang=language, user=user, csrf=csrf, csrf_field=CSRF_FIELD, path=request.url.path,
        lang_next=(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        if request.method == "GET" else PREFIX,
        nav=navigation(user), prefix=PREFIX, errors=context.pop("errors", FormErrors()),
        values=context.pop("values", {}), **context)
    return HTMLResponse(html, status_code=status, headers=dict(headers or {}))


def navigation(user: ConsoleUser | None) -> list[dict[str, str]]:
    """The main menu, showing what the user's roles may open."""
    if user is None or not user.enrolled:
        return []
    items = [{"href": PREFIX, "key": "nav.dashboard"}]
    if user.may_open_subjects():
        items.append({"href": f"{PREFIX}/subjects", "key": "nav.subjects"})
    if user.can("gdpr.manage"):
        items.append({"href": f"{PREFIX}/requests", "key": "nav.requests"})
        items.append({"href": f"{PREFIX}/registers", "key": "nav.registers"})
    if user.can("audit.read"):
        items.append({"href": f"{PREFIX}/audit", "key": "nav.audit"})
    if user.can("gdpr.manage"):
        items.append({"href": f"{PREFIX}/retention", "key": "nav.retention"})
        items.append({"href": f"{PREFIX}/ropa", "key": "nav.ropa"})
        items.append({"href": f"{PREFIX}/breach", "key": "nav.breach"})
    return items


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def set_session_cookie(request: Request, response: Response, token: str, max_age: int) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path=PREFIX, httponly=True,
                        secure=request.url.scheme == "https", samesite="strict")


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=PREFIX, httponly=True, secure=request.url.scheme == "https",
                           samesite="strict")


def ensure_pre_cookie(request: Request) -> str | None:
    """Give a visitor without one the random cookie the log-in form's CSRF token is bound to.

    Call before rendering (the page's token is made from it); returns the new value to set
    with :func:`set_pre_cookie`, or None when the browser already has one.
    """
    if request.cookies.get(PRE_COOKIE):
        return None
    value = secrets.token_urlsafe(32)
    request.cookies[PRE_COOKIE] = value
    return value


def set_pre_cookie(request: Request, response: Response, value: str | None) -> None:
    if value is not None:
        response.set_cookie(PRE_COOKIE, value, path=PREFIX, httponly=True, secure=request.url.scheme == "https",
                            samesite="strict")


# -- errors as pages ----------------------------------------------------------------------------------


def error_page(request: Request, status: int, key: str, *, user: ConsoleUser | None = None,
               detail: str | None = None, rule: str | None = None) -> HTMLResponse:
    return render(request, "error.html", user=user, status=status, message_key=key, detail=detail, rule=rule,
                  headers=NO_STORE)


class ConsoleRoute(APIRoute):
    """A console route: what its handler raises becomes a page (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequiredError as exc:
                target = f"{PREFIX}/login?next={quote(exc.next_path, safe='')}" + ("&ended=1" if exc.ended else "")
                response = redirect(target)
                if exc.ended:
                    clear_session_cookie(request, response)
                return response
            except EnrolmentRequiredError:
                return redirect(f"{PREFIX}/enrol")
            except CsrfError:
                return error_page(request, 403, "error.csrf")
            except PermissionDeniedError as exc:
                return error_page(request, 403, "error.forbidden", rule=str(exc.extra.get("rule", "role")))
            except NotFoundError:
                return error_page(request, 404, "error.not_found")
            except RequestValidationError:
                return error_page(request, 404, "error.not_found")
            except TarczaError as exc:
                if exc.status >= 500:
                    log.error("console_failed", error=type(exc).__name__, code=exc.code)
                return error_page(request, exc.status, "error.other", detail=exc.detail)

        return route
