"""Tests of vault.masking: each strategy, the registry, and per-role masks from the catalogue."""

from __future__ import annotations

import pytest
from faker import Faker

from vault.errors import InvalidFieldValueError
from vault.fields import FieldCatalogue, load_catalogue
from vault.masking import REDACTED, STRATEGIES, mask, mask_for
from vault.validators import normalise


@pytest.fixture(scope="module")
def catalogue() -> FieldCatalogue:
    return load_catalogue()


def _faker(seed: int = 11) -> Faker:
    faker = Faker("pl_PL")
    faker.seed_instance(seed)
    return faker


class TestStrategies:
    def test_pesel_keeps_only_the_last_four_digits(self) -> None:
        """``44051401359`` masks to ``*******1359``."""
        assert mask("pesel", "44051401359") == "*******1359"

    def test_phone_keeps_country_code_and_last_three_digits(self) -> None:
        """``+48600100567`` masks to ``+48 *** *** 567``."""
        assert mask("phone", "+48600100567") == "+48 *** *** 567"

    def test_phone_mask_of_faker_numbers_hides_the_rest(self) -> None:
        """For Faker numbers in E.164 the mask shows +48, stars and the last three digits only."""
        faker = _faker()
        for _ in range(100):
            e164 = normalise("phone", "phone", faker.phone_number())
            masked = mask("phone", e164)
            assert masked.startswith("+48 ")
            assert masked.endswith(" " + e164[-3:])
            assert sum(ch.isdigit() for ch in masked) == 5

    def test_iban_keeps_country_code_and_last_four(self) -> None:
        """A Polish IBAN masks to ``PL** **** **** **** **** **** 2874``."""
        assert mask("iban", "PL61109010140000071219812874") == "PL** **** **** **** **** **** 2874"

    def test_iban_mask_of_other_lengths_is_grouped_by_four(self) -> None:
        """A German IBAN (22 characters) keeps the same shape: country, stars, last four."""
        assert mask("iban", "DE89370400440532013000") == "DE** **** **** **** **30 00"

    @pytest.mark.parametrize(
        ("name", "initials"),
        [("Jan", "J."), ("Jan Kowalski", "J. K."), ("anna nowak-kowalska", "A. N.-K."), ("Łucja", "Ł.")],
    )
    def test_initials(self, name: str, initials: str) -> None:
        """Each name, and each part of a double-barrelled name, is cut to its first letter."""
        assert mask("initials", name) == initials

    def test_email_keeps_first_letter_and_domain(self) -> None:
        """``jan.kowalski@example.pl`` masks to ``j***@example.pl``."""
        assert mask("email", "jan.kowalski@example.pl") == "j***@example.pl"

    def test_last4_does_not_tell_the_length(self) -> None:
        """``last4`` always shows four stars, whatever the length hidden."""
        assert mask("last4", "ABA300000") == "****0000"
        assert mask("last4", "1234563218") == "****3218"
        assert mask("last4", "123") == "****"

    def test_year_only(self) -> None:
        """A date of birth masks to its year."""
        assert mask("year_only", "1985-04-12") == "1985-**-**"

    def test_gps_coarse_rounds_to_one_decimal(self) -> None:
        """A position masks to one decimal per coordinate."""
        assert mask("gps_coarse", "52.229676,21.012229") == "52.2,21.0"
        assert mask("gps_coarse", "-0.040000,-0.040000") == "0.0,0.0"

    def test_redacted_and_none(self) -> None:
        """``redacted`` shows nothing, ``none`` shows the value as stored."""
        assert mask("redacted", "Jan Kowalski") == REDACTED
        assert mask("none", "Jan Kowalski") == "Jan Kowalski"

    @pytest.mark.parametrize("strategy", ["phone", "iban", "email", "year_only", "gps_coarse", "initials"])
    @pytest.mark.parametrize("value", ["", "   ", "garbage", "12"])
    def test_unreadable_values_fail_closed(self, strategy: str, value: str) -> None:
        """A value a strategy cannot read is shown as ``[redacted]`` or fully starred, never as is."""
        masked = mask(strategy, value)
        assert masked == REDACTED or (value.strip() and value not in masked)


class TestMask:
    def test_registry_holds_every_named_strategy(self) -> None:
        """The registry offers exactly the strategies the catalogue may name."""
        assert set(STRATEGIES) == {
            "pesel",
            "phone",
            "iban",
            "initials",
            "email",
            "last4",
            "year_only",
            "redacted",
            "none",
            "gps_coarse",
        }

    def test_unknown_strategy_is_a_bug(self) -> None:
        """An unknown strategy raises ValueError naming the strategy, not the value."""
        with pytest.raises(ValueError, match="unknown mask strategy") as info:
            mask("rot13", "44051401359")
        assert "44051401359" not in str(info.value)

    def test_masked_faker_values_do_not_contain_the_value(self) -> None:
        """No masking strategy but ``none`` shows a whole Faker value."""
        faker = _faker(3)
        samples = {
            "pesel": normalise("pesel", "pesel", faker.pesel()),
            "phone": normalise("phone", "phone", faker.phone_number()),
            "iban": normalise("iban", "iban", faker.iban()),
            "initials": normalise("last_name", "name", faker.name()),
            "email": normalise("email", "email", faker.email()),
            "last4": normalise("id_card", "id_card", faker.identity_card_number()),
            "year_only": faker.date_of_birth().isoformat(),
            "gps_coarse": normalise("gps", "gps", "52.2296756,21.0122287"),
            "redacted": faker.address(),
        }
        for strategy, value in samples.items():
            assert value not in mask(strategy, value)


class TestMaskFor:
    def test_auditor_sees_every_field_redacted(self, catalogue: FieldCatalogue) -> None:
        """An auditor gets ``[redacted]`` for every field."""
        for field in catalogue.names():
            assert mask_for(field, "auditor", "anything", catalogue) == REDACTED

    def test_collector_sees_a_masked_phone(self, catalogue: FieldCatalogue) -> None:
        """A collector sees the phone masked by the field's own strategy."""
        assert mask_for("phone", "collector", "+48600100567", catalogue) == "+48 *** *** 567"

    def test_field_agent_sees_the_address(self, catalogue: FieldCatalogue) -> None:
        """A field agent, who visits, sees the address as stored."""
        assert mask_for("address", "field_agent", "ul. Długa 1, 00-001 Warszawa", catalogue) == (
            "ul. Długa 1, 00-001 Warszawa"
        )

    def test_unknown_role_sees_nothing(self, catalogue: FieldCatalogue) -> None:
        """A role the catalogue does not know gets ``[redacted]`` for every field."""
        for field in catalogue.names():
            assert mask_for(field, "intern", "anything", catalogue) == REDACTED
            assert mask_for(field, "", "anything", catalogue) == REDACTED

    def test_unknown_field_is_refused(self, catalogue: FieldCatalogue) -> None:
        """Masking a field the catalogue does not list raises ``unknown-field``."""
        with pytest.raises(InvalidFieldValueError) as info:
            mask_for("shoe_size", "admin", "44", catalogue)
        assert info.value.rule == "unknown-field"

    def test_masked_entries_use_the_field_mask(self, catalogue: FieldCatalogue) -> None:
        """Where the table says ``masked``, the field's own strategy applies."""
        for field in catalogue.names():
            for role in catalogue.roles:
                if catalogue.masks[field][role] == "masked":
                    assert catalogue.mask_strategy(field, role) == catalogue.get(field).mask
