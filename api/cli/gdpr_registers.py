"""``tarcza gdpr notices|recipients|breaches``: the DPO's registers, through a running server.

* ``notices``: the Art. 14 clock after a debt is bought (one month, or the first contact if
  earlier), listed like request deadlines; ``close`` records the information given or exempt;
* ``recipients``: the Art. 19 register of a subject, the notifications still to send after a
  rectification, erasure or restriction, and their outcomes;
* ``breaches``: the Art. 33(5) register with each breach's 72-hour clock.

A refusal prints the server's problem detail on one ``error:`` line and exits 1.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli.common import console
from api.cli.vault import ApiSession, JsonOpt, ServerOpt

notices_app = typer.Typer(no_args_is_help=True, help="Art. 14 notices: informing subjects whose data was obtained "
                          "from a creditor, within one month or at the first contact.")
recipients_app = typer.Typer(no_args_is_help=True, help="Art. 19: recipients of a subject's data and the "
                             "notifications of rectification, erasure and restriction.")
breaches_app = typer.Typer(no_args_is_help=True,
                           help="The breach register (Art. 33(5)) and each breach's 72-hour clock.")

SubjectArg = Annotated[str, typer.Argument(help="Subject token (sub_...).")]


def _echo(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _print(value: Any) -> None:
    _echo(json.dumps(value, ensure_ascii=False, indent=2))


def _notice_line(n: dict[str, Any]) -> str:
    state = n["status"]
    if n["status"] == "open":
        state += " OVERDUE" if n["overdue"] else f", {n['days_left']} day(s) left"
    elif n["given_on"]:
        state += f" on {n['given_on']} by {n['channel']}" + ("" if n["in_time"] else " (late)")
    else:
        state += f" ({n['exemption']})"
    return (f"{n['id']} {n['subject']} debt {n['debt_id'] or '-'} from {n['source']}: obtained {n['obtained_on']}, "
            f"due {n['due_on']} ({n['due_by'].replace('_', ' ')}); {state}")


@notices_app.command("list")
def notices_list(view: Annotated[str, typer.Option(help="open, overdue, due_soon, closed or all.")] = "open",
                 subject: Annotated[str | None, typer.Option(help="Only this subject's notices.")] = None,
                 as_json: JsonOpt = False, server: ServerOpt = None) -> None:
    """Art. 14 notices by deadline; overdue ones are marked."""
    api = ApiSession.load(server)
    if subject:
        items = api.json("GET", f"/v1/subjects/{_q(subject)}/notices")["items"]
    else:
        items = api.json("GET", "/v1/gdpr/notices", query={"view": view, "limit": "500"})["items"]
    if as_json:
        _print(items)
        return
    for notice in items:
        _echo(_notice_line(notice))
    if not items:
        _echo("no notices")


@notices_app.command("close")
def notices_close(notice_id: Annotated[str, typer.Argument(help="Notice id (ntc_...).")],
                  given_on: Annotated[str | None, typer.Option(help="YYYY-MM-DD the information was given.")] = None,
                  channel: Annotated[str | None, typer.Option(
                      help="letter, email, portal, sms_link, in_person.")] = None,
                  exemption: Annotated[str | None, typer.Option(
                      help="An Art. 14(5) ground: already_informed, disproportionate_effort, required_by_law, "
                           "professional_secrecy.")] = None,
                  as_json: JsonOpt = False, server: ServerOpt = None) -> None:
    """Record the Art. 14 information given (day and channel), or not due (an Art. 14(5) ground)."""
    body = {k: v for k, v in (("given_on", given_on), ("channel", channel), ("exemption", exemption)) if v}
    notice = ApiSession.load(server).json("POST", f"/v1/gdpr/notices/{_q(notice_id)}/close", body=body)
    if as_json:
        _print(notice)
    else:
        _echo(_notice_line(notice))


@recipients_app.command("add")
def recipients_add(subject: SubjectArg,
                   kind: Annotated[str, typer.Argument(help="creditor, assignee, debt_register, bailiff, court, "
                                                            "lawyer, other.")],
                   name: Annotated[str, typer.Argument(help="The organisation the data was disclosed to.")],
                   disclosed_on: Annotated[str, typer.Option(help="YYYY-MM-DD of the first disclosure.")],
                   debt_id: Annotated[str | None, typer.Option(help="The debt it concerns.")] = None,
                   server: ServerOpt = None) -> None:
    """Record a recipient of the subject's data."""
    body = {"kind": kind, "name": name, "disclosed_on": disclosed_on, **({"debt_id": debt_id} if debt_id else {})}
    recipient = ApiSession.load(server).json("POST", f"/v1/subjects/{_q(subject)}/recipients", body=body)
    _echo(f"{recipient['id']} {recipient['kind']} {recipient['name']} since {recipient['disclosed_on']}")


@recipients_app.command("show")
def recipients_show(subject: SubjectArg, as_json: JsonOpt = False, server: ServerOpt = None) -> None:
    """The subject's recipients and the notifications of changes sent or due to each."""
    items = ApiSession.load(server).json("GET", f"/v1/subjects/{_q(subject)}/recipients")["items"]
    if as_json:
        _print(items)
        return
    for recipient in items:
        _echo(f"{recipient['id']} {recipient['kind']} {recipient['name']} since {recipient['disclosed_on']}")
        for n in recipient["notifications"]:
            _echo(f"  {n['id']} {n['action']} (Art. {n['article']}, {n['request_id']}): {n['status']}"
                  + (f" on {n['notified_on']} by {n['method']}" if n["notified_on"] else ""))


@recipients_app.command("pending")
def recipients_pending(as_json: JsonOpt = False, server: ServerOpt = None) -> None:
    """Art. 19 notifications still to send."""
    items = ApiSession.load(server).json("GET", "/v1/gdpr/recipient-notifications")["items"]
    if as_json:
        _print(items)
        return
    table = Table("notification", "subject", "recipient", "action", "request")
    for n in items:
        table.add_row(n["id"], n["subject"], f"{n['recipient']} ({n['recipient_kind']})", n["action"], n["request_id"])
    console.print(table)


@recipients_app.command("outcome")
def recipients_outcome(notification_id: Annotated[str, typer.Argument(help="Notification id (rnt_...).")],
                       outcome: Annotated[str, typer.Argument(help="notified, impossible or disproportionate.")],
                       notified_on: Annotated[str | None, typer.Option(help="YYYY-MM-DD it was sent.")] = None,
                       method: Annotated[str | None, typer.Option(help="letter, email, api, portal, epuap.")] = None,
                       reason: Annotated[str | None, typer.Option(help="Why it cannot be sent.")] = None,
                       server: ServerOpt = None) -> None:
    """Record that a recipient was told, or why it could not be."""
    body = {"outcome": outcome, **{k: v for k, v in (("notified_on", notified_on), ("method", method),
                                                     ("reason", reason)) if v}}
    n = ApiSession.load(server).json("POST", f"/v1/gdpr/recipient-notifications/{_q(notification_id)}", body=body)
    _echo(f"{n['id']} {n['recipient']}: {n['status']}")


def _breach_line(b: dict[str, Any]) -> str:
    if b["authority_notified_at"]:
        clock = f"authority notified {b['authority_notified_at']}" + ("" if b["notified_in_time"] else " (late)")
    elif b["risk"] == "unlikely":
        clock = "not notified: unlikely to result in a risk"
    else:
        clock = "OVERDUE" if b["overdue"] else f"notify by {b['notify_by']} ({b['hours_left']} h left)"
    return f"{b['id']} aware {b['aware_at']}, risk {b['risk']}, {b['subjects_count'] or '?'} subject(s): {clock}"


@breaches_app.command("record")
def breaches_record(body: Annotated[str, typer.Argument(help="JSON body (see POST /v1/gdpr/breaches); '-' reads "
                                                             "stdin.")],
                    as_json: JsonOpt = False, server: ServerOpt = None) -> None:
    """Add a breach to the register: facts, effects, remedial action, risk."""
    import sys
    from pathlib import Path

    text = sys.stdin.read() if body == "-" else Path(body).read_text(encoding="utf-8")
    breach = ApiSession.load(server).json("POST", "/v1/gdpr/breaches", body=json.loads(text))
    if as_json:
        _print(breach)
    else:
        _echo(_breach_line(breach))


@breaches_app.command("list")
def breaches_list(as_json: JsonOpt = False, server: ServerOpt = None) -> None:
    """The breach register with each breach's 72-hour clock."""
    items = ApiSession.load(server).json("GET", "/v1/gdpr/breaches", query={"limit": "500"})["items"]
    if as_json:
        _print(items)
        return
    for breach in items:
        _echo(_breach_line(breach))


@breaches_app.command("notified")
def breaches_notified(breach_id: Annotated[str, typer.Argument(help="Breach id (brc_...).")],
                      at: Annotated[str, typer.Option(help="When the authority was notified (RFC 3339).")],
                      reference: Annotated[str | None, typer.Option(help="The authority's reference.")] = None,
                      server: ServerOpt = None) -> None:
    """Record the notification of the supervisory authority (Art. 33(1))."""
    body = {"authority_notified_at": at, **({"authority_reference": reference} if reference else {})}
    _echo(_breach_line(ApiSession.load(server).json("POST", f"/v1/gdpr/breaches/{_q(breach_id)}/update", body=body)))
