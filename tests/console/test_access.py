"""Getting into the console and out of it: log-in with TOTP, first-time enrolment, log-out, language, CSRF."""

from __future__ import annotations

import re
from typing import Any

from tests.console.conftest import PASSWORD, Console, Session


def _recent_allowed_contacts(console: Console) -> int:
    """Contacts the firewall let through in the chart's 14 days (the demo data's are older; the seed's are recent)."""
    from datetime import UTC, datetime, timedelta

    from audit.events import ActorKind
    from identity.principal import Principal

    reader = Principal(id="console-test-reader", kind=ActorKind.SYSTEM)
    first = datetime.now(UTC).date() - timedelta(days=13)
    items, _ = console.runtime.contacts.history(reader, console.subjects["erasure"].token, limit=50)
    return sum(1 for c in items if c["decision"] != "refuse" and c["occurred_at"][:10] >= first.isoformat())


class TestLogin:
    def test_login_with_totp_then_logout_ends_the_session(self, anonymous: Session, console: Console) -> None:
        """A code computed here logs in; log-out revokes the session, so its old cookie no longer opens anything."""
        page = anonymous.page
        anonymous.goto("/console")
        assert "/console/login" in page.url
        anonymous.shot("login")
        clerk = console.people["clerk"]

        bad = anonymous.login(clerk, code="000000")
        assert bad.status == 422
        assert page.is_visible("#form-error")
        assert page.input_value("#username") == clerk.username
        assert page.input_value("#password") == ""
        assert page.input_value("#code") == ""

        answer = anonymous.login(clerk)
        assert answer.status == 303
        assert answer.headers["location"] == "/console"
        cookie = next(c for c in anonymous.context.cookies() if c["name"] == "tarcza_console")
        assert cookie["httpOnly"]
        assert cookie["sameSite"] == "Strict"
        assert cookie["path"] == "/console"
        assert page.text_content("h1") == "Dashboard"
        assert clerk.username in str(page.text_content(".who"))
        totals = page.locator("#chart-contacts-table tbody tr td:last-child").all_text_contents()
        assert sum(int(n) for n in totals) == _recent_allowed_contacts(console)
        anonymous.shot("dashboard")

        answer = anonymous.submit("#logout")
        assert answer.status == 303
        assert "You have logged out." in str(page.text_content(".notice"))
        anonymous.context.add_cookies([cookie])  # the old session's token, as a thief might replay it
        anonymous.goto("/console")
        assert "/console/login" in page.url
        assert "ended=1" in page.url
        assert page.text_content("h1") == "Log in"

    def test_password_without_code_is_asked_for_the_code(self, anonymous: Session, console: Console) -> None:
        """An enrolled account given no code is refused with the message next to the code field."""
        answer = anonymous.login(console.people["clerk"], code="")
        assert answer.status == 422
        assert "needs the code" in anonymous.field_error("code")
        anonymous.check()


class TestEnrolment:
    def test_first_login_enrols_totp_with_the_qr_code_and_shows_recovery_codes_once(
            self, anonymous: Session, console: Console) -> None:
        """A password-only account lands on enrolment (QR code), confirms with a code, and sees ten recovery codes."""
        import pyotp

        page = anonymous.page
        newbie = console.people["newbie"]
        answer = anonymous.login(newbie, code="")
        assert answer.status == 303
        assert answer.headers["location"] == "/console/enrol"
        page.wait_for_url("**/console/enrol")
        qr = page.get_attribute("#totp-qr", "src") or ""
        assert qr.startswith("data:image/png;base64,")
        assert page.evaluate("document.getElementById('totp-qr').naturalWidth") > 0
        anonymous.shot("enrolment")
        anonymous.goto("/console/subjects")
        assert page.url.endswith("/console/enrol")  # nothing else opens before enrolment
        secret = str(page.text_content("#totp-secret")).replace(" ", "")
        assert page.get_attribute("#totp-qr", "src") == qr  # a reload keeps the pending secret

        page.fill("#code", "12345")
        assert anonymous.submit("form[action='/console/enrol'] button").status == 422
        assert "six digits" in anonymous.field_error("code")
        page.fill("#code", str(pyotp.TOTP(secret).now()))
        assert anonymous.submit("form[action='/console/enrol'] button").status == 200
        codes = [str(c).strip() for c in page.locator("#recovery-codes code").all_text_contents()]
        assert len(codes) == 10
        assert all(re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", c) for c in codes)
        anonymous.shot("recovery-codes")
        anonymous.goto("/console/enrol")
        assert page.url.endswith("/console")
        assert page.text_content("h1") == "Dashboard"
        assert codes[0] not in page.content()

        anonymous.submit("#logout")
        assert anonymous.login(newbie, code=codes[3].lower()).status == 303  # a recovery code instead of TOTP
        assert page.text_content("h1") == "Dashboard"
        anonymous.submit("#logout")
        assert anonymous.login(newbie, code=codes[3]).status == 422  # once only


class TestLanguage:
    def test_language_switch_is_kept_in_a_cookie(self, anonymous: Session) -> None:
        """Polski switches every text and the lang attribute; the choice outlives the page; English switches back."""
        page = anonymous.page
        anonymous.goto("/console/login")
        assert page.get_attribute("html", "lang") == "en"
        anonymous.page.click("a[hreflang=pl]")
        page.wait_for_load_state()
        assert page.get_attribute("html", "lang") == "pl"
        assert page.text_content("h1") == "Logowanie"
        assert page.text_content("label[for=password]") == "Hasło (wymagane)"
        anonymous.goto("/console/login")
        assert page.text_content("h1") == "Logowanie"
        anonymous.shot("login-pl")
        anonymous.page.click("a[hreflang=en]")
        page.wait_for_load_state()
        assert page.get_attribute("html", "lang") == "en"
        assert page.text_content("h1") == "Log in"

    def test_console_pages_speak_polish(self, officer: Session, console: Console) -> None:
        """With Polish chosen, the dashboard, a subject, the requests and an error page are in Polish."""
        page = officer.page
        officer.goto("/console/lang/pl?next=/console")
        try:
            assert page.get_attribute("html", "lang") == "pl"
            assert page.text_content("h1") == "Pulpit"
            officer.shot("dashboard-pl")
            officer.goto(f"/console/subjects/{console.subjects['erasure'].token}")
            assert page.text_content("#data-title") == "Dane osobowe"
            assert "Otwarte roszczenie" in str(page.text_content("#erasure"))
            officer.shot("subject-pl")
            officer.goto("/console/requests")
            assert page.text_content("#new-request-title") == "Zarejestruj żądanie"
            assert officer.goto("/console/requests/dsr_nothing").status == 404
            assert page.text_content("h1") == "To się nie udało"
        finally:
            officer.goto("/console/lang/en?next=/console")

    def test_keyboard_reaches_the_skip_link_first_and_it_moves_focus_to_the_content(self, anonymous: Session) -> None:
        """The first Tab lands on "Skip to the main content"; Enter moves the focus to the page's main region."""
        page = anonymous.page
        anonymous.goto("/console/login")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip-link"
        assert page.evaluate("document.activeElement.textContent") == "Skip to the main content"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "username"

    def test_accept_language_chooses_polish_by_default(self, browser: Any, console: Console) -> None:
        """A browser preferring Polish gets Polish without choosing."""
        context = browser.new_context(locale="pl-PL")
        try:
            page = context.new_page()
            page.goto(console.url("/console/login"))
            assert page.get_attribute("html", "lang") == "pl"
        finally:
            context.close()


class TestCsrf:
    def test_post_without_the_forms_token_is_refused(self, officer: Session, console: Console) -> None:
        """A POST carrying the session cookie but not the CSRF token changes nothing (403)."""
        before = officer.page.context.cookies()
        response = officer.context.request.post(console.url("/console/logout"), form={"csrf": "forged"},
                                                max_redirects=0)
        assert response.status == 403
        response = officer.context.request.post(console.url("/console/requests"), form={
            "subject": console.subjects["access"].token, "kind": "access", "received_on": "2026-01-01",
            "channel": "letter"}, max_redirects=0)
        assert response.status == 403
        assert officer.context.cookies() == before
        officer.goto("/console")
        assert officer.page.text_content("h1") == "Dashboard"  # still logged in

    def test_login_form_needs_its_token_too(self, browser: Any, console: Console) -> None:
        """Log-in CSRF: a POST to the log-in form without the pre-session token is refused."""
        context = browser.new_context()
        try:
            response = context.request.post(console.url("/console/login"), form={
                "username": console.people["clerk"].username, "password": PASSWORD}, max_redirects=0)
            assert response.status == 403
        finally:
            context.close()
