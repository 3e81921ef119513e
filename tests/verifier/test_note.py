"""tarcza_verify.note: C2SP signed notes, tlog-checkpoint bodies (with the time line) and verifier keys."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from tarcza_verify.errors import CheckpointError
from tarcza_verify.merkle import HASH_SIZE, leaf_hash
from tarcza_verify.note import (
    Checkpoint,
    Verifier,
    compute_key_id,
    open_checkpoint,
    open_note,
    parse_checkpoint_body,
)

from .spec_signer import SpecSigner

PROPERTY = settings(max_examples=100, deadline=None, database=None)
_PRINTABLE = st.characters(exclude_categories=("Cc", "Cs"))
URLSAFE_ROOT = base64.urlsafe_b64encode(b"\xff" * HASH_SIZE).decode()

# Known-answer example published with golang.org/x/mod/sumdb/note (example_test.go), the
# reference implementation of the signed-note format. Ed25519 signing is deterministic,
# so signing the text with this key must reproduce the published note byte for byte.
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
    + "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

ORIGIN = "tarcza.example.pl/audit"
ROOT = leaf_hash(b"fictional root")
CHECKPOINT = Checkpoint(ORIGIN, 1234, ROOT)
# A fixed, fictional test key so that failures are reproducible.
SIGNER = SpecSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
VERIFIER = SIGNER.verifier()


def _signature_bytes(note: str) -> tuple[str, bytes]:
    """The note without its (single) signature line's base64, and the decoded bytes."""
    head, _, encoded = note.rstrip("\n").rpartition(" ")
    return head, base64.b64decode(encoded)


class TestKeyId:
    """compute_key_id."""

    def test_known_example(self) -> None:
        """The key ID of the Go reference example key is c74f20a3."""
        verifier = Verifier.from_string(GO_VERIFIER_KEY)
        assert compute_key_id("PeterNeumann", verifier.public_key).hex() == "c74f20a3"

    def test_matches_the_spec_formula(self) -> None:
        """The key ID is SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
        raw = VERIFIER.public_key.public_bytes_raw()
        expected = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw).digest()[:4]
        assert VERIFIER.key_id == expected == compute_key_id(ORIGIN, VERIFIER.public_key)


class TestVerifier:
    """Verifier."""

    def test_string_round_trip(self) -> None:
        """A verifier key string parses and prints back unchanged."""
        assert Verifier.from_string(GO_VERIFIER_KEY).to_string() == GO_VERIFIER_KEY
        assert Verifier.from_string(VERIFIER.to_string()) == VERIFIER

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "PeterNeumann",
            "PeterNeumann+c74f20a3",
            "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+ApqsqtlVGIVqcLbNMsiP4BJgDzxmBSxpfTqmQdzKtR7V",
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=",
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T!",
        ],
        ids=["empty", "name-only", "no-key", "empty-name", "space-in-name", "wrong-id",
             "short-id", "wrong-type", "short-key", "bad-padding", "bad-alphabet"],
    )
    def test_malformed_string_is_refused(self, text: str) -> None:
        """A verifier key string with a bad part of any kind raises CheckpointError."""
        with pytest.raises(CheckpointError):
            Verifier.from_string(text)

    def test_key_id_must_match_the_key(self) -> None:
        """A Verifier built with a key ID that is not its key's is refused."""
        with pytest.raises(CheckpointError, match="key ID"):
            Verifier(ORIGIN, b"\x00\x00\x00\x00", VERIFIER.public_key)

    @pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "nbsp\u00a0x", "nul\x00"])
    def test_invalid_name_is_refused(self, name: str) -> None:
        """An empty name, or one with whitespace, '+' or a control character, is refused."""
        with pytest.raises(CheckpointError):
            Verifier.from_public_key(name, VERIFIER.public_key)


class TestOpenNote:
    """open_note."""

    def test_opens_the_reference_note(self) -> None:
        """The Go example note opens under its verifier key and yields its text."""
        assert open_note(GO_NOTE, Verifier.from_string(GO_VERIFIER_KEY)) == GO_TEXT

    @PROPERTY
    @given(st.lists(st.text(_PRINTABLE, min_size=0),
                    min_size=1, max_size=5))
    def test_sign_open_round_trip(self, lines: list[str]) -> None:
        """Any text of lines without control characters signs and opens back unchanged."""
        text = "".join(line + "\n" for line in lines)
        assert open_note(SIGNER.sign_note(text), VERIFIER) == text

    def test_other_keys_signatures_are_ignored(self) -> None:
        """A note also signed by unknown keys opens for each of its signers."""
        other = SpecSigner.generate("witness.example.pl")
        text = CHECKPOINT.body()
        note = SIGNER.sign_note(text) + other.sign_note(text).split("\n\n")[-1]
        assert open_note(note, VERIFIER) == text
        assert open_note(note, other.verifier()) == text

    def test_same_name_other_key_is_refused(self) -> None:
        """A note signed by another key under the same name does not open: unknown key ID."""
        impostor = SpecSigner.generate(ORIGIN)
        with pytest.raises(CheckpointError, match="unknown key ID"):
            open_note(impostor.sign_note(CHECKPOINT.body()), VERIFIER)

    def test_unknown_name_is_refused(self) -> None:
        """A note signed only by keys of other names does not open: unknown key name."""
        stranger = SpecSigner.generate("stranger.example.pl")
        with pytest.raises(CheckpointError, match="unknown key name"):
            open_note(stranger.sign_note(CHECKPOINT.body()), VERIFIER)

    def test_bad_signature_by_known_key_rejects_the_note(self) -> None:
        """A failing signature by the verifier's key rejects the note even beside a good one."""
        good = SIGNER.sign_note(CHECKPOINT.body())
        head, raw = _signature_bytes(good)
        forged = base64.b64encode(raw[:4] + bytes(64)).decode()
        forged_line = f"{head.split(chr(10))[-1]} {forged}\n"
        with pytest.raises(CheckpointError, match="bad signature"):
            open_note(good + forged_line, VERIFIER)

    @PROPERTY
    @given(st.integers(0, (4 + 64) * 8 - 1))
    def test_any_flipped_signature_bit_is_refused(self, bit: int) -> None:
        """Flipping any bit of the key ID or the signature makes the note fail to open."""
        head, raw = _signature_bytes(SIGNER.sign_checkpoint(CHECKPOINT))
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(CheckpointError):
            open_note(f"{head} {base64.b64encode(bytes(flipped)).decode()}\n", VERIFIER)

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda note: note.replace("\n\n", "\n"),
            lambda note: note.rstrip("\n"),
            lambda note: note.replace("\u2014 ", "-- "),
            lambda note: note.replace("\u2014 ", "\u2014  "),
            lambda note: note + "\n",
            lambda note: note.replace("\n\u2014", "\n\n\u2014"),
            lambda note: note.replace("1234", "12\x0034"),
            lambda note: note[:-3] + "!=\n",
            lambda note: note.split("\n\n")[0] + "\n\n\u2014 " + ORIGIN + " AAAA\n",
            lambda note: note + "\u2014 " + ORIGIN + "\n",
            lambda note: note + "\ud800",
        ],
        ids=["no-blank-line", "no-final-newline", "ascii-dash", "double-space", "trailing-blank",
             "blank-before-signature", "control-char", "bad-base64", "signature-too-short",
             "no-signature-data", "lone-surrogate"],
    )
    def test_malformed_note_is_refused(self, mangle: Callable[[str], str]) -> None:
        """A note broken in its structure raises CheckpointError."""
        note = SIGNER.sign_checkpoint(CHECKPOINT)
        with pytest.raises(CheckpointError):
            open_note(mangle(note), VERIFIER)


class TestCheckpoint:
    """Checkpoint and parse_checkpoint_body."""

    def test_body_format(self) -> None:
        """The body is origin, decimal size and base64 root, one per line, then extensions."""
        root_b64 = base64.b64encode(ROOT).decode()
        assert CHECKPOINT.body() == f"{ORIGIN}\n1234\n{root_b64}\n"
        with_extensions = Checkpoint(ORIGIN, 0, ROOT, ("ext one", "two"))
        assert with_extensions.body() == f"{ORIGIN}\n0\n{root_b64}\next one\ntwo\n"

    @PROPERTY
    @given(
        st.text(_PRINTABLE, min_size=1),
        st.integers(0, 2**64 - 1),
        st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE),
        st.lists(st.text(_PRINTABLE, min_size=1), max_size=3),
    )
    def test_body_parse_round_trip(
        self, origin: str, size: int, root: bytes, extensions: list[str]
    ) -> None:
        """Any valid checkpoint parses back from its body unchanged."""
        checkpoint = Checkpoint(origin, size, root, tuple(extensions))
        assert parse_checkpoint_body(checkpoint.body()) == checkpoint

    @pytest.mark.parametrize(
        "body",
        [
            f"{ORIGIN}\n1234\n",
            f"{ORIGIN}\n1234\n{base64.b64encode(ROOT).decode()}",
            f"\n1234\n{base64.b64encode(ROOT).decode()}\n",
            f"{ORIGIN}\n01234\n{base64.b64encode(ROOT).decode()}\n",
            f"{ORIGIN}\n+1234\n{base64.b64encode(ROOT).decode()}\n",
            f"{ORIGIN}\n-1\n{base64.b64encode(ROOT).decode()}\n",
            f"{ORIGIN}\n\u0661\u0662\n{base64.b64encode(ROOT).decode()}\n",
            f"{ORIGIN}\n 1234\n{base64.b64encode(ROOT).decode()}\n",
            f"{ORIGIN}\n{2**64}\n{base64.b64encode(ROOT).decode()}\n",
            f"{ORIGIN}\n1234\n{base64.b64encode(ROOT[:-1]).decode()}\n",
            f"{ORIGIN}\n1234\n{base64.b64encode(ROOT).decode().rstrip('=')}\n",
            f"{ORIGIN}\n1234\n{URLSAFE_ROOT}\n",
            f"{ORIGIN}\n1234\n{base64.b64encode(ROOT).decode()}\n\n",
            f"{ORIGIN}\n1234\n{base64.b64encode(ROOT).decode()}\next\n\nmore\n",
        ],
        ids=["two-lines", "no-final-newline", "empty-origin", "leading-zero", "plus-sign",
             "negative", "non-ascii-digits", "space", "over-uint64", "short-root",
             "unpadded-root", "urlsafe-root", "empty-extension", "empty-middle-extension"],
    )
    def test_malformed_body_is_refused(self, body: str) -> None:
        """A body Checkpoint.body() would never emit raises CheckpointError."""
        with pytest.raises(CheckpointError):
            parse_checkpoint_body(body)

    def test_noncanonical_base64_root_is_refused(self) -> None:
        """A root in base64 with non-zero padding bits (not canonical) is refused."""
        canonical = base64.b64encode(ROOT).decode()
        last = canonical[-2]
        twin = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        sloppy = canonical[:-2] + twin[twin.index(last) ^ 1] + "="
        assert base64.b64decode(sloppy) == ROOT
        with pytest.raises(CheckpointError, match="canonical"):
            parse_checkpoint_body(f"{ORIGIN}\n1234\n{sloppy}\n")

    def test_invalid_fields_are_refused_at_construction(self) -> None:
        """A checkpoint with a negative size, short root or multi-line origin cannot exist."""
        for args in ((ORIGIN, -1, ROOT), (ORIGIN, 1, ROOT[:5]), ("a\nb", 1, ROOT), ("", 1, ROOT)):
            with pytest.raises(CheckpointError):
                Checkpoint(*args)


class TestOpenCheckpoint:
    """open_checkpoint."""

    def test_sign_open_round_trip(self) -> None:
        """A signed checkpoint opens to an equal checkpoint, with or without the origin check."""
        note = SIGNER.sign_checkpoint(CHECKPOINT)
        assert open_checkpoint(note, VERIFIER) == CHECKPOINT
        assert open_checkpoint(note, VERIFIER, origin=ORIGIN) == CHECKPOINT

    def test_unexpected_origin_is_refused(self) -> None:
        """A validly signed checkpoint for another origin is refused when the origin is given."""
        note = SIGNER.sign_checkpoint(Checkpoint("other.example.pl/log", 5, ROOT))
        with pytest.raises(CheckpointError, match="origin"):
            open_checkpoint(note, VERIFIER, origin=ORIGIN)

    @pytest.mark.parametrize("line", [0, 1, 2, 3])
    def test_tampered_line_fails_closed(self, line: int) -> None:
        """Changing the origin, size, root or extension line of a signed note is refused."""
        checkpoint = Checkpoint(ORIGIN, 1234, ROOT, ("extension",))
        lines = SIGNER.sign_checkpoint(checkpoint).split("\n")
        replacement = {
            0: ORIGIN + "x",
            1: "1235",
            2: base64.b64encode(leaf_hash(b"another root")).decode(),
            3: "extensioN",
        }
        lines[line] = replacement[line]
        with pytest.raises(CheckpointError, match="bad signature"):
            open_checkpoint("\n".join(lines), VERIFIER)

    def test_signed_but_malformed_body_is_refused(self) -> None:
        """A validly signed note whose text is not a checkpoint body is refused."""
        with pytest.raises(CheckpointError):
            open_checkpoint(SIGNER.sign_note("just text\n"), VERIFIER)
