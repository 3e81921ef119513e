"""Scrubbing: placeholders, their numbering, overlap decisions, and values kept out of reprs and logs."""

from __future__ import annotations

import itertools
import logging

import pytest
from structlog.testing import capture_logs

from vault.detect import Finding, PiiDetector, PresidioDetector, Replacement, resolve, scrub_findings

NOTE = ("Dzwoniłem do Jana Kowalskiego, PESEL 44051401359, tel. 601 234 567. Pan Kowalski podał "
        "mail jan.kowalski@example.pl i drugi adres jk@example.com; oddzwonić na +48 601-234-567.")
KNOWN = {"first_name": ["Jan"], "last_name": ["Kowalski"]}
VALUES = ("Jan", "Kowalski", "44051401359", "601 234 567", "jan.kowalski@example.pl", "jk@example.com")


class TestScrub:
    def test_placeholders_are_numbered_per_type_in_order_of_appearance(self, detector: PiiDetector) -> None:
        """Each entity type counts from 1 in the order values first appear."""
        result = detector.scrub(NOTE, KNOWN)
        assert result.text == (
            "Dzwoniłem do [NAME#1] [NAME#2], PESEL [PESEL#1], tel. [PHONE#1]. Pan [NAME#2] podał "
            "mail [EMAIL#1] i drugi adres [EMAIL#2]; oddzwonić na [PHONE#1].")

    def test_the_same_value_gets_the_same_placeholder(self, detector: PiiDetector) -> None:
        """'Kowalskiego' and 'Kowalski' stand for one known value, two spellings of a phone for one number."""
        result = detector.scrub(NOTE, KNOWN)
        assert [(r.placeholder, r.entity_type, r.field) for r in result.replacements] == [
            ("[NAME#1]", "NAME", "first_name"), ("[NAME#2]", "NAME", "last_name"), ("[PESEL#1]", "PESEL", None),
            ("[PHONE#1]", "PHONE", None), ("[EMAIL#1]", "EMAIL", None), ("[EMAIL#2]", "EMAIL", None)]
        phone = next(r for r in result.replacements if r.entity_type == "PHONE")
        assert (phone.value, phone.canonical) == ("601 234 567", "+48601234567")

    def test_replacements_hold_what_the_caller_seals(self, detector: PiiDetector) -> None:
        """Each replacement carries the original text and the canonical value behind its placeholder."""
        result = detector.scrub(NOTE, KNOWN)
        assert {r.placeholder: r.value for r in result.replacements}["[NAME#2]"] == "Kowalskiego"
        assert {r.placeholder: r.canonical for r in result.replacements}["[NAME#2]"] == "Kowalski"

    def test_findings_point_into_the_original_text(self, detector: PiiDetector) -> None:
        """ScrubResult.findings are sorted, non-overlapping spans of the text as given."""
        result = detector.scrub(NOTE, KNOWN)
        spans = [(f.start, f.end) for f in result.findings]
        assert spans == sorted(spans)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
        assert all(NOTE[f.start:f.end] == f.text for f in result.findings)

    def test_a_placeholder_already_in_the_text_is_not_reused(self, detector: PiiDetector) -> None:
        """If the note already says '[PESEL#1]', the first PESEL found becomes [PESEL#2]."""
        result = detector.scrub("stary znacznik [PESEL#1], nowy PESEL 44051401359")
        assert result.text == "stary znacznik [PESEL#1], nowy PESEL [PESEL#2]"

    def test_text_without_pii_is_unchanged(self, detector: PiiDetector) -> None:
        """A note with only distractors comes back as it was, with no replacements."""
        text = "Wpłata 1 250,00 zł do 12.03.2024, sygn. I C 123/24, faktura FV/2024/03/00123."
        result = detector.scrub(text)
        assert (result.text, result.replacements) == (text, ())

    def test_non_text_is_refused(self, detector: PiiDetector) -> None:
        """detect() on something that is not a str raises TypeError naming only the type."""
        with pytest.raises(TypeError, match="bytes"):
            detector.detect(b"44051401359")  # type: ignore[arg-type]


class TestResolve:
    def test_checksummed_identifier_wins_over_an_overlapping_span(self) -> None:
        """On overlap, a checksummed identifier beats a longer non-checksummed candidate."""
        text = "x" * 30
        pesel = Finding("PESEL", 5, 16, "p", "p")
        name = Finding("NAME", 0, 20, "n", "n", "last_name", 0.85)
        assert resolve(text, [name, pesel]) == [pesel]

    def test_longer_span_wins_between_equals(self) -> None:
        """Between two non-checksummed candidates the longer one is kept."""
        text = "x" * 30
        street = Finding("ADDRESS", 3, 10, "s", "s", "street", 0.85)
        address = Finding("ADDRESS", 0, 25, "a", "a", "address", 0.85)
        assert resolve(text, [street, address]) == [address]

    def test_context_decides_between_regon_and_phone_on_one_span(self) -> None:
        """A bare 9-digit number valid as both: 'REGON' before it makes it a REGON, 'tel.' a phone."""
        for text, winner in (("REGON 123456785", "REGON"), ("tel. 123456785", "PHONE")):
            start = text.index("1")
            candidates = [Finding("PHONE", start, len(text), "v", "v"), Finding("REGON", start, len(text), "v", "v")]
            context = {"REGON": ("regon",), "PHONE": ("tel",)}
            assert [f.entity_type for f in resolve(text, candidates, context)] == [winner]

    def test_scrub_findings_numbers_by_canonical_value(self) -> None:
        """Two findings with one canonical value share a placeholder even if written differently."""
        text = "A 601234567 B +48 601 234 567"
        findings = [Finding("PHONE", 2, 11, "601234567", "+48601234567"),
                    Finding("PHONE", 14, 29, "+48 601 234 567", "+48601234567")]
        assert scrub_findings(text, findings).text == "A [PHONE#1] B [PHONE#1]"


class TestNoValueInReprs:
    def test_finding_repr_shows_no_value(self, detector: PiiDetector) -> None:
        """repr() and str() of a Finding show type and offsets, never the matched text."""
        for finding in detector.detect(NOTE, KNOWN):
            for shown in (repr(finding), str(finding), repr([finding])):
                assert finding.text not in shown
                assert finding.canonical not in shown

    def test_scrub_result_repr_shows_no_value(self, detector: PiiDetector) -> None:
        """repr() of a ScrubResult and of its replacements names placeholders, never values."""
        result = detector.scrub(NOTE, KNOWN)
        shown = repr(result) + str(result) + repr(result.replacements)
        for value in VALUES:
            assert value not in shown
        assert "[PESEL#1]" in shown

    def test_replacement_repr_shows_no_value(self) -> None:
        """A Replacement built by hand hides its value and canonical form too."""
        shown = repr(Replacement("[PESEL#1]", "PESEL", "44051401359", "44051401359"))
        assert "44051401359" not in shown


class TestNoValueInLogs:
    def test_detection_logs_no_value(self, detector: PiiDetector, presidio: PresidioDetector,
                                     caplog: pytest.LogCaptureFixture) -> None:
        """Nothing logged while detecting, by Tarcza (structlog) or presidio (stdlib, DEBUG), holds a value."""
        caplog.set_level(logging.DEBUG)
        with capture_logs() as structured:
            detector.scrub(NOTE, KNOWN)
            presidio.scrub(NOTE, KNOWN)
        logged = " ".join(r.getMessage() for r in caplog.records) + repr(structured)
        for value in VALUES:
            assert value not in logged
