"""``tarcza gdpr``: data subject requests, erasure, restriction, objection, exports and legal holds.

Like ``tarcza subject``, these commands call a running server with the session ``tarcza
login`` stored (a DPO or compliance officer with a verified second factor), so the policies
and the audit log apply exactly as over HTTP. ``tarcza gdpr verify-export`` needs no server:
it checks a subject's archive offline (every file's SHA-256, the signed checkpoint, the
log entries behind the contact history). A refusal prints the server's problem detail on
one ``error:`` line and exits 1.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from api.cli.common import console
from api.cli.gdpr_registers import breaches_app, notices_app, recipients_app
from api.cli.vault import ApiSession, CodeOpt, JsonOpt, ServerOpt

app = typer.Typer(no_args_is_help=True, help="GDPR toolkit: data subject requests with their deadlines, erasure, "
                  "restriction, objection, rectification, exports, legal holds (through a running server).")
request_app = typer.Typer(no_args_is_help=True, help="Data subject requests (Art. 15-21) and their deadlines.")
hold_app = typer.Typer(no_args_is_help=True, help="Legal holds: erasure and retention skip a held subject.")
app.add_typer(request_app, name="request")
app.add_typer(hold_app, name="hold")
app.add_typer(notices_app, name="notices")
app.add_typer(recipients_app, name="recipients")
app.add_typer(breaches_app, name="breaches")

RequestArg = Annotated[str, typer.Argument(help="Request id (dsr_...).")]


def _echo(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _today() -> str:
    """Today in Poland, where the firm receives requests (the deadline counts from this date)."""
    return datetime.now(ZoneInfo("Europe/Warsaw")).date().isoformat()


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _show(request: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _echo(json.dumps(request, ensure_ascii=False, indent=2))
        return
    late = " OVERDUE" if request["overdue"] else ""
    left = f", {request['days_left']} day(s) left" if request["days_left"] is not None else ""
    _echo(f"{request['id']} {request['kind']} (Art. {request['article']}) {request['status']}, due "
          f"{request['due_on']}{left}{late}" + (f"; outcome {request['outcome']}" if request["outcome"] else ""))


@request_app.command("create")
def request_create(
    subject: Annotated[str, typer.Argument(help="Subject token (sub_...).")],
    kind: Annotated[str, typer.Argument(help="access, portability, erasure, rectification, restriction, objection.")],
    received_on: Annotated[str, typer.Option(help="YYYY-MM-DD the request reached the firm (default: today).")] = "",
    channel: Annotated[str, typer.Option(help="email, letter, portal, phone, in_person, epuap.")] = "letter",
    as_json: JsonOpt = False, server: ServerOpt = None,
) -> None:
    """Register a request; prints its id and deadline."""
    body = {"subject": subject, "kind": kind, "received_on": received_on or _today(),
            "channel": channel}
    _show(ApiSession.load(server).json("POST", "/v1/gdpr/requests", body=body), as_json)


@request_app.command("list")
def request_list(
    view: Annotated[str, typer.Option(help="open, overdue, due_soon, closed or all.")] = "open",
    subject: Annotated[str | None, typer.Option(help="Only this subject's requests.")] = None,
    as_json: JsonOpt = False, server: ServerOpt = None,
) -> None:
    """Requests by deadline (oldest first); overdue ones are marked."""
    api = ApiSession.load(server)
    query = {"view": view, "limit": "500", **({"subject": subject} if subject else {})}
    items: list[dict[str, Any]] = []
    while True:
        page = api.json("GET", "/v1/gdpr/requests", query=query)
        items += page["items"]
        if not page["next_cursor"]:
            break
        query["cursor"] = page["next_cursor"]
    if as_json:
        _echo(json.dumps(items, ensure_ascii=False, indent=2))
        return
    table = Table("id", "kind", "subject", "status", "received", "due", "days left")
    for r in items:
        due = f"[red]{r['due_on']}[/]" if r["overdue"] else r["due_on"]
        table.add_row(r["id"], r["kind"], r["subject"], r["status"], r["received_on"], due,
                      "" if r["days_left"] is None else str(r["days_left"]))
    console.print(table)


@request_app.command("show")
def request_show(request_id: RequestArg, as_json: JsonOpt = False, server: ServerOpt = None) -> None:
    """One request."""
    _show(ApiSession.load(server).json("GET", f"/v1/gdpr/requests/{_q(request_id)}"), as_json)


@request_app.command("verify")
def request_verify(request_id: RequestArg,
                   method: Annotated[str, typer.Option(help="id_document, known_contact, bank_transfer, "
                                                       "qualified_signature, trusted_profile, video_call, in_person.")],
                   reference: Annotated[str | None, typer.Option(help="Where the evidence is in the firm's files "
                                                                 "(never the document's own number).")] = None,
                   server: ServerOpt = None) -> None:
    """Record that the requester's identity was verified: how, on what evidence (and, by the server, who)."""
    body: dict[str, Any] = {"method": method} | ({"reference": reference} if reference else {})
    _show(ApiSession.load(server).json("POST", f"/v1/gdpr/requests/{_q(request_id)}/verify", body=body), False)


@request_app.command("extend")
def request_extend(request_id: RequestArg, months: Annotated[int, typer.Option(min=1, max=2)],
                   reason: Annotated[str, typer.Option(help="complexity or number_of_requests.")],
                   server: ServerOpt = None) -> None:
    """Extend the deadline by 1 or 2 months (Art. 12(3)); only within the first month."""
    _show(ApiSession.load(server).json("POST", f"/v1/gdpr/requests/{_q(request_id)}/extend",
                                       body={"months": months, "reason": reason}), False)


@request_app.command("complete")
def request_complete(request_id: RequestArg, outcome: Annotated[str, typer.Option(help="A short outcome code.")],
                     server: ServerOpt = None) -> None:
    """Close a verified request as answered."""
    _show(ApiSession.load(server).json("POST", f"/v1/gdpr/requests/{_q(request_id)}/complete",
                                       body={"code": outcome}), False)


@request_app.command("refuse")
def request_refuse(request_id: RequestArg, reason: Annotated[str, typer.Option(help="A short reason code.")],
                   server: ServerOpt = None) -> None:
    """Refuse a request, with the reason."""
    _show(ApiSession.load(server).json("POST", f"/v1/gdpr/requests/{_q(request_id)}/refuse",
                                       body={"code": reason}), False)


@app.command("erase")
def erase(request_id: RequestArg,
          restrict_if_refused: Annotated[bool, typer.Option(help="Restrict processing if erasure is refused.")]
          = False,
          override_justification_stdin: Annotated[bool, typer.Option(
              "--override-justification-stdin", help="The DPO only: erase although the decision keeps the data; "
              "the justification is read from stdin, sealed, logged and reviewed.")] = False,
          code: CodeOpt = None, as_json: JsonOpt = False, server: ServerOpt = None) -> None:
    """Execute a verified erasure request through the erasure decision: shreds the subject, or says why not and
    from when (erasing needs a second factor verified in the last 10 minutes: --code steps up first)."""
    api = ApiSession.load(server)
    if code:
        api.step_up(code)
    body: dict[str, Any] = {"restrict_if_refused": restrict_if_refused}
    if override_justification_stdin:
        body["override"] = {"justification": sys.stdin.read().strip()}
    result = api.json("POST", f"/v1/gdpr/requests/{_q(request_id)}/erase", body=body)
    if as_json:
        _echo(json.dumps(result, indent=2))
        return
    if result["erased"]:
        _echo(f"erased (crypto-shredded); tombstone at log index {result['tombstone_index']}")
        return
    when = f"possible from {result['possible_from']}" if result["possible_from"] else "no date (a legal hold)"
    _echo(f"refused: {when}" + ("; processing restricted" if result["restricted"] else ""))
    for reason in result["reasons"]:
        _echo(f"  {reason['rule']} {reason['ref'] or ''} until {reason['until'] or '-'}: {reason['detail']}")


@app.command("assess")
def assess(subject: Annotated[str, typer.Argument(help="Subject token (sub_...).")], as_json: JsonOpt = False,
           server: ServerOpt = None) -> None:
    """What an erasure of the subject would come to today (no effect)."""
    result = ApiSession.load(server).json("GET", f"/v1/subjects/{_q(subject)}/erasure-assessment")
    if as_json:
        _echo(json.dumps(result, indent=2))
        return
    _echo("erasure allowed" if result["allowed"] else f"erasure refused until {result['possible_from'] or '-'}")
    for reason in result["reasons"]:
        _echo(f"  {reason['rule']} {reason['ref'] or ''} until {reason['until'] or '-'}: {reason['detail']}")


@app.command("restrict")
def restrict(request_id: RequestArg, lift: Annotated[bool, typer.Option(help="Lift the restriction.")] = False,
             subject_informed: Annotated[bool, typer.Option(help="The subject was told before lifting (Art. 18(3)).")]
             = False, server: ServerOpt = None) -> None:
    """Execute a verified restriction request (Art. 18), or lift one (after telling the subject)."""
    _show(ApiSession.load(server).json("POST", f"/v1/gdpr/requests/{_q(request_id)}/restrict",
                                       body={"lift": lift, "subject_informed": subject_informed}), False)


@app.command("object")
def object_to(request_id: RequestArg, purpose: Annotated[str, typer.Option(help="e.g. debt_collection.")],
              channel: Annotated[str | None, typer.Option(help="One channel (default: all).")] = None,
              server: ServerOpt = None) -> None:
    """Execute a verified objection (Art. 21); the contact firewall honours it from now on."""
    body: dict[str, Any] = {"purpose": purpose, **({"channel": channel} if channel else {})}
    _show(ApiSession.load(server).json("POST", f"/v1/gdpr/requests/{_q(request_id)}/object", body=body), False)


@app.command("rectify")
def rectify(request_id: RequestArg, field: Annotated[str, typer.Option(help="The field to correct.")],
            value_stdin: Annotated[bool, typer.Option("--value-stdin", help="Read the value(s) from stdin, one "
                                                      "per line (keeps them out of the process list).")] = False,
            server: ServerOpt = None) -> None:
    """Execute a verified rectification (Art. 16); the old values are not kept."""
    import sys

    if not value_stdin:
        from core.errors import InvalidInputError

        raise InvalidInputError("pass the new value(s) on stdin with --value-stdin")
    values = [line for line in sys.stdin.read().splitlines() if line.strip()]
    _show(ApiSession.load(server).json("POST", f"/v1/gdpr/requests/{_q(request_id)}/rectify",
                                       body={"field": field, "values": values}), False)


@app.command("export")
def export(request_id: RequestArg, out: Annotated[Path, typer.Option(help="Where to write the archive (.zip).")],
           recordings: Annotated[bool, typer.Option(help="Include the recordings themselves.")] = False,
           justification: Annotated[str | None, typer.Option(help="Break-glass justification (compliance "
                                                             "officers): the export is your reveal.")] = None,
           code: CodeOpt = None, server: ServerOpt = None) -> None:
    """Produce the subject's archive for an access or portability request (closes the request).

    The archive is your reveal for the purpose gdpr_request: a second factor verified in the last 10
    minutes (--code steps up first), and for a compliance officer a break-glass justification."""
    api = ApiSession.load(server)
    if code:
        api.step_up(code)
    query = {"recordings": "true" if recordings else "false"}
    body = {"justification": justification} if justification else None
    with api.request("POST", f"/v1/gdpr/requests/{_q(request_id)}/export", query=query, body=body) as response, \
            os.fdopen(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as sink:
        size = 0
        while chunk := response.read(64 * 1024):
            sink.write(chunk)
            size += len(chunk)
    _echo(f"wrote {out} ({size} bytes); check it with `tarcza gdpr verify-export {out}`")


@app.command("verify-export")
def verify_export(
    archive: Annotated[Path, typer.Argument(help="A subject archive (.zip), as exported or re-zipped.")],
    key: Annotated[Path | None, typer.Option(
        "--key", help="Your own copy of the log's verifier key (the line `tarcza audit verifier-key` prints). "
        "Without it: the key pinned for the log, or on first use the archive's own (pinned, loud warning, "
        "exit 3).")] = None,
    known_logs: Annotated[Path | None, typer.Option(
        "--known-logs", help="The file of pinned log keys (default: $TARCZA_KNOWN_LOGS, else "
        "~/.config/tarcza/known_logs).")] = None,
    trusted_key: Annotated[str | None, typer.Option(hidden=True, help="Deprecated: use --key FILE.")] = None,
) -> None:
    """Check a subject archive offline, as `tarcza-verify` does: every file's hash, the signature, the signed
    checkpoint and the log entries."""
    import tempfile

    from api.cli.audit import run_verification

    with tempfile.TemporaryDirectory(prefix="tarcza-key-") as tmp:
        if trusted_key is not None:  # the old flag took the key itself, or (mistakenly) a file holding it
            sys.stderr.write("warning: --trusted-key is deprecated; use --key FILE\n")
            given = Path(trusted_key)
            key = given if given.is_file() else Path(tmp) / "key.pub"
            if key != given:
                key.write_text(trusted_key.strip() + "\n", encoding="utf-8")
        run_verification(archive, key=key, known_logs=known_logs, trusted_checkpoint=None, check_events=True,
                         label="verifying archive")


@hold_app.command("add")
def hold_add(subject: Annotated[str, typer.Argument(help="Subject token (sub_...).")],
             reason: Annotated[str, typer.Option(help="A short reason code, e.g. litigation:I_C_123/24.")],
             starts_on: Annotated[str, typer.Option(help="YYYY-MM-DD (default: today).")] = "",
             ends_on: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: until released).")] = None,
             case_id: Annotated[str | None, typer.Option(help="Only this case.")] = None,
             server: ServerOpt = None) -> None:
    """Place a legal hold on a subject."""
    body: dict[str, Any] = {"subject": subject, "reason": reason, "starts_on": starts_on or _today(),
                            **({"ends_on": ends_on} if ends_on else {}), **({"case_id": case_id} if case_id else {})}
    hold = ApiSession.load(server).json("POST", "/v1/gdpr/holds", body=body)
    _echo(f"hold {hold['id']} on {hold['subject']} from {hold['starts_on']} until {hold['ends_on'] or 'released'}")


@hold_app.command("release")
def hold_release(hold_id: Annotated[str, typer.Argument(help="Hold id (hold_...).")], server: ServerOpt = None) -> None:
    """Release a legal hold."""
    hold = ApiSession.load(server).json("POST", f"/v1/gdpr/holds/{_q(hold_id)}/release")
    _echo(f"hold {hold['id']} released")


@hold_app.command("list")
def hold_list(subject: Annotated[str, typer.Argument(help="Subject token (sub_...).")], as_json: JsonOpt = False,
              server: ServerOpt = None) -> None:
    """The subject's legal holds."""
    items = ApiSession.load(server).json("GET", f"/v1/subjects/{_q(subject)}/holds")["items"]
    if as_json:
        _echo(json.dumps(items, indent=2))
        return
    for hold in items:
        _echo(f"{hold['id']} {'active' if hold['active'] else 'released'} {hold['reason']} "
              f"{hold['starts_on']}..{hold['ends_on'] or ''}")


@app.command("retention")
def retention(
    run: Annotated[bool, typer.Option("--run/--dry-run", help="Apply what is due (default: only report it).")]
    = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply policies/retention.yaml to this machine's vault (local operator), or report what is due.

    Idempotent and resumable: a second run finds nothing due; an interrupted one is simply run again.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from api.cli.common import err_console, runtime

    rt = runtime()
    job = rt.retention_job()
    total = job.subjects_to_scan()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, disable=as_json or not err_console.is_terminal) as bar:
        task = bar.add_task("retention run" if run else "retention dry run", total=total)
        report = (job.run if run else job.dry_run)(lambda done, _actions: bar.update(task, completed=done))
    if as_json:
        _echo(json.dumps(report.to_json(), indent=2))
        return
    summary = report.to_json(with_actions=False)
    if run:
        _echo(f"scanned {summary['subjects_scanned']} subject(s): shredded {summary['shredded']}, deleted "
              f"{summary['recordings_deleted']} recording(s)")
        return
    _echo(f"scanned {summary['subjects_scanned']} subject(s): {summary['shred_subject']} to shred, "
          f"{summary['delete_recordings']} recording(s) to delete (dry run: nothing changed)")
    for action in report.actions[:50]:
        target = action["recording_id"] or action["subject"]
        _echo(f"  {action['action']} {target}: {action['schedule']} ({action['rule']}) since {action['since']}")
    if len(report.actions) > 50:
        _echo(f"  ... and {len(report.actions) - 50} more (--json lists them all)")


@app.command("breach")
def breach(actor: Annotated[str, typer.Option(help="The compromised user's or API client's id.")],
           since: Annotated[str, typer.Option(help="Start of the window (ISO 8601 with offset).")],
           until: Annotated[str, typer.Option(help="End of the window (ISO 8601 with offset).")],
           aware_at: Annotated[str, typer.Option(help="When the firm became aware (ISO 8601 with offset).")],
           as_json: JsonOpt = False, server: ServerOpt = None) -> None:
    """Breach impact (Art. 33, 34): which subjects the actor revealed or exported, and the 72-hour clock."""
    report = ApiSession.load(server).json("POST", "/v1/gdpr/breach", body={
        "actor_id": actor, "since": since, "until": until, "aware_at": aware_at})
    if as_json:
        _echo(json.dumps(report, indent=2))
        return
    totals = report["totals"]
    clock = report["notification"]
    _echo(f"{totals['subjects']} subject(s) exposed, {totals['high_risk_subjects']} at high risk; notify the "
          f"supervisory authority by {clock['notify_by']} ({clock['hours_left']:.1f} h left"
          + (", OVERDUE)" if clock["overdue"] else ")"))
    for subject in report["subjects"][:50]:
        fields = ", ".join(f"{f['field']}({f['view']})" for f in subject["fields"])
        _echo(f"  {subject['subject']}: {fields}" + ("  HIGH RISK" if subject.get("high_risk") else ""))


@app.command("ropa")
def ropa(html: Annotated[Path | None, typer.Option(help="Write the HTML record here.")] = None,
         as_json: JsonOpt = False) -> None:
    """The record of processing activities (Art. 30), generated from this machine's policy files."""
    from api.cli.common import settings
    from gdpr.ropa import Controller, build_record, render_html

    s = settings()
    record = build_record(Controller(name=s.controller_name, address=s.controller_address,
                                     contact=s.controller_contact, dpo_contact=s.dpo_contact),
                          generated_at=datetime.now(ZoneInfo("Europe/Warsaw")))
    if html is not None:
        html.write_text(render_html(record), encoding="utf-8")
        _echo(f"wrote {html}")
    if as_json or html is None:
        _echo(json.dumps(record.to_json(), ensure_ascii=False, indent=2))
