"""Issue 16, defect 3: every path that shreds goes through one erasure decision.

Before: with an active legal hold the erasure assessment said ``allowed: false``, yet
``DELETE /v1/subjects/{token}`` as a ``gdpr:manage`` client answered 200 and shredded, and no
person needed a fresh second factor to erase.
"""

from __future__ import annotations

from typing import Any

import pytest
from faker import Faker

from tests.security.conftest import JUSTIFICATION, Api, Who, csrf, debtor_fields


def _hold(api: Api, token: str) -> str:
    today = api.runtime.clock.now().date().isoformat()
    held = api.http.post("/v1/gdpr/holds", json={"subject": token, "reason": "court_proceedings",
                                                 "starts_on": today}, headers=api.person("dpo").headers)
    assert held.status_code == 201, held.text
    return str(held.json()["id"])


def _shredded(api: Api, token: str) -> bool:
    return any(e["type"] == "vault.subject_shredded" for e in api.events(token))


def _erasure_request(api: Api, who: Who, token: str) -> str:
    today = api.runtime.clock.now().date().isoformat()
    created = api.http.post("/v1/gdpr/requests", json={"subject": token, "kind": "erasure", "received_on": today,
                                                      "channel": "letter"}, headers=who.headers)
    assert created.status_code == 201, created.text
    request_id = str(created.json()["id"])
    verified = api.http.post(f"/v1/gdpr/requests/{request_id}/verify",
                             json={"method": "qualified_signature", "reference": "EVID-77"}, headers=who.headers)
    assert verified.status_code == 200, verified.text
    return request_id


def _rules(problem: dict[str, Any]) -> set[str]:
    return {reason["rule"] for reason in problem.get("reasons", [])}


class TestDeleteGoesThroughTheDecision:
    def test_delete_refuses_a_subject_under_a_legal_hold(self, api: Api, fake: Faker) -> None:
        """DELETE by a gdpr:manage client on a held subject is refused (409, the hold named) and shreds nothing."""
        fields = debtor_fields(fake)
        token = api.new_subject(fields)
        _hold(api, token)

        answer = api.http.delete(f"/v1/subjects/{token}", headers=api.client("gdpr:manage").headers)

        assert answer.status_code == 409, answer.text
        assert answer.json()["type"] == "urn:tarcza:problem:erasure-refused"
        assert "legal_hold" in _rules(answer.json())
        assert not _shredded(api, token)
        still = api.http.post(f"/v1/subjects/{token}/reveal", json={"fields": ["pesel"], "purpose": "debt_collection"},
                              headers=api.person("dpo").headers)
        assert still.json()["fields"]["pesel"] == [fields["pesel"]]
        refused = list(api.events(token, "gdpr.erasure_refused"))
        assert refused
        assert refused[-1]["payload"]["request_id"] == "direct"

    def test_delete_refuses_a_subject_with_an_open_claim(self, api: Api, fake: Faker) -> None:
        """An open, not time-barred debt keeps the data: DELETE answers 409 naming the legal claim."""
        token = api.new_subject(debtor_fields(fake))
        api.add_debt(token, "D-OPEN-1", due="2025-06-30")

        answer = api.http.delete(f"/v1/subjects/{token}", headers=api.person("dpo").headers)

        assert answer.status_code == 409, answer.text
        assert "legal_claim" in _rules(answer.json())
        assert answer.json()["possible_from"] is not None
        assert not _shredded(api, token)

    def test_a_person_needs_a_fresh_second_factor_to_erase(self, api: Api, fake: Faker) -> None:
        """A DPO whose second factor is 11 minutes old is refused DELETE and request erasure (step up); a fresh
        one erases a subject nothing keeps."""
        token = api.new_subject(debtor_fields(fake))
        stale = api.person("dpo", minutes_ago=11)

        refused = api.http.delete(f"/v1/subjects/{token}", headers=stale.headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["rule"] == "second_factor"
        request_id = _erasure_request(api, stale, token)
        refused = api.http.post(f"/v1/gdpr/requests/{request_id}/erase", json={}, headers=stale.headers)
        assert refused.status_code == 403, refused.text
        assert not _shredded(api, token)

        erased = api.http.delete(f"/v1/subjects/{token}", headers=api.person("dpo").headers)
        assert erased.status_code == 200, erased.text
        assert erased.json()["already_shredded"] is False
        assert _shredded(api, token)
        again = api.http.delete(f"/v1/subjects/{token}", headers=api.person("dpo").headers)
        assert again.status_code == 200
        assert again.json()["already_shredded"] is True

    def test_the_vault_does_not_shred_without_the_decisions_clearance(self, api: Api, fake: Faker) -> None:
        """The vault's shredding needs a clearance of the erasure decision naming the subject; another subject's
        clearance does not do."""
        from identity.principal import SYSTEM
        from vault.shredding import ErasureClearance

        token = api.new_subject(debtor_fields(fake))
        other = api.new_subject(debtor_fields(fake))
        with pytest.raises(TypeError):
            api.runtime.vault.shred(SYSTEM, token)  # type: ignore[call-arg]
        with pytest.raises(PermissionError):
            api.runtime.vault.shred(SYSTEM, token, ErasureClearance(frozenset({other})))
        assert not _shredded(api, token)


class TestOverride:
    def test_only_the_dpo_overrides_with_a_justification_and_the_override_is_reviewed(
            self, api: Api, fake: Faker) -> None:
        """Erasing a held subject needs the DPO's named override with a justification; a compliance officer or a
        client is refused; the override is logged and waits for an auditor's review, not the DPO's own."""
        token = api.new_subject(debtor_fields(fake))
        _hold(api, token)
        dpo = api.person("dpo")
        request_id = _erasure_request(api, dpo, token)
        override = {"override": {"justification": JUSTIFICATION}}

        officer = api.http.post(f"/v1/gdpr/requests/{request_id}/erase", json=override,
                                headers=api.person("compliance_officer").headers)
        assert officer.status_code == 403, officer.text
        client = api.http.post(f"/v1/gdpr/requests/{request_id}/erase", json=override,
                               headers=api.client("gdpr:manage").headers)
        assert client.status_code == 403, client.text
        short = api.http.post(f"/v1/gdpr/requests/{request_id}/erase", json={"override": {"justification": "x"}},
                              headers=dpo.headers)
        assert short.status_code in (403, 422), short.text
        assert not _shredded(api, token)

        done = api.http.post(f"/v1/gdpr/requests/{request_id}/erase", json=override, headers=dpo.headers)

        assert done.status_code == 200, done.text
        assert done.json()["erased"] is True
        assert "legal_hold" in done.json()["overridden"]
        assert _shredded(api, token)
        [entry] = list(api.entries(token, "gdpr.erasure_overridden"))
        assert entry.event["actor"]["id"] == dpo.id
        assert entry.event["payload"]["justification"]
        assert JUSTIFICATION not in str(entry.event)
        queue = api.http.get("/v1/policies/break-glass", params={"awaiting": "true"},
                             headers=api.person("auditor").headers).json()["items"]
        assert entry.index in {item["index"] for item in queue}
        mine = api.http.post(f"/v1/policies/break-glass/{entry.index}/review", json={"verdict": "justified"},
                             headers=dpo.headers | {"Idempotency-Key": "own-2"})
        assert mine.status_code in (403, 409), mine.text
        reviewed = api.http.post(f"/v1/policies/break-glass/{entry.index}/review", json={"verdict": "justified"},
                                 headers=api.person("auditor").headers | {"Idempotency-Key": "aud-1"})
        assert reviewed.status_code == 201, reviewed.text

    def test_without_an_override_a_refused_erasure_stays_refused(self, api: Api, fake: Faker) -> None:
        """Request erasure of a held subject is refused with the hold named, and nothing is shredded."""
        token = api.new_subject(debtor_fields(fake))
        _hold(api, token)
        dpo = api.person("dpo")
        request_id = _erasure_request(api, dpo, token)

        answer = api.http.post(f"/v1/gdpr/requests/{request_id}/erase", json={}, headers=dpo.headers)

        assert answer.status_code == 200, answer.text
        assert answer.json()["erased"] is False
        assert "legal_hold" in {r["rule"] for r in answer.json()["reasons"]}
        assert not _shredded(api, token)


class TestConsoleErasure:
    def test_the_console_erases_only_after_a_fresh_second_factor(self, api: Api, fake: Faker) -> None:
        """A console erasure confirmed with a stale second factor asks for a code and shreds nothing."""
        token = api.new_subject(debtor_fields(fake))
        stale = api.person("dpo", minutes_ago=11)
        request_id = _erasure_request(api, stale, token)

        page = api.console(stale).post(f"/console/requests/{request_id}/erase",
                                       data={"csrf": csrf(stale), "confirm": "1"})

        assert page.status_code in (403, 422), page.status_code
        assert not _shredded(api, token)
        assert api.http.get(f"/v1/gdpr/requests/{request_id}", headers=stale.headers).json()["status"] == "verified"


class TestCommandLine:
    def test_the_cli_erases_only_through_the_decision_against_a_real_server(
            self, initialised_runtime: Any, cli_env: dict[str, str], server: str, tmp_path: Any, fake: Faker,
            enrol: Any) -> None:
        """Against `tarcza serve`: `tarcza subject shred` of a held subject is one `error:` line naming the hold
        and exits 1; the DPO's override (justification from stdin) through `tarcza gdpr erase` shreds it, and
        the verification's evidence reference is on the request."""
        import json
        import subprocess
        import sys
        from datetime import timedelta

        import pyotp

        from tests.conftest import TEST_PASSWORD

        def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "api", *args], env={**env, "COLUMNS": "200"},
                                  capture_output=True, text=True, timeout=120, input=stdin, check=False)

        secret = enrol(initialised_runtime, "erna.dpo", ["dpo"])
        env = {**cli_env, "TARCZA_SESSION_FILE": str(tmp_path / "session")}
        code = pyotp.TOTP(secret).at(initialised_runtime.clock.now() + timedelta(seconds=30))
        assert run("login", "--server", server, "--username", "erna.dpo", "--password-stdin", "--code", code,
                   stdin=TEST_PASSWORD + "\n").returncode == 0
        fields = debtor_fields(fake)
        args = [a for n, v in fields.items() for a in ("--field", f"{n}={v}")]
        token = run("subject", "create", *args).stdout.strip()
        assert run("gdpr", "hold", "add", token, "--reason", "court_proceedings").returncode == 0

        shred = run("subject", "shred", token, "--yes")

        assert shred.returncode == 1
        assert shred.stderr.startswith("error: HTTP 409")
        assert "legal_hold" in shred.stderr
        assert fields["pesel"] not in shred.stderr + shred.stdout
        created = json.loads(run("gdpr", "request", "create", token, "erasure", "--json").stdout)
        assert run("gdpr", "request", "verify", created["id"], "--method", "qualified_signature",
                   "--reference", "DSR/2026/88").returncode == 0
        refused = run("gdpr", "erase", created["id"], "--json")
        assert json.loads(refused.stdout)["erased"] is False
        created = json.loads(run("gdpr", "request", "create", token, "erasure", "--json").stdout)
        run("gdpr", "request", "verify", created["id"], "--method", "qualified_signature", "--reference", "DSR/2026/89")
        shown = json.loads(run("gdpr", "request", "show", created["id"], "--json").stdout)
        assert shown["verification"]["reference"] == "DSR/2026/89"

        erased = run("gdpr", "erase", created["id"], "--override-justification-stdin", "--json", stdin=JUSTIFICATION)

        assert erased.returncode == 0, erased.stderr
        assert json.loads(erased.stdout)["overridden"] == ["legal_hold"]
        assert _shredded_in(initialised_runtime, token)


def _shredded_in(runtime: Any, token: str) -> bool:
    from audit.repository import EntryFilter

    page = runtime.audit.query(EntryFilter(subject=token, event_type="vault.subject_shredded"), limit=10)
    return bool(page.items)
