"""The synthetic corpus is sound, the detector meets its targets on it, and presidio agrees."""

from __future__ import annotations

from vault.detect import CHECKSUMMED, PiiDetector, PresidioDetector
from vault.detect.corpus import Note, Score, evaluate, generate
from vault.validators import is_valid

KINDS = {"PESEL": "pesel", "NIP": "nip", "REGON": "regon", "ID_CARD": "id_card", "PASSPORT": "passport",
         "IBAN": "iban", "PHONE": "phone"}


class TestGenerate:
    def test_same_seed_same_corpus(self) -> None:
        """Generation is deterministic by seed, and another seed gives other notes."""
        assert [n.text for n in generate(40, 3)] == [n.text for n in generate(40, 3)]
        assert [n.text for n in generate(40, 3)] != [n.text for n in generate(40, 4)]

    def test_every_kind_of_note_and_entity_occurs(self, corpus: list[Note]) -> None:
        """1,000 notes cover calls, visits, SMS and e-mail replies, and every entity type."""
        assert len(corpus) == 1000
        assert {n.kind for n in corpus} == {"call", "visit", "sms", "email"}
        entities = {s.entity_type for n in corpus for s in n.spans}
        assert CHECKSUMMED | {"PHONE", "EMAIL", "NAME", "ADDRESS", "EMPLOYER", "DATE_OF_BIRTH"} <= entities

    def test_ground_truth_identifiers_are_valid(self, corpus: list[Note]) -> None:
        """Every identifier the corpus says must be found passes the vault's validator."""
        for note in corpus:
            for span in note.spans:
                kind = KINDS.get(span.entity_type)
                value = note.text[span.start:span.end]
                if kind == "nip":
                    value = value.removeprefix("PL")  # the EU VAT form of a NIP
                if kind == "iban":
                    value = value.replace("-", " ")  # groups split by dashes
                if kind:
                    assert is_valid(kind, value), span

    def test_distractors_are_present(self, corpus: list[Note]) -> None:
        """Amounts, case numbers, invoices and checksum-failing look-alikes are mixed in."""
        text = "\n".join(n.text for n in corpus)
        for marker in (" zł", "I C ", "FV/", "numer klienta ", "numer umowy ", "błędny numer dowodu ",
                       "rachunek "):
            assert marker in text

    def test_inflected_and_unaccented_names_occur(self, corpus: list[Note]) -> None:
        """Names appear in oblique cases and in SMS typed without Polish letters."""
        names = {n.text[s.start:s.end] for n in corpus for s in n.spans if s.entity_type == "NAME"}
        assert any(name.endswith(("skiego", "skim", "skiej")) for name in names)
        assert any(n.kind == "sms" and "dluznik" in n.text.lower() for n in corpus)


class TestEvaluate:
    def test_scores_count_exact_matches_only(self) -> None:
        """A finding counts only with the exact span and type; everything else is a miss and a false alarm."""
        note = generate(1, 11)[0]
        assert evaluate(lambda _t, _k: [], [note]).overall == Score(0, 0, len(note.spans))

    def test_detector_meets_the_targets_on_the_corpus(self, detector: PiiDetector, corpus: list[Note]) -> None:
        """Recall >= 0.99 on checksummed identifiers, >= 0.95 overall, precision >= 0.95 overall."""
        result = evaluate(detector.detect, corpus)
        assert result.checksummed.recall >= 0.99, result.to_json()
        assert result.overall.recall >= 0.95, result.to_json()
        assert result.overall.precision >= 0.95, result.to_json()


class TestPresidioBaseline:
    def test_presidio_finds_exactly_what_the_fast_path_finds(self, detector: PiiDetector,
                                                            presidio: PresidioDetector, corpus: list[Note]) -> None:
        """Over the whole corpus, presidio's AnalyzerEngine with the same recognizers gives the same findings."""
        differing = [i for i, note in enumerate(corpus)
                     if detector.detect(note.text, note.known_values) != presidio.detect(note.text, note.known_values)]
        assert differing == []

    def test_presidio_engine_is_configured_as_the_baseline(self, presidio: PresidioDetector) -> None:
        """The engine serves Polish with a spaCy pipeline and exactly Tarcza's eight pattern recognizers."""
        engine = presidio.analyzer
        assert engine.supported_languages == ["pl"]
        assert type(engine.nlp_engine).__name__ == "OfflineSpacyNlpEngine"
        names = sorted(type(r).__name__ for r in engine.registry.recognizers)
        assert names == sorted(type(r).__name__ for r in PiiDetector().recognizers)
