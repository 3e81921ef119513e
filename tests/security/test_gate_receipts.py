"""Issue 16, defect 6: a contact's receipt is no oracle for the subject's own values.

The note scrubber looks for the subject's own name, address and employer (opened through the
gate for detection only). Before, the receipt's ``pii_found`` counted those matches too, so a
``contacts:write`` client that may not read the subject learnt whether a guessed name is the
debtor's by posting notes. The count now says only what the caller may know: findings of the
note alone (identifiers, phones, e-mails) for everyone, the subject's own values only for a
principal whose masked view shows them in clear.
"""

from __future__ import annotations

from typing import Any

from faker import Faker

from tests.security.conftest import TUESDAY_10, Api, Who, debtor_fields


def _post(api: Api, who: Who, token: str, note: str, *, batch: bool = False) -> dict[str, Any]:
    contact = {"subject": token, "channel": "email", "direction": "inbound", "agent_id": "mailbox-2",
               "started_at": TUESDAY_10, "notes": note}  # inbound: no frequency cap however many are posted
    if batch:
        answer = api.http.post("/v1/contacts/batch", json={"contacts": [contact]}, headers=who.headers)
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["results"][0]["receipt"])
    answer = api.http.post("/v1/contacts", json=contact, headers=who.headers)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


class TestReceiptIsNoOracle:
    def test_a_writer_that_may_not_read_learns_nothing_from_a_guessed_name(self, api: Api, fake: Faker) -> None:
        """A contacts:write client gets the same count for the debtor's real name as for a wrong guess, single
        and batch; the identifiers it wrote itself are still counted."""
        fields = debtor_fields(fake)
        token = api.new_subject(fields)
        writer = api.client("contacts:write")
        right = f"List do pani {fields['first_name']} {fields['last_name']} w sprawie raty."
        wrong = "List do pani Genowefa Pigwa w sprawie raty."

        counts = {(guess, batch): _post(api, writer, token, note, batch=batch)["pii_found"]
                  for guess, note in (("right", right), ("wrong", wrong)) for batch in (False, True)}

        assert counts[("right", False)] == counts[("wrong", False)]
        assert counts[("right", True)] == counts[("wrong", True)]
        with_phone = _post(api, writer, token, right + " Nowy numer 601 234 567.")
        assert with_phone["pii_found"] == 1

    def test_a_collector_who_sees_the_names_gets_the_whole_count(self, api: Api, fake: Faker) -> None:
        """A collector, whose masked view shows names in clear, is told the names were found and sealed."""
        fields = debtor_fields(fake)
        token = api.new_subject(fields)
        note = f"List do pani {fields['first_name']} {fields['last_name']} w sprawie raty."
        assert _post(api, api.person("collector"), token, note)["pii_found"] == 2
