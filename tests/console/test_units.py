"""The console's pure parts, without a browser: catalogues, language choice, charts, redirects, CSRF, notes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.console import charts
from api.console.i18n import LANGUAGES, catalogue, negotiate
from api.console.state import Verification, from_entry
from api.console.web import check_csrf, csrf_token, safe_next
from audit.events import CATALOGUE
from policies.actions import ACTIONS

CONSOLE = Path(__file__).resolve().parents[2] / "api" / "console"
_QUOTED_KEY = re.compile(r"""["']([a-z_0-9]+(?:\.[a-z_0-9]+)+)["']""")


class TestCatalogues:
    def test_both_languages_have_the_same_keys_and_no_empty_message(self) -> None:
        """Polish and English hold exactly the same keys, each with text."""
        pl, en = catalogue("pl"), catalogue("en")
        assert set(pl) == set(en)
        assert not [k for k in pl if not pl[k].strip() or not en[k].strip()]

    def test_every_key_a_template_or_handler_names_exists(self) -> None:
        """A message key spelt in a template or in the console's code is in the catalogue (no text falls through)."""
        en = catalogue("en")
        namespaces = {key.split(".", 1)[0] for key in en}
        not_keys = set(ACTIONS) | set(CATALOGUE) | {"subject.read_masked", "ropa.json", "tarcza.console"}
        missing: list[str] = []
        for path in [*CONSOLE.glob("templates/*.html"), *CONSOLE.glob("*.py")]:
            for key in _QUOTED_KEY.findall(path.read_text(encoding="utf-8")):
                if key.endswith((".html", ".yaml", ".css", ".js")) or key in not_keys:
                    continue
                if key.split(".", 1)[0] in namespaces and key not in en:
                    missing.append(f"{path.name}: {key}")
        assert missing == []

    def test_parameters_are_the_same_in_both_languages(self) -> None:
        """A message names the same {parameters} in Polish as in English, so no page fails in one language."""
        pl, en = catalogue("pl"), catalogue("en")
        names = re.compile(r"\{(\w+)\}")
        assert [k for k in en if set(names.findall(en[k])) != set(names.findall(pl[k]))] == []


class TestLanguage:
    @pytest.mark.parametrize(("header", "expected"), [
        ("pl-PL,pl;q=0.9,en;q=0.8", "pl"), ("en-US,en;q=0.9,pl;q=0.8", "en"), ("de-DE,de;q=0.9", "en"),
        ("de,pl;q=0.5", "pl"), ("pl;q=0,en;q=0.1", "en"), ("", "en"), (None, "en"), ("en;q=0.2,pl;q=0.7", "pl"),
    ])
    def test_accept_language_picks_the_best_of_ours(self, header: str | None, expected: str) -> None:
        """Quality values decide; languages we do not have are skipped; English is the fallback."""
        assert negotiate(header) == expected
        assert expected in LANGUAGES


class TestRedirects:
    @pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/console", "/v1/users",
                                        "/consolex", "/console/../v1/users", "/console\\@evil", "/console\n/x", None])
    def test_next_outside_the_console_goes_to_the_dashboard(self, target: str | None) -> None:
        """After log-in or a language switch the browser only ever goes to a console path."""
        assert safe_next(target) == "/console"

    @pytest.mark.parametrize("target", ["/console", "/console/audit?subject=sub_x", "/console/requests/dsr_1"])
    def test_next_inside_the_console_is_kept(self, target: str) -> None:
        """A console path (with its query) is where the user was going."""
        assert safe_next(target) == target


class TestCsrf:
    def test_token_is_bound_to_the_session(self) -> None:
        """Another session's token, a forged one or none is refused; the session's own passes."""
        from api.console.web import CsrfError

        check_csrf("tzs_a", csrf_token("tzs_a"))
        for secret, submitted in (("tzs_a", csrf_token("tzs_b")), ("tzs_a", "forged"), ("tzs_a", None), (None, "x")):
            with pytest.raises(CsrfError):
                check_csrf(secret, submitted)


class TestCharts:
    def test_bar_chart_escapes_labels_and_carries_its_text_alternative(self) -> None:
        """Labels are escaped; the SVG has a title and a desc naming every value; the table says the same."""
        chart = charts.bar_chart("c", "Denials <by rule>", [("<script>x</script>", 3), ("weekend", 1)],
                                 label_header="Rule", value_header="Count", empty_text="none")
        svg = str(chart.svg)
        assert "<script>" not in svg
        assert "&lt;script&gt;" in svg
        assert "<title id=\"c-title\">Denials &lt;by rule&gt;</title>" in svg
        assert re.search(r"<desc id=\"c-desc\">[^<]*weekend: 1", svg)
        assert chart.rows == (("<script>x</script>", "3"), ("weekend", "1"))
        assert ' style=' not in svg

    def test_columns_stack_series_and_an_empty_chart_says_so(self) -> None:
        """Totals per day are the sums of the series; no data gives the empty text, not an empty drawing."""
        chart = charts.stacked_columns("d", "Contacts", ["2026-11-01", "2026-11-02"],
                                       [("phone", [1, 0]), ("sms", [2, 0])],
                                       category_header="Day", total_header="Total", empty_text="none")
        assert chart.rows == (("2026-11-01", "1", "2", "3"), ("2026-11-02", "0", "0", "0"))
        assert not chart.empty
        assert "2026-11-01: 3" in str(chart.svg)
        empty = charts.stacked_columns("e", "Contacts", ["2026-11-01"], [("phone", [0])], category_header="Day",
                                       total_header="Total", empty_text="nothing here")
        assert empty.empty
        assert "nothing here" in str(empty.svg)


class TestVerificationNote:
    def test_the_entry_reads_back_and_carries_no_personal_data(self) -> None:
        """A verification's audit.log_verified payload reads back to its outcome and passes the log's checks."""
        from audit.events import Actor, ActorKind, build_event

        at = datetime(2026, 11, 23, tzinfo=UTC)
        ok = Verification(started_at=at, started_by="usr_x", ok=True, entries=123456, checkpoints=7,
                          root_hash="A" * 43 + "=")
        failed = Verification(started_at=at, started_by="usr_x", ok=False, failed_what="audit-tampered",
                              failed_index=41)
        for done in (ok, failed):
            event = build_event("audit.log_verified", actor=Actor(id="usr_x", kind=ActorKind.USER), time=at,
                                payload=done.payload()).json_value()
            again = from_entry(9, event)
            assert (again.ok, again.entries, again.checkpoints, again.failed_what, again.failed_index,
                    again.log_index) == (done.ok, done.entries, done.checkpoints, done.failed_what,
                                         done.failed_index, 9)


class TestContrast:
    PAIRS = (("--text", "--bg"), ("--text", "--panel"), ("--muted", "--bg"), ("--muted", "--panel"),
             ("--link", "--bg"), ("--link", "--panel"), ("--primary-text", "--primary"), ("--bad-text", "--bad-bg"),
             ("--soon-text", "--soon-bg"), ("--ok-text", "--ok-bg"), ("--bg", "--danger"))

    @staticmethod
    def _luminance(hex_colour: str) -> float:
        channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    def test_text_colours_meet_wcag_aa_against_their_backgrounds(self) -> None:
        """Every text/background pair of the stylesheet has a contrast ratio of at least 4.5:1 (WCAG 2.1 AA)."""
        css = (CONSOLE / "static" / "console.css").read_text(encoding="utf-8")
        colours = dict(re.findall(r"(--[a-z-]+):\s*(#[0-9a-fA-F]{6})", css))
        for fore, back in self.PAIRS:
            lighter, darker = sorted((self._luminance(colours[fore]), self._luminance(colours[back])), reverse=True)
            ratio = (lighter + 0.05) / (darker + 0.05)
            assert ratio >= 4.5, f"{fore} on {back}: {ratio:.2f}:1"
