"""Subject requests in the console: an access request to its verified archive, an erasure refused for an open debt."""

from __future__ import annotations

from pathlib import Path

from gdpr.export import verify_archive
from tests.console.conftest import Console, Session


def _register(officer: Session, token: str, kind: str) -> str:
    """Register a request through the form; returns its id (from the page it lands on)."""
    page = officer.page
    officer.goto("/console/requests")
    page.fill("#subject", token)
    page.select_option("#kind", kind)
    page.select_option("#channel", "letter")
    assert officer.submit("#new-request-form button").status == 303
    assert "The request is registered" in str(page.text_content(".notice"))
    return page.url.rsplit("/", 1)[1].split("?")[0]


class TestNewRequest:
    def test_the_form_refuses_bad_input_next_to_each_field(self, officer: Session, console: Console) -> None:
        """A malformed token, a future date and a missing channel are each named next to their field."""
        page = officer.page
        officer.goto("/console/requests")
        page.fill("#subject", "sub_nope")
        page.select_option("#kind", "erasure")
        page.fill("#received_on", "2999-01-01")
        page.select_option("#channel", "")
        assert officer.submit("#new-request-form button").status == 422
        assert "not a subject token" in officer.field_error("subject")
        assert "future" in officer.field_error("received_on")
        assert "Choose" in officer.field_error("channel")
        assert page.input_value("#subject") == "sub_nope"
        assert page.input_value("#kind") == "erasure"
        page.fill("#subject", "sub_" + "A" * 22)
        page.fill("#received_on", "2026-01-02")
        page.select_option("#channel", "email")
        assert officer.submit("#new-request-form button").status == 422
        assert "No subject has this token" in officer.field_error("subject")


class TestAccessRequest:
    def test_access_request_is_verified_and_answered_with_an_archive_that_verifies(
            self, officer: Session, console: Console, tmp_path: Path) -> None:
        """Register, record the verification (not before choosing how), extend, export: the archive verifies."""
        subject = console.subjects["access"]
        page = officer.page
        request_id = _register(officer, subject.token, "access")
        officer.goto("/console")
        assert request_id in str(page.text_content("#panel-requests"))
        officer.goto(f"/console/requests/{request_id}")

        assert officer.submit("#verify-form button").status == 422
        assert "Choose" in officer.field_error("method")
        page.select_option("#method", "id_document")
        assert officer.submit("#verify-form button").status == 303
        assert page.text_content("#request-status") == "identity verified"

        page.select_option("#reason", "complexity")
        assert officer.submit("#extend-form button").status == 422
        assert "Choose" in officer.field_error("months")
        assert page.input_value("#reason") == "complexity"
        page.select_option("#months", "1")
        assert officer.submit("#extend-form button").status == 303
        assert "by 1 month(s)" in str(page.text_content("#request-facts"))
        officer.shot("request")

        assert officer.submit("#export-form button").status == 422  # a compliance officer exports by break-glass
        assert "too short" in officer.field_error("justification")
        page.fill("#justification", "Access request of the subject, answered under Art. 15; file DSR/2026/7.")
        page.fill("#code", console.people["officer"].code())
        with page.expect_download() as download:
            page.click("#export-form button")
        archive = tmp_path / "archive.zip"
        download.value.save_as(archive)
        key = console.runtime.audit.verifier().to_string()
        checked = verify_archive(archive, trusted_key=key, require_signature=True)
        assert checked.subject == subject.token
        assert checked.log_entries > 0

        officer.goto(f"/console/requests/{request_id}")
        assert page.text_content("#request-status") == "completed"
        outcome = console.runtime.gdpr.get(_manager(console), request_id)["outcome"]
        assert outcome.startswith("exported:sha256:")
        officer.goto("/console/requests?view=closed")
        assert request_id in str(page.text_content("#requests-table"))
        officer.goto("/console/requests")
        officer.shot("requests")


class TestErasure:
    def test_erasure_is_refused_for_an_open_debt_with_the_legal_reason_shown_first(
            self, officer: Session, console: Console) -> None:
        """The decision page names the open claim and its legal basis before anything is confirmed; then refused."""
        subject = console.subjects["erasure"]
        page = officer.page
        request_id = _register(officer, subject.token, "erasure")
        page.select_option("#method", "known_contact")
        assert officer.submit("#verify-form button").status == 303
        page.click("#erase-decision")
        page.wait_for_load_state()
        verdict = str(page.text_content("#erasure-verdict"))
        assert "must be kept" in verdict
        assert "possible on" in verdict
        reasons = str(page.text_content("#erasure-reasons"))
        assert "Open legal claim" in reasons
        assert "Art. 17(3)(e)" in reasons
        officer.shot("erasure-decision")

        assert officer.submit("#erase-form button").status == 422
        assert "Tick the box" in officer.field_error("confirm")
        page.check("#confirm")
        page.fill("#code", console.people["officer"].code())  # erasing needs a fresh second factor
        assert officer.submit("#erase-form button").status == 200
        assert "The erasure is refused." in str(page.text_content("#erasure-result"))
        assert "Open legal claim" in str(page.text_content("#erasure-reasons"))
        officer.shot("erasure-outcome")

        runtime = console.runtime
        assert runtime.gdpr.get(_manager(console), request_id)["status"] == "refused"
        assert runtime.vault.subject_status(subject.token) == "active"  # nothing was shredded
        officer.goto(f"/console/subjects/{subject.token}")
        assert "The subject's data was erased" not in page.content()


class TestClosingForms:
    def test_closing_and_executing_forms_refuse_bad_input(self, officer: Session, console: Console) -> None:
        """Complete, refuse, restrict, object and rectify each name what is wrong next to the field."""
        page = officer.page
        token = console.subjects["access"].token
        forms = {"restriction": ("#restrict-form", "subject_informed", "Tell the subject"),
                 "objection": ("#object-form", "objection_purpose", "Choose"),
                 "rectification": ("#rectify-form", "rectify_values", "Fill in")}
        for kind, (form, field, message) in forms.items():
            request_id = _register(officer, token, kind)
            page.select_option("#method", "in_person")
            assert officer.submit("#verify-form button").status == 303
            if kind == "restriction":
                page.check("#lift")
            if kind == "rectification":
                page.select_option("#rectify_field", "phone")
            assert officer.submit(f"{form} button").status == 422, kind
            assert message in officer.field_error(field), kind
            page.fill("#outcome", "")
            assert officer.submit("#complete-form button").status == 422
            assert "Fill in" in officer.field_error("outcome")
            page.fill("#refusal", "Not A Code")
            assert officer.submit("#refuse-form button").status == 422
            assert "short code" in officer.field_error("refusal")
            page.fill("#refusal", "manifestly_unfounded")
            assert officer.submit("#refuse-form button").status == 303
            assert page.text_content("#request-status") == "refused", request_id


def _manager(console: Console):  # type: ignore[no-untyped-def]
    """A principal that may manage requests, to read them back from this process."""
    from audit.events import ActorKind
    from identity.principal import Principal

    return Principal(id="console-test-reader", kind=ActorKind.SYSTEM)
