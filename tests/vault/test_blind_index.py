"""Tests of vault.blind_index: index inputs, per-field keys, truncation, key hiding."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from faker import Faker
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.blind_index import DEFAULT_TRUNCATE_BYTES, BlindIndexer, index_input
from vault.errors import InvalidFieldValueError

ROOT_KEY = bytes(range(32))


def _hkdf_sha256_rfc5869(ikm: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF written out from RFC 5869 (salt absent = HashLen zero bytes), to cross-check."""
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


@pytest.fixture
def indexer() -> BlindIndexer:
    return BlindIndexer(ROOT_KEY)


class TestIndexInput:
    def test_polish_names_fold_to_plain_lower_case(self) -> None:
        """Case, diacritics, the Polish ł and extra spaces do not change a name's index input."""
        assert index_input("last_name", "name", "Łukasz  ŻÓŁW") == b"lukasz zolw"
        assert index_input("last_name", "name", "lukasz zolw") == b"lukasz zolw"

    def test_every_polish_diacritic_is_removed(self) -> None:
        """ą ć ę ł ń ó ś ź ż, in both cases, fold to their base letters."""
        assert index_input("f", "name", "ĄĆĘŁŃÓŚŹŻ ąćęłńóśźż") == b"acelnoszz acelnoszz"

    def test_email_is_lower_cased_whole(self) -> None:
        """The local part is lower-cased too: one mailbox, one index."""
        assert index_input("email", "email", "Jan.Kowalski@Example.PL") == b"jan.kowalski@example.pl"

    def test_phone_spellings_share_the_e164_input(self) -> None:
        """Phone spellings reduce to E.164 before hashing."""
        for spelling in ("+48 600 100 200", "600100200", "0048600100200"):
            assert index_input("phone", "phone", spelling) == b"+48600100200"

    def test_identifiers_use_their_canonical_form(self) -> None:
        """IBAN upper-case without spaces, NIP digits only, ID card upper-case."""
        assert index_input("iban", "iban", "pl61 1090 1014 0000 0712 1981 2874") == b"PL61109010140000071219812874"
        assert index_input("nip", "nip", "123-456-32-18") == b"1234563218"
        assert index_input("id_card", "id_card", "aba 300000") == b"ABA300000"

    def test_invalid_value_is_refused(self) -> None:
        """A value that does not validate gets no index (the value is re-normalised first)."""
        with pytest.raises(InvalidFieldValueError) as info:
            index_input("pesel", "pesel", "44051401358")
        assert info.value.rule == "pesel-checksum"


class TestBlindIndexer:
    def test_name_variants_index_equal(self, indexer: BlindIndexer) -> None:
        """``Łukasz ŻÓŁW`` and ``lukasz zolw`` have the same blind index."""
        assert indexer.compute("last_name", "name", "Łukasz ŻÓŁW") == indexer.compute(
            "last_name", "name", "lukasz zolw"
        )

    def test_phone_formats_index_equal(self, indexer: BlindIndexer) -> None:
        """``+48 600 100 200``, ``600100200`` and ``0048600100200`` have one blind index."""
        indexes = {indexer.compute("phone", "phone", v) for v in ("+48 600 100 200", "600100200", "0048600100200")}
        assert len(indexes) == 1

    def test_different_fields_give_different_indexes(self, indexer: BlindIndexer) -> None:
        """One value under two fields gives unrelated indexes, so fields cannot be joined."""
        assert indexer.compute("first_name", "name", "Jan") != indexer.compute("last_name", "name", "Jan")
        assert indexer.field_key("first_name") != indexer.field_key("last_name")

    def test_different_values_give_different_indexes(self, indexer: BlindIndexer) -> None:
        """Three hundred distinct Faker PESELs give three hundred distinct indexes."""
        faker = Faker("pl_PL")
        faker.seed_instance(1)
        pesels = {faker.pesel() for _ in range(300)}
        assert len({indexer.compute("pesel", "pesel", p) for p in pesels}) == len(pesels)

    def test_different_root_keys_give_different_indexes(self) -> None:
        """The index depends on the root key: another deployment cannot recompute it."""
        other = BlindIndexer(bytes(32))
        assert BlindIndexer(ROOT_KEY).compute("pesel", "pesel", "44051401359") != other.compute(
            "pesel", "pesel", "44051401359"
        )

    @pytest.mark.parametrize("truncate", [1, 8, 16, 20, 32])
    def test_truncation_length_is_honoured(self, truncate: int) -> None:
        """The index is exactly ``truncate`` bytes, a prefix of the full HMAC."""
        full = BlindIndexer(ROOT_KEY, truncate=32).compute("pesel", "pesel", "44051401359")
        short = BlindIndexer(ROOT_KEY, truncate=truncate).compute("pesel", "pesel", "44051401359")
        assert len(short) == truncate
        assert full.startswith(short)

    def test_default_truncation_is_sixteen_bytes(self, indexer: BlindIndexer) -> None:
        """Without ``truncate`` an index is 16 bytes."""
        assert DEFAULT_TRUNCATE_BYTES == 16
        assert len(indexer.compute("email", "email", "jan@example.pl")) == 16

    def test_field_key_is_rfc5869_hkdf(self, indexer: BlindIndexer) -> None:
        """The field key is HKDF-SHA256(root, no salt, info="tarcza/blind-index/v1/"+field)."""
        for field in ("pesel", "last_name", "email"):
            expected = _hkdf_sha256_rfc5869(ROOT_KEY, b"tarcza/blind-index/v1/" + field.encode())
            assert indexer.field_key(field) == expected

    def test_index_is_hmac_of_index_input(self, indexer: BlindIndexer) -> None:
        """The index is HMAC-SHA-256(field key, index input), truncated."""
        message = index_input("last_name", "name", "Łukasz ŻÓŁW")
        mac = hmac.new(indexer.field_key("last_name"), message, hashlib.sha256).digest()
        assert indexer.compute("last_name", "name", "Łukasz ŻÓŁW") == mac[:16]

    def test_index_is_stable_across_releases(self, indexer: BlindIndexer) -> None:
        """Pinned values: a change here would orphan every stored index (needs a v2 and a reindex)."""
        assert indexer.compute("pesel", "pesel", "44051401359").hex() == "c3cafe1b7761fda19d9b597efdf35c05"
        assert indexer.compute("last_name", "name", "Łukasz ŻÓŁW").hex() == "60ee97c85c7601e601f53d71cbb4de08"

    def test_field_keys_are_cached(self, indexer: BlindIndexer) -> None:
        """A field key is derived once and then reused."""
        assert indexer.field_key("pesel") is indexer.field_key("pesel")

    def test_repr_hides_the_keys(self, indexer: BlindIndexer) -> None:
        """Neither the root key nor any derived key appears in repr() or str()."""
        field_key = indexer.field_key("pesel")
        for text in (repr(indexer), str(indexer)):
            for secret in (ROOT_KEY, field_key):
                assert secret.hex() not in text
                assert repr(secret) not in text
                assert secret[:8].hex() not in text
        assert "hidden" in repr(indexer)

    @pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
    def test_root_key_must_be_32_bytes(self, size: int) -> None:
        """A root key of any other length is refused."""
        with pytest.raises(ValueError, match="32 bytes"):
            BlindIndexer(b"k" * size)

    @pytest.mark.parametrize("truncate", [0, -1, 33])
    def test_truncation_outside_one_to_32_is_refused(self, truncate: int) -> None:
        """Truncating to nothing or beyond SHA-256's 32 bytes is refused."""
        with pytest.raises(ValueError, match="truncate"):
            BlindIndexer(ROOT_KEY, truncate=truncate)

    @pytest.mark.parametrize("first", ["Łukasz", "ŁUKASZ", "łukasz", "Lukasz", "  Łukasz ", "Lu\u0301kasz"])
    def test_spellings_of_one_first_name_share_an_index(self, indexer: BlindIndexer, first: str) -> None:
        """Any case and diacritic spelling of one first name finds the same subject."""
        assert indexer.compute("first_name", "name", first) == indexer.compute("first_name", "name", "lukasz")

    @settings(max_examples=200)
    @given(
        name=st.text(
            alphabet="aąbcćdeęfghijklłmnńoóprsśtuwyzźżAĄBCĆDEĘFGHIJKLŁMNŃOÓPRSŚTUWYZŹŻ -", min_size=1, max_size=40
        )
    )
    def test_case_and_diacritics_never_change_a_name_index(self, name: str) -> None:
        """A Polish name, its upper-case and its diacritic-free spelling share one index."""
        indexer = BlindIndexer(ROOT_KEY)
        if not name.strip():
            return
        plain = name.translate(str.maketrans("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ", "acelnoszzACELNOSZZ"))
        expected = indexer.compute("last_name", "name", plain.lower())
        assert indexer.compute("last_name", "name", name) == expected
        assert indexer.compute("last_name", "name", name.upper()) == expected
