"""A property of the gate, over random principals, purposes and routes: no plaintext leaves without its entry.

For every call (a person with random roles, second-factor state and case assignment, or a client
with random scopes and purposes; a random purpose, justification or none; one of the routes
that can produce plaintext), every plaintext value of the subject found in the answer has an
allowing entry naming that principal, that subject and that value's field, appended during the
call and committed before the answer was read (its index is below the log's size at that time):
``vault.access`` for fields and notes, ``recording.played`` for a recording's bytes. An answer that
is not a success carries no plaintext at all. Then a sweep: every other GET route of the API and
the console, asked by principals allowed everything, answers no plaintext of the subject.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from dataclasses import dataclass
from typing import Any

import pytest
from faker import Faker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from identity.scopes import SCOPES
from tests.security.conftest import JUSTIFICATION, TUESDAY_10, Api, Who
from vault.fields import load_catalogue
from vault.validators import normalise

PURPOSES = ("debt_collection", "field_visit", "payment_processing", "complaint_handling", "gdpr_request", "erasure",
            "legal_claim", "audit")
CASE = "C-PROP-1"
AUDIO = os.urandom(20_000)
GATED = ("masked", "reveal", "bulk", "note", "play", "export", "console_subject")


@dataclass
class World:
    """One subject with fields, a noted visit (GPS) and a recording, and its plaintext values by field."""

    token: str
    event_id: str
    recording_id: str
    values: dict[str, set[str]]  # plaintext value -> the fields an entry may name for it


def _world(api: Api, fake: Faker) -> World:
    fields = {"first_name": "Gertruda", "last_name": "Wierzbięta-Szczupak", "pesel": fake.pesel(),
              "email": "gertruda.szczupak@example.pl", "iban": fake.iban(), "phone": "+48 601 777 312",
              "address": "ul. Przepiórcza 17/4, 02-677 Warszawa"}
    token = api.new_subject(fields)
    api.add_case(token, CASE)
    visit = api.http.post("/v1/contacts", json={
        "subject": token, "channel": "visit", "agent_id": "agent-9", "started_at": TUESDAY_10, "case_id": CASE,
        "outcome": "met_debtor", "notes": f"Dłużniczka podała PESEL {fields['pesel']} i e-mail {fields['email']}.",
        "gps": {"lat": 52.181234, "lon": 21.007654, "accuracy_m": 12}}, headers=api.client("contacts:write").headers)
    assert visit.status_code == 201, visit.text
    stored = api.http.post(f"/v1/subjects/{token}/recordings", params={"announced": "true"}, content=AUDIO,
                           headers=api.client("contacts:write").headers | {"Content-Type": "audio/ogg"})
    assert stored.status_code == 201, stored.text
    catalogue = load_catalogue()
    values: dict[str, set[str]] = {}
    for name, value in fields.items():
        canonical = normalise(name, catalogue.get(name).kind, value)
        values.setdefault(canonical, set()).add(name)
        values.setdefault(value, set()).add(name)
    for name in ("pesel", "email"):  # the note as written holds them too
        values[fields[name]].add("note")
    values["52.181234"] = {"gps"}
    return World(token, visit.json()["event_id"], stored.json()["recording_id"], values)


# -- principals ----------------------------------------------------------------------------------------
# Biased towards principals that are often allowed (a property checked only on refusals proves little):
# fresh factors and revealing roles come up more often, and purposes are mostly the principal's own.

ROLES = ("dpo", "dpo", "collector", "collector", "field_agent", "compliance_officer", "auditor", "admin")
people = st.builds(lambda roles, minutes, assigned: ("user", tuple(sorted(roles)), minutes, assigned),
                   st.sets(st.sampled_from(ROLES), min_size=1, max_size=2),
                   st.sampled_from([1, 1, 1, 11, None]), st.sampled_from([True, True, False]))
clients = st.builds(lambda scopes, purposes: ("client", tuple(sorted(scopes)), purposes),
                    st.sets(st.sampled_from([*SCOPES, "subjects:reveal", "subjects:read-masked", "gdpr:manage"]),
                            min_size=1, max_size=3),
                    st.one_of(st.none(), st.sets(st.sampled_from(PURPOSES), min_size=1, max_size=3)
                              .map(lambda p: tuple(sorted(p)))))


def _own_purposes(api: Api, spec: tuple[Any, ...]) -> tuple[str, ...]:
    if spec[0] == "user":
        return tuple(sorted(api.runtime.authorizer.parameters.purposes_of(spec[1]))) or PURPOSES
    return spec[2] or PURPOSES


def _make(api: Api, spec: tuple[Any, ...]) -> Who:
    if spec[0] == "user":
        _, roles, minutes, assigned = spec
        return api.person(*roles, cases=[CASE] if assigned else [], minutes_ago=minutes)
    _, scopes, purposes = spec
    return api.client(*scopes, purposes=purposes)


def _call(api: Api, world: World, who: Who, route: str, purpose: str, justified: bool, full: bool) -> Any:
    token, headers = world.token, who.headers
    body: dict[str, Any] = {"fields": ["first_name", "last_name", "pesel", "email", "iban", "phone", "address"],
                            "purpose": purpose} | ({"justification": JUSTIFICATION} if justified else {})
    if route == "masked":
        return api.http.get(f"/v1/subjects/{token}", params={"purpose": purpose}, headers=headers)
    if route == "reveal":
        return api.http.post(f"/v1/subjects/{token}/reveal", json=body, headers=headers)
    if route == "bulk":
        return api.http.post("/v1/subjects/reveal", json=body | {"subjects": [token]}, headers=headers)
    if route == "note":
        return api.http.get(f"/v1/contacts/{world.event_id}",
                            params={"view": "full" if full else "masked", "purpose": purpose}, headers=headers)
    if route == "play":
        return api.http.get(f"/v1/subjects/{token}/recordings/{world.recording_id}", params={"purpose": purpose},
                            headers=headers | ({"Range": "bytes=100-4099"} if full else {}))
    if route == "console_subject":
        return api.console(who).get(f"/console/subjects/{token}")
    return _export(api, world, who, justified, full)


def _export(api: Api, world: World, who: Who, justified: bool, recordings: bool) -> Any:
    manager = api.person("dpo")
    today = api.runtime.clock.now().date().isoformat()
    request_id = api.http.post("/v1/gdpr/requests", json={"subject": world.token, "kind": "access",
                                                         "received_on": today, "channel": "letter"},
                               headers=manager.headers).json()["id"]
    api.http.post(f"/v1/gdpr/requests/{request_id}/verify", json={"method": "id_document"}, headers=manager.headers)
    return api.http.post(f"/v1/gdpr/requests/{request_id}/export", params={"recordings": str(recordings).lower()},
                         json={"justification": JUSTIFICATION} if justified else None, headers=who.headers)


def _plaintext(content: bytes) -> bytes:
    """What of an answer can carry plaintext: the body, or for a zip its data.json and recordings."""
    if content[:2] != b"PK":
        return content
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        return b"\n".join(zf.read(name) for name in zf.namelist() if not name.startswith("log/"))


def _found(world: World, content: bytes) -> dict[str, set[str]]:
    text = content.decode("utf-8", "replace")
    unescaped = json.dumps(text)  # a value may appear JSON-escaped (Polish letters)
    found = {value: fields for value, fields in world.values.items()
             if value in text or json.dumps(value)[1:-1] in unescaped}
    if AUDIO[100:164] in content or AUDIO[:64] in content:
        found["<recording>"] = {"recording"}
    return found


@pytest.fixture
def world(api: Api, fake: Faker) -> World:
    return _world(api, fake)


class TestEveryPlaintextHasItsEntry:
    @pytest.mark.slow
    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
    @given(data=st.data())
    def test_no_plaintext_without_an_entry_committed_before_it(self, api: Api, world: World, data: st.DataObject
                                                                ) -> None:
        """Random principal, purpose and gated route: each plaintext value answered has an allowing entry naming
        that principal, subject and field, appended during the call, before the answer."""
        spec = data.draw(st.one_of(people, people, clients), label="principal")
        route = data.draw(st.sampled_from([r for r in GATED if spec[0] == "user" or r != "console_subject"]),
                          label="route")
        purpose = data.draw(st.one_of(st.sampled_from(_own_purposes(api, spec)), st.sampled_from(_own_purposes(
            api, spec)), st.sampled_from(PURPOSES)), label="purpose")
        justified, full = data.draw(st.booleans(), label="justified"), data.draw(st.booleans(), label="full")
        who = _make(api, spec)
        before = api.runtime.audit.size()
        answer = _call(api, world, who, route, purpose, justified, full)
        content = _plaintext(answer.content) if answer.status_code < 300 else answer.content
        after = api.runtime.audit.size()
        found = _found(world, content)
        if answer.status_code >= 300:
            assert not found, f"{route} answered {answer.status_code} with plaintext of {sorted(found.values())}"
            return
        entries = [e for e in api.entries(world.token, start=before) if e.index < after
                   and e.event["actor"]["id"] == who.id]
        opened: set[str] = set()
        for entry in entries:
            payload = entry.event["payload"]
            if entry.event["type"] == "vault.access" and payload["decision"] == "allow":
                opened |= set(payload["fields"])
            if entry.event["type"] == "recording.played" and payload["recording_id"] == world.recording_id:
                opened.add("recording")
        missing = {value[:3] + "...": fields for value, fields in found.items() if not fields & opened}
        assert not missing, f"{route} as {spec} answered plaintext without an allowing entry: {missing}"


class TestNoOtherRouteAnswersPlaintext:
    def test_every_other_get_route_answers_no_plaintext(self, api: Api, world: World) -> None:
        """Every GET route of the API and the console that is not the gate's, asked by a fresh DPO and by a client
        holding every scope, answers none of the subject's plaintext values."""
        from tests.api.test_authorisation_matrix import app_routes

        app = create_app(runtime=api.runtime)
        gated = {"/v1/subjects/{token}", "/v1/contacts/{event_id}", "/v1/subjects/{token}/recordings/{recording_id}",
                 "/console/subjects/{token}/recordings/{recording_id}/media"}
        params = {"token": world.token, "event_id": world.event_id, "recording_id": world.recording_id,
                  "index": "0", "debt_id": "D-none", "request_id": "dsr_none", "language": "en", "hold_id": "h"}
        dpo, client = api.person("dpo"), api.client(*SCOPES)
        paths = [route.split(" ", 1)[1] for route in app_routes(app) if route.startswith("GET ")]
        paths += [f"/console{p}" for p in _console_get_paths()]
        checked = 0
        for path in sorted(set(paths) - gated):
            url = re.sub(r"\{(\w+)\}", lambda m: params.get(m.group(1), "0"), path)
            for who in (dpo, client):
                answer = (api.console(who).get(url) if path.startswith("/console") else
                          api.http.get(url, headers=who.headers))
                found = _found(world, _plaintext(answer.content))
                assert not found, f"GET {path} answered plaintext of {sorted(map(sorted, found.values()))}"
                checked += 1
        assert checked > 40


def _console_get_paths() -> list[str]:
    from tests.security.test_console_matrix import console_routes

    return [route.split(" ", 1)[1].removeprefix("/console") for route in console_routes()
            if route.startswith("GET /console/")]
