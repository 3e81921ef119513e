"""The articles Tarcza cites where a refused erasure becomes a restriction (issue 17, defect 6)."""

from __future__ import annotations

from pathlib import Path

import yaml

import gdpr.service

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = ROOT / "api" / "console" / "messages"


class TestRestrictionInsteadOfErasure:
    def test_console_does_not_cite_the_subjects_own_claims(self) -> None:
        """Art. 18(1)(c) is the data subject's own legal claims; a restriction kept for the firm's claims after a
        refused erasure rests on Art. 17(3)(e) with Art. 18(2), and the console's messages say so in both languages."""
        for lang, cited in (("en", ("Art. 17(3)(e)", "18(2)")), ("pl", ("art. 17 ust. 3 lit. e", "art. 18 ust. 2"))):
            erase = yaml.safe_load((MESSAGES / f"{lang}.yaml").read_text(encoding="utf-8"))["erase"]
            text = erase["restrict_if_refused"]
            assert "18(1)(c)" not in text
            assert "18 ust. 1 lit. c" not in text
            for article in cited:
                assert article in text, (lang, text)

    def test_service_docs_do_not_cite_art_18_1_c(self) -> None:
        """The GDPR service's own description of the restriction cites the firm's claims, not the subject's."""
        doc = gdpr.service.__doc__ or ""
        assert "18(1)(c)" not in doc
        assert "17(3)(e)" in doc
