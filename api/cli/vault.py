"""``tarcza subject``: the vault through a server's HTTP API (``tarcza keys`` is in ``api.cli.keys``).

``subject`` commands are people at the CLI: they call a running server with the session
that ``tarcza login`` stored (``~/.config/tarcza/session`` or ``TARCZA_SESSION_FILE``), so the
second factor, the policies and the audit log apply exactly as over HTTP. A refusal prints
the server's problem detail on one ``error:`` line and exits 1. Values are printed to
stdout only (``reveal``, ``show``), never logged.
"""

from __future__ import annotations

import json
import mimetypes
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPResponse
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer
from rich.table import Table

from api.cli.common import console, err_console
from api.cli.identity import session_file
from core.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidInputError,
    PermissionDeniedError,
    TarczaError,
)

subject_app = typer.Typer(no_args_is_help=True, help="Subjects in the PII vault, through a running server's API "
                          "(log in first with `tarcza login --server URL`).")

_CHUNK = 64 * 1024


def _echo(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


# -- talking to the server ------------------------------------------------------------------------


class ServerError(TarczaError):
    """The server answered with a problem (4xx/5xx); the message is its detail."""

    code = "server-error"
    title = "Server error"


def _problem_message(status: int, problem: dict[str, Any]) -> str:
    detail = str(problem.get("detail") or problem.get("title") or "no detail")
    errors = problem.get("errors")
    if isinstance(errors, list) and errors:  # request validation: where, never what
        detail += ": " + "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', [])[1:]) or 'request'} {e.get('msg', '')}".strip()
            for e in errors[:3] if isinstance(e, dict))
    rule = problem.get("rule")
    if rule:
        detail += f" (rule: {rule})"
    return f"HTTP {status}: {detail}"


@dataclass(frozen=True)
class ApiSession:
    """A server's base URL and the bearer token ``tarcza login`` stored for it."""

    server: str
    token: str

    @classmethod
    def load(cls, server: str | None) -> ApiSession:
        path = session_file()
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AuthenticationError("not logged in; run `tarcza login --server URL` first") from None
        except (OSError, ValueError):
            raise ConfigurationError(f"the session file {path} cannot be read; log in again") from None
        stored = str(saved.get("server") or "").rstrip("/")
        wanted = (server or stored).rstrip("/")
        if not wanted.startswith(("http://", "https://")):
            raise InvalidInputError("--server must be an http:// or https:// URL")
        if wanted != stored or not saved.get("token"):
            raise AuthenticationError(f"no session for {wanted}; run `tarcza login --server {wanted}`")
        return cls(wanted, str(saved["token"]))

    @contextmanager
    def request(self, method: str, path: str, *, body: dict[str, Any] | None = None, data: BinaryIO | None = None,
                headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
                ) -> Iterator[HTTPResponse]:
        """Send one request; yield the response (2xx), or raise the problem as a one-line error."""
        url = self.server + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        sent: dict[str, str] = {"Authorization": f"Bearer {self.token}", "Accept": "application/json",
                                **(headers or {})}
        payload: bytes | BinaryIO | None = data
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            sent["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=payload, method=method, headers=sent)  # noqa: S310 - http(s)
        try:
            response = urllib.request.urlopen(request, timeout=120)  # noqa: S310 - http(s), checked in load()
        except urllib.error.HTTPError as exc:
            raise self._problem(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ConfigurationError(f"cannot reach {self.server}: {getattr(exc, 'reason', exc)}") from None
        with response:
            yield response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        with self.request(method, path, **kwargs) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def _problem(self, exc: urllib.error.HTTPError) -> TarczaError:
        try:
            problem = json.loads(exc.read() or b"{}")
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        message = _problem_message(exc.code, problem or {"detail": exc.reason})
        if exc.code == 401:
            return AuthenticationError(f"{message}; log in again with `tarcza login --server {self.server}`")
        if exc.code == 403:
            if problem.get("rule") == "second_factor":
                message += "; verify the second factor again (`tarcza login`, or --code on this command)"
            return PermissionDeniedError(message)
        return ServerError(message)

    def step_up(self, code: str) -> None:
        """Verify a TOTP code again, so that actions needing a fresh second factor are allowed."""
        self.json("POST", "/v1/auth/step-up", body={"totp_code": code})


def _subject_path(token: str, *rest: str) -> str:
    return "/".join(["/v1/subjects", urllib.parse.quote(token, safe=""), *(urllib.parse.quote(p, safe="")
                                                                          for p in rest)])


def _parse_fields(pairs: list[str]) -> dict[str, list[str]]:
    """``name=value`` options as {name: [values]} (a name given twice holds two values)."""
    out: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInputError("give fields as --field name=value")  # the value is not echoed
        out.setdefault(name.strip(), []).append(value)
    return out


def _print_fields(values: dict[str, list[str]], as_json: bool, title: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(values, indent=2, ensure_ascii=False) + "\n")
        return
    table = Table("field", title)
    for name, items in values.items():
        table.add_row(name, "\n".join(items) if items else "-")
    console.print(table)


ServerOpt = Annotated[str | None, typer.Option(help="Server base URL (default: the one `tarcza login` used).")]
PurposeOpt = Annotated[str, typer.Option(help="Why: a purpose of policies/authorisation.yaml, e.g. debt_collection.")]
CodeOpt = Annotated[str | None, typer.Option("--code", help="TOTP code: step up first (a reveal needs a second "
                                             "factor verified in the last 10 minutes).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


# -- tarcza subject -------------------------------------------------------------------------------


@subject_app.command("create")
def subject_create(
    field: Annotated[list[str] | None, typer.Option("--field", "-f", help="name=value (repeat; a name twice gives "
                                                    "a multi-valued field two values).")] = None,
    fields_json: Annotated[Path | None, typer.Option(help="Read {name: value | [values]} from this JSON file "
                                                     "('-': stdin), keeping values out of the process list.")] = None,
    kind: Annotated[str, typer.Option(help="debtor or third_party.")] = "debtor",
    idempotency_key: Annotated[str | None, typer.Option(help="Retrying with the same key creates one subject.")]
    = None,
    server: ServerOpt = None,
) -> None:
    """Create a subject with its fields sealed in the vault; prints its token."""
    values: dict[str, Any] = {name: items[0] if len(items) == 1 else items
                              for name, items in _parse_fields(field or []).items()}
    if fields_json is not None:
        text = sys.stdin.read() if str(fields_json) == "-" else fields_json.read_text(encoding="utf-8")
        try:
            loaded = json.loads(text)
        except ValueError:
            raise InvalidInputError("--fields-json is not valid JSON") from None
        if not isinstance(loaded, dict):
            raise InvalidInputError("--fields-json must hold an object {name: value | [values]}")
        values.update(loaded)
    if not values:
        raise InvalidInputError("give at least one --field name=value (or --fields-json)")
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    answer = ApiSession.load(server).json("POST", "/v1/subjects", body={"kind": kind, "fields": values},
                                          headers=headers)
    _echo(answer["token"])


@subject_app.command("update")
def subject_update(
    token: Annotated[str, typer.Argument(help="Subject token (sub_...).")],
    field: Annotated[list[str], typer.Option("--field", "-f", help="name=value; every value of the field is "
                                             "replaced by those given (repeat the name for several).")],
    server: ServerOpt = None,
) -> None:
    """Replace the values of one or more fields of a subject."""
    api = ApiSession.load(server)
    for name, values in _parse_fields(field).items():
        api.json("PUT", _subject_path(token, "fields", name), body={"values": values})
        _echo(f"updated {name}")


@subject_app.command("show")
def subject_show(
    token: Annotated[str, typer.Argument(help="Subject token (sub_...).")],
    fields: Annotated[str | None, typer.Option(help="Comma-separated field names (default: all).")] = None,
    as_json: JsonOpt = False,
    server: ServerOpt = None,
) -> None:
    """Show a subject's fields masked as your role sees them (no reveal)."""
    answer = ApiSession.load(server).json("GET", _subject_path(token), query={"fields": fields} if fields else None)
    _print_fields(answer["fields"], as_json, "masked")


@subject_app.command("reveal")
def subject_reveal(
    token: Annotated[str, typer.Argument(help="Subject token (sub_...).")],
    field: Annotated[list[str], typer.Option("--field", "-f", help="A field to reveal (repeat).")],
    purpose: PurposeOpt,
    justification: Annotated[str | None, typer.Option(help="Break-glass justification (compliance officers).")]
    = None,
    code: CodeOpt = None,
    as_json: JsonOpt = False,
    server: ServerOpt = None,
) -> None:
    """Reveal fields in clear for a stated purpose; the access is in the audit log before you see them."""
    api = ApiSession.load(server)
    if code:
        api.step_up(code)
    body: dict[str, Any] = {"fields": field, "purpose": purpose}
    if justification:
        body["justification"] = justification
    answer = api.json("POST", _subject_path(token, "reveal"), body=body)
    if as_json:
        _print_fields(answer["fields"], True, "")
        return
    for name, values in answer["fields"].items():
        for value in values or ["-"]:
            _echo(f"{name}: {value}")


BULK_REVEAL_CHUNK = 1000  # the server's limit per request (vault.service.MAX_BULK_REVEAL)


@subject_app.command("reveal-many")
def subject_reveal_many(
    field: Annotated[list[str], typer.Option("--field", "-f", help="A field to reveal for every subject (repeat).")],
    purpose: PurposeOpt,
    tokens: Annotated[list[str] | None, typer.Argument(help="Subject tokens (sub_...); or use --tokens-file.")]
    = None,
    tokens_file: Annotated[Path | None, typer.Option(help="Read tokens from this file, one per line ('-': stdin).")]
    = None,
    justification: Annotated[str | None, typer.Option(help="Break-glass justification (compliance officers).")]
    = None,
    code: CodeOpt = None,
    server: ServerOpt = None,
) -> None:
    """Reveal the same fields of many subjects (a letters run): one JSON line per subject on stdout.

    Each line is {"subject", "fields"} or, for a subject that is unknown, shredded or refused,
    {"subject", "error"} with problem details. Every subject's access is in the audit log before
    its values are sent. Exits 1 if any subject was not revealed. Tokens are sent 1000 per request.
    """
    wanted = list(tokens or [])
    if tokens_file is not None:
        text = sys.stdin.read() if str(tokens_file) == "-" else tokens_file.read_text(encoding="utf-8")
        wanted += [line.strip() for line in text.splitlines() if line.strip()]
    if not wanted:
        raise InvalidInputError("give subject tokens as arguments or with --tokens-file")
    api = ApiSession.load(server)
    if code:
        api.step_up(code)
    failed = 0
    for start in range(0, len(wanted), BULK_REVEAL_CHUNK):
        body: dict[str, Any] = {"subjects": wanted[start:start + BULK_REVEAL_CHUNK], "fields": field,
                                "purpose": purpose}
        if justification:
            body["justification"] = justification
        for result in api.json("POST", "/v1/subjects/reveal", body=body)["results"]:
            failed += "error" in result
            _echo(json.dumps(result, ensure_ascii=False))
    if failed:
        err_console.print(f"error: {failed} of {len(wanted)} subjects were not revealed (see their error lines)",
                          markup=False, highlight=False)
        raise typer.Exit(1)


@subject_app.command("search")
def subject_search(
    field: Annotated[str, typer.Option(help="A searchable field, e.g. pesel, last_name, phone.")],
    purpose: PurposeOpt,
    value: Annotated[str | None, typer.Option(help="The exact value (or --value-stdin).")] = None,
    value_stdin: Annotated[bool, typer.Option("--value-stdin", help="Read the value from stdin.")] = False,
    server: ServerOpt = None,
) -> None:
    """Print the tokens of subjects holding exactly this value (blind index), one per line."""
    if value_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
    if value is None or (value_stdin and not value):
        raise InvalidInputError("give --value or --value-stdin")
    answer = ApiSession.load(server).json("POST", "/v1/subjects/search",
                                          body={"field": field, "value": value, "purpose": purpose})
    for token in answer["subjects"]:
        _echo(token)
    if not answer["subjects"]:
        err_console.print("no subject matches", markup=False, highlight=False)


@subject_app.command("upload")
def subject_upload(
    token: Annotated[str, typer.Argument(help="Subject token (sub_...).")],
    file: Annotated[Path, typer.Argument(help="The recording to upload.", exists=True, dir_okay=False)],
    announced: Annotated[bool, typer.Option("--announced", help="The debtor was told the conversation is "
                                            "recorded (required by policy).")] = False,
    media_type: Annotated[str | None, typer.Option(help="Its media type (default: guessed from the name).")] = None,
    duration_ms: Annotated[int | None, typer.Option(help="Its length (default: read from a WAV header).")] = None,
    server: ServerOpt = None,
) -> None:
    """Upload a recording of the subject; it is encrypted on the server as it streams in."""
    if not announced:
        raise InvalidInputError("pass --announced: a recording is accepted only if the debtor was told about it")
    chosen = media_type or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    query = {"announced": "true", **({"duration_ms": str(duration_ms)} if duration_ms is not None else {})}
    api = ApiSession.load(server)
    with file.open("rb") as stream:
        answer = api.json("POST", _subject_path(token, "recordings"), data=stream, query=query, headers={
            "Content-Type": chosen, "Content-Length": str(os.fstat(stream.fileno()).st_size)})
    _echo(f"recording_id: {answer['recording_id']}")
    _echo(f"sha256:       {answer['sha256']}")
    _echo(f"size:         {answer['size']}")
    if answer.get("duration_ms") is not None:
        _echo(f"duration_ms:  {answer['duration_ms']}")


@subject_app.command("play")
def subject_play(
    token: Annotated[str, typer.Argument(help="Subject token (sub_...).")],
    recording_id: Annotated[str, typer.Argument(help="Recording id (rec_...).")],
    purpose: PurposeOpt,
    out: Annotated[Path, typer.Option(help="File to write the recording (or the range) to; created 0600.")],
    start: Annotated[int | None, typer.Option(min=0, help="First byte (default 0).")] = None,
    end: Annotated[int | None, typer.Option(min=1, help="End byte, exclusive (default: the end).")] = None,
    code: CodeOpt = None,
    server: ServerOpt = None,
) -> None:
    """Download a recording (or bytes START..END-1 of it) for a stated purpose; logged before it streams."""
    if start is not None and end is not None and end <= start:
        raise InvalidInputError("--end must be greater than --start")
    headers = {"Accept": "*/*"}
    if start is not None or end is not None:
        headers["Range"] = f"bytes={start or 0}-{'' if end is None else end - 1}"
    api = ApiSession.load(server)
    if code:
        api.step_up(code)
    written = 0
    partial = out.with_name(out.name + ".part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as sink, api.request("GET", _subject_path(token, "recordings", recording_id),
                                                      query={"purpose": purpose}, headers=headers) as response:
            expected = response.headers.get("Content-Length")
            while chunk := response.read(_CHUNK):
                sink.write(chunk)
                written += len(chunk)
        if expected is not None and int(expected) != written:
            raise ServerError(f"the stream ended after {written} of {expected} bytes; nothing was kept")
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _echo(f"wrote {written} bytes to {out}")


@subject_app.command("shred")
def subject_shred(
    token: Annotated[str, typer.Argument(help="Subject token (sub_...).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    code: CodeOpt = None,
    server: ServerOpt = None,
) -> None:
    """Erase a subject for good by destroying its key (crypto-shredding, GDPR Art. 17), if the erasure decision
    allows it (legal holds, open claims and the accounting duty keep the data: refused with the reasons)."""
    if not yes:
        typer.confirm(f"Shred {token}? Its data can never be read again", abort=True)
    api = ApiSession.load(server)
    if code:
        api.step_up(code)
    report = api.json("DELETE", _subject_path(token))
    state = "was already shredded" if report["already_shredded"] else "shredded"
    _echo(f"{token} {state}: {len(report['fields'])} field(s), {len(report['recordings'])} recording(s)")
