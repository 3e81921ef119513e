"""Every console page, asked by every kind of person, against the Console table of docs/authorisation-matrix.md.

The console is not part of the API's route table (ADR 0012), so the People table does not cover it;
this test does, the same way: it lists every route of the mounted console router, calls each (GET
as is; POST with the session's CSRF token and an otherwise empty form, so that a page that lets
the person in answers its form again) with real ids (a subject with a recording, requests, a
break-glass entry, a hold), and compares the outcome with the table's cell. A route missing from
the table, or a row for a route that does not exist, fails with its name.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from faker import Faker
from fastapi.testclient import TestClient

from api.console.web import PRE_COOKIE, csrf_token
from identity.principal import Role
from identity.testing import add_session, add_user
from tests.security.conftest import JUSTIFICATION, Api, Who, csrf, debtor_fields

MATRIX = Path(__file__).resolve().parents[2] / "docs" / "authorisation-matrix.md"
LEVELS = ("pw", "stale", "fresh")
COLUMNS = ["anon", *(f"{role.value}/{level}" for role in Role for level in LEVELS)]
OUTCOMES = {"✓", "login", "enrol", "403"}
FRESH_REQUEST = {"POST /console/requests/{request_id}/export", "POST /console/requests/{request_id}/erase"}


def console_table() -> dict[str, dict[str, str]]:
    """The Console table: route -> column -> outcome."""
    rows: dict[str, dict[str, str]] = {}
    section, header = "", None
    for line in MATRIX.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
            continue
        if section != "Console" or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "route":
            header = cells
        elif header is not None and not set(cells[0]) <= set("-: "):
            route = cells[0].strip("`")
            assert route not in rows, f"{route} appears twice in the Console table"
            assert set(cells[1:]) <= OUTCOMES, f"{route}: cells must be one of {sorted(OUTCOMES)}"
            rows[route] = dict(zip(header[1:], cells[1:], strict=True))
    assert header == ["route", *COLUMNS], "the Console table's columns are anon and every role at three levels"
    return rows


def console_routes() -> list[str]:
    """Every console route as "METHOD /path": the two of the console's router and every page under /console."""
    from api.console.routes import pages, router

    def flat(routes: list[Any]) -> list[Any]:
        try:
            from fastapi.routing import iter_route_contexts
        except ImportError:  # older FastAPI keeps included routes flat
            return routes
        return list(iter_route_contexts(routes))

    out = [f"{m} {r.path}" for r in router.routes for m in sorted(getattr(r, "methods", None) or ()) if m != "HEAD"]
    out += [f"{m} /console{r.path}" for r in flat(pages.routes) for m in sorted(getattr(r, "methods", None) or ())
            if m != "HEAD"]
    return out


def _outcome(status: int, location: str) -> str:
    if status == 403:
        return "403"
    if status in (302, 303, 307) and "/console/login?next=" in location:
        return "login"  # no live session: the log-in page, then back (a log-out's own redirect is a success)
    if status in (302, 303, 307) and location.endswith("/console/enrol"):
        return "enrol"
    return "✓"


class Fixture:
    """Real ids for the path parameters, and a fresh verified request where a call would close one."""

    def __init__(self, api: Api, fake: Faker) -> None:
        import os

        self.api = api
        self.token = api.new_subject(debtor_fields(fake))
        stored = api.http.post(f"/v1/subjects/{self.token}/recordings", params={"announced": "true"},
                               content=os.urandom(3000),
                               headers=api.client("contacts:write").headers | {"Content-Type": "audio/ogg"})
        self.recording = stored.json()["recording_id"]
        self.request = self.new_request()
        hold = api.http.post("/v1/gdpr/holds", json={"subject": self.token, "reason": "court_proceedings",
                                                     "starts_on": "2026-01-05"}, headers=api.person("dpo").headers)
        self.hold = hold.json()["id"]
        officer = api.person("compliance_officer")
        api.http.post(f"/v1/subjects/{self.token}/reveal", json={"fields": ["pesel"], "purpose": "audit",
                                                                  "justification": JUSTIFICATION},
                      headers=officer.headers)
        self.break_glass = api.entries(self.token, "vault.access")[-1].index
        self.debt, self.notice, self.notification, self.breach = self.registers()

    def registers(self) -> tuple[str, str, str, str]:
        """A bought debt (its Art. 14 notice), a recipient told of a rectification, a recorded breach."""
        api, dpo = self.api, self.api.person("dpo").headers
        today = api.runtime.clock.now().date().isoformat()
        api.http.post("/v1/debts", headers=api.client("contacts:write").headers, json={
            "id": "D-MATRIX-1", "subject": self.token, "creditor": "Przykładowy Bank S.A.", "creditor_kind": "bank",
            "kind": "business", "consumer": True, "amount_minor": 50_000, "due_date": "2025-01-31",
            "assigned_on": today})
        [notice] = api.http.get(f"/v1/subjects/{self.token}/notices", headers=dpo).json()["items"]
        api.http.post(f"/v1/subjects/{self.token}/recipients", headers=dpo, json={
            "kind": "debt_register", "name": "BIG InfoMonitor S.A.", "disclosed_on": today})
        rectification = self.new_request("rectification")
        api.http.post(f"/v1/gdpr/requests/{rectification}/rectify", headers=dpo,
                      json={"field": "first_name", "values": ["Anna"]})
        [pending] = api.http.get("/v1/gdpr/recipient-notifications", headers=dpo).json()["items"]
        breach = api.http.post("/v1/gdpr/breaches", headers=dpo, json={
            "aware_at": api.runtime.clock.now().isoformat(), "nature": ["confidentiality"],
            "data_categories": ["contact"], "subjects_count": 3, "actor_id": "collector-17", "risk": "risk",
            "facts": "A printed call list was left on a train.", "effects": "Names of three debtors may be known.",
            "remedial_action": "Printing of call lists disabled."}).json()
        return "D-MATRIX-1", str(notice["id"]), str(pending["id"]), str(breach["id"])

    def new_request(self, kind: str = "access") -> str:
        dpo = self.api.person("dpo")
        today = self.api.runtime.clock.now().date().isoformat()
        created = self.api.http.post("/v1/gdpr/requests", json={"subject": self.token, "kind": kind,
                                                                "received_on": today, "channel": "letter"},
                                     headers=dpo.headers).json()["id"]
        self.api.http.post(f"/v1/gdpr/requests/{created}/verify", json={"method": "id_document"}, headers=dpo.headers)
        return str(created)

    def url(self, route: str) -> str:
        params = {"token": self.token, "recording_id": self.recording, "request_id": self.request,
                  "index": str(self.break_glass), "hold_id": self.hold, "language": "en",
                  "debt_id": self.debt, "notice_id": self.notice, "notification_id": self.notification,
                  "breach_id": self.breach}
        if route in FRESH_REQUEST:
            params["request_id"] = self.new_request("erasure" if route.endswith("/erase") else "access")
        path = route.split(" ", 1)[1]
        return re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], path)


def _person(api: Api, column: str) -> Who | None:
    if column == "anon":
        return None
    role, level = column.split("/")
    now = api.runtime.clock.now()
    verified = {"pw": None, "stale": now - timedelta(minutes=11), "fresh": now - timedelta(minutes=1)}[level]
    with api.runtime.sessions.begin() as session:
        user = add_user(session, roles=[role], now=now)
        token = add_session(session, user, now=now, second_factor_at=verified)
        user_id = user.id
    return Who({}, user_id, token)


def observed(api: Api, fixture: Fixture, routes: list[str]) -> dict[str, dict[str, str]]:
    """What each console route answers to each column now."""
    people: dict[str, Who | None] = {column: _person(api, column) for column in COLUMNS}
    out: dict[str, dict[str, str]] = {}
    for route in routes:
        method = route.split(" ", 1)[0]
        for column in COLUMNS:
            who = people[column]
            if route == "POST /console/logout" and who is not None:
                who = _person(api, column)  # logging out ends the session: a fresh one each time
            browser = api.console(who) if who is not None else TestClient(
                api.http.app, raise_server_exceptions=False, follow_redirects=False)
            data: dict[str, Any] = {"csrf": csrf(who)} if who is not None else {}
            if route == "POST /console/login":  # the log-in form's token is bound to the pre-session cookie
                browser.cookies.set(PRE_COOKIE, "pre-session-of-the-test", path="/console")
                data = {"csrf": csrf_token("pre-session-of-the-test")}
            answer = browser.request(method, fixture.url(route), data=data if method == "POST" else None)
            out.setdefault(route, {})[column] = _outcome(answer.status_code, answer.headers.get("location", ""))
    return out


def render(table: dict[str, dict[str, str]]) -> str:
    """The table as docs/authorisation-matrix.md holds it (to write it when a route is added)."""
    lines = ["| route | " + " | ".join(COLUMNS) + " |", "|---|" + ":-:|" * len(COLUMNS)]
    lines += [f"| `{route}` | " + " | ".join(cells[c] for c in COLUMNS) + " |" for route, cells in table.items()]
    return "\n".join(lines)


class TestConsoleMatrix:
    def test_every_console_route_has_a_row(self) -> None:
        """A console route missing from the Console table, or a row for a route that does not exist, fails."""
        table, routes = console_table(), console_routes()
        assert [r for r in routes if r not in table] == [], "add these console routes to the Console table"
        assert sorted(set(table) - set(routes)) == [], "the Console table lists routes the console does not have"

    def test_every_cell_is_what_the_console_answers(self, api: Api, fake: Faker) -> None:
        """Each console route, called as each kind of person, answers what its cell says."""
        table = console_table()
        got = observed(api, Fixture(api, fake), [r for r in console_routes() if r in table])
        wrong = [f"{route} as {column}: expected {table[route][column]}, got {outcome}"
                 for route, cells in got.items() for column, outcome in cells.items()
                 if outcome != table[route][column]]
        assert not wrong, "cells that differ from the Console table:\n" + "\n".join(wrong[:40]) + "\n\n" + render(got)
