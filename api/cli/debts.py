"""``tarcza debt``: a debt's legal history, parties and limitation period, through a running server.

Like ``tarcza contact``, these commands call a server with the session ``tarcza login``
stored, so the policies and the audit log apply exactly as over HTTP. ``tarcza debt show``
prints the limitation period with its reasoning, one step per event, each naming its
article; ``tarcza debt event add`` records an event of the history (a judgment, a payment
order, a court action, enforcement, mediation, an acknowledgement, a part payment, a
suspension for force majeure, an assignment) and prints the period read again. A refusal
prints the server's problem detail on one ``error:`` line and exits 1.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli.common import console
from api.cli.vault import ApiSession, JsonOpt, ServerOpt

app = typer.Typer(no_args_is_help=True, help="Debts as the law sees them: legal history, parties and the "
                  "limitation period with its reasoning (through a running server).")
event_app = typer.Typer(no_args_is_help=True, help="Events of a debt's legal history.")
party_app = typer.Typer(no_args_is_help=True, help="Guarantors and co-debtors of a debt.")
app.add_typer(event_app, name="event")
app.add_typer(party_app, name="party")

DebtArg = Annotated[str, typer.Argument(help="Debt id.")]
EVENT_KINDS = ("assignment, judgment, payment_order, court_action_started, court_action_ended, enforcement_started, "
               "enforcement_ended, mediation_started, mediation_ended, acknowledgement, part_payment, "
               "suspension_started, suspension_ended")


def _echo(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _path(debt_id: str, *rest: str) -> str:
    return "/v1/debts/" + "/".join(urllib.parse.quote(p, safe="") for p in (debt_id, *rest))


def show_debt(debt: dict[str, Any], as_json: bool) -> None:
    """A debt with its limitation period and the reasoning, or its JSON."""
    if as_json:
        _echo(json.dumps(debt, ensure_ascii=False, indent=2))
        return
    limitation = debt["limitation"]
    if debt["time_barred_on"] is None:
        state = "not running (proceedings pending or suspended)"
    else:
        state = f"time-barred {'since' if debt['time_barred'] else 'from'} {debt['time_barred_on']}"
    checked = "" if debt["kind_checked"] else "; creditor kind unknown: the claim kind was not checked"
    _echo(f"debt {debt['id']} ({debt['kind']}, {'consumer' if debt['consumer'] else 'business'}, "
          f"{debt['status']}), for {debt['viewer']} as {debt['role']}: {state}{checked}")
    table = Table("on", "article", "reasoning", "period ends")
    for step in limitation["steps"]:
        table.add_row(step["on"], step["article"], step["text"], step["limitation_end"] or "-")
    console.print(table)
    for party in debt["parties"]:
        barred = party["time_barred_on"] or "not running"
        _echo(f"  {party['role']} {party['subject']}: time-barred from {barred}")


@app.command("show")
def show(debt_id: DebtArg, as_json: JsonOpt = False, server: ServerOpt = None) -> None:
    """A debt with its legal history and its limitation period, each step naming its article."""
    show_debt(ApiSession.load(server).json("GET", _path(debt_id)), as_json)


@event_app.command("add")
def event_add(
    debt_id: DebtArg,
    kind: Annotated[str, typer.Argument(help=EVENT_KINDS)],
    on: Annotated[str, typer.Option(help="YYYY-MM-DD it took effect (a judgment: the day it became final).")],
    source: Annotated[str, typer.Option(help="Where it is documented: a docket, a deed, a statement.")] = "",
    party: Annotated[str | None, typer.Option(help="The guarantor or co-debtor it concerns (subject token).")] = None,
    assignee: Annotated[str | None, typer.Option(help="For an assignment: the organisation it went to.")] = None,
    amount_minor: Annotated[int | None, typer.Option(help="For a part payment: the amount in minor units.")] = None,
    ground: Annotated[str | None, typer.Option(help="For a suspension: force_majeure.")] = None,
    withdrawn: Annotated[bool, typer.Option(help="A court action that ended withdrawn or returned.")] = False,
    idempotency_key: Annotated[str | None, typer.Option(help="Retrying with the same key records it once.")] = None,
    as_json: JsonOpt = False, server: ServerOpt = None,
) -> None:
    """Record an event of the debt's legal history; prints the period read again."""
    extra = {"party": party, "assignee": assignee, "amount_minor": amount_minor, "ground": ground}
    body: dict[str, Any] = {"kind": kind, "on": on, "source": source, "withdrawn": withdrawn,
                            **{name: value for name, value in extra.items() if value is not None}}
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    show_debt(ApiSession.load(server).json("POST", _path(debt_id, "events"), body=body, headers=headers), as_json)


@party_app.command("add")
def party_add(debt_id: DebtArg, subject: Annotated[str, typer.Argument(help="Subject token (sub_...).")],
              role: Annotated[str, typer.Option(help="guarantor or co_debtor.")] = "guarantor",
              as_json: JsonOpt = False, server: ServerOpt = None) -> None:
    """Link a guarantor or co-debtor to the debt; each has their own limitation period."""
    show_debt(ApiSession.load(server).json("POST", _path(debt_id, "parties"),
                                           body={"subject": subject, "role": role}), as_json)
