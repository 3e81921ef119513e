"""Retention (dry run, confirmed run), the record of processing activities, the breach-impact query, role limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.console.conftest import Console, Session


class TestRetention:
    def test_dry_run_reports_and_the_run_needs_confirmation(self, officer: Session, console: Console) -> None:
        """The dry run shows its counts and changes nothing; the run is refused until confirmed, then reports."""
        page = officer.page
        officer.goto("/console/retention")
        active = console.runtime.vault.active_count()
        assert officer.submit("#dry-run").status == 200
        assert page.is_visible("#retention-report")
        assert int(str(page.text_content("#actions-due"))) >= 0
        assert console.runtime.vault.active_count() == active
        officer.shot("retention")
        assert officer.submit("#retention-run-form button").status == 422
        assert "Tick the box" in officer.field_error("confirm")
        page.check("#confirm")
        page.fill("#code", console.people["officer"].code())  # the run shreds: a fresh second factor
        assert officer.submit("#retention-run-form button").status == 200
        assert "Run report" in str(page.text_content("#retention-report h2"))


class TestRecordOfProcessing:
    def test_the_record_is_shown_in_the_pages_language_and_downloads(self, officer: Session, console: Console) -> None:
        """The Art. 30 record renders from its document; its JSON downloads with the same sources."""
        page = officer.page
        officer.goto("/console/ropa")
        assert page.text_content("h1") == "Record of processing activities"
        assert "fields.yaml" in page.content()
        officer.shot("ropa")
        response = officer.context.request.get(console.url("/console/ropa/download?format=json"))
        assert response.status == 200
        assert response.json()["format"] == "tarcza-ropa/v1"


class TestBreach:
    def test_breach_query_refuses_bad_input_then_reports_the_exposed_subjects(
            self, officer: Session, console: Console) -> None:
        """Missing actor and an empty window are named next to their fields; the officer's own reads are found."""
        page = officer.page
        token = console.subjects["reveal"].token
        officer.goto(f"/console/subjects/{token}")  # a masked view: what a thief with this account would have seen
        officer.goto("/console/breach")
        now = datetime.now(UTC)
        fmt = "%Y-%m-%dT%H:%M"
        page.fill("#since", now.strftime(fmt))
        page.fill("#until", (now - timedelta(hours=1)).strftime(fmt))
        page.fill("#aware_at", now.strftime(fmt))
        assert officer.submit("#breach-form button").status == 422
        assert "Fill in" in officer.field_error("actor_id")
        assert "not after the start" in officer.field_error("until")
        assert page.input_value("#since") == now.strftime(fmt)
        page.fill("#actor_id", console.people["officer"].user_id)
        page.fill("#since", (now - timedelta(hours=2)).strftime(fmt))
        page.fill("#until", (now + timedelta(hours=1)).strftime(fmt))
        assert officer.submit("#breach-form button").status == 200
        assert page.is_visible("#breach-report")
        assert int(str(page.text_content("#breach-subjects"))) >= 1
        assert token in str(page.text_content("#breach-report table"))
        officer.shot("breach")


class TestRoles:
    def test_an_auditor_sees_no_request_pages(self, auditor: Session) -> None:
        """The menu shows what the role may open; a request page answers 403 naming the rule kind."""
        page = auditor.page
        auditor.goto("/console")
        menu = page.locator("nav.main-nav a").all_text_contents()
        assert "Audit log" in menu
        assert "Requests" not in menu
        assert "Retention" not in menu
        response = auditor.goto("/console/requests")
        assert response.status == 403
        assert "your role" in str(page.text_content("main"))
