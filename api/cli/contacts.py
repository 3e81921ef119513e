"""``tarcza contact``: the contact-policy firewall, contacts, debts, cases and preferences, through a server.

Like ``tarcza subject`` these commands call a running server with the session ``tarcza
login`` stored, so the policies and the audit log apply exactly as over HTTP. A contact,
debt or case is given as JSON (a file, or ``-`` for stdin), the body of the matching route
(see ``/docs``): notes and GPS positions stay out of the process list. A refusal prints the
server's problem detail on one ``error:`` line and exits 1; a contact refused by the
firewall also prints the rules that refused it.

``tarcza contact rules`` needs no server: it validates a rules file and prints its rules.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli.common import console
from api.cli.vault import ApiSession, JsonOpt, ServerOpt
from core.errors import InvalidInputError

app = typer.Typer(no_args_is_help=True, help="Contacts with debtors and the contact-policy firewall, debts and "
                  "cases, through a running server's API (log in first with `tarcza login --server URL`).")

JsonFile = Annotated[Path, typer.Argument(help="JSON body (see the API docs); '-' reads stdin.")]
IdempotencyOpt = Annotated[str | None, typer.Option(help="Retrying with the same key records it once.")]


def _echo(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _read(path: Path) -> dict[str, Any]:
    text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidInputError("the input is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidInputError("the input must be a JSON object")
    return value


def _quoted(*parts: str) -> str:
    return "/".join(urllib.parse.quote(p, safe="") for p in parts)


def _print(value: Any) -> None:
    _echo(json.dumps(value, ensure_ascii=False, indent=2))


@app.command("check")
def check(body: JsonFile, as_json: JsonOpt = False, server: ServerOpt = None) -> None:
    """Ask the firewall whether a planned contact is allowed; exits 1 if it would be refused."""
    verdict = ApiSession.load(server).json("POST", "/v1/contacts/check", body=_read(body))
    if as_json:
        _print(verdict)
    else:
        _echo(("allowed" if verdict["allowed"] else "refused") + (" (flagged)" if verdict["flagged"] else ""))
        for v in verdict["violations"]:
            _echo(f"  {v['action']:6} {v['rule']}: {v['message']}")
    if not verdict["allowed"]:
        raise typer.Exit(1)


@app.command("record")
def record(body: JsonFile, idempotency_key: IdempotencyOpt = None, as_json: JsonOpt = False,
           server: ServerOpt = None) -> None:
    """Record a contact (firewall, PII scrubbing, sealing, audit append); prints the receipt."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    receipt = ApiSession.load(server).json("POST", "/v1/contacts", body=_read(body), headers=headers)
    if as_json:
        _print(receipt)
        return
    flags = f", flagged by {', '.join(receipt['policy_flags'])}" if receipt["policy_flags"] else ""
    _echo(f"recorded {receipt['event_type']} {receipt['event_id']} at log index {receipt['index']}"
          f" ({receipt['pii_found']} PII value(s) sealed from the notes{flags})")


@app.command("history")
def history(token: Annotated[str, typer.Argument(help="Subject token (sub_...).")],
            limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
            cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
            as_json: JsonOpt = False, server: ServerOpt = None) -> None:
    """The subject's contacts, newest first: channel, outcome, firewall decision, log index."""
    query = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
    page = ApiSession.load(server).json("GET", f"/v1/subjects/{_quoted(token)}/contacts", query=query)
    if as_json:
        _print(page)
        return
    table = Table("when", "type", "channel", "outcome", "decision", "rules", "log index")
    for item in page["items"]:
        table.add_row(item["occurred_at"], item["event_type"], item["channel"], item["outcome"] or "",
                      item["decision"], ",".join(item["rules"]), str(item["log_index"]))
    console.print(table)
    if page["next_cursor"]:
        _echo(f"more: --cursor '{page['next_cursor']}'")


@app.command("debt")
def debt(body: JsonFile, as_json: JsonOpt = False, server: ServerOpt = None) -> None:
    """Record a debt of a subject (idempotent by its id); prints it with its limitation date."""
    info = ApiSession.load(server).json("POST", "/v1/debts", body=_read(body))
    if as_json:
        _print(info)
    else:
        barred = (f"time-barred {'since' if info['time_barred'] else 'from'} {info['time_barred_on']}"
                  if info["time_barred_on"] else "period not running (proceedings pending or suspended)")
        _echo(f"debt {info['id']} ({info['kind']}, {'consumer' if info['consumer'] else 'business'}): {barred}")


@app.command("debt-status")
def debt_status(debt_id: Annotated[str, typer.Argument(help="Debt id.")],
                status: Annotated[str, typer.Argument(help="open, settled or written_off.")],
                settled_on: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: today).")] = None,
                server: ServerOpt = None) -> None:
    """Mark a debt settled or written off (or open again)."""
    body: dict[str, Any] = {"status": status, **({"settled_on": settled_on} if settled_on else {})}
    info = ApiSession.load(server).json("POST", f"/v1/debts/{_quoted(debt_id)}/status", body=body)
    _echo(f"debt {info['id']} is {info['status']}")


@app.command("case")
def case(case_id: Annotated[str, typer.Argument(help="Case id (from the collection system).")],
         subject: Annotated[str, typer.Argument(help="Subject token (sub_...).")],
         debt_id: Annotated[str | None, typer.Option(help="The debt the case is about.")] = None,
         server: ServerOpt = None) -> None:
    """Open a collection case (idempotent by its id); assign agents with `tarcza user assign`."""
    body = {"id": case_id, "subject": subject, **({"debt_id": debt_id} if debt_id else {})}
    info = ApiSession.load(server).json("POST", "/v1/cases", body=body)
    _echo(f"case {info['id']} is {info['status']}")


@app.command("preferences")
def preferences(
    token: Annotated[str, typer.Argument(help="Subject token (sub_...).")],
    opt_out: Annotated[list[str] | None, typer.Option(help="A channel the subject opted out of (repeat); "
                                                      "'none' clears them.")] = None,
    weekend: Annotated[list[str] | None, typer.Option(help="A channel with weekend consent (repeat); 'none' "
                                                      "clears them.")] = None,
    cease_contact: Annotated[bool | None, typer.Option("--cease-contact/--resume-contact")] = None,
    time_zone: Annotated[str | None, typer.Option(help="IANA time zone of the debtor.")] = None,
    server: ServerOpt = None,
) -> None:
    """Show the subject's contact rules, or change them when options are given."""
    api = ApiSession.load(server)
    path = f"/v1/subjects/{_quoted(token)}/contact-preferences"
    body: dict[str, Any] = {}
    if opt_out is not None:
        body["opted_out_channels"] = [c for c in opt_out if c != "none"]
    if weekend is not None:
        body["weekend_channels"] = [c for c in weekend if c != "none"]
    if cease_contact is not None:
        body["cease_contact"] = cease_contact
    if time_zone is not None:
        body["time_zone"] = time_zone
    _print(api.json("PUT", path, body=body) if body else api.json("GET", path))


@app.command("rules")
def rules(path: Annotated[Path | None, typer.Argument(help="A rules file (default: the packaged one).")] = None,
          as_json: JsonOpt = False) -> None:
    """Validate a contact rules file and print its rules; exits 1 with the key path if it is invalid."""
    from contacts.rules import load_rules, rules_from_yaml

    loaded = load_rules() if path is None else rules_from_yaml(path.read_text(encoding="utf-8"), str(path))
    document = loaded.document.model_dump(mode="json")
    if as_json:
        _print({"sha256": loaded.sha256, **document})
        return
    _echo(f"contact rules {loaded.source}: valid, sha256 {loaded.sha256}")
    table = Table("rule", "enabled", "action", "directions", "source")
    for name, rule in document["rules"].items():
        table.add_row(name, "yes" if rule.get("enabled", True) else "no", rule["action"],
                      ",".join(rule.get("directions", [])), rule["source"]["kind"])
    console.print(table)
