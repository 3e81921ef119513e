"""Tests of vault.validators: every Faker pl_PL value validates, corrupted ones do not."""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterator

import pytest
from faker import Faker
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import InvalidFieldValueError
from vault.validators import KINDS, normalise

SEEDS = range(300)


def _faker_values(make: Callable[[Faker], str]) -> Iterator[str]:
    """``make(faker)`` once per fixed seed: reproducible, and a few hundred values."""
    faker = Faker("pl_PL")
    for seed in SEEDS:
        faker.seed_instance(seed)
        yield make(faker)


def _single_digit_changes(value: str) -> Iterator[str]:
    """Every string that differs from ``value`` in exactly one digit."""
    for i, ch in enumerate(value):
        if ch.isdigit():
            for other in string.digits:
                if other != ch:
                    yield value[:i] + other + value[i + 1 :]


def _refusal(field: str, kind: str, value: str) -> InvalidFieldValueError:
    with pytest.raises(InvalidFieldValueError) as info:
        normalise(field, kind, value)
    return info.value


def _rule_or_none(field: str, kind: str, value: str) -> str | None:
    """The rule that refuses ``value``, or None when it is accepted."""
    try:
        normalise(field, kind, value)
    except InvalidFieldValueError as exc:
        return exc.rule
    return None


def _accepts(field: str, kind: str, value: str) -> bool:
    return _rule_or_none(field, kind, value) is None


class TestPesel:
    def test_faker_pesels_validate(self) -> None:
        """Every PESEL Faker generates is accepted and kept as its 11 digits."""
        for pesel in _faker_values(lambda f: f.pesel()):
            assert normalise("pesel", "pesel", pesel) == pesel

    def test_faker_ssn_pesels_validate(self) -> None:
        """Faker's other PESEL generator (``ssn``) yields accepted values too."""
        for pesel in _faker_values(lambda f: f.ssn()):
            assert normalise("pesel", "pesel", pesel) == pesel

    def test_faker_pesels_cover_other_centuries(self) -> None:
        """PESELs born in 1800s, 2000s and 2100s-2200s (month offsets 80, 20, 40, 60) validate."""
        faker = Faker("pl_PL")
        for year in (1850, 1999, 2005, 2150, 2299):
            faker.seed_instance(year)
            dob = faker.date_time().replace(year=year, day=1)
            assert normalise("pesel", "pesel", faker.pesel(date_of_birth=dob))

    def test_single_digit_change_is_refused(self) -> None:
        """Changing any one digit of a valid PESEL breaks its checksum."""
        for pesel in _faker_values(lambda f: f.pesel()):
            for changed in _single_digit_changes(pesel):
                assert _refusal("pesel", "pesel", changed).rule == "pesel-checksum"

    @pytest.mark.parametrize("value", ["4405140135", "440514013590", "4405140135a", "44 051401359"])
    def test_wrong_shape_is_refused(self, value: str) -> None:
        """Anything but exactly 11 digits is a format error."""
        assert _refusal("pesel", "pesel", value).rule == "pesel-format"

    def test_impossible_date_is_refused(self) -> None:
        """A checksum-valid PESEL whose encoded date does not exist is refused."""
        faker = Faker("pl_PL")
        faker.seed_instance(7)
        body = "990230" + faker.pesel()[6:10]  # 30 February 1999
        rules = [_refusal("pesel", "pesel", body + check).rule for check in string.digits]
        assert sorted(rules) == ["pesel-checksum"] * 9 + ["pesel-date"]

    @pytest.mark.parametrize("month", ["00", "13", "33", "99"])
    def test_month_outside_every_century_is_refused(self, month: str) -> None:
        """Encoded months such as 13 or 33 belong to no century; the checksum-valid one is a date error."""
        body = f"99{month}01" + "1234"
        rules = [_refusal("pesel", "pesel", body + check).rule for check in string.digits]
        assert sorted(rules) == ["pesel-checksum"] * 9 + ["pesel-date"]


class TestNip:
    def test_faker_nips_validate(self) -> None:
        """Every NIP Faker generates (personal and company) is accepted."""
        for nip in _faker_values(lambda f: f.nip()):
            assert normalise("nip", "nip", nip) == nip
        for nip in _faker_values(lambda f: f.company_vat()):
            assert normalise("nip", "nip", nip) == nip

    def test_dashes_and_spaces_are_dropped(self) -> None:
        """A NIP written 123-456-78-90 or 123 456 78 90 is stored as its 10 digits."""
        for nip in _faker_values(lambda f: f.nip()):
            dashed = f"{nip[:3]}-{nip[3:6]}-{nip[6:8]}-{nip[8:]}"
            spaced = f" {nip[:3]} {nip[3:6]} {nip[6:8]} {nip[8:]} "
            assert normalise("nip", "nip", dashed) == nip
            assert normalise("nip", "nip", spaced) == nip

    def test_single_digit_change_is_refused(self) -> None:
        """Changing any one digit of a valid NIP breaks its mod-11 checksum."""
        for nip in _faker_values(lambda f: f.nip()):
            for changed in _single_digit_changes(nip):
                assert _refusal("nip", "nip", changed).rule == "nip-checksum"

    def test_wrong_length_is_refused(self) -> None:
        """A NIP of 9 or 11 digits is a format error."""
        assert _refusal("nip", "nip", "123456789").rule == "nip-format"
        assert _refusal("nip", "nip", "12345678901").rule == "nip-format"


class TestRegon:
    def test_faker_regons_validate(self) -> None:
        """Every 9-digit and 14-digit REGON Faker generates is accepted."""
        for regon in _faker_values(lambda f: f.regon()):
            assert normalise("regon", "regon", regon) == regon
        for regon in _faker_values(lambda f: f.local_regon()):
            assert normalise("regon", "regon", regon) == regon

    def test_single_digit_change_is_refused(self) -> None:
        """Changing one digit is refused whenever no check digit is 0 (see the next test)."""
        tested = 0
        for make in (lambda f: f.regon(), lambda f: f.local_regon()):
            for regon in _faker_values(make):
                if regon[8] == "0" or regon[-1] == "0":
                    continue
                tested += 1
                for changed in _single_digit_changes(regon):
                    assert _refusal("regon", "regon", changed).rule == "regon-checksum"
        assert tested > 400

    def test_check_digit_zero_cannot_tell_remainder_ten_from_zero(self) -> None:
        """The official rule maps remainder 10 to check digit 0, so some one-digit changes pass.

        This documents a weakness of REGON itself; refusing remainder 10 would refuse
        REGONs GUS really issued.
        """
        changes = [
            changed
            for regon in _faker_values(lambda f: f.regon())
            if regon.endswith("0")
            for changed in _single_digit_changes(regon)
        ]
        accepted = []
        for changed in changes:
            try:
                accepted.append(normalise("regon", "regon", changed))
            except InvalidFieldValueError:
                continue
        assert accepted
        assert all(value.endswith("0") for value in accepted)

    def test_local_regon_needs_a_valid_nine_digit_prefix(self) -> None:
        """The 14-digit weights skip position 5, so its prefix is checked as a 9-digit REGON."""
        for regon in _faker_values(lambda f: f.local_regon()):
            digit = int(regon[4])
            changed = regon[:4] + str((digit + 1) % 10) + regon[5:]
            assert _refusal("regon", "regon", changed).rule == "regon-checksum"

    def test_other_lengths_are_refused(self) -> None:
        """Only 9 or 14 digits are REGONs."""
        assert _refusal("regon", "regon", "12345678").rule == "regon-format"
        assert _refusal("regon", "regon", "1234567890").rule == "regon-format"


class TestIdCard:
    def test_faker_identity_cards_validate(self) -> None:
        """Every dowód osobisty number Faker generates is accepted."""
        for number in _faker_values(lambda f: f.identity_card_number()):
            assert normalise("id_card", "id_card", number) == number

    def test_published_example_validates(self) -> None:
        """ABA300000, the worked example of the check-digit rule, is accepted."""
        assert normalise("id_card", "id_card", "ABA300000") == "ABA300000"

    def test_lower_case_and_spaces_are_normalised(self) -> None:
        """``aba 300000`` is stored as ``ABA300000``."""
        for number in _faker_values(lambda f: f.identity_card_number()):
            loose = f" {number[:3].lower()} {number[3:]} "
            assert normalise("id_card", "id_card", loose) == number

    def test_single_digit_change_is_refused(self) -> None:
        """Changing any one digit of a valid number breaks its check digit."""
        for number in _faker_values(lambda f: f.identity_card_number()):
            for changed in _single_digit_changes(number):
                assert _refusal("id_card", "id_card", changed).rule == "id-card-checksum"

    @pytest.mark.parametrize("value", ["AB1300000", "ABA30000", "ÀBA300000", "ßA300000"])
    def test_wrong_shape_is_refused(self, value: str) -> None:
        """Anything but 3 ASCII letters and 6 digits is a format error."""
        assert _refusal("id_card", "id_card", value).rule == "id-card-format"


class TestPassport:
    @settings(max_examples=300)
    @given(
        letters=st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2),
        digits=st.text(alphabet=string.digits, min_size=6, max_size=6),
    )
    def test_exactly_one_check_digit_fits_each_number(self, letters: str, digits: str) -> None:
        """For any series and number, exactly one of the ten check digits (3rd character) validates."""
        rules = [_rule_or_none("passport", "passport", letters + check + digits) for check in string.digits]
        assert rules.count(None) == 1
        assert set(rules) == {None, "passport-checksum"}

    @settings(max_examples=100)
    @given(
        letters=st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2),
        digits=st.text(alphabet=string.digits, min_size=6, max_size=6),
    )
    def test_single_digit_change_is_refused(self, letters: str, digits: str) -> None:
        """Changing any one digit of a valid passport number is refused."""
        valid = [
            letters + check + digits
            for check in string.digits
            if _accepts("passport", "passport", letters + check + digits)
        ]
        for changed in _single_digit_changes(valid[0]):
            assert _refusal("passport", "passport", changed).rule == "passport-checksum"

    def test_faker_passport_numbers_are_not_polish(self) -> None:
        """Faker pl_PL has no Polish passport format (it falls back to 9 digits), so they are refused."""
        for number in _faker_values(lambda f: f.passport_number()):
            assert _refusal("passport", "passport", number).rule in {"passport-format", "passport-checksum"}

    @pytest.mark.parametrize("value", ["A12345678", "AB123456", "ABC123456", "ĄB1234567"])
    def test_wrong_shape_is_refused(self, value: str) -> None:
        """Anything but 2 ASCII letters and 7 digits is a format error."""
        assert _refusal("passport", "passport", value).rule == "passport-format"


class TestIban:
    def test_faker_ibans_validate(self) -> None:
        """Every Polish IBAN Faker generates is accepted and kept compact."""
        for iban in _faker_values(lambda f: f.iban()):
            assert normalise("iban", "iban", iban) == iban

    def test_spaced_lower_case_and_bare_nrb_are_normalised(self) -> None:
        """Grouped, lower-case and bare 26-digit (NRB) spellings all store as ``PL`` + 26 digits."""
        for iban in _faker_values(lambda f: f.iban()):
            grouped = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)).lower()
            assert normalise("iban", "iban", grouped) == iban
            assert normalise("iban", "iban", iban[2:]) == iban
            assert normalise("iban", "iban", " ".join([iban[2:4], iban[4:]])) == iban

    def test_single_digit_change_is_refused(self) -> None:
        """Changing any one digit of a valid IBAN breaks mod-97."""
        for iban in _faker_values(lambda f: f.iban()):
            for changed in _single_digit_changes(iban):
                assert _refusal("iban", "iban", changed).rule == "iban-checksum"

    def test_foreign_ibans_validate(self) -> None:
        """IBANs of other countries (Faker locales de_DE, fr_FR, en_GB) pass mod-97."""
        for locale in ("de_DE", "fr_FR", "en_GB"):
            faker = Faker(locale)
            for seed in range(50):
                faker.seed_instance(seed)
                iban = faker.iban()
                assert normalise("iban", "iban", iban) == iban

    @pytest.mark.parametrize(
        "value", ["PL6110901014", "PL611090101400000712198128740", "1PL61109010140000071219812874"]
    )
    def test_wrong_shape_is_refused(self, value: str) -> None:
        """A Polish IBAN that is not 28 characters, or junk, is a format error."""
        assert _refusal("iban", "iban", value).rule == "iban-format"


class TestPhone:
    def test_faker_phone_numbers_validate(self) -> None:
        """Every Polish phone number Faker generates is accepted and stored as E.164."""
        for phone in _faker_values(lambda f: f.phone_number()):
            stored = normalise("phone", "phone", phone)
            assert stored.startswith("+48")
            assert stored[1:].isdigit()

    @pytest.mark.parametrize(
        "value", ["+48 600 100 200", "600100200", "0048600100200", "600-100-200", "(+48) 600 100 200"]
    )
    def test_spellings_of_one_number_store_the_same(self, value: str) -> None:
        """National, international and punctuated spellings of one number give one E.164 form."""
        assert normalise("phone", "phone", value) == "+48600100200"

    @pytest.mark.parametrize("value", ["12345", "+48 000 000 000", "not a phone", "600100200 ext. 12"])
    def test_invalid_numbers_are_refused(self, value: str) -> None:
        """Too short, unassigned, non-numeric, or with an extension E.164 would drop: refused."""
        assert _refusal("phone", "phone", value).rule == "phone-invalid"


class TestEmail:
    def test_faker_emails_validate(self) -> None:
        """Every e-mail address Faker pl_PL generates is accepted unchanged."""
        for email in _faker_values(lambda f: f.email()):
            assert normalise("email", "email", email) == email

    def test_domain_is_lower_cased_local_part_kept(self) -> None:
        """The domain is case-folded, the local part is stored as given."""
        assert normalise("email", "email", " Jan.Kowalski@Example.PL ") == "Jan.Kowalski@example.pl"

    @pytest.mark.parametrize(
        "value",
        [
            "jan.kowalski",
            "@example.pl",
            "jan@",
            "jan..kowalski@example.pl",
            ".jan@example.pl",
            "jan@example",
            "jan@-example.pl",
            "jan@example..pl",
            "jan kowalski@example.pl",
            '"jan"@example.pl',
            "jan@[192.0.2.1]",
            "łukasz@example.pl",
            "jan@example.p1",
        ],
    )
    def test_bad_syntax_is_refused(self, value: str) -> None:
        """Addresses outside the dot-atom@hostname subset are refused."""
        assert _refusal("email", "email", value).rule == "email-syntax"

    def test_overlong_address_is_refused(self) -> None:
        """More than 254 characters is refused as too long."""
        value = "a" * 60 + "@" + ".".join(["b" * 60] * 4) + ".pl"
        assert _refusal("email", "email", value).rule == "too-long"


class TestDateOfBirth:
    def test_faker_dates_of_birth_validate(self) -> None:
        """Every Faker date of birth, in ISO form, is accepted unchanged."""
        for day in _faker_values(lambda f: f.date_of_birth().isoformat()):
            assert normalise("date_of_birth", "date", day) == day

    @pytest.mark.parametrize(
        "value", ["1985-02-30", "1985-13-01", "12.04.1985", "1985-4-12", "19850412", "1985-04-12T00:00"]
    )
    def test_malformed_dates_are_refused(self, value: str) -> None:
        """Only a real calendar date written YYYY-MM-DD is accepted."""
        assert _refusal("date_of_birth", "date", value).rule == "date-format"

    def test_years_before_1900_are_refused(self) -> None:
        """A year before 1900 is out of range."""
        assert _refusal("date_of_birth", "date", "1899-12-31").rule == "date-range"


class TestGps:
    def test_faker_positions_validate(self) -> None:
        """Faker positions (in Poland, and anywhere) are accepted and written with six decimals."""
        for position in _faker_values(lambda f: ", ".join(f.local_latlng(country_code="PL", coords_only=True) or ())):
            lat, lon = position.split(", ")
            assert normalise("gps", "gps", position) == f"{float(lat):.6f},{float(lon):.6f}"
        for position in _faker_values(lambda f: f"{f.latitude()},{f.longitude()}"):
            lat, lon = position.split(",")
            assert normalise("gps", "gps", position) == f"{round(float(lat), 6):.6f},{round(float(lon), 6):.6f}"

    def test_rounding_to_six_decimals(self) -> None:
        """Extra decimals round; a rounded negative zero is written as 0."""
        assert normalise("gps", "gps", "52.2296756,21.0122287") == "52.229676,21.012229"
        assert normalise("gps", "gps", "-0.0000001, +0") == "0.000000,0.000000"

    @pytest.mark.parametrize("value", ["90.1,0", "0,180.5", "-91,0"])
    def test_out_of_range_is_refused(self, value: str) -> None:
        """Latitude beyond ±90 or longitude beyond ±180 is refused."""
        assert _refusal("gps", "gps", value).rule == "gps-range"

    @pytest.mark.parametrize("value", ["52.2", "52.2,21.0,3", "nan,0", "1e1,2", "52,2;21", "inf,inf"])
    def test_malformed_positions_are_refused(self, value: str) -> None:
        """Anything but two plain decimal numbers separated by a comma is refused."""
        assert _refusal("gps", "gps", value).rule == "gps-format"


class TestText:
    def test_faker_names_companies_and_addresses_validate(self) -> None:
        """Faker names, companies and addresses are accepted, on one line with single spaces."""
        for value in _faker_values(lambda f: f.first_name()):
            assert normalise("first_name", "name", value) == value
        for value in _faker_values(lambda f: f.last_name()):
            assert normalise("last_name", "name", value) == value
        for value in _faker_values(lambda f: f.company()):
            assert normalise("employer", "org_name", value) == " ".join(value.split())
        for value in _faker_values(lambda f: f.address()):
            assert normalise("address", "address", value) == " ".join(value.split())

    def test_whitespace_is_collapsed(self) -> None:
        """Leading, trailing and repeated whitespace (tabs, newlines, no-break spaces) collapse."""
        assert normalise("last_name", "name", "  Nowak\t-\u00a0 Kowalska\n") == "Nowak - Kowalska"

    def test_decomposed_letters_are_composed(self) -> None:
        """Text is stored in NFC, so a decomposed ``Ż`` equals the composed one."""
        assert normalise("last_name", "name", "Z\u0307ółw") == "Żółw"

    @pytest.mark.parametrize("char", ["\x00", "\x1b", "\u200b", "\u202e", "\x85", "\x1f"])
    def test_control_and_format_characters_are_refused(self, char: str) -> None:
        """Control, zero-width and bidi-override characters are refused, not stripped."""
        assert _refusal("last_name", "name", f"Kowal{char}ski").rule == "control-character"

    @pytest.mark.parametrize(
        ("field", "kind", "limit"),
        [
            ("first_name", "name", 100),
            ("employer", "org_name", 200),
            ("address", "address", 300),
            ("note", "note", 10_000),
        ],
    )
    def test_length_limits(self, field: str, kind: str, limit: int) -> None:
        """Each text kind accepts its limit and refuses one character more."""
        assert len(normalise(field, kind, "x" * limit)) == limit
        assert _refusal(field, kind, "x" * (limit + 1)).rule == "too-long"

    @pytest.mark.parametrize("kind", sorted(KINDS))
    def test_blank_is_empty(self, kind: str) -> None:
        """A blank value is refused as empty, whatever the kind."""
        assert _refusal("f", kind, " \t\n ").rule == "empty"


class TestNote:
    def test_line_breaks_survive(self) -> None:
        """A note keeps its paragraphs: one blank line at most, spaces collapsed within lines."""
        raw = "  Wizyta  terenowa.\r\n\r\n\r\n\tDłużnik   nieobecny.  \n"
        assert normalise("note", "note", raw) == "Wizyta terenowa.\n\nDłużnik nieobecny."

    def test_faker_paragraphs_validate(self) -> None:
        """Faker Polish paragraphs are accepted."""
        for text in _faker_values(lambda f: "\n\n".join(f.paragraphs(nb=3))):
            assert normalise("note", "note", text) == text


class TestNormalise:
    def test_unknown_kind_is_a_bug_not_input(self) -> None:
        """An unknown kind raises ValueError, not a 422-style field error."""
        with pytest.raises(ValueError, match="unknown field kind"):
            normalise("pesel", "no-such-kind", "44051401359")

    def test_non_text_is_refused(self) -> None:
        """A value that is not a string is refused with ``not-text``."""
        assert _refusal("pesel", "pesel", 44051401359).rule == "not-text"  # type: ignore[arg-type]

    def test_huge_input_is_refused_before_parsing(self) -> None:
        """An input of megabytes is refused as too long, whatever the kind."""
        for kind in KINDS:
            assert _refusal("f", kind, "1" * 1_000_000).rule == "too-long"

    @settings(max_examples=200)
    @given(kind=st.sampled_from(sorted(KINDS)), value=st.text(max_size=60))
    def test_any_text_is_accepted_or_refused_cleanly(self, kind: str, value: str) -> None:
        """For any text, normalise returns, or raises InvalidFieldValueError; never anything else."""
        rule = _rule_or_none("f", kind, value)  # anything but InvalidFieldValueError escapes
        assert rule is None or rule.islower()

    @settings(max_examples=300)
    @given(
        kind=st.sampled_from(sorted(KINDS)),
        value=st.text(alphabet=string.printable + "ąćęłńóśźżĄĆĘŁŃÓŚŹŻ\u00a0", max_size=40),
    )
    def test_normalise_is_idempotent(self, kind: str, value: str) -> None:
        """Normalising a stored value again changes nothing (the blind index relies on it)."""
        try:
            once = normalise("f", kind, value)
        except InvalidFieldValueError:
            return
        assert normalise("f", kind, once) == once

    def test_faker_values_are_idempotent(self) -> None:
        """Every accepted Faker value is a fixed point of normalise."""
        makers: list[tuple[str, Callable[[Faker], str]]] = [
            ("pesel", lambda f: f.pesel()),
            ("nip", lambda f: f.nip()),
            ("regon", lambda f: f.local_regon()),
            ("id_card", lambda f: f.identity_card_number()),
            ("iban", lambda f: f.iban()),
            ("phone", lambda f: f.phone_number()),
            ("email", lambda f: f.email()),
            ("address", lambda f: f.address()),
        ]
        for kind, make in makers:
            for value in _faker_values(make):
                once = normalise("f", kind, value)
                assert normalise("f", kind, once) == once


class TestErrorsNeverHoldTheValue:
    @staticmethod
    def _bad_values() -> Iterator[tuple[str, str, str]]:
        faker = Faker("pl_PL")
        faker.seed_instance(2024)
        pesel = faker.pesel()
        yield "pesel", "pesel", pesel[:-1] + str((int(pesel[-1]) + 1) % 10)
        yield "pesel", "pesel", pesel + "9"
        nip = faker.nip()
        yield "nip", "nip", nip[:-1] + str((int(nip[-1]) + 1) % 10)
        iban = faker.iban()
        yield "iban", "iban", iban[:-1] + str((int(iban[-1]) + 1) % 10)
        card = faker.identity_card_number()
        yield "id_card", "id_card", card[:3] + str((int(card[3]) + 1) % 10) + card[4:]
        yield "phone", "phone", "+48 000 " + faker.numerify("### ###")
        yield "email", "email", faker.email().replace("@", "@@")
        yield "date_of_birth", "date", faker.date_of_birth().strftime("%d.%m.%Y")
        yield "last_name", "name", faker.last_name() + "\x00" + faker.last_name()
        yield "first_name", "name", faker.first_name() * 40
        yield "gps", "gps", "91.123456,21.987654"

    def test_message_problem_and_chain_hold_no_value(self) -> None:
        """str(), repr(), problem() and the exception chain name field and rule, never the value."""
        for field, kind, value in self._bad_values():
            err = _refusal(field, kind, value)
            assert err.field == field
            exposed = [str(err), repr(err), json.dumps(err.problem(), ensure_ascii=False), err.detail]
            for text in exposed:
                assert value not in text
                assert value.strip()[:8] not in text
            assert err.problem()["rule"] == err.rule
            assert err.__cause__ is None
            assert err.__context__ is None or err.__suppress_context__
