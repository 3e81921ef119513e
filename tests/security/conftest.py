"""The attacker's bench: the app of an initialised runtime over HTTP (TestClient), on SQLite and PostgreSQL.

Each test plays one principal against the real routes (API and console) and reads what the
server wrote to the audit log from the same database. People and clients are made with
``identity.testing`` (real sessions and tokens, no login ceremony); every personal value is
synthetic (Faker ``pl_PL``, fixed seed).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from faker import Faker
from fastapi.testclient import TestClient

from api.app import create_app
from api.runtime import Runtime
from audit.repository import EntryFilter
from identity.testing import add_client_token, add_session, add_user

SEED = 20261216
PURPOSE = "debt_collection"
TUESDAY_10 = "2026-11-17T10:00:00+01:00"  # a working day in Europe/Warsaw, in the firewall's hours
JUSTIFICATION = "Complaint 2026/117: the debtor disputes the amount; checking the identity we hold."


@dataclass(frozen=True)
class Who:
    """A principal to call the API as: its bearer headers, its id (as audit entries name it) and its token."""

    headers: dict[str, str]
    id: str
    token: str


@dataclass
class Api:
    """An HTTP client on the app of an initialised runtime, principals to call it as, and the log to read."""

    http: TestClient
    runtime: Runtime

    def person(self, *roles: str, cases: Iterable[str] = (), minutes_ago: float | None = 1) -> Who:
        """A user with ``roles`` (assigned ``cases``) whose second factor was verified that many minutes ago."""
        now = self.runtime.clock.now()
        verified = None if minutes_ago is None else now - timedelta(minutes=minutes_ago)
        with self.runtime.sessions.begin() as session:
            user = add_user(session, roles=roles, now=now, assigned_cases=cases)
            token = add_session(session, user, now=now, second_factor_at=verified)
            user_id = user.id
        return Who({"Authorization": f"Bearer {token}"}, user_id, token)

    def client(self, *scopes: str, purposes: Iterable[str] | None = None) -> Who:
        """An API client holding ``scopes`` (limited to ``purposes`` when given)."""
        from identity.models import AccessToken
        from identity.tokens import token_hash

        with self.runtime.sessions.begin() as session:
            token = add_client_token(session, scopes=scopes, now=self.runtime.clock.now(), purposes=purposes)
            client_id = session.query(AccessToken).filter_by(token_hash=token_hash(token)).one().client_id
        return Who({"Authorization": f"Bearer {token}"}, client_id, token)

    def entries(self, subject: str | None = None, event_type: str | None = None,
                start: int | None = None) -> list[Any]:
        """Entries of the log (index and event), oldest first."""
        page = self.runtime.audit.query(EntryFilter(subject=subject, event_type=event_type, start=start),
                                        limit=5000)
        return list(page.items)

    def events(self, subject: str | None = None, event_type: str | None = None) -> list[dict[str, Any]]:
        return [entry.event for entry in self.entries(subject, event_type)]

    def new_subject(self, fields: dict[str, Any], *, kind: str = "debtor") -> str:
        """A subject created by a DPO; returns its token."""
        created = self.http.post("/v1/subjects", json={"kind": kind, "fields": fields},
                                 headers=self.person("dpo").headers)
        assert created.status_code == 201, created.text
        return str(created.json()["token"])

    def add_case(self, token: str, case_id: str, debt_id: str | None = None) -> None:
        writer = self.client("contacts:write").headers
        answer = self.http.post("/v1/cases", json={"id": case_id, "subject": token, "debt_id": debt_id},
                                headers=writer)
        assert answer.status_code == 201, answer.text

    def add_debt(self, token: str, debt_id: str, *, due: str = "2025-06-30", status: str | None = None,
                 settled_on: str | None = None) -> None:
        writer = self.client("contacts:write").headers
        answer = self.http.post("/v1/debts", json={
            "id": debt_id, "subject": token, "creditor": "Fikcyjny Bank S.A.", "kind": "general",
            "consumer": True, "amount_minor": 125_000, "currency": "PLN", "due_date": due}, headers=writer)
        assert answer.status_code == 201, answer.text
        if status is not None:
            changed = self.http.post(f"/v1/debts/{debt_id}/status", json={"status": status, "settled_on": settled_on},
                                     headers=writer)
            assert changed.status_code == 200, changed.text

    def restrict(self, token: str) -> None:
        answer = self.http.put(f"/v1/subjects/{token}/restriction", json={"restricted": True},
                               headers=self.person("dpo").headers)
        assert answer.status_code == 200, answer.text

    def console(self, who: Who) -> TestClient:
        """A client of the same app holding ``who``'s session as the console's cookie."""
        from api.console.web import SESSION_COOKIE

        return TestClient(self.http.app, raise_server_exceptions=False, follow_redirects=False,
                          cookies={SESSION_COOKIE: who.token}, base_url="http://testserver")


def csrf(who: Who) -> str:
    """The console's CSRF token of ``who``'s session (what its pages embed in every form)."""
    from api.console.web import csrf_token

    return csrf_token(who.token)


def archive_data(content: bytes) -> dict[str, Any]:
    """``data.json`` of a subject export archive."""
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        return dict(json.loads(zf.read("data.json")))


@pytest.fixture
def api(initialised_runtime: Runtime) -> Api:
    return Api(TestClient(create_app(runtime=initialised_runtime), raise_server_exceptions=False),
               initialised_runtime)


@pytest.fixture
def fake() -> Faker:
    faker = Faker("pl_PL")
    faker.seed_instance(SEED)
    return faker


def debtor_fields(fake: Faker) -> dict[str, str]:
    """Synthetic values of a debtor, each valid for its field."""
    return {"first_name": fake.first_name_female(), "last_name": fake.last_name_female(), "pesel": fake.pesel(),
            "email": fake.unique.safe_email(), "iban": fake.iban()}
