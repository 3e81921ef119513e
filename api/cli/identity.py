"""``tarcza user``, ``tarcza client`` and ``tarcza login``.

``user`` and ``client`` act directly on the database, as the *local operator*: whoever
can run ``tarcza`` with the data directory's keys and the database URL already holds
every secret, so these commands need no login. They are audited with the actor
``operator:<OS user>`` (kind ``system``). ``login`` is different: it talks to a running
server over HTTP like any other user and keeps the session token in
``~/.config/tarcza/session`` (or ``TARCZA_SESSION_FILE``), mode 0600.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from api.cli.common import console, runtime
from core.errors import AuthenticationError, ConfigurationError, InvalidInputError, TarczaError

if TYPE_CHECKING:  # imported when a command runs, so other commands start faster
    from audit.events import Actor
    from identity.service import Identity

app = typer.Typer(no_args_is_help=True, help="Users: add, list, disable, unlock, reset 2FA, enrol TOTP, assign cases.")
client_app = typer.Typer(no_args_is_help=True,
                         help="API clients: add, list, rotate the secret, bind a TLS certificate, revoke.")
login_app = typer.Typer(invoke_without_command=True, help="Log in to a Tarcza server and keep the session token.")

SESSION_FILE_ENV = "TARCZA_SESSION_FILE"


def operator_actor() -> Actor:
    """The local operator, by OS user name (characters outside [A-Za-z0-9._-] dropped)."""
    from audit.events import Actor, ActorKind

    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = f"uid{os.getuid()}"
    return Actor(id="operator:" + (re.sub(r"[^A-Za-z0-9._\-]", "", name) or "unknown")[:100], kind=ActorKind.SYSTEM)


@contextmanager
def _identity() -> Iterator[Identity]:
    from identity.service import transaction

    rt = runtime()
    with transaction(rt.sessions, audit=lambda: rt.audit, clock=rt.clock, box=rt.secret_box_loader()) as identity:
        yield identity


def _echo(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _read_secret(prompt: str, from_stdin: bool, *, confirm: bool = False) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


# -- tarcza user ----------------------------------------------------------------------------------


@app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Login name: 3-64 of a-z 0-9 . _ -")],
    role: Annotated[list[str], typer.Option("--role", "-r", help="A role (repeat for several): admin, dpo, "
                                            "compliance_officer, auditor, collector, field_agent")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
) -> None:
    """Create a user with an initial password; they enrol TOTP next (`tarcza user enroll-totp`)."""
    password = _read_secret("Password", password_stdin, confirm=True)
    with _identity() as identity:
        info = identity.users.create(username, password, role, actor=operator_actor())
    _echo(f"created user {info.username} ({info.id}) with roles {', '.join(sorted(r.value for r in info.roles))}")


@app.command("list")
def user_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """List users with their roles, TOTP state and lock-outs."""
    with _identity() as identity:
        users = identity.users.list()
    if as_json:
        _echo(json.dumps([u.to_json() for u in users], indent=2))
        return
    table = Table("username", "id", "roles", "TOTP", "state", "cases")
    for u in users:
        state = "disabled" if u.disabled_at else (f"locked until {u.locked_until:%H:%M:%S}" if u.locked_until
                                                  else f"{u.failed_attempts} failures" if u.failed_attempts
                                                  else "active")
        table.add_row(u.username, u.id, ", ".join(sorted(r.value for r in u.roles)),
                      "yes" if u.totp_enrolled else "no", state, str(len(u.assigned_cases)))
    console.print(table)


@app.command("disable")
def user_disable(username: str) -> None:
    """Disable a user and end their sessions."""
    with _identity() as identity:
        info = identity.users.disable(identity.users.by_username(username).id, actor=operator_actor())
    _echo(f"disabled user {info.username}; their sessions have ended")


@app.command("unlock")
def user_unlock(username: str) -> None:
    """Clear a user's failed attempts and lock-out."""
    with _identity() as identity:
        info = identity.users.unlock(identity.users.by_username(username).id, actor=operator_actor())
    _echo(f"unlocked user {info.username}")


@app.command("reset-2fa")
def user_reset_2fa(username: str) -> None:
    """Remove a user's TOTP factor and recovery codes and end their sessions; they enrol again."""
    with _identity() as identity:
        user = identity.users.by_username(username)
        identity.factors.reset(user, actor=operator_actor())
    _echo(f"second factor of {username} reset; they enrol again with `tarcza user enroll-totp {username}` "
          "or POST /v1/auth/totp/enroll")


@app.command("assign")
def user_assign(
    username: str,
    case_ids: Annotated[list[str] | None, typer.Argument(help="Case ids (none: remove all)")] = None,
) -> None:
    """Replace the cases assigned to a user (a field agent acts only on subjects of these)."""
    with _identity() as identity:
        info = identity.users.assign_cases(identity.users.by_username(username).id, case_ids or [],
                                           actor=operator_actor())
    _echo(f"{info.username} is assigned {len(info.assigned_cases)} case(s)")


@app.command("enroll-totp")
def user_enroll_totp(
    username: str,
    code: Annotated[str | None, typer.Option(help="Confirm the pending enrolment with this code (for scripts)")]
    = None,
    start_only: Annotated[bool, typer.Option("--start-only", help="Start enrolment, print it, do not ask for a code")]
    = False,
) -> None:
    """Enrol TOTP: print the QR code (and otpauth URI), then confirm with the first code from the app.

    Without --code a new enrolment starts (replacing a pending one) and the first code is
    asked for. With --code the pending enrolment is confirmed. Recovery codes are printed once.
    """
    if code is None:
        with _identity() as identity:
            enrolment = identity.factors.begin(identity.users.by_username(username))
        typer.echo(enrolment.qr_terminal())
        _echo(f"otpauth URI: {enrolment.uri}")
        _echo(f"secret (for manual entry): {enrolment.secret}")
        if start_only:
            _echo(f"enrolment pending; confirm with `tarcza user enroll-totp {username} --code CODE`")
            return
        code = str(typer.prompt("First code from the authenticator app"))
    with _identity() as identity:
        user = identity.users.by_username(username)
        check = identity.factors.confirm(user, code)
        if not check.ok:
            raise InvalidInputError("the code does not match; check the device's clock and try the next code")
        codes = identity.factors.new_recovery_codes(user)
    _echo(f"TOTP enrolled for {username}. Recovery codes (each works once; store them offline, "
          "they are not shown again):")
    for c in codes:
        _echo(f"  {c}")


# -- tarcza client --------------------------------------------------------------------------------


def _read_certificate(path: Path) -> bytes:
    """The bytes of a certificate file (PEM or DER); one-line error if it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"certificate file {path} cannot be read ({exc.strerror})") from None
    if len(data) > 1024 * 1024:
        raise InvalidInputError(f"{path} is larger than any certificate (over 1 MiB)")
    return data


def _describe_certificate(data: bytes) -> str:
    """Subject, validity end and SHA-256 of the certificate, for the operator to check."""
    from cryptography import x509

    from identity.clients import certificate_der, certificate_sha256

    der = certificate_der(data)
    cert = x509.load_der_x509_certificate(der)
    return (f"{cert.subject.rfc4514_string() or '(empty subject)'}, valid until "
            f"{cert.not_valid_after_utc:%Y-%m-%d}, SHA-256 {certificate_sha256(der)}")


@client_app.command("add")
def client_add(
    name: str,
    scope: Annotated[list[str], typer.Option("--scope", "-s", help="A scope (repeat for several)")],
    purpose: Annotated[list[str] | None, typer.Option("--purpose", "-p", help="Allowed purpose (repeat; none: any)")]
    = None,
    allow_ip: Annotated[list[str] | None, typer.Option("--allow-ip", help="Allowed source network, CIDR (repeat)")]
    = None,
    cert: Annotated[Path | None, typer.Option(
        "--cert", help="Bind the client to this TLS client certificate (PEM or DER): its tokens then work only "
                       "over mutual TLS with it")] = None,
) -> None:
    """Create an API client; its secret is printed once."""
    if purpose:
        known = runtime().authorizer.purposes
        unknown = sorted(set(purpose) - known)
        if unknown:
            raise InvalidInputError(f"unknown purpose(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    certificate = _read_certificate(cert) if cert is not None else None
    with _identity() as identity:
        issued = identity.clients.create(name, scope, purposes=purpose or None, ip_allowlist=allow_ip or None,
                                         certificate=certificate, actor=operator_actor())
    _echo(f"client_id:     {issued.client.id}")
    _echo(f"client_secret: {issued.secret}")
    if certificate is not None:
        _echo(f"bound to TLS client certificate {_describe_certificate(certificate)}")
    _echo("The secret is shown only now; Tarcza keeps only its hash.")


@client_app.command("list")
def client_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """List API clients with their scopes and state."""
    with _identity() as identity:
        clients = identity.clients.list()
    if as_json:
        _echo(json.dumps([c.to_json() for c in clients], indent=2))
        return
    table = Table("client_id", "name", "scopes", "purposes", "IP allow-list", "TLS certificate", "state")
    for c in clients:
        table.add_row(c.id, c.name, " ".join(sorted(c.scopes)), "any" if c.purposes is None else " ".join(
            sorted(c.purposes)), "any" if c.ip_allowlist is None else " ".join(c.ip_allowlist),
            "-" if c.cert_sha256 is None else c.cert_sha256[:16] + "...",
            "revoked" if c.revoked_at else f"{c.live_secrets} live secret(s)")
    console.print(table)


@client_app.command("rotate")
def client_rotate(
    client_id: str,
    overlap_hours: Annotated[float, typer.Option(help="Hours the older secrets keep working", min=0, max=720)] = 24,
) -> None:
    """Issue a new secret; older secrets keep working for the overlap period."""
    with _identity() as identity:
        issued = identity.clients.rotate(client_id, overlap=timedelta(hours=overlap_hours), actor=operator_actor())
    _echo(f"client_secret: {issued.secret}")
    if issued.previous_secrets_expire_at is not None:
        _echo(f"older secrets stop working at {issued.previous_secrets_expire_at.isoformat()}")


@client_app.command("bind-cert")
def client_bind_cert(
    client_id: str,
    cert: Annotated[Path, typer.Option("--cert", help="The client's TLS certificate (PEM or DER)")],
) -> None:
    """Bind a client to its TLS client certificate: its tokens then work only over mutual TLS with it.

    The server needs --tls-client-ca (TARCZA_TLS_CLIENT_CA) naming the CA that issued the
    certificate. Binding again replaces the certificate (e.g. on renewal).
    """
    certificate = _read_certificate(cert)
    description = _describe_certificate(certificate)
    with _identity() as identity:
        identity.clients.bind_certificate(client_id, certificate, actor=operator_actor())
    _echo(f"client {client_id} bound to TLS client certificate {description}")


@client_app.command("unbind-cert")
def client_unbind_cert(client_id: str) -> None:
    """Remove a client's certificate binding: its tokens work again without mutual TLS."""
    with _identity() as identity:
        identity.clients.bind_certificate(client_id, None, actor=operator_actor())
    _echo(f"client {client_id} is no longer bound to a TLS client certificate")


@client_app.command("revoke")
def client_revoke(client_id: str) -> None:
    """Revoke a client: its secrets and access tokens stop working at once."""
    with _identity() as identity:
        identity.clients.revoke(client_id, actor=operator_actor())
    _echo(f"client {client_id} revoked")


# -- tarcza login ---------------------------------------------------------------------------------


def session_file() -> Path:
    override = os.environ.get(SESSION_FILE_ENV)
    return Path(override) if override else Path.home() / ".config" / "tarcza" / "session"


def write_session_file(path: Path, data: dict[str, Any]) -> None:
    """Write the session (0600, in a 0700 directory if it creates one), replacing the old file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _post_json(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if not url.startswith(("http://", "https://")):
        raise InvalidInputError("--server must be an http:// or https:// URL")
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",  # noqa: S310 - checked above
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http(s) only
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {"detail": exc.reason}
    except (urllib.error.URLError, OSError) as exc:
        raise ConfigurationError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None


@login_app.callback()
def login(
    server: Annotated[str, typer.Option(help="Base URL of the Tarcza server, e.g. https://tarcza.example.pl")],
    username: Annotated[str | None, typer.Option(help="Login name (asked if omitted)")] = None,
    code: Annotated[str | None, typer.Option(help="TOTP code (asked for when the account needs one)")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
) -> None:
    """Log in with password and TOTP; the session token goes to ~/.config/tarcza/session (0600)."""
    username = username or str(typer.prompt("Username"))
    password = _read_secret("Password", password_stdin)
    url = server.rstrip("/") + "/v1/auth/login"
    body: dict[str, Any] = {"username": username, "password": password}
    if code:
        body["totp_code"] = code
    status, answer = _post_json(url, body)
    if status == 401 and answer.get("second_factor_required") and not code:
        body["totp_code"] = str(typer.prompt("TOTP code"))
        status, answer = _post_json(url, body)
    if status != 200:
        detail = str(answer.get("detail") or answer.get("title") or f"HTTP {status}")
        raise (AuthenticationError(detail) if status == 401 else TarczaError(f"login refused: {detail}"))
    path = session_file()
    write_session_file(path, {"server": server.rstrip("/"), "token": answer["access_token"],
                              "user_id": answer.get("user_id"), "expires_at": answer.get("expires_at")})
    factor = "verified" if answer.get("second_factor") else "NOT verified (enrol TOTP)"
    _echo(f"logged in; second factor {factor}; session until {answer.get('expires_at')}; token saved in {path}")
