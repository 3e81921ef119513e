"""The ``tarcza`` command line: operators, compliance officers and auditors.

Every command either succeeds or prints one line starting with ``error:`` and exits
non-zero; no traceback reaches the user.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

import core
from api.cli.common import console, err_console, initialise_runtime, runtime, settings, use_config
from core import migrate
from core.db import check_connection
from core.errors import ConfigurationError, TarczaError
from core.logging import configure_logging
from core.settings import parse_database_url, user_config_path

if TYPE_CHECKING:
    from api.runtime import Runtime

app = typer.Typer(
    name="tarcza", no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
    help="Tarcza: encrypted PII vault, tamper-evident audit log and GDPR tooling for debt collection.",
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema: upgrade and inspect migrations.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect the effective configuration.")
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")


def _version(value: bool) -> None:
    if value:
        console.print(f"tarcza {core.__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,  # noqa: ARG001
                                          help="Print the version and exit.")] = False,
    config: Annotated[Path | None, typer.Option(
        "--config", metavar="FILE", dir_okay=False,
        help="Settings file (TARCZA_NAME=value lines; relative paths are relative to it). Default: "
             "TARCZA_CONFIG, else ./.env, else ~/.config/tarcza/config.env. TARCZA_* variables win over it.")]
    = None,
) -> None:
    """Tarcza command line."""
    configure_logging(level="WARNING", fmt="auto")
    use_config(config)


@app.command()
def init() -> None:
    """Create an installation: the data directory (0700), its keys and the database schema.

    The only command that creates one (``make run`` runs it first). Safe to run twice: on an
    existing installation it applies new migrations and adds keys a newer version needs.
    """
    rt = runtime(installation=False)
    lines = initialise_runtime(rt)
    for line in lines or ["already initialised; nothing to do"]:
        console.print(line, markup=False, highlight=False)
    s = rt.settings
    if lines and s.source_of("data_dir") == "default":
        where = os.path.abspath(s.data_dir)
        console.print(f"installation in {where}; to use it from any directory, put TARCZA_DATA_DIR={where} in "
                      f"{user_config_path()} (or in the environment)", markup=False, highlight=False)


def _listen_url(scheme: str, host: str, port: int) -> str:
    """The URL a client on this machine reaches the server at (a wildcard address becomes loopback)."""
    local = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104 - mapped away
    return f"{scheme}://[{local}]:{port}" if ":" in local else f"{scheme}://{local}:{port}"


def _require_current_database(rt: Runtime) -> None:
    """Refuse to serve a database without this installation's schema, or with an older one."""
    check_connection(rt.engine)
    database = parse_database_url(rt.settings.effective_database_url).render_as_string(hide_password=True)
    current = migrate.current_revision(rt.engine)
    if current is None:
        raise ConfigurationError(f"the database {database} has no Tarcza schema; `tarcza init` creates it")
    if not migrate.is_current(rt.engine):
        raise ConfigurationError(f"the database {database} is at schema {current}, this version needs "
                                 f"{migrate.head_revision()}; run `tarcza db upgrade` (or `tarcza init`) first")
    rt.installation_id()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (default TARCZA_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default TARCZA_PORT).")] = None,
    tls_cert: Annotated[Path | None, typer.Option(
        help="PEM certificate (chain) to serve HTTPS with (default TARCZA_TLS_CERT).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert (default TARCZA_TLS_KEY).")]
    = None,
    tls_client_ca: Annotated[Path | None, typer.Option(
        help="PEM CA bundle for client certificates: mutual TLS, optional for the client; API clients bound "
             "to a certificate must present it (default TARCZA_TLS_CLIENT_CA).")] = None,
    insecure_http: Annotated[bool, typer.Option(
        "--insecure-http", help="Allow plain HTTP on a non-loopback address, e.g. behind a TLS-terminating "
                                "proxy (default TARCZA_INSECURE_HTTP).")] = False,
) -> None:
    """Run the HTTP API and console on an installation made by `tarcza init` (it creates none).

    Plain HTTP only on a loopback address unless --insecure-http; otherwise give --tls-cert
    and --tls-key (HTTPS, TLS 1.2 or newer), and --tls-client-ca for mutual TLS. While it
    runs, the server is registered in <data dir>/run, so `tarcza keys rotate` on this
    machine refuses and names the server to rotate through.
    """
    import uvicorn

    from api.app import create_app
    from api.cli.servers import ServerRegistration, check_no_key_operation
    from api.security import TlsHttpProtocol, is_loopback, server_tls

    rt = runtime()
    s = rt.settings
    host, port = host or s.host, port or s.port
    password = s.tls_key_password.get_secret_value() if s.tls_key_password else None
    tls = server_tls(tls_cert or s.tls_cert, tls_key or s.tls_key, tls_client_ca or s.tls_client_ca, password)
    plain_ok = insecure_http or s.insecure_http
    if tls is None and not is_loopback(host) and not plain_ok:
        raise ConfigurationError(f"refusing plain HTTP on {host}: give --tls-cert and --tls-key, or --insecure-http "
                                 "(TARCZA_INSECURE_HTTP=true) if a TLS-terminating proxy is in front")
    _require_current_database(rt)
    scheme = "https" if tls else "http"
    with ServerRegistration(s.data_dir, _listen_url(scheme, host, port)) as registration:
        registration.unregister_on_sigterm()
        check_no_key_operation(s.data_dir)
        configure_logging(level=s.log_level, fmt=s.log_format)
        mtls = f", client certificates verified against {tls.client_ca}" if tls and tls.client_ca else ""
        console.print(f"serving {os.path.abspath(s.data_dir)} on {scheme}://{host}:{port}{mtls} (console at "
                      "/console, API docs at /docs)", markup=False, highlight=False)
        if tls is None and not is_loopback(host):
            err_console.print(f"warning: plain HTTP on {host}; only behind a TLS-terminating proxy",
                              markup=False, highlight=False)
        web_app = create_app(runtime=rt)
        if tls is None:
            uvicorn.run(web_app, host=host, port=port, log_config=None, access_log=False)
            return
        context = tls.context
        uvicorn.run(web_app, host=host, port=port, log_config=None, access_log=False, http=TlsHttpProtocol,
                    ssl_context_factory=lambda _config, _default: context)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply database migrations (up to the newest by default)."""
    rt = runtime()
    check_connection(rt.engine)
    before, after = migrate.upgrade(rt.engine, revision, app_role=rt.settings.db_app_role)
    if before == after:
        console.print(f"database already at {after}")
    else:
        console.print(f"database migrated {before or 'empty'} -> {after}")


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision and the newest one this version knows."""
    rt = runtime()
    check_connection(rt.engine)
    console.print(f"current: {migrate.current_revision(rt.engine) or 'empty'}\nhead:    {migrate.head_revision()}")


@config_app.command("show")
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print the effective settings, secrets masked, and where each came from (environment, file, default)."""
    from api.cli.installation import data_dir_origin, is_installation

    s = settings()
    found = s.config_file
    where = os.path.abspath(s.data_dir)
    rows = [{"setting": name, "variable": f"TARCZA_{name.upper()}", "value": value, "source": s.source_of(name)}
            for name, value in s.masked().items()]
    if as_json:
        sys.stdout.write(json.dumps({
            "config_file": None if found is None else {"path": str(found.path), "found_by": found.found_by},
            "data_dir": where, "data_dir_from": data_dir_origin(s), "installation": is_installation(s),
            "settings": rows}, indent=2) + "\n")
        return
    if found is None:
        console.print(f"config file: none (looked for --config, TARCZA_CONFIG, ./.env, {user_config_path()})",
                      markup=False, highlight=False)
    else:
        console.print(f"config file: {found.path} (found by {found.found_by})", markup=False, highlight=False)
    state = "an installation" if is_installation(s) else "not an installation; `tarcza init` creates one"
    console.print(f"data directory: {where} (from {data_dir_origin(s)}; {state})", markup=False, highlight=False)
    header = {"setting": "setting", "variable": "environment variable", "value": "value", "source": "from"}
    widths = {key: max(len(str(row[key])) for row in [header, *rows]) for key in header}
    for row in [header, *rows]:  # whole values at any width: no table cut to the terminal
        line = "  ".join(str(row[key]).ljust(widths[key]) for key in ("setting", "variable", "value"))
        console.print(f"{line}  {row['source']}", markup=False, highlight=False)


def _register_capabilities() -> None:
    """Add the command groups of the capabilities present."""
    import importlib

    for module_name, group in CAPABILITY_COMMANDS:
        path, _, attribute = module_name.partition(":")  # "module" (its `app`) or "module:typer_object"
        module = importlib.import_module(path)
        app.add_typer(getattr(module, attribute or "app"), name=group)


CAPABILITY_COMMANDS: tuple[tuple[str, str], ...] = (
    ("api.cli.audit", "audit"),
    ("api.cli.bench", "bench"),
    ("api.cli.identity", "user"),
    ("api.cli.identity:client_app", "client"),
    ("api.cli.identity:login_app", "login"),
    ("api.cli.demo", "demo"),
    ("api.cli.vault:subject_app", "subject"),
    ("api.cli.keys", "keys"),
    ("api.cli.contacts", "contact"),
    ("api.cli.debts", "debt"),
    ("api.cli.gdpr", "gdpr"),
    ("api.cli.witness", "witness"),
)


def main() -> None:
    """Console-script entry point: one-line errors, non-zero exit."""
    os.umask(0o077)  # everything Tarcza writes (database, WAL, keys, blobs) is private to its user
    _register_capabilities()
    try:
        app(standalone_mode=True)
    except TarczaError as exc:
        err_console.print(f"error: {exc.detail}", soft_wrap=True, markup=False, highlight=False)
        sys.exit(1)
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None) or exc
        first = (str(orig).strip().splitlines() or [type(orig).__name__])[0][:200]
        err_console.print(f"error: database: {first}", soft_wrap=True, markup=False, highlight=False)
        sys.exit(1)
    except OSError as exc:
        err_console.print(f"error: {exc.strerror or exc} ({getattr(exc, 'filename', '') or ''})",
                          soft_wrap=True, markup=False, highlight=False)
        sys.exit(1)
