"""The vault over HTTP: create, masked view, reveal, search, recordings with ranges, shredding, key
rotation and input errors, on SQLite and PostgreSQL (``initialised_runtime``). Every personal value
is synthetic (Faker pl_PL, fixed seed); principals come from identity.testing."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

import pytest
from faker import Faker
from fastapi.testclient import TestClient

from api.app import create_app
from api.runtime import Runtime
from audit.repository import EntryFilter
from tests.headers import client_headers, person_headers
from vault.fields import load_catalogue
from vault.ranges import RangeNotSatisfiableError, byte_range
from vault.validators import normalise

PURPOSE = "debt_collection"
SEED = 20260415


@dataclass
class Api:
    """An HTTP client on the app of an initialised runtime, and principals to call it as."""

    http: TestClient
    runtime: Runtime

    def person(self, *roles: str, second_factor_minutes_ago: float | None = 1) -> dict[str, str]:
        """Headers of a user with ``roles`` whose second factor was verified that many minutes ago."""
        return person_headers(self.runtime, *roles, second_factor_minutes_ago=second_factor_minutes_ago)

    def system(self, *scopes: str) -> dict[str, str]:
        """Headers of an API client holding ``scopes``."""
        return client_headers(self.runtime, *scopes)

    def access_entries(self, token: str) -> list[dict[str, Any]]:
        """The ``vault.access`` events of the audit log about ``token``, oldest first."""
        page = self.runtime.audit.query(EntryFilter(subject=token, event_type="vault.access"), limit=1000)
        return [item.event for item in page.items]


@pytest.fixture
def api(initialised_runtime: Runtime) -> Api:
    return Api(TestClient(create_app(runtime=initialised_runtime), raise_server_exceptions=False),
               initialised_runtime)


@pytest.fixture
def fake() -> Faker:
    faker = Faker("pl_PL")
    faker.seed_instance(SEED)
    return faker


def debtor(fake: Faker) -> dict[str, str]:
    """Synthetic values of a debtor, each valid for its field."""
    return {"first_name": fake.first_name(), "last_name": fake.last_name(), "pesel": fake.pesel(),
            "email": fake.unique.safe_email(), "iban": fake.iban()}


def canonical(fields: dict[str, str]) -> dict[str, list[str]]:
    catalogue = load_catalogue()
    return {name: [normalise(name, catalogue.get(name).kind, value)] for name, value in fields.items()}


class TestBulkReveal:
    def test_many_subjects_in_one_call_with_errors_in_place(self, api: Api, fake: Faker) -> None:
        """POST /v1/subjects/reveal: values for each revealable subject, problem details for the rest,
        one access entry per decided subject, nothing cached, and the same gate as a single reveal."""
        dpo = api.person("dpo")
        people = [debtor(fake) for _ in range(3)]
        tokens = [api.http.post("/v1/subjects", json={"kind": "debtor", "fields": p}, headers=dpo).json()["token"]
                  for p in people]
        assert api.http.delete(f"/v1/subjects/{tokens[2]}", headers=api.person("dpo")).status_code == 200
        ask = {"subjects": [*tokens, "sub_" + "0" * 22], "fields": ["pesel", "last_name"], "purpose": PURPOSE}

        answer = api.http.post("/v1/subjects/reveal", json=ask, headers=dpo)
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"
        results = answer.json()["results"]
        for result, fields in zip(results[:2], people[:2], strict=True):
            assert result["fields"] == {name: canonical(fields)[name] for name in ("pesel", "last_name")}
        assert [r["error"]["status"] for r in results[2:]] == [410, 404]
        for token in tokens[:2]:
            assert [e["payload"]["decision"] for e in api.access_entries(token)] == ["allow"]

        stale = api.http.post("/v1/subjects/reveal", json=ask, headers=api.person("dpo", second_factor_minutes_ago=11))
        assert stale.status_code == 403
        assert people[0]["pesel"] not in stale.text
        assert api.http.post("/v1/subjects/reveal", json=ask, headers=api.system("subjects:read-masked")
                             ).status_code == 403
        too_many = api.http.post("/v1/subjects/reveal", json={**ask, "subjects": tokens * 400}, headers=dpo)
        assert too_many.status_code == 422


class TestVaultFlow:
    def test_create_view_reveal_search_record_play_shred(self, api: Api, fake: Faker) -> None:
        """A subject goes through every route: masked, revealed after a fresh second factor, found,
        recorded and played by ranges, then shredded so that nothing reads any more."""
        dpo, stale_dpo = api.person("dpo"), api.person("dpo", second_factor_minutes_ago=11)
        dialer = api.system("contacts:write")
        fields = debtor(fake)

        created = api.http.post("/v1/subjects", json={"kind": "debtor", "fields": fields}, headers=dpo)
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        assert created.headers["location"] == f"/v1/subjects/{token}"

        masked = api.http.get(f"/v1/subjects/{token}", headers=dpo)
        assert masked.status_code == 200
        assert masked.headers["cache-control"] == "no-store"
        assert fields["pesel"] not in masked.text
        assert masked.json()["fields"]["first_name"] == [fields["first_name"]]  # the DPO sees names (fields.yaml)
        only = api.http.get(f"/v1/subjects/{token}", params={"fields": "pesel"}, headers=dpo).json()["fields"]
        assert list(only) == ["pesel"]

        ask = {"fields": ["pesel", "iban", "email"], "purpose": PURPOSE}
        refused = api.http.post(f"/v1/subjects/{token}/reveal", json=ask, headers=stale_dpo)
        assert refused.status_code == 403
        assert refused.json()["rule"] == "second_factor"
        assert refused.json()["step_up"] == "/v1/auth/step-up"
        assert fields["pesel"] not in refused.text

        revealed = api.http.post(f"/v1/subjects/{token}/reveal", json=ask, headers=dpo)
        assert revealed.status_code == 200, revealed.text
        assert revealed.headers["cache-control"] == "no-store"
        expected = canonical(fields)
        assert revealed.json()["fields"] == {name: expected[name] for name in ask["fields"]}

        found = api.http.post("/v1/subjects/search", json={"field": "pesel", "value": fields["pesel"],
                                                            "purpose": PURPOSE}, headers=dpo)
        assert found.status_code == 200
        assert found.json()["subjects"] == [token]

        audio = random.Random(SEED).randbytes(300_000)
        uploaded = api.http.post(f"/v1/subjects/{token}/recordings", content=audio, params={"announced": "true"},
                                 headers={**dialer, "Content-Type": "audio/ogg"})
        assert uploaded.status_code == 201, uploaded.text
        recording = uploaded.json()
        assert (recording["sha256"], recording["size"]) == (hashlib.sha256(audio).hexdigest(), len(audio))
        url = f"/v1/subjects/{token}/recordings/{recording['recording_id']}"

        middle = api.http.get(url, params={"purpose": PURPOSE}, headers={**dpo, "Range": "bytes=70000-140000"})
        assert middle.status_code == 206
        assert middle.content == audio[70000:140001]
        assert middle.headers["content-range"] == f"bytes 70000-140000/{len(audio)}"
        assert middle.headers["cache-control"] == "no-store"
        assert middle.headers["content-type"] == "audio/ogg"
        tail = api.http.get(url, params={"purpose": PURPOSE}, headers={**dpo, "Range": "bytes=-500"})
        assert (tail.status_code, tail.content) == (206, audio[-500:])
        whole = api.http.get(url, params={"purpose": PURPOSE}, headers=dpo)
        assert (whole.status_code, whole.content) == (200, audio)
        beyond = api.http.get(url, params={"purpose": PURPOSE}, headers={**dpo, "Range": f"bytes={len(audio)}-"})
        assert beyond.status_code == 416
        assert beyond.headers["content-range"] == f"bytes */{len(audio)}"

        shredded = api.http.delete(f"/v1/subjects/{token}", headers=dpo)
        assert shredded.status_code == 200
        assert shredded.json()["recordings"] == [recording["recording_id"]]
        assert sorted(shredded.json()["fields"]) == sorted(fields)
        assert api.http.post(f"/v1/subjects/{token}/reveal", json=ask, headers=dpo).status_code == 410
        assert api.http.get(url, params={"purpose": PURPOSE}, headers=dpo).status_code in (404, 410)
        assert api.http.post("/v1/subjects/search", json={"field": "pesel", "value": fields["pesel"],
                                                           "purpose": PURPOSE}, headers=dpo).json()["subjects"] == []

        reveals = [e["payload"] for e in api.access_entries(token) if e["payload"]["action"] == "reveal"]
        assert [(p["decision"], p.get("reason")) for p in reveals] == [("deny", "second_factor"), ("allow", None)]
        assert reveals[1]["fields"] == ask["fields"]
        assert reveals[1]["purpose"] == PURPOSE

    def test_update_replaces_a_field(self, api: Api, fake: Faker) -> None:
        """PUT of a field answers 204 and a later reveal shows only the new value."""
        collector = api.person("collector")
        token = api.http.post("/v1/subjects", json={"kind": "debtor", "fields": debtor(fake)},
                              headers=collector).json()["token"]
        new_name = fake.last_name()
        updated = api.http.put(f"/v1/subjects/{token}/fields/last_name", json={"values": [new_name]},
                               headers=collector)
        assert updated.status_code == 204
        shown = api.http.post(f"/v1/subjects/{token}/reveal", json={"fields": ["last_name"], "purpose": PURPOSE},
                              headers=collector)
        assert shown.json()["fields"] == {"last_name": canonical({"last_name": new_name})["last_name"]}

    def test_idempotent_create(self, api: Api, fake: Faker) -> None:
        """A retry with the same Idempotency-Key gets the same token; the key with another body is a 422
        idempotency-key-reuse (api/idempotency.py)."""
        crm = api.system("subjects:write")
        fields = debtor(fake)
        body = {"kind": "debtor", "fields": fields}
        first = api.http.post("/v1/subjects", json=body, headers={**crm, "Idempotency-Key": "crm-41"})
        again = api.http.post("/v1/subjects", json=body, headers={**crm, "Idempotency-Key": "crm-41"})
        assert (first.status_code, again.status_code) == (201, 201)
        assert first.json()["token"] == again.json()["token"]
        other = {"kind": "debtor", "fields": {**fields, "last_name": fake.last_name()}}
        reused = api.http.post("/v1/subjects", json=other, headers={**crm, "Idempotency-Key": "crm-41"})
        assert reused.status_code == 422
        assert reused.json()["type"] == "urn:tarcza:problem:idempotency-key-reuse"


class TestSubjectLevelRules:
    def test_break_glass_reveal_needs_a_justification(self, api: Api, fake: Faker) -> None:
        """A compliance officer passes the route's gate, but the vault reveals only with a long enough
        justification, and logs that reveal as break-glass."""
        officer = api.person("compliance_officer")
        token = api.http.post("/v1/subjects", json={"kind": "debtor", "fields": debtor(fake)},
                              headers=officer).json()["token"]
        ask = {"fields": ["pesel"], "purpose": "complaint_handling"}
        plain = api.http.post(f"/v1/subjects/{token}/reveal", json=ask, headers=officer)
        assert (plain.status_code, plain.json()["rule"]) == (403, "role")
        short = api.http.post(f"/v1/subjects/{token}/reveal", json={**ask, "justification": "pilne"},
                              headers=officer)
        assert (short.status_code, short.json()["rule"]) == (403, "break_glass")
        reason = "skarga dłużnika nr 17, brak dostępu przez DPO"
        allowed = api.http.post(f"/v1/subjects/{token}/reveal", json={**ask, "justification": reason},
                                headers=officer)
        assert allowed.status_code == 200
        last = api.access_entries(token)[-1]["payload"]
        assert (last["decision"], last["break_glass"]) == ("allow", True)
        assert reason not in str(last)  # the justification is sealed under the subject's key

    def test_field_agent_is_refused_by_assignment_not_by_the_gate(self, api: Api, fake: Faker) -> None:
        """A field agent may reveal in general, so the gate lets them through; the vault refuses a
        subject of no case assigned to them, with the rule `assignment`, and logs it."""
        token = api.http.post("/v1/subjects", json={"kind": "debtor", "fields": debtor(fake)},
                              headers=api.person("dpo")).json()["token"]
        agent = api.person("field_agent")
        refused = api.http.post(f"/v1/subjects/{token}/reveal", json={"fields": ["address"], "purpose": "field_visit"},
                                headers=agent)
        assert (refused.status_code, refused.json()["rule"]) == (403, "assignment")
        last = api.access_entries(token)[-1]["payload"]
        assert (last["decision"], last["reason"], last["purpose"]) == ("deny", "assignment", "field_visit")


class TestInputErrors:
    def test_invalid_pesel_names_field_and_rule_not_value(self, api: Api, fake: Faker) -> None:
        """A PESEL with a wrong check digit is a 422 problem naming the field and rule, without the value."""
        pesel = fake.pesel()
        wrong = pesel[:-1] + str((int(pesel[-1]) + 1) % 10)
        response = api.http.post("/v1/subjects", json={"kind": "debtor", "fields": {"pesel": wrong}},
                                 headers=api.person("dpo"))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["field"] == "pesel"
        assert problem["rule"]
        assert wrong not in response.text

    def test_malformed_bodies_do_not_echo_values(self, api: Api, fake: Faker) -> None:
        """Request-validation errors (bad field name, wrong type, unknown key) never carry the submitted values."""
        dpo = api.person("dpo")
        secret = fake.pesel()
        for body in ({"kind": "debtor", "fields": {"Numer PESEL": secret}},
                     {"kind": "debtor", "fields": {"pesel": [secret, 7]}},
                     {"kind": "debtor", "fields": {"pesel": secret}, "note": secret}):
            response = api.http.post("/v1/subjects", json=body, headers=dpo)
            assert response.status_code == 422, body
            assert secret not in response.text
        search = api.http.post("/v1/subjects/search", json={"field": "pesel", "value": secret, "purpose": "Fun!"},
                               headers=dpo)
        assert search.status_code == 422
        assert secret not in search.text

    def test_upload_needs_a_media_type(self, api: Api, fake: Faker) -> None:
        """A recording without a Content-Type is refused before anything is stored."""
        collector = api.person("collector")
        token = api.http.post("/v1/subjects", json={"kind": "debtor", "fields": debtor(fake)},
                              headers=collector).json()["token"]
        response = api.http.post(f"/v1/subjects/{token}/recordings", content=b"\x00" * 10,
                                 headers={**collector, "Content-Type": ""})
        assert response.status_code == 422


class TestKeysApi:
    def test_rotation_through_the_server_keeps_subjects_readable(self, api: Api, fake: Faker) -> None:
        """POST /v1/keys/rotate (keys:rotate) rewraps every data key and every subject still reveals."""
        collector = api.person("collector")
        tokens = [api.http.post("/v1/subjects", json={"kind": "debtor", "fields": debtor(fake)},
                                headers=collector).json()["token"] for _ in range(3)]
        rotated = api.http.post("/v1/keys/rotate", params={"batch_size": 2}, headers=api.system("keys:rotate"))
        assert rotated.status_code == 200, rotated.text
        report = rotated.json()
        assert (report["rewrapped"], report["to_version"]) == (3, report["from_version"] + 1)
        for token in tokens:
            shown = api.http.post(f"/v1/subjects/{token}/reveal", json={"fields": ["pesel"], "purpose": PURPOSE},
                                  headers=collector)
            assert shown.status_code == 200
        rotations = api.runtime.audit.query(EntryFilter(event_type="vault.key_rotated")).items
        assert rotations[-1].event["actor"]["kind"] == "client"


class TestByteRange:
    @pytest.mark.parametrize(("header", "expected"), [
        (None, None), ("bytes=0-99", (0, 100)), ("bytes=10-", (10, 1000)), ("bytes=-100", (900, 1000)),
        ("bytes=990-5000", (990, 1000)), ("bytes=-5000", (0, 1000)), ("bytes=0-1,5-6", None), ("items=0-1", None),
        ("bytes=9-3", None), ("bytes=-", None),
    ])
    def test_forms(self, header: str | None, expected: tuple[int, int] | None) -> None:
        """A single range (first-last, open-ended or suffix) is clamped; anything else means the whole body."""
        assert byte_range(header, 1000) == expected

    @pytest.mark.parametrize("header", ["bytes=1000-", "bytes=-0", "bytes=5000-6000"])
    def test_unsatisfiable(self, header: str) -> None:
        """A range starting at or after the end is refused with the size in Content-Range."""
        with pytest.raises(RangeNotSatisfiableError) as caught:
            byte_range(header, 1000)
        assert caught.value.headers == {"Content-Range": "bytes */1000"}
