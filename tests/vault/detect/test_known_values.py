"""The subject's known values are found inflected, whatever the case and the diacritics."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.detect import PiiDetector
from vault.detect.known_values import FIELD_ENTITIES, KnownValueIndex, fold, word_forms


def found(detector: PiiDetector, text: str, known: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(f.entity_type, text[f.start:f.end]) for f in detector.detect(text, known)]


class TestFold:
    def test_lower_cases_and_strips_polish_diacritics(self) -> None:
        """'ŁÓDŹ Żółć' folds to 'lodz zolc'."""
        assert fold("ŁÓDŹ Żółć") == "lodz zolc"

    @given(st.text(max_size=200))
    def test_length_never_changes(self, text: str) -> None:
        """Folding keeps every offset, so spans in the folded text are spans in the original."""
        assert len(fold(text)) == len(text)


class TestWordForms:
    @pytest.mark.parametrize(("name", "form"), [
        ("Kowalski", "Kowalskiego"), ("Kowalski", "Kowalskim"), ("Kowalski", "Kowalskiemu"),
        ("Kowalska", "Kowalskiej"), ("Kowalska", "Kowalską"),
        ("Nowak", "Nowaka"), ("Nowak", "Nowakiem"), ("Nowak", "Nowakowi"), ("Nowak", "Nowaku"),
        ("Anna", "Anny"), ("Anna", "Annę"), ("Anna", "Anną"), ("Anna", "Annie"),
        ("Marta", "Marcie"), ("Agnieszka", "Agnieszce"), ("Olga", "Oldze"), ("Maria", "Marii"),
        ("Piotr", "Piotrze"), ("Paweł", "Pawła"), ("Paweł", "Pawle"), ("Marek", "Markiem"),
        ("Jerzy", "Jerzego"), ("Stępień", "Stępnia"), ("Wróbel", "Wróbla"), ("Sikora", "Sikorze"),
    ])
    def test_name_declensions_are_generated(self, name: str, form: str) -> None:
        """Common Polish declension forms of first names and surnames are among a name's forms."""
        assert fold(form) in word_forms(name, "name")

    @pytest.mark.parametrize(("city", "form"), [
        ("Warszawa", "Warszawie"), ("Kraków", "Krakowie"), ("Łódź", "Łodzi"), ("Wrocław", "Wrocławiu"),
        ("Poznań", "Poznaniu"), ("Gdańsk", "Gdańsku"), ("Katowice", "Katowicach"), ("Gdynia", "Gdyni"),
        ("Sosnowiec", "Sosnowcu"), ("Białystok", "Białymstoku"), ("Bydgoszcz", "Bydgoszczy"),
    ])
    def test_city_locatives_are_generated(self, city: str, form: str) -> None:
        """'w Warszawie', 'w Łodzi', 'w Białymstoku': the locative of a city is one of its forms."""
        assert fold(form) in word_forms(city, "place")

    def test_street_forms_stay_adjectival(self) -> None:
        """A street 'Krótka' gives 'Krótkiej' but not the everyday word 'krótki'."""
        forms = word_forms("Krótka", "street")
        assert "krotkiej" in forms
        assert "krotki" not in forms


class TestKnownValueIndex:
    def test_inflected_names_are_found_with_their_field(self, detector: PiiDetector) -> None:
        """'Jana Kowalskiego' yields two NAME findings, each pointing at the known value it stands for."""
        text = "Dzwoniłem do Jana Kowalskiego."
        findings = detector.detect(text, {"first_name": ["Jan"], "last_name": ["Kowalski"]})
        assert [(f.entity_type, text[f.start:f.end], f.field, f.canonical) for f in findings] == [
            ("NAME", "Jana", "first_name", "Jan"), ("NAME", "Kowalskiego", "last_name", "Kowalski")]

    def test_case_and_diacritics_do_not_matter(self, detector: PiiDetector) -> None:
        """An SMS without Polish letters, in any case, still matches 'Łukasz Wójcik'."""
        text = "pozdrawiam LUKASZ wojcik"
        assert found(detector, text, {"first_name": ["Łukasz"], "last_name": ["Wójcik"]}) == [
            ("NAME", "LUKASZ"), ("NAME", "wojcik")]

    def test_a_name_is_not_found_inside_a_longer_word(self, detector: PiiDetector) -> None:
        """'Jan' does not match 'Janusz' nor 'Janowski'."""
        assert found(detector, "Janusz i Janowski", {"first_name": ["Jan"]}) == []

    def test_multi_word_values_match_in_order(self, detector: PiiDetector) -> None:
        """A double-barrelled surname and a two-word city match as one span, inflected word by word."""
        known = {"last_name": ["Kowalska-Nowak"], "city": ["Gorzów Wielkopolski"]}
        text = "Pani Kowalskiej-Nowak nie zastano w Gorzowie Wielkopolskim."
        assert found(detector, text, known) == [("NAME", "Kowalskiej-Nowak"), ("ADDRESS", "Gorzowie Wielkopolskim")]

    def test_street_takes_its_house_number(self, detector: PiiDetector) -> None:
        """'na Długiej 5/3' is found as the street with its number; a date after a street is not a number."""
        known = {"street": ["ul. Długa"]}
        assert found(detector, "Mieszka na Długiej 5/3 m. 2.", known) == [("ADDRESS", "Długiej 5/3 m. 2")]
        assert found(detector, "Na Długiej 12.03.2024 nikogo.", known) == [("ADDRESS", "Długiej")]

    def test_full_address_wins_over_its_parts(self, detector: PiiDetector) -> None:
        """The stored address found verbatim is one ADDRESS, not a street and a city."""
        address = "ul. Długa 5/3, 00-950 Warszawa"
        known = {"address": [address], "street": ["Długa"], "city": ["Warszawa"]}
        assert found(detector, f"Adres: {address}.", known) == [("ADDRESS", address)]

    def test_employer_keeps_its_final_punctuation(self, detector: PiiDetector) -> None:
        """'Sp. z o.o.' is matched with its last full stop when the text has it."""
        known = {"employer": ["Hurtownia Sosna Sp. z o.o."]}
        assert found(detector, "Pracuje w Hurtownia Sosna Sp. z o.o. od roku.", known) == [
            ("EMPLOYER", "Hurtownia Sosna Sp. z o.o.")]

    @pytest.mark.parametrize("written", ["14.05.1944", "14.5.1944", "1944-05-14", "14 maja 1944"])
    def test_date_of_birth_in_usual_spellings(self, detector: PiiDetector, written: str) -> None:
        """The ISO date of birth is found however a note writes it; other dates are not."""
        known = {"date_of_birth": ["1944-05-14"]}
        assert found(detector, f"ur. {written} r., wpłata 14.05.2024", known) == [("DATE_OF_BIRTH", written)]

    def test_identifier_fields_are_accepted_and_left_to_the_recognizers(self, detector: PiiDetector) -> None:
        """Passing pesel/phone/email known values changes nothing: their recognizers find them anyway."""
        text = "PESEL 44051401359"
        assert found(detector, text, {"pesel": ["44051401359"], "phone": ["+48601234567"]}) == [
            ("PESEL", "44051401359")]

    def test_unknown_field_is_refused_without_its_value(self) -> None:
        """A field the mapping does not know raises ValueError naming the field, never the value."""
        with pytest.raises(ValueError, match="mothers_maiden_name") as caught:
            KnownValueIndex({"mothers_maiden_name": ["Zawadzka"]})
        assert "Zawadzka" not in str(caught.value)

    def test_a_bare_string_instead_of_a_sequence_is_refused(self) -> None:
        """{'first_name': 'Jan'} would be read letter by letter; it raises TypeError instead."""
        with pytest.raises(TypeError, match="first_name"):
            KnownValueIndex({"first_name": "Jan"})  # type: ignore[dict-item]

    def test_every_mapped_field_has_a_placeholder_type(self) -> None:
        """Names go to NAME, street/city/address/postcode to ADDRESS, employer to EMPLOYER."""
        assert FIELD_ENTITIES["first_name"] == FIELD_ENTITIES["last_name"] == "NAME"
        assert {FIELD_ENTITIES[f] for f in ("street", "city", "address", "postal_code")} == {"ADDRESS"}
        assert FIELD_ENTITIES["employer"] == "EMPLOYER"
