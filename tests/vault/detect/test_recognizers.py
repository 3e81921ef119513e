"""Each pattern recognizer finds valid values and ignores look-alikes that fail their checksum."""

from __future__ import annotations

import random

import pytest

from vault.detect import PiiDetector
from vault.detect.recognizers import PlPhoneRecognizer, TextStats, offline_tld_extractor
from vault.validators import canonical_or_none, is_valid


def found(detector: PiiDetector, text: str) -> list[tuple[str, str]]:
    return [(f.entity_type, text[f.start:f.end]) for f in detector.detect(text)]


class TestPeselRecognizer:
    def test_valid_pesel_is_found(self, detector: PiiDetector) -> None:
        """A PESEL with a correct check digit and birth date is reported as PESEL."""
        assert found(detector, "PESEL 44051401359, dzwonić rano.") == [("PESEL", "44051401359")]

    def test_pesel_of_someone_born_after_2000_is_found(self, detector: PiiDetector) -> None:
        """The month offset of the 2000s (+20) is understood."""
        assert found(detector, "pesel: 02070803628") == [("PESEL", "02070803628")]

    def test_wrong_check_digit_is_not_a_pesel(self, detector: PiiDetector) -> None:
        """Eleven digits whose checksum fails are not reported at all."""
        assert found(detector, "numer klienta 44051401358") == []

    def test_pesel_is_not_found_inside_a_longer_number(self, detector: PiiDetector) -> None:
        """A valid PESEL embedded in a longer digit run or after a letter is not a PESEL."""
        assert found(detector, "ref 944051401359 i X44051401359") == []

    def test_plus_prefixed_digits_are_a_phone_not_a_pesel(self, detector: PiiDetector) -> None:
        """'+48' followed by nine digits whose last eleven pass as a PESEL is a phone number."""
        assert found(detector, "tel. +48720805495") == [("PHONE", "+48720805495")]


class TestNipRecognizer:
    @pytest.mark.parametrize("nip", ["1234563218", "123-456-32-18", "123-45-63-218", "123 456 32 18", "PL1234563218"])
    def test_valid_nip_is_found_in_every_usual_grouping(self, detector: PiiDetector, nip: str) -> None:
        """Bare, dashed (3-3-2-2 and 3-2-2-3), spaced and PL-prefixed NIPs are reported whole."""
        assert found(detector, f"NIP {nip}.") == [("NIP", nip)]

    def test_wrong_check_digit_is_not_a_nip(self, detector: PiiDetector) -> None:
        """Ten digits whose mod-11 checksum fails are not reported."""
        assert found(detector, "nr umowy 1234563219") == []


class TestRegonRecognizer:
    @pytest.mark.parametrize("regon", ["123456785", "12345678510003"])
    def test_valid_regon_is_found(self, detector: PiiDetector, regon: str) -> None:
        """Nine- and fourteen-digit REGONs with valid checksums are reported."""
        assert found(detector, f"REGON {regon}") == [("REGON", regon)]

    def test_wrong_check_digit_is_not_a_regon(self, detector: PiiDetector) -> None:
        """A nine-digit number failing the REGON checksum (and not a valid phone) is not reported."""
        assert found(detector, "REGON 100000001") == []

    def test_nine_digits_after_phone_words_are_a_phone(self, detector: PiiDetector) -> None:
        """A bare nine-digit number valid as both REGON and phone follows its context: 'tel.' makes it a phone."""
        assert found(detector, "tel. 123456785") == [("PHONE", "123456785")]


class TestIdCardRecognizer:
    @pytest.mark.parametrize("number", ["ABA300000", "ABA 300000"])
    def test_valid_id_card_is_found(self, detector: PiiDetector, number: str) -> None:
        """Three capitals and six digits with a valid check digit are an ID card number."""
        assert found(detector, f"dowód osobisty {number}.") == [("ID_CARD", number)]

    def test_wrong_check_digit_is_not_an_id_card(self, detector: PiiDetector) -> None:
        """The same shape with a failing check digit is not reported."""
        assert found(detector, "dowód ABA300001") == []


class TestPassportRecognizer:
    def test_valid_passport_is_found(self, detector: PiiDetector) -> None:
        """Two capitals and seven digits whose third character is the right check digit are a passport."""
        assert found(detector, "paszport EM5123456") == [("PASSPORT", "EM5123456")]

    def test_wrong_check_digit_is_not_a_passport(self, detector: PiiDetector) -> None:
        """A changed digit breaks the checksum and the number is not reported."""
        assert found(detector, "paszport EM5123457") == []


class TestIbanRecognizer:
    @pytest.mark.parametrize("iban", [
        "PL61109010140000071219812874", "PL61 1090 1014 0000 0712 1981 2874",
        "61109010140000071219812874", "61 1090 1014 0000 0712 1981 2874",
        "DE89 3704 0044 0532 0130 00", "GB29NWBK60161331926819", "PL61-1090-1014-0000-0712-1981-2874",
    ])
    def test_valid_iban_or_nrb_is_found(self, detector: PiiDetector, iban: str) -> None:
        """Polish IBANs and bare NRBs, grouped (by spaces or dashes) or not, and foreign IBANs are reported."""
        assert found(detector, f"konto {iban}, przelew") == [("IBAN", iban)]

    def test_wrong_check_digits_are_not_an_iban(self, detector: PiiDetector) -> None:
        """A typo in an account number breaks mod-97: nothing is reported."""
        assert found(detector, "konto PL61 1090 1014 0000 0712 1981 2875") == []

    def test_capitalised_word_after_an_iban_is_not_swallowed(self, detector: PiiDetector) -> None:
        """'... 2874 PKO' still yields the IBAN alone."""
        text = "rachunek PL61 1090 1014 0000 0712 1981 2874 PKO BP"
        assert found(detector, text) == [("IBAN", "PL61 1090 1014 0000 0712 1981 2874")]


class TestPhoneRecognizer:
    @pytest.mark.parametrize("phone", [
        "601 234 567", "601-234-567", "601.234.567", "601234567", "+48 601-234-567", "+48601234567", "0048 601 234 567",
        "601 23 45 67", "(22) 123 45 67", "22 123 45 67", "(22) 1234567",
    ])
    def test_polish_phone_forms_are_found(self, detector: PiiDetector, phone: str) -> None:
        """The usual Polish ways of writing mobile and landline numbers are reported whole."""
        assert found(detector, f"tel. {phone} po 17") == [("PHONE", phone)]

    def test_number_that_phonenumbers_rejects_is_not_a_phone(self, detector: PiiDetector) -> None:
        """Nine digits in no Polish numbering range are not reported."""
        assert found(detector, "tel. 999 999 999") == []

    @pytest.mark.parametrize("text", ["1 250,00 zł", "kwota 123 456 789,00 zł", "12.03.2024", "kod 00-950",
                                      "sygn. akt I C 123/24", "FV/2024/03/00123", "adres IP 192.168.100.200"])
    def test_amounts_dates_and_case_numbers_are_not_phones(self, detector: PiiDetector, text: str) -> None:
        """Distractors with digit groups are not phone numbers (nor anything else)."""
        assert found(detector, text) == []

    def test_fast_canonical_agrees_with_the_vault_validator(self) -> None:
        """For random candidates, the recognizer's shortcut gives exactly what vault.validators gives."""
        recognizer = PlPhoneRecognizer()
        rng = random.Random(48)
        for _ in range(3000):
            digits = "".join(rng.choice("0123456789") for _ in range(9))
            shape = rng.choice(("{a} {b} {c}", "+48 {a}-{b}-{c}", "0048{a}{b}{c}", "({p}) {q} {r} {s}"))
            text = shape.format(a=digits[:3], b=digits[3:6], c=digits[6:], p=digits[:2], q=digits[2:5],
                                r=digits[5:7], s=digits[7:])
            assert recognizer.canonical(text) == canonical_or_none("phone", text)


class TestEmailRecognizer:
    def test_address_on_a_known_suffix_is_found(self, detector: PiiDetector) -> None:
        """An address whose domain ends in a public suffix is reported, without the trailing full stop."""
        assert found(detector, "mail: jan.kowalski@example.pl.") == [("EMAIL", "jan.kowalski@example.pl")]

    def test_address_on_an_unknown_suffix_is_not_found(self, detector: PiiDetector) -> None:
        """'user@host.invalidtld' has no public suffix and is not reported (presidio's rule, offline)."""
        assert found(detector, "adres jan@serwer.nieistniejacatld") == []

    def test_several_addresses_in_one_run_are_all_found(self, detector: PiiDetector) -> None:
        """Addresses separated by commas or in angle brackets are each reported."""
        text = "kopie: <a@example.com>,b.c@example.org;(d@example.net)"
        assert [v for _, v in found(detector, text)] == ["a@example.com", "b.c@example.org", "d@example.net"]

    def test_suffix_list_is_the_bundled_snapshot(self) -> None:
        """The extractor has no suffix-list URLs and no cache directory, so it can neither fetch nor write."""
        extractor = offline_tld_extractor()
        assert extractor.suffix_list_urls == ()
        assert extractor._cache.enabled is False
        assert extractor("example.pl").fqdn == "example.pl"


class TestTextStats:
    def test_counts_digits_and_at_signs(self) -> None:
        """The pre-filter facts are exact: the number of ASCII digits and whether an '@' occurs."""
        stats = TextStats("tel. 601 234 567, mail a@b.pl")
        assert (stats.digits, stats.has_at) == (9, True)

    def test_few_digits_skip_the_numeric_recognizers(self, detector: PiiDetector) -> None:
        """With fewer than 9 digits in the whole text, no PESEL/NIP/REGON/IBAN/phone recognizer runs."""
        stats = TextStats("ABA300000 i nic więcej")
        running = {m.entity for m in detector._matchers if m.applies(stats)}
        assert running == {"ID_CARD"}


class TestValidatorWrappers:
    def test_is_valid_and_canonical_or_none_never_raise_for_bad_values(self) -> None:
        """The public checkers answer False/None for refused values instead of raising."""
        assert is_valid("pesel", "44051401359") is True
        assert is_valid("pesel", "44051401358") is False
        assert canonical_or_none("iban", "pl61 1090 1014 0000 0712 1981 2874") == "PL61109010140000071219812874"
        assert canonical_or_none("nip", "x") is None
