"""The field envelope: layout, round trip, and every way a sealed value must fail to open."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.envelope import (
    FORMAT_VERSION,
    envelope_key_version,
    new_data_key,
    open_field,
    seal_field,
)
from vault.errors import VaultDecryptError

KEY = bytes(range(32))
SUBJECT = "SUBJ-7f3a9c"
FIELD = "pesel"
VALUE = b"Jan Kowalski, ul. Przykladowa 1, 00-001 Warszawa"
HEADER_SIZE = 2 + 1 + 4 + 12
TAG_SIZE = 16

NAMES = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)


class TestEnvelope:
    """seal_field / open_field / envelope_key_version."""

    def test_layout(self) -> None:
        """The envelope is magic, version, key version, nonce, then ciphertext and tag."""
        envelope = seal_field(KEY, VALUE, subject=SUBJECT, field=FIELD, key_version=258)
        assert envelope[:2] == b"TZ"
        assert envelope[2] == FORMAT_VERSION == 1
        assert struct.unpack(">I", envelope[3:7]) == (258,)
        assert len(envelope) == HEADER_SIZE + len(VALUE) + TAG_SIZE
        assert VALUE not in envelope

    @settings(max_examples=60, deadline=None)
    @given(
        value=st.binary(max_size=512),
        subject=NAMES,
        field=NAMES,
        key_version=st.integers(min_value=0, max_value=2**32 - 1),
    )
    def test_round_trip(self, value: bytes, subject: str, field: str, key_version: int) -> None:
        """Whatever the value, subject, field and version, what is sealed opens to itself."""
        envelope = seal_field(KEY, value, subject=subject, field=field, key_version=key_version)
        assert envelope_key_version(envelope) == key_version
        assert open_field(KEY, envelope, subject=subject, field=field) == value

    def test_new_data_key_is_random_and_32_bytes(self) -> None:
        """Data keys are 32 bytes and never repeat."""
        keys = {new_data_key() for _ in range(50)}
        assert len(keys) == 50
        assert {len(k) for k in keys} == {32}

    def test_nonces_are_fresh(self) -> None:
        """Sealing the same value twice gives different envelopes."""
        first = seal_field(KEY, VALUE, subject=SUBJECT, field=FIELD, key_version=1)
        second = seal_field(KEY, VALUE, subject=SUBJECT, field=FIELD, key_version=1)
        assert first != second
        assert first[7:19] != second[7:19]

    def test_tampered_ciphertext_fails_closed(self) -> None:
        """Flipping any bit pattern at any byte position of an envelope makes it fail to open."""
        envelope = seal_field(KEY, VALUE, subject=SUBJECT, field=FIELD, key_version=1)
        for position in range(len(envelope)):
            for flip in (0x01, 0x80, 0xFF):
                tampered = bytearray(envelope)
                tampered[position] ^= flip
                with pytest.raises(VaultDecryptError):
                    open_field(KEY, bytes(tampered), subject=SUBJECT, field=FIELD)

    def test_truncated_or_extended_envelope_fails_closed(self) -> None:
        """Every strict prefix, and the envelope with a byte appended, fail to open."""
        envelope = seal_field(KEY, VALUE, subject=SUBJECT, field=FIELD, key_version=1)
        for length in range(len(envelope)):
            with pytest.raises(VaultDecryptError):
                open_field(KEY, envelope[:length], subject=SUBJECT, field=FIELD)
        with pytest.raises(VaultDecryptError):
            open_field(KEY, envelope + b"\x00", subject=SUBJECT, field=FIELD)

    def test_ciphertext_moved_to_other_subject_does_not_open(self) -> None:
        """An envelope copied to another subject's record does not open there."""
        envelope = seal_field(KEY, VALUE, subject=SUBJECT, field=FIELD, key_version=1)
        with pytest.raises(VaultDecryptError):
            open_field(KEY, envelope, subject="SUBJ-000001", field=FIELD)

    def test_ciphertext_moved_to_other_field_does_not_open(self) -> None:
        """An envelope copied into another field of the same subject does not open there."""
        envelope = seal_field(KEY, VALUE, subject=SUBJECT, field=FIELD, key_version=1)
        with pytest.raises(VaultDecryptError):
            open_field(KEY, envelope, subject=SUBJECT, field="phone")

    def test_names_are_bound_unambiguously(self) -> None:
        """Moving characters between subject and field changes the binding (length-prefixed)."""
        envelope = seal_field(KEY, VALUE, subject="ab", field="c", key_version=1)
        with pytest.raises(VaultDecryptError):
            open_field(KEY, envelope, subject="a", field="bc")

    def test_changed_key_version_in_header_fails_closed(self) -> None:
        """Rewriting the key version in the header makes the envelope fail to open."""
        envelope = seal_field(KEY, VALUE, subject=SUBJECT, field=FIELD, key_version=1)
        rewritten = envelope[:3] + struct.pack(">I", 2) + envelope[7:]
        assert envelope_key_version(rewritten) == 2
        with pytest.raises(VaultDecryptError):
            open_field(KEY, rewritten, subject=SUBJECT, field=FIELD)

    def test_wrong_data_key_fails_closed(self) -> None:
        """Another subject's data key (or a malformed key) does not open the envelope."""
        envelope = seal_field(KEY, VALUE, subject=SUBJECT, field=FIELD, key_version=1)
        for other in (new_data_key(), b"short", b""):
            with pytest.raises(VaultDecryptError):
                open_field(other, envelope, subject=SUBJECT, field=FIELD)

    def test_decrypt_error_is_opaque(self) -> None:
        """Every failure gives the same message, so a caller learns nothing about the cause."""
        envelope = seal_field(KEY, VALUE, subject=SUBJECT, field=FIELD, key_version=1)
        messages = set()
        for bad in (b"", b"XX" + envelope[2:], envelope[:-1] + b"\x00", envelope):
            with pytest.raises(VaultDecryptError) as caught:
                open_field(KEY, bad, subject=SUBJECT, field="other")
            messages.add(str(caught.value))
            assert caught.value.__cause__ is None
        assert messages == {"sealed data could not be opened"}

    def test_unknown_format_version_is_refused(self) -> None:
        """A header announcing another format version is refused, also by the header reader."""
        envelope = seal_field(KEY, VALUE, subject=SUBJECT, field=FIELD, key_version=1)
        other = envelope[:2] + bytes([2]) + envelope[3:]
        with pytest.raises(VaultDecryptError):
            envelope_key_version(other)
        with pytest.raises(VaultDecryptError):
            open_field(KEY, other, subject=SUBJECT, field=FIELD)

    @pytest.mark.parametrize(
        ("key", "subject", "field", "key_version"),
        [
            (b"short", SUBJECT, FIELD, 1),
            (KEY, "", FIELD, 1),
            (KEY, SUBJECT, "", 1),
            (KEY, SUBJECT, FIELD, -1),
            (KEY, SUBJECT, FIELD, 2**32),
        ],
    )
    def test_seal_refuses_bad_arguments(
        self, key: bytes, subject: str, field: str, key_version: int
    ) -> None:
        """Sealing with a malformed key, an empty name or an out-of-range version is refused."""
        with pytest.raises(ValueError, match="must"):
            seal_field(key, VALUE, subject=subject, field=field, key_version=key_version)
