"""The DPO's registers and a debt's reasoning in the console, in Chromium: the Art. 14 notice of a bought debt on
the dashboard and its register page, a breach recorded (and one refused for personal data in its text), and a
debt's limitation period step by step."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.console.conftest import Console, Session


class TestRegisters:
    def test_notice_on_the_dashboard_then_given(self, officer: Session, console: Console) -> None:
        """A bought debt's Art. 14 notice (opened as POST /v1/debts opens it) is on the dashboard's panel with its
        deadline; on the registers page it is marked given, and the register holds it as given."""
        from audit.events import ActorKind
        from identity.principal import Principal

        page = officer.page
        token = console.subjects["access"].token
        console.runtime.gdpr_registers.notices.open(
            Principal(id="console-test-seeder", kind=ActorKind.SYSTEM), token, debt_id=None,
            source="Fikcyjny Bank S.A.", obtained_on=console.runtime.clock.now().date())
        officer.goto("/console/")
        assert page.is_visible("#panel-registers")
        assert token in str(page.text_content("#panel-registers"))
        officer.goto("/console/registers")
        row = page.locator("#notices tr", has_text=token)
        assert row.count() == 1
        officer.shot("registers")
        with page.expect_response(lambda r: r.request.method == "POST"):
            row.locator("button").click()
        page.wait_for_load_state()
        assert "The notice is recorded." in str(page.text_content("main"))
        [notice] = console.runtime.gdpr_registers.notices.of_subject(token)
        assert notice["status"] == "given"

    def test_breach_recorded_and_refused_with_personal_data(self, officer: Session, console: Console) -> None:
        """A breach whose facts hold a phone number is refused with the form kept; a clean one is recorded and shown
        with its 72-hour clock."""
        page = officer.page
        officer.goto("/console/registers")
        page.fill("#aware_at", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M"))
        page.check("#nature-confidentiality")
        page.check("#category-contact")
        page.fill("#facts", "A list with +48 600 100 200 was left on a printer.")
        page.fill("#effects", "The list may have been read by visitors.")
        page.fill("#remedial_action", "The printer's queue is now locked.")
        page.select_option("#risk", "risk")
        assert officer.submit("#breach-form button").status == 422
        assert page.input_value("#effects") == "The list may have been read by visitors."
        page.check("#nature-confidentiality")
        page.check("#category-contact")
        page.fill("#facts", "A printed call list was left on a shared printer.")
        assert officer.submit("#breach-form button").status == 303
        assert "The breach is recorded." in str(page.text_content("main"))
        assert "h left" in str(page.text_content("#breaches table"))


class TestDebtPage:
    def test_limitation_reasoning_step_by_step(self, officer: Session, console: Console) -> None:
        """From the subject's page, the debt's page shows its limitation period with each step's article."""
        page = officer.page
        officer.goto(f"/console/subjects/{console.subjects['erasure'].token}")
        page.click("#debts a")
        page.wait_for_load_state()
        assert "art. 120 § 1" in str(page.text_content("#reasoning"))
        assert str(page.text_content("#time-barred-on")).strip()
        officer.shot("debt")
