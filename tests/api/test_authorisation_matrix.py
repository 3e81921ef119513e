"""Every route of the app, called as every kind of principal, against docs/authorisation-matrix.md.

The table is the specification: an unexpected allow or refusal fails, and so does a route
of the app that the table does not list (or a row for a route that no longer exists).
Routes in the table's "Pending" section are known not to enforce their row yet: while they
differ the test is an expected failure naming them; once they match it fails, so that the
entry is removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.runtime import Runtime
from identity.principal import Role
from identity.scopes import SCOPES
from identity.testing import add_client_token, add_session, add_user

MATRIX = Path(__file__).resolve().parents[2] / "docs" / "authorisation-matrix.md"
LEVELS = ("pw", "stale", "fresh")
PEOPLE_COLUMNS = ["anon", *(f"{role.value}/{level}" for role in Role for level in LEVELS)]
CLIENT_COLUMNS = ["none", *SCOPES]
OUTCOMES = {"✓", "401", "403"}
_PATH_PARAM = re.compile(r"\{[^}]+\}")


@dataclass(frozen=True)
class Matrix:
    people: dict[str, dict[str, str]]  # route -> column -> outcome
    clients: dict[str, dict[str, str]]
    pending: set[str]
    people_header: list[str]
    client_header: list[str]


def _tables(text: str) -> Iterator[tuple[str, list[str], list[list[str]]]]:
    """(section heading, header, rows) of every table starting with a `route` column."""
    section, header, rows = "", None, []
    for line in [*text.splitlines(), ""]:
        if line.startswith("## "):
            section = line[3:].strip()
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is not None and header is None and cells[0] == "route":
            header, rows = cells, []
        elif cells is not None and header is not None:
            if not set(cells[0]) <= set("-: "):
                rows.append(cells)
        elif header is not None:
            yield section, header, rows
            header = None


def load_matrix() -> Matrix:
    found = {section: (header, rows) for section, header, rows in _tables(MATRIX.read_text(encoding="utf-8"))}
    missing = {"People", "API clients", "Pending"} - set(found)
    assert not missing, f"{MATRIX.name} lacks the section(s) {sorted(missing)}"

    def by_route(section: str) -> dict[str, dict[str, str]]:
        header, rows = found[section]
        out: dict[str, dict[str, str]] = {}
        for row in rows:
            route = row[0].strip("`")
            assert route not in out, f"{MATRIX.name}: {route} appears twice in {section}"
            assert len(row) == len(header), (
                f"{MATRIX.name}: {route} in {section} has {len(row)} cells, the header {len(header)}")
            bad = set(row[1:]) - OUTCOMES
            assert not bad, f"{MATRIX.name}: {route} in {section} has cells {sorted(bad)}; use ✓, 401 or 403"
            out[route] = dict(zip(header[1:], row[1:], strict=True))
        return out

    return Matrix(by_route("People"), by_route("API clients"), {r[0].strip("`") for r in found["Pending"][1]},
                  found["People"][0][1:], found["API clients"][0][1:])


def app_routes(app: FastAPI) -> list[str]:
    """Every route of the app as "METHOD /path" (HEAD left out), included routers flattened."""
    try:
        from fastapi.routing import iter_route_contexts
        routes = list(iter_route_contexts(app.routes))
    except ImportError:  # older FastAPI keeps included routes flat
        routes = list(app.routes)  # type: ignore[arg-type]
    return [f"{method} {route.path}" for route in routes
            for method in sorted(set(getattr(route, "methods", None) or ()) - {"HEAD"})]


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return load_matrix()


class TestTheTable:
    def test_columns_are_the_principal_kinds(self, matrix: Matrix) -> None:
        """People columns are anon plus every role at three levels; client columns are none plus every scope."""
        assert matrix.people_header == PEOPLE_COLUMNS
        assert matrix.client_header == CLIENT_COLUMNS

    def test_every_route_of_the_app_has_a_row(self, matrix: Matrix, tmp_path: Path) -> None:
        """A route missing from either table, or a row for a route that does not exist, fails with its name."""
        from core.settings import load_settings

        routes = app_routes(create_app(runtime=Runtime(load_settings(data_dir=tmp_path))))
        for table, rows in (("People", matrix.people), ("API clients", matrix.clients)):
            missing = [r for r in routes if r not in rows]
            assert not missing, (
                f"route(s) not in the {table} table of docs/authorisation-matrix.md: {', '.join(missing)}. "
                "Add a row saying who may call each (✓, 401 or 403 per principal kind); see the Legend there.")
            stale = sorted(set(rows) - set(routes))
            assert not stale, f"the {table} table lists route(s) the app does not have: {', '.join(stale)}"
        stale_pending = sorted(matrix.pending - set(routes))
        assert not stale_pending, f"Pending lists route(s) the app does not have: {', '.join(stale_pending)}"


@dataclass
class Caller:
    column: str
    runtime: Runtime
    roles: tuple[str, ...] = ()
    level: str | None = None  # pw, stale, fresh (people)
    scope: str | None = None  # clients: None means no scope
    kind: str = "anon"
    _token: str | None = None

    def token(self, *, fresh_one: bool = False) -> str | None:
        if self.kind == "anon":
            return None
        if self._token is None or fresh_one:
            now = self.runtime.clock.now()
            with self.runtime.sessions.begin() as session:
                if self.kind == "client":
                    token = add_client_token(session, scopes=[self.scope] if self.scope else [], now=now)
                else:
                    user = add_user(session, roles=self.roles, now=now)
                    second = {"pw": None, "stale": now - timedelta(minutes=11), "fresh": now - timedelta(minutes=1)}
                    token = add_session(session, user, now=now, second_factor_at=second[self.level or "pw"])
            if fresh_one:
                return token
            self._token = token
        return self._token


def _callers(runtime: Runtime) -> list[Caller]:
    out = [Caller("anon", runtime)]
    out += [Caller(f"{role.value}/{level}", runtime, roles=(role.value,), level=level, kind="user")
            for role in Role for level in LEVELS]
    out += [Caller(column, runtime, scope=None if column == "none" else column, kind="client")
            for column in CLIENT_COLUMNS]
    return out


def _outcome(status: int) -> str:
    if status in (401, 403):
        return str(status)
    return "5xx" if status >= 500 else "✓"


class TestEveryRouteAsEveryPrincipal:
    def test_matrix_holds(self, matrix: Matrix, initialised_runtime: Runtime) -> None:
        """Every cell of docs/authorisation-matrix.md is what the app answers: no unexpected allow or refusal."""
        app = create_app(runtime=initialised_runtime)
        client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
        routes = [r for r in app_routes(app) if r in matrix.people and r in matrix.clients]
        callers = _callers(initialised_runtime)
        wrong: dict[str, list[str]] = {}
        for route in routes:
            method, path = route.split(" ", 1)
            url = _PATH_PARAM.sub("0", path)
            for caller in callers:
                expected = (matrix.clients if caller.kind == "client" else matrix.people)[route][caller.column]
                token = caller.token(fresh_one=route == "POST /v1/auth/logout")
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                response = client.request(method, url, headers=headers)
                got = _outcome(response.status_code)
                if got != expected:
                    detail = response.json().get("detail", "") if response.headers.get(
                        "content-type", "").endswith("json") else ""
                    wrong.setdefault(route, []).append(
                        f"{route} as {caller.column}: expected {expected}, got {response.status_code} {detail}".strip())
        enforced = {r: v for r, v in wrong.items() if r not in matrix.pending}
        assert not enforced, "cells that differ from docs/authorisation-matrix.md:\n" + "\n".join(
            line for lines in enforced.values() for line in lines[:6])
        now_enforced = sorted(r for r in matrix.pending if r in routes and r not in wrong)
        assert not now_enforced, ("these Pending routes now match their rows; remove them from the Pending table: "
                                  + ", ".join(now_enforced))
        if wrong:
            pytest.xfail(f"{len(wrong)} Pending route(s) do not enforce their rows yet: " + ", ".join(sorted(wrong)))
