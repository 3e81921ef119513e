"""Transport security: response headers, request size limits, rate limits and TLS.

Everything here sits in front of the routers (docs/adr/0011-transport-security.md):

- :class:`SecurityHeaders` adds the security headers to every response (HSTS over HTTPS)
  and ``Cache-Control: no-store`` to every response under ``/v1`` and ``/console``.
- :class:`BodyLimit` refuses a body larger than its route's limit with a 413 problem: at
  once from ``Content-Length``, or as soon as a streamed (chunked) body passes the limit.
- :class:`RateLimits` counts requests per client address (every request, stricter on the
  credential endpoints; :class:`AddressRateLimit`) and per authenticated principal (after
  the credential resolves, in :mod:`api.auth`), with the ``limits`` library in memory.
- :func:`server_tls` checks and loads the certificate, key and client CA of ``tarcza
  serve``; :class:`TlsHttpProtocol` hands the connection's TLS facts, the client
  certificate among them, to the app as the ASGI ``tls`` extension.

Invariants: a refused request is answered before its body is read; a limit check costs
one in-memory counter update; nothing here logs a secret (certificates are named by their
SHA-256, never by their bytes).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import math
import re
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

try:  # httptools (uvicorn[standard]) parses faster than h11; uvicorn itself prefers it when present
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpProtocol
except ImportError:  # pragma: no cover - httptools is a dependency
    from uvicorn.protocols.http.h11_impl import H11Protocol as _HttpProtocol  # type: ignore[assignment]

from api.errors import problem_response
from core.errors import ConfigurationError, RateLimitedError
from core.logging import get_logger

if TYPE_CHECKING:
    from limits import RateLimitItem
    from limits.strategies import FixedWindowRateLimiter

    from core.settings import Settings

log = get_logger("tarcza.http")

# -- headers ----------------------------------------------------------------------------------------

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
"""Every page but the API docs: no inline script or style, nothing from another origin."""

PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), browsing-topics=(), camera=(), display-capture=(), geolocation=(), "
    "gyroscope=(), magnetometer=(), microphone=(), midi=(), payment=(), usb=()"
)
HSTS = "max-age=31536000"
"""One year, without includeSubDomains: Tarcza does not know what else lives under its domain."""

_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = tuple((k.encode(), v.encode()) for k, v in (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("permissions-policy", PERMISSIONS_POLICY),
    ("content-security-policy", CONTENT_SECURITY_POLICY),
))
_HSTS_HEADER = (b"strict-transport-security", HSTS.encode())
_NO_STORE_HEADERS = ((b"cache-control", b"no-store"), (b"pragma", b"no-cache"))
_CACHE_HEADER_NAMES = frozenset(name for name, _ in _NO_STORE_HEADERS)
PRIVATE_PREFIXES = ("/v1", "/console")
"""Paths whose answers may carry personal data: never stored by a browser or a proxy."""


def is_private_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PRIVATE_PREFIXES)


class SecurityHeaders:
    """ASGI middleware: the security headers on every response, ``no-store`` on private paths.

    A header the response already has is kept (the API docs pages set their own CSP),
    except the cache headers of a private path, which are always ``no-store``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = is_private_path(scope["path"])
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if private:
                    headers = [(k, v) for k, v in headers if k.lower() not in _CACHE_HEADER_NAMES]
                    headers.extend(_NO_STORE_HEADERS)
                present = {k.lower() for k, _ in headers}
                headers.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
                if https and _HSTS_HEADER[0] not in present:
                    headers.append(_HSTS_HEADER)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


DOCS_CDN = "https://cdn.jsdelivr.net"


def docs_page(page: HTMLResponse) -> HTMLResponse:
    """FastAPI's Swagger UI or ReDoc page with a CSP of its own.

    The pages load their scripts and styles from a CDN and start with one inline script;
    their CSP allows that CDN, that inline script by its SHA-256 (nothing else inline),
    inline styles (both UIs set styles at run time), Google Fonts for ReDoc and
    ``blob:`` workers for ReDoc's search. They hold no personal data.
    """
    body = bytes(page.body)
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in re.findall(rb"<script>(.*?)</script>", body, re.DOTALL)
    )
    policy = (
        f"default-src 'none'; script-src {DOCS_CDN} {hashes}; "
        f"style-src 'self' 'unsafe-inline' {DOCS_CDN} https://fonts.googleapis.com; "
        f"font-src {DOCS_CDN} https://fonts.gstatic.com; img-src 'self' data: {DOCS_CDN} https://fastapi.tiangolo.com; "
        "connect-src 'self'; worker-src blob:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    )
    return HTMLResponse(body, headers={"Content-Security-Policy": policy})


# -- request size ---------------------------------------------------------------------------------


class BodyTooLargeError(StarletteHTTPException):
    """A request body over its route's limit (an HTTPException, so FastAPI's body parsing passes it on)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body may hold at most {limit} bytes")
        self.limit = limit

    def problem(self) -> dict[str, Any]:
        return {"type": "urn:tarcza:problem:content-too-large", "title": "Content too large", "status": 413,
                "detail": str(self.detail), "limit_bytes": self.limit}


async def body_too_large_handler(request: Request, exc: Exception) -> Response:
    """Exception handler: :class:`BodyTooLargeError` as a 413 problem."""
    if not isinstance(exc, BodyTooLargeError):  # pragma: no cover - registered for this type only
        raise exc
    return problem_response(request, exc.problem())


@dataclass(frozen=True)
class BodyRoute:
    """A route with a body limit of its own (uploads), matched on method and path."""

    method: str
    path: re.Pattern[str]
    limit: int


def body_routes(settings: Settings) -> tuple[BodyRoute, ...]:
    """The upload routes and their limits; every other request has ``TARCZA_MAX_BODY_BYTES``."""
    return (
        BodyRoute("POST", re.compile(r"^/v1/subjects/[^/]+/recordings$"), settings.max_recording_bytes),
        BodyRoute("POST", re.compile(r"^/v1/audit/verify-export$"), settings.max_upload_bytes),
    )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """ASGI middleware: 413 for a body over the limit, before the body is read whole.

    A declared ``Content-Length`` over the limit is refused without calling the app (not
    one byte of the body is read). Otherwise the bytes are counted as the app receives
    them, and the receive that passes the limit raises :class:`BodyTooLargeError`.
    """

    def __init__(self, app: ASGIApp, *, default: int, routes: Sequence[BodyRoute] = ()) -> None:
        self.app = app
        self.default = default
        self.routes = tuple(routes)

    def limit_for(self, method: str, path: str) -> int:
        for route in self.routes:
            if route.method == method and route.path.match(path):
                return route.limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            log.warning("request_too_large", declared=declared, limit=limit)
            await problem_response(Request(scope), BodyTooLargeError(limit).problem())(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    log.warning("request_too_large", received=received, limit=limit)
                    raise BodyTooLargeError(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLargeError as exc:  # raised where no exception handler saw it
            if started:
                raise
            await problem_response(Request(scope), exc.problem())(scope, receive, send)


# -- rate limits ----------------------------------------------------------------------------------

CREDENTIAL_PATHS = frozenset({"/v1/auth/login", "/v1/oauth/token", "/v1/auth/step-up", "/v1/auth/totp/confirm",
                              "/console/login", "/console/enrol"})
"""POSTs that check a password, client secret or code: the stricter per-address login limit."""
_CREDENTIAL_PATTERN = re.compile(r"^/console/subjects/[^/]+/(?:reveal|recordings/[^/]+)$")
"""Console POSTs that may carry a second-factor code (a reveal or a playback with an inline step-up)."""


def is_credential_path(path: str) -> bool:
    return path in CREDENTIAL_PATHS or _CREDENTIAL_PATTERN.match(path) is not None


class TooManyRequestsError(RateLimitedError):
    """A rate limit is used up: 429 with ``Retry-After`` and ``RateLimit-*`` headers."""

    title = "Too many requests"

    def __init__(self, what: str, item: RateLimitItem, retry_after: int) -> None:
        per = f"{item.multiples} {item.GRANULARITY.name}" if item.multiples != 1 else item.GRANULARITY.name
        super().__init__(f"more than {item.amount} requests per {per} {what}; retry in {retry_after} s",
                         limit=f"{item.amount}/{per}", retry_after=retry_after)
        self.headers = {"Retry-After": str(retry_after), "RateLimit-Limit": str(item.amount),
                        "RateLimit-Remaining": "0", "RateLimit-Reset": str(retry_after)}


def _parse(spec: str) -> tuple[RateLimitItem, ...]:
    if not spec:
        return ()
    from limits import parse_many

    return tuple(parse_many(spec))


@dataclass
class RateLimits:
    """Fixed-window counters in this process's memory (``limits``), for three kinds of key.

    ``client``: per authenticated user or API client id; ``address``: per client address,
    every request; ``login``: per client address, the credential endpoints only. An empty
    spec disables that kind. Windows start at a key's first request and last the period of
    the limit (so ``60/minute`` lets 60 through, then refuses until that minute is over).
    """

    client: tuple[RateLimitItem, ...] = ()
    address: tuple[RateLimitItem, ...] = ()
    login: tuple[RateLimitItem, ...] = ()
    _limiter: FixedWindowRateLimiter | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.client or self.address or self.login:
            from limits.storage import MemoryStorage
            from limits.strategies import FixedWindowRateLimiter

            self._limiter = FixedWindowRateLimiter(MemoryStorage())

    @classmethod
    def from_specs(cls, *, client: str = "", address: str = "", login: str = "") -> RateLimits:
        return cls(_parse(client), _parse(address), _parse(login))

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls.from_specs(client=settings.rate_limit_client, address=settings.rate_limit_address,
                              login=settings.rate_limit_login)

    def _hit(self, kind: str, items: Iterable[RateLimitItem], key: str, what: str) -> None:
        limiter = self._limiter
        if limiter is None:  # pragma: no cover - items exist only with a limiter
            return
        for item in items:
            if not limiter.hit(item, kind, key):
                reset = limiter.get_window_stats(item, kind, key).reset_time
                retry_after = max(1, math.ceil(reset - time.time()))
                log.warning("rate_limited", limit_kind=kind, key=key, limit=str(item), retry_after=retry_after)
                raise TooManyRequestsError(what, item, retry_after)

    def check_address(self, address: str, method: str, path: str) -> None:
        """Count a request from ``address``; :class:`TooManyRequestsError` when a limit is used up."""
        if self.address:
            self._hit("address", self.address, address, "from one address")
        if self.login and method == "POST" and is_credential_path(path):
            self._hit("login", self.login, address, "to the credential endpoints from one address")

    def check_principal(self, principal_id: str) -> None:
        """Count a request of an authenticated user or client; :class:`TooManyRequestsError` when used up."""
        if self.client:
            self._hit("client", self.client, principal_id, "for one user or client")


class AddressRateLimit:
    """ASGI middleware: the per-address limits, checked before anything else reads the request."""

    def __init__(self, app: ASGIApp, *, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            try:
                self.limits.check_address(client[0] if client else "unknown", scope["method"], scope["path"])
            except TooManyRequestsError as exc:
                response = problem_response(Request(scope), exc.problem(), headers=exc.headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# -- TLS ------------------------------------------------------------------------------------------

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> dict[str, Any]:
    """The ASGI ``tls`` extension of a connection: TLS version and the client certificate, if any.

    Python's ``ssl`` gives the peer's leaf certificate only, so ``client_cert_chain`` holds
    that one (PEM); the server certificate and the cipher suite number are not known (None).
    """
    from cryptography import x509

    der = ssl_object.getpeercert(binary_form=True)
    name = x509.load_der_x509_certificate(der).subject.rfc4514_string() if der else None
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": name,
        "client_cert_error": None,  # a certificate the CA does not vouch for fails the handshake
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


def presented_certificate_sha256(scope: Scope) -> str | None:
    """SHA-256 (hex) of the DER client certificate the connection presented, from the ``tls`` extension."""
    tls = (scope.get("extensions") or {}).get("tls")
    chain = tls.get("client_cert_chain") if isinstance(tls, dict) else None
    if not chain:
        return None
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(chain[0])).hexdigest()


class _WithTls:
    """Adds one connection's ``tls`` extension to the scope of each request on it."""

    def __init__(self, app: Callable[..., Any], tls: dict[str, Any]) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["extensions"] = {**(scope.get("extensions") or {}), "tls": dict(self.tls)}
        await self.app(scope, receive, send)


class TlsHttpProtocol(_HttpProtocol):
    """uvicorn's HTTP protocol (httptools), giving the app the ASGI ``tls`` extension (uvicorn itself does not).

    asyncio calls ``connection_made`` once the TLS handshake is complete, so the peer
    certificate is known then; each connection has its own protocol object, so wrapping
    its ``app`` affects that connection only.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.app = cast(Any, _WithTls(self.app, tls_extension(ssl_object)))


@dataclass(frozen=True)
class ServerTls:
    """What ``tarcza serve`` needs for HTTPS: the loaded context and where it came from."""

    context: ssl.SSLContext
    cert: Path
    client_ca: Path | None


_TLS_LOAD_ERRORS = {"KEY_VALUES_MISMATCH": "the key is not the certificate's"}


def _readable(path: Path, what: str, setting: str) -> Path:
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise ConfigurationError(f"{what} {path} cannot be read ({exc.strerror}); check {setting}") from None
    return path


def server_tls(cert: Path | None, key: Path | None, client_ca: Path | None = None,
               key_password: str | None = None) -> ServerTls | None:
    """Check and load the TLS files (None: plain HTTP); one-line :class:`ConfigurationError` if unusable.

    TLS 1.2 at least. With ``client_ca`` a client certificate is requested and, if one
    is presented, verified against that CA (``CERT_OPTIONAL``): browsers of the console
    and unbound clients connect without one; bound clients are held to theirs by the app.
    """
    if cert is None and key is None:
        if client_ca is not None:
            raise ConfigurationError("--tls-client-ca (TARCZA_TLS_CLIENT_CA) needs --tls-cert and --tls-key")
        return None
    if cert is None or key is None:
        raise ConfigurationError("TLS needs both --tls-cert and --tls-key (TARCZA_TLS_CERT, TARCZA_TLS_KEY)")
    _readable(cert, "TLS certificate", "--tls-cert / TARCZA_TLS_CERT")
    _readable(key, "TLS key", "--tls-key / TARCZA_TLS_KEY")
    if client_ca is not None:
        _readable(client_ca, "TLS client CA", "--tls-client-ca / TARCZA_TLS_CLIENT_CA")

    def password() -> str:
        if key_password is None:
            raise ConfigurationError(f"TLS key {key} is encrypted; set TARCZA_TLS_KEY_PASSWORD")
        return key_password

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key, password=password)
    except ssl.SSLError as exc:
        reason = _TLS_LOAD_ERRORS.get(exc.reason or "", "they must be a PEM certificate (chain) and its own PEM "
                                      "private key; an encrypted key needs the right TARCZA_TLS_KEY_PASSWORD")
        raise ConfigurationError(f"TLS certificate {cert} and key {key} cannot be used together: {reason}") from None
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=client_ca)
        except ssl.SSLError as exc:
            raise ConfigurationError(f"TLS client CA {client_ca} is not a PEM certificate bundle "
                                     f"({exc.reason or exc.strerror})") from None
        context.verify_mode = ssl.CERT_OPTIONAL
    return ServerTls(context, cert, client_ca)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
