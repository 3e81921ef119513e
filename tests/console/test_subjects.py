"""The subject page: masked everywhere, a reveal only after step-up and its audit entry, playback, holds."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from audit.repository import EntryFilter
from tests.console.conftest import Console, Session

PAGES_BEFORE_REVEAL = ("/console", "/console/subjects", "/console/audit?subject={token}", "/console/requests?view=all")


def _plain_values(fields: dict[str, object]) -> list[str]:
    """What would betray the subject on a page: identifiers, contact details, the surname, the street."""
    out: list[str] = []
    for name in ("pesel", "last_name", "email", "iban", "phone", "address", "date_of_birth"):
        value = fields.get(name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                out.append(item)
                digits = re.sub(r"\D", "", item)
                if name in ("phone", "iban"):
                    out.append(digits[-9:])
    return out


def _stale_second_factor(console: Console, user_id: str) -> None:
    """Age the user's sessions' second factor past the policies' 10 minutes (as if time had passed)."""
    with console.runtime.engine.begin() as conn:
        conn.execute(text("UPDATE identity_sessions SET second_factor_at = :at WHERE user_id = :user"),
                     {"at": datetime.now(UTC) - timedelta(minutes=11), "user": user_id})


class TestReveal:
    def test_reveal_needs_step_up_and_is_logged_before_the_values_show(self, dpo: Session, console: Console) -> None:
        """No page shows a value in clear before; the reveal asks for a code, logs vault.access, then shows values."""
        subject = console.subjects["reveal"]
        page = dpo.page
        secrets = _plain_values(subject.fields)
        for path in PAGES_BEFORE_REVEAL:
            dpo.goto(path.format(token=subject.token))
            dpo.check()
            content = page.content()
            assert not [s for s in secrets if s in content], path
        dpo.goto(f"/console/subjects/{subject.token}")
        content = page.content()
        assert not [s for s in secrets if s in content]
        assert page.locator("#masked-data tbody tr").count() == len(subject.fields)
        dpo.shot("subject")

        _stale_second_factor(console, console.people["dpo"].user_id)
        dpo.goto(f"/console/subjects/{subject.token}")
        page.select_option("#purpose", "debt_collection")
        answer = dpo.submit("#reveal-form button[type=submit]")
        assert answer.status == 422
        assert "at least one field" in str(page.text_content("#fields-error"))
        assert "authenticator" in dpo.field_error("code")  # the session is stale: a code is needed
        assert page.input_value("#purpose") == "debt_collection"  # kept

        size_before = console.runtime.audit.size()
        for name in ("pesel", "email", "last_name"):
            page.check(f"#field-{name}")
        page.fill("#code", console.people["dpo"].code())
        answer = dpo.submit("#reveal-form button[type=submit]")
        assert answer.status == 200
        assert "no-store" in answer.headers["cache-control"]
        shown = {el.get_attribute("data-field"): el.text_content() for el in page.query_selector_all(".revealed")}
        assert shown == {"pesel": subject.fields["pesel"], "email": subject.fields["email"][0],
                         "last_name": subject.fields["last_name"]}
        entry_index = int(str(page.text_content(".notice a")).lstrip("#"))
        dpo.shot("reveal")

        entry = console.runtime.audit.get(entry_index).event
        assert entry["type"] == "vault.access"
        assert entry["subject"] == subject.token
        assert entry["actor"]["id"] == console.people["dpo"].user_id
        payload = entry["payload"]
        assert (payload["decision"], payload["view"], payload["purpose"]) == ("allow", "full", "debt_collection")
        assert sorted(payload["fields"]) == ["email", "last_name", "pesel"]
        step_ups = console.runtime.audit.query(EntryFilter(event_type="identity.step_up",
                                                           actor=console.people["dpo"].user_id, start=size_before))
        assert step_ups.items
        assert step_ups.items[0].index < entry_index

        dpo.goto(f"/console/subjects/{subject.token}")  # back to masked: nothing of the reveal stays
        assert subject.fields["pesel"] not in page.content()

    def test_compliance_officer_reveals_only_with_a_break_glass_justification(
            self, officer: Session, console: Console) -> None:
        """A short justification is refused next to its field; a reveal then is flagged break-glass in the log."""
        subject = console.subjects["reveal"]
        page = officer.page
        officer.goto(f"/console/subjects/{subject.token}")
        page.check("#field-pesel")
        page.select_option("#purpose", "complaint_handling")
        page.fill("#justification", "too short")
        assert officer.submit("#reveal-form button[type=submit]").status == 422
        assert "too short" in officer.field_error("justification")
        assert page.input_value("#justification") == "too short"
        page.fill("#justification", "The debtor's complaint names a payment we cannot match by token alone.")
        assert officer.submit("#reveal-form button[type=submit]").status == 200
        entry = console.runtime.audit.get(int(str(page.text_content(".notice a")).lstrip("#"))).event
        assert entry["payload"]["break_glass"] is True
        assert entry["payload"]["justification"]


class TestRecordings:
    def test_playback_streams_after_its_decision_and_each_read_is_logged(self, dpo: Session, console: Console) -> None:
        """Playback asks for a purpose; the player's requests stream the recording, each one logged first."""
        runtime = console.runtime
        token, recordings = next((t, r) for t, r in runtime.vault.recordings_of("", "zzzzzzzz").items() if r)
        recording = recordings[0]
        page = dpo.page
        dpo.goto(f"/console/subjects/{token}/recordings/{recording.id}")
        assert dpo.submit("form[action$='" + recording.id + "'] button").status == 422
        assert "Choose" in dpo.field_error("purpose")
        page.select_option("#purpose", "audit")  # legal_claim needs a justification (reviewed)
        code = page.locator("#code")
        if code.get_attribute("aria-required") == "true":
            code.fill(console.people["dpo"].code())
        assert dpo.submit("form[action$='" + recording.id + "'] button").status == 200
        source = str(page.get_attribute("#player", "src"))
        dpo.shot("playback")
        before = runtime.audit.size()
        media = dpo.context.request.get(console.url(source), headers={"Range": "bytes=0-43"})
        assert media.status == 206
        assert len(media.body()) == 44
        assert media.body()[:4] == b"RIFF"
        played = runtime.audit.query(EntryFilter(subject=token, event_type="recording.played", start=before))
        assert [e.event["payload"]["range_start"] for e in played.items] == [0]
        other = dpo.context.request.get(console.url(source.replace("grant=", "grant=x")), max_redirects=0)
        assert other.status == 403


class TestFinding:
    def test_open_by_token_and_exact_search_refuse_bad_input(self, officer: Session, console: Console) -> None:
        """A malformed token and an empty value are refused next to their fields; a search finds the subject."""
        page = officer.page
        officer.goto("/console/subjects")
        page.fill("#token", "not-a-token")
        assert officer.submit("form[action='/console/subjects'] button").status == 422
        assert "not a subject token" in officer.field_error("token")
        page.select_option("#field", "pesel")
        page.select_option("#purpose", "complaint_handling")
        assert officer.submit("form[action='/console/subjects/search'] button").status == 422
        assert officer.field_error("value") == "! Fill in this field."
        subject = console.subjects["reveal"]
        page.fill("#value", subject.fields["pesel"])
        assert officer.submit("form[action='/console/subjects/search'] button").status == 200
        assert page.locator("#search-results a").all_text_contents() == [subject.token]
        assert subject.fields["pesel"] not in page.content()  # the value searched for is not shown again
        officer.shot("subjects")


class TestHolds:
    def test_a_hold_is_placed_shown_and_released(self, officer: Session, console: Console) -> None:
        """A malformed reason is refused next to it, other values kept; a valid hold shows up and is released."""
        subject = console.subjects["access"]
        page = officer.page
        officer.goto(f"/console/subjects/{subject.token}")
        page.fill("#hold_reason", "Court Order!")
        page.fill("#hold_starts_on", "2026-01-10")
        page.fill("#hold_ends_on", "2026-01-01")
        assert officer.submit("#hold-form button").status == 422
        assert "short code" in officer.field_error("hold_reason")
        assert "before the start" in officer.field_error("hold_ends_on")
        assert page.input_value("#hold_starts_on") == "2026-01-10"
        page.fill("#hold_reason", "court_order")
        page.fill("#hold_ends_on", "")
        assert officer.submit("#hold-form button").status == 303
        assert "court_order" in str(page.text_content("#holds"))
        officer.goto("/console")
        assert subject.token in str(page.text_content("#panel-holds"))
        officer.goto(f"/console/subjects/{subject.token}")
        assert officer.submit("#holds form.inline button").status == 303
        assert "released" in str(page.text_content("#holds"))


class TestBreakGlassReview:
    def test_the_dpo_reviews_a_break_glass_reveal_from_the_dashboard(self, dpo: Session, console: Console) -> None:
        """A break-glass reveal waits on the DPO's dashboard until a verdict is given; the verdict is a log entry
        naming the reveal, and the reveal leaves the list."""
        import base64

        from audit.events import Actor, ActorKind

        runtime = console.runtime
        reveal = runtime.audit.record("vault.access", actor=Actor(id="officer-bg", kind=ActorKind.USER),
                                      subject=console.subjects["reveal"].token, payload={
                                          "fields": ["pesel"], "purpose": "complaint_handling", "decision": "allow",
                                          "break_glass": True,
                                          "justification": base64.urlsafe_b64encode(b"\x00" * 40).decode()}).index
        page = dpo.page
        dpo.goto("/console/")
        assert page.is_visible(f"#review-{reveal}-justified")
        dpo.shot("dashboard-break-glass")
        assert dpo.submit(f"#review-{reveal}-justified").status == 303  # back to the dashboard
        assert page.is_visible(".notice")
        assert not page.is_visible(f"#review-{reveal}-justified")
        reviews = [e.event for e in runtime.audit.query(
            EntryFilter(event_type="policy.break_glass_reviewed"), limit=100).items]
        assert {"entry_index": reveal, "verdict": "justified",
                "entry_leaf_hash": runtime.audit.get(reveal).leaf_hash.hex()} in [e["payload"] for e in reviews]
