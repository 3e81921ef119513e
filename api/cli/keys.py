"""``tarcza keys``: the key-encryption keys of this machine's vault (status, rotation).

These are the local operator's commands, like ``tarcza user``: they open this machine's
key provider and database directly. ``keys rotate`` runs as the principal
``operator:<OS user>`` (kind ``system``, which the policies' ``role.system`` permits; the
decision is still asked) and the ``vault.key_rotated`` entry names that operator. It refuses
while a server runs on the installation (``api.cli.servers``) and names the command to use
instead: ``keys rotate --server URL`` rotates inside that server through
``POST /v1/keys/rotate`` as the logged-in admin (docs/adr/0022-one-installation-and-key-operations-that-coordinate.md).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from api.cli.common import console, runtime
from api.cli.identity import operator_actor
from api.cli.vault import ApiSession, CodeOpt, JsonOpt

if TYPE_CHECKING:
    from identity.principal import Principal

app = typer.Typer(no_args_is_help=True, help="Key-encryption keys of this machine's vault: rotate, status.")


def _echo(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def operator_principal() -> Principal:
    """The local operator as a principal: ``operator:<OS user>``, kind ``system``."""
    from identity.principal import Principal

    actor = operator_actor()
    return Principal(id=actor.id, kind=actor.kind)


@app.command("rotate")
def keys_rotate(
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Data keys rewrapped per transaction.")] = 200,
    server: Annotated[str | None, typer.Option(
        help="Rotate inside this running server (POST /v1/keys/rotate, as the admin logged in with `tarcza "
             "login`), which then uses the new key at once. Without it: rotate here, with no server running "
             "on this installation.")] = None,
    code: CodeOpt = None,
) -> None:
    """Rotate the key-encryption key: new version, rewrap every data key, retire the old versions.

    Resumes an interrupted rotation. Without --server it runs on this machine's keys as the
    local operator and refuses while a server runs on the installation (that server would keep
    the old keys): it names the server to rotate through instead.
    """
    if server is not None:
        session = ApiSession.load(server)
        if code:
            session.step_up(code)
        _echo_rotation(session.json("POST", "/v1/keys/rotate", query={"batch_size": str(batch_size)}))
        return
    from api.auth import SYSTEM_RESOURCE, denied
    from api.cli.audit import progress_bar
    from api.cli.servers import offline_key_operation

    rt = runtime()
    with offline_key_operation(rt.settings.data_dir, "to rotate keys on this machine"):
        principal = operator_principal()
        decision = rt.authorizer.decide(principal, "keys.rotate", SYSTEM_RESOURCE, purpose=None,
                                        now=rt.clock.now())
        if not decision.allowed:
            raise denied("keys.rotate", decision)
        vault = rt.vault
        with progress_bar("rewrapping data keys") as update:
            report = vault.rotate_keys(update, batch_size=batch_size, actor=principal.actor)
    _echo_rotation(report.to_json())


def _echo_rotation(report: dict[str, Any]) -> None:
    resumed = " (resumed an interrupted rotation)" if report["resumed"] else ""
    retired = ", ".join(str(v) for v in report["retired"]) or "none"
    _echo(f"rotated KEK version {report['from_version']} -> {report['to_version']}{resumed}: "
          f"{report['rewrapped']} data key(s) rewrapped; retired version(s): {retired}")


@app.command("status")
def keys_status(as_json: JsonOpt = False) -> None:
    """The KEK versions in the key provider, how many data keys each wraps, and a rotation in progress."""
    from vault.rotation import key_status

    rt = runtime()
    status = key_status(rt.engine, rt.key_provider)
    if as_json:
        sys.stdout.write(json.dumps(status.to_json(), indent=2) + "\n")
        return
    table = Table("KEK version", "data keys", "state")
    for version in sorted(set(status.provider_versions) | set(status.keys_by_version)):
        state = "current" if version == status.current_version else (
            "in provider" if version in status.provider_versions else "missing from provider")
        table.add_row(str(version), str(status.keys_by_version.get(version, 0)), state)
    console.print(table)
    running = status.running
    if running is None:
        _echo("no rotation in progress")
    else:
        remaining = status.to_json()["rotation_running"]
        _echo(f"rotation {running.from_version} -> {running.to_version} in progress: {running.rewrapped} rewrapped, "
              f"{remaining['remaining'] if isinstance(remaining, dict) else '?'} to go; "
              "`tarcza keys rotate` resumes it")
