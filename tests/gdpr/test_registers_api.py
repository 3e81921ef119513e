"""The DPO's registers over HTTP, on SQLite and PostgreSQL: the Art. 14 clock after a debt is bought, the Art. 19
recipients told of an erasure and shown in the erased subject's export, the Art. 33(5) breach register, and all of
them in the Art. 30 record. Synthetic data only."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from typing import Any

from faker import Faker

from audit.repository import EntryFilter
from tests.gdpr.test_api import Api, api, fake

__all__ = ["api", "fake"]


def _ok(answer: Any, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def _subject(api: Api, fake: Faker, headers: dict[str, str]) -> str:
    created = _ok(api.http.post("/v1/subjects", headers=headers, json={"kind": "debtor", "fields": {
        "first_name": fake.first_name(), "last_name": fake.last_name()}}), 201)
    return str(created["token"])


def _debt(api: Api, headers: dict[str, str], token: str, debt_id: str, **extra: Any) -> dict[str, Any]:
    return _ok(api.http.post("/v1/debts", headers=headers, json={
        "id": debt_id, "subject": token, "creditor": "Przykładowy Bank S.A.", "creditor_kind": "bank",
        "kind": "business", "consumer": True, "amount_minor": 50_000, "due_date": "2025-01-31", **extra}), 201)


class TestArticle14Clock:
    def test_bought_debt_opens_a_notice_due_in_a_month_or_at_the_first_contact(self, api: Api, fake: Faker) -> None:
        """GDPR Art. 14(3)(a) and (b): a debt bought on day D opens a notice due one month later (Reg. 1182/71); a
        letter sent before that day brings the deadline to the letter's day, so the notice not given by then is
        overdue; given afterwards it is closed but late. A debt collected as processor opens none."""
        collector, dpo = api.person("collector"), api.person("dpo")
        token = _subject(api, fake, collector)
        bought = (api.today() - timedelta(days=20)).isoformat()
        _debt(api, collector, token, "D-N14-1", assigned_on=bought)
        [notice] = _ok(api.http.get(f"/v1/subjects/{token}/notices", headers=dpo))["items"]
        assert (notice["obtained_on"], notice["status"], notice["due_by"]) == (bought, "open", "one_month")
        assert notice["due_on"] == notice["month_ends_on"] > api.today().isoformat()
        letter_day = api.today() - timedelta(days=10)
        while letter_day.weekday() >= 5:
            letter_day -= timedelta(days=1)
        _ok(api.http.post("/v1/contacts", headers=collector, json={
            "subject": token, "channel": "letter", "agent_id": "agent-1", "debt_id": "D-N14-1", "outcome": "sent",
            "started_at": f"{letter_day.isoformat()}T10:00:00+01:00"}), 201)
        [notice] = _ok(api.http.get(f"/v1/subjects/{token}/notices", headers=dpo))["items"]
        assert (notice["due_on"], notice["due_by"]) == (letter_day.isoformat(), "first_contact")
        assert notice["overdue"] is True
        overdue = _ok(api.http.get("/v1/gdpr/notices", params={"view": "overdue"}, headers=dpo))["items"]
        assert notice["id"] in [n["id"] for n in overdue]
        closed = _ok(api.http.post(f"/v1/gdpr/notices/{notice['id']}/close", headers=dpo,
                                   json={"given_on": api.today().isoformat(), "channel": "letter"}))
        assert (closed["status"], closed["in_time"]) == ("given", False)
        assert [e["payload"]["status"] for e in api.events(token) if e["type"].startswith("gdpr.notice_")] == [
            "open", "given"]

        other = _subject(api, fake, collector)
        _debt(api, collector, other, "D-N14-2", held_as="processor", assigned_on=bought)
        assert _ok(api.http.get(f"/v1/subjects/{other}/notices", headers=dpo))["items"] == []

    def test_exemption_needs_an_art_14_5_ground(self, api: Api, fake: Faker) -> None:
        """A notice is closed as exempt only with a ground of Art. 14(5); anything else is a 422 problem."""
        collector, dpo = api.person("collector"), api.person("dpo")
        token = _subject(api, fake, collector)
        _debt(api, collector, token, "D-N14-3")
        [notice] = _ok(api.http.get(f"/v1/subjects/{token}/notices", headers=dpo))["items"]
        assert api.http.post(f"/v1/gdpr/notices/{notice['id']}/close", headers=dpo,
                             json={"exemption": "we_forgot"}).status_code == 422
        exempt = _ok(api.http.post(f"/v1/gdpr/notices/{notice['id']}/close", headers=dpo,
                                   json={"exemption": "already_informed"}))
        assert exempt["status"] == "exempt"
        assert "14(5)(a)" in exempt["exemption_basis"]
        assert api.http.get("/v1/gdpr/notices", headers=collector).status_code == 403


class TestArticle19Recipients:
    def test_recipient_told_of_an_erasure_is_in_the_subjects_export(self, api: Api, fake: Faker) -> None:
        """GDPR Art. 19: after an erasure (the debt settled in 2019, so nothing keeps the data), the debt register
        the data was disclosed to gets a pending notification; once recorded as notified, the erased subject's access
        export lists the recipient with the notification (Art. 19, last sentence; Art. 15(1)(c))."""
        collector, dpo = api.person("collector"), api.person("dpo")
        token = _subject(api, fake, collector)
        _debt(api, collector, token, "D-R19-1", due_date="2018-09-01", held_as="processor")
        _ok(api.http.post("/v1/debts/D-R19-1/status", headers=collector,
                          json={"status": "settled", "settled_on": "2019-06-10"}))
        recipient = _ok(api.http.post(f"/v1/subjects/{token}/recipients", headers=dpo, json={
            "kind": "debt_register", "name": "BIG InfoMonitor S.A.", "disclosed_on": "2019-01-10"}), 201)
        erasure = _ok(api.http.post("/v1/gdpr/requests", headers=dpo, json={
            "subject": token, "kind": "erasure", "received_on": api.today().isoformat(), "channel": "letter"}), 201)
        _ok(api.http.post(f"/v1/gdpr/requests/{erasure['id']}/verify", headers=dpo, json={"method": "id_document"}))
        assert _ok(api.http.post(f"/v1/gdpr/requests/{erasure['id']}/erase", headers=dpo, json={}))["erased"] is True
        [pending] = _ok(api.http.get("/v1/gdpr/recipient-notifications", headers=dpo))["items"]
        assert (pending["recipient_id"], pending["action"], pending["article"], pending["request_id"]) == (
            recipient["id"], "erasure", "17(1)", erasure["id"])
        done = _ok(api.http.post(f"/v1/gdpr/recipient-notifications/{pending['id']}", headers=dpo, json={
            "outcome": "notified", "notified_on": api.today().isoformat(), "method": "api"}))
        assert done["status"] == "notified"
        assert _ok(api.http.get("/v1/gdpr/recipient-notifications", headers=dpo))["items"] == []

        access = _ok(api.http.post("/v1/gdpr/requests", headers=dpo, json={
            "subject": token, "kind": "access", "received_on": api.today().isoformat(), "channel": "letter"}), 201)
        _ok(api.http.post(f"/v1/gdpr/requests/{access['id']}/verify", headers=dpo, json={"method": "id_document"}))
        archive = api.http.post(f"/v1/gdpr/requests/{access['id']}/export", headers=dpo)
        assert archive.status_code == 200, archive.text
        with zipfile.ZipFile(io.BytesIO(archive.content)) as zf:
            data = json.loads(zf.read("data.json"))
        [listed] = data["recipient_register"]
        assert (listed["name"], listed["kind"]) == ("BIG InfoMonitor S.A.", "debt_register")
        assert [(n["action"], n["status"], n["request_id"]) for n in listed["notifications"]] == [
            ("erasure", "notified", erasure["id"])]

    def test_rectification_and_restriction_notify_each_recipient(self, api: Api, fake: Faker) -> None:
        """GDPR Art. 19 with Art. 16 and 18: a rectification and a restriction each give every recipient a pending
        notification; a recipient disclosed to later is not told of an earlier change."""
        collector, dpo = api.person("collector"), api.person("dpo")
        token = _subject(api, fake, collector)
        for name in ("Przykładowy Bank S.A.", "Kancelaria Przykład sp.k."):
            _ok(api.http.post(f"/v1/subjects/{token}/recipients", headers=dpo, json={
                "kind": "creditor" if "Bank" in name else "lawyer", "name": name, "disclosed_on": "2025-05-05"}), 201)
        for kind, path, body in (("rectification", "rectify", {"field": "last_name", "values": ["Nowak"]}),
                                 ("restriction", "restrict", {})):
            request = _ok(api.http.post("/v1/gdpr/requests", headers=dpo, json={
                "subject": token, "kind": kind, "received_on": api.today().isoformat(), "channel": "email"}), 201)
            _ok(api.http.post(f"/v1/gdpr/requests/{request['id']}/verify", headers=dpo, json={"method": "id_document"}))
            _ok(api.http.post(f"/v1/gdpr/requests/{request['id']}/{path}", headers=dpo, json=body))
        recipients = _ok(api.http.get(f"/v1/subjects/{token}/recipients", headers=dpo))["items"]
        assert [sorted(n["action"] for n in r["notifications"]) for r in recipients] == [
            ["rectification", "restriction"], ["rectification", "restriction"]]


class TestBreachRegister:
    def test_breach_recorded_with_its_clock_then_notified(self, api: Api) -> None:
        """GDPR Art. 33(5): a breach is recorded with its facts, effects and remedial action and the 72-hour clock
        from awareness; text that looks like personal data is refused; the notification of the authority is
        recorded in time; every step is in the log with the texts' SHA-256."""
        dpo = api.person("dpo")
        aware = api.runtime.clock.now() - timedelta(hours=2)
        body = {"aware_at": aware.isoformat(), "nature": ["confidentiality"], "data_categories": ["contact"],
                "subjects_count": 120, "actor_id": "collector-17", "risk": "risk",
                "facts": "A collector's laptop with an exported call list was stolen from a car.",
                "effects": "Names and phone numbers of 120 debtors may be known to the thief.",
                "remedial_action": "Session revoked, device wiped remotely, police notified."}
        refused = api.http.post("/v1/gdpr/breaches", headers=dpo, json={**body, "facts": "Call +48 600 100 200."})
        assert refused.status_code == 422
        breach = _ok(api.http.post("/v1/gdpr/breaches", headers=dpo, json=body), 201)
        assert breach["overdue"] is False
        assert 69 < breach["hours_left"] <= 70
        notified = _ok(api.http.post(f"/v1/gdpr/breaches/{breach['id']}/update", headers=dpo, json={
            "authority_notified_at": api.runtime.clock.now().isoformat(), "authority_reference": "DKN.5110.1.2026"}))
        assert (notified["notified_in_time"], notified["hours_left"]) == (True, None)
        listed = _ok(api.http.get("/v1/gdpr/breaches", headers=dpo))["items"]
        assert [b["id"] for b in listed] == [breach["id"]]
        page = api.runtime.audit.query(EntryFilter(event_type="gdpr.breach_recorded"), limit=10)
        assert [len(e.event["payload"]["texts_sha256"]) for e in page.items] == [64]


class TestInTheRecord:
    def test_art_30_record_carries_the_registers(self, api: Api, fake: Faker) -> None:
        """The Art. 30 record (GET /v1/gdpr/ropa) shows the open Art. 14 notices, the Art. 19 recipients and the
        creditors the firm collects for as processor (Art. 30(2))."""
        collector, dpo = api.person("collector"), api.person("dpo")
        token = _subject(api, fake, collector)
        _debt(api, collector, token, "D-ROPA-1")
        _debt(api, collector, token, "D-ROPA-2", held_as="processor", creditor="Przykładowy Telekom S.A.",
              creditor_kind="telecom")
        _ok(api.http.post(f"/v1/subjects/{token}/recipients", headers=dpo, json={
            "kind": "bailiff", "name": "Komornik Sądowy przy SR Przykładowo", "disclosed_on": "2025-05-05"}), 201)
        record = _ok(api.http.get("/v1/gdpr/ropa", headers=dpo))
        assert record["registers"]["notices"]["open"] >= 1
        assert {"kind": "bailiff", "name": "Komornik Sądowy przy SR Przykładowo", "subjects": 1} in \
            record["registers"]["recipients"]
        assert {"controller": "Przykładowy Telekom S.A.", "debts": 1} in record["processor_record"]["controllers"]
