"""Issue 16, defect 10 (part): a recording's size is told only after the subject decision, which is logged.

Before: a field agent asking for a recording of a subject outside their cases with a ``Range``
past its end got 416 with ``Content-Range: bytes */<size>`` before any decision, and no audit
entry; the console's playback page showed the size to anyone who opened it.
"""

from __future__ import annotations

import os

from faker import Faker

from tests.security.conftest import Api, csrf, debtor_fields

AUDIO = os.urandom(70_001)


def _recorded_subject(api: Api, fake: Faker, case_id: str) -> tuple[str, str]:
    """A subject in case ``case_id`` with one recording; returns (token, recording id)."""
    token = api.new_subject(debtor_fields(fake))
    api.add_case(token, case_id)
    stored = api.http.post(f"/v1/subjects/{token}/recordings", params={"announced": "true"}, content=AUDIO,
                           headers=api.client("contacts:write").headers | {"Content-Type": "audio/ogg"})
    assert stored.status_code == 201, stored.text
    return token, str(stored.json()["recording_id"])


class TestRangeAfterTheDecision:
    def test_a_range_past_the_end_is_refused_like_any_other_for_an_unassigned_agent(
            self, api: Api, fake: Faker) -> None:
        """An agent outside the subject's cases gets the same 403 for a range past the end as for one inside it,
        without the size, and each refusal is a vault.access entry naming the recording."""
        token, recording = _recorded_subject(api, fake, "C-THEIRS")
        agent = api.person("field_agent", cases=["C-MINE"])
        url = f"/v1/subjects/{token}/recordings/{recording}"

        past = api.http.get(url, params={"purpose": "field_visit"}, headers=agent.headers | {"Range": "bytes=999999-"})
        inside = api.http.get(url, params={"purpose": "field_visit"}, headers=agent.headers | {"Range": "bytes=0-0"})

        assert (past.status_code, inside.status_code) == (403, 403), (past.status_code, inside.status_code)
        assert past.json()["rule"] == inside.json()["rule"] == "assignment"
        assert "content-range" not in past.headers
        assert str(len(AUDIO)) not in past.text
        denied = [e for e in api.events(token, "vault.access") if e["actor"]["id"] == agent.id]
        assert len(denied) == 2
        assert all(e["payload"]["decision"] == "deny" and e["payload"]["recording_id"] == recording for e in denied)

    def test_an_allowed_agent_learns_the_size_only_with_a_logged_decision(self, api: Api, fake: Faker) -> None:
        """An assigned agent asking for a range past the end gets 416 with the size, after an allow entry."""
        token, recording = _recorded_subject(api, fake, "C-OURS")
        agent = api.person("field_agent", cases=["C-OURS"])

        past = api.http.get(f"/v1/subjects/{token}/recordings/{recording}", params={"purpose": "field_visit"},
                            headers=agent.headers | {"Range": "bytes=999999-"})

        assert past.status_code == 416, past.text
        assert past.headers["content-range"] == f"bytes */{len(AUDIO)}"
        allowed = [e for e in api.events(token, "vault.access") if e["actor"]["id"] == agent.id]
        assert [(e["payload"]["decision"], e["payload"]["recording_id"]) for e in allowed] == [("allow", recording)]
        played = api.http.get(f"/v1/subjects/{token}/recordings/{recording}", params={"purpose": "field_visit"},
                              headers=agent.headers | {"Range": "bytes=10-19"})
        assert played.status_code == 206
        assert played.content == AUDIO[10:20]


class TestConsolePlayback:
    def test_the_playback_page_shows_nothing_to_an_unassigned_agent(self, api: Api, fake: Faker) -> None:
        """The console's playback page of a subject outside the agent's cases is refused, without the size."""
        token, recording = _recorded_subject(api, fake, "C-THEIRS")
        agent = api.person("field_agent", cases=["C-MINE"])
        browser = api.console(agent)

        page = browser.get(f"/console/subjects/{token}/recordings/{recording}")
        posted = browser.post(f"/console/subjects/{token}/recordings/{recording}",
                              data={"csrf": csrf(agent), "purpose": "field_visit"})

        assert page.status_code == 403, page.status_code
        assert f"{len(AUDIO):,}" not in page.text
        assert str(len(AUDIO)) not in page.text
        assert posted.status_code == 403, posted.status_code
        assert str(len(AUDIO)) not in posted.text
        denied = [e for e in api.events(token, "vault.access") if e["actor"]["id"] == agent.id]
        assert denied
        assert all(e["payload"]["decision"] == "deny" for e in denied)
