"""Conformance of the cosignature format with C2SP tlog-cosignature and signed-note: the bytes are
built by hand from the specifications (independently of ``audit.cosignature``) and compared.
"""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.checkpoint import Checkpoint, Signer, open_checkpoint
from audit.cosignature import (
    CosignatureError,
    Cosigner,
    CosignerKey,
    cosigned_message,
    require_cosignatures,
    verify_cosignatures,
)
from audit.errors import CheckpointError

SEED = bytes(range(32))
NAME = "witness.example/w1"
BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
TIME = 1679315147  # the timestamp of the specification's example


def _by_hand_line(seed: bytes, name: str, body: str, timestamp: int) -> str:
    """The cosignature line, following the specification step by step."""
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes_raw()
    key_id = hashlib.sha256(name.encode() + b"\x0a" + b"\x04" + public).digest()[:4]
    message = b"cosignature/v1\n" + b"time " + str(timestamp).encode() + b"\n" + body.encode()
    signature = key.sign(message)
    return "\u2014 " + name + " " + base64.b64encode(key_id + struct.pack(">Q", timestamp) + signature).decode() + "\n"


def _note_with(body: str, *lines: str) -> str:
    log = Signer.generate("example.com/behind-the-sofa")
    return log.sign_note(body) + "".join(lines)


class TestFormat:
    def test_signed_message_is_header_time_line_then_body(self) -> None:
        """The signed message is 'cosignature/v1', 'time <t>' and the whole body, each line newline-terminated."""
        assert cosigned_message(BODY, TIME) == (
            b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
            b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")

    def test_cosignature_line_matches_the_specification_byte_for_byte(self) -> None:
        """The line a Cosigner emits equals the one built by hand from the spec (Ed25519 is deterministic)."""
        cosigner = Cosigner(NAME, Ed25519PrivateKey.from_private_bytes(SEED))
        assert cosigner.cosign(BODY, TIME) == _by_hand_line(SEED, NAME, BODY, TIME)

    def test_extension_lines_are_part_of_the_signed_message(self) -> None:
        """A body with an extension line is signed whole, extension included."""
        body = BODY + "timestamp 1700000000\n"
        cosigner = Cosigner(NAME, Ed25519PrivateKey.from_private_bytes(SEED))
        assert cosigner.cosign(body, TIME) == _by_hand_line(SEED, NAME, body, TIME)

    def test_key_id_and_vkey_use_signature_type_0x04(self) -> None:
        """Key ID is SHA-256(name || 0x0A || 0x04 || key)[:4]; the vkey is name+hex(id)+base64(0x04 || key)."""
        public = Ed25519PrivateKey.from_private_bytes(SEED).public_key()
        raw = public.public_bytes_raw()
        key_id = hashlib.sha256(NAME.encode() + b"\n\x04" + raw).digest()[:4]
        key = Cosigner(NAME, Ed25519PrivateKey.from_private_bytes(SEED)).verifier()
        assert key.key_id == key_id
        key_data = base64.b64encode(b"\x04" + raw).decode()
        assert key.to_string() == f"{NAME}+{key_id.hex()}+{key_data}"

    def test_published_cosignature_vkey_parses_with_its_key_id(self) -> None:
        """A native cosignature/v1 vkey published by transparency-dev (formats/note tests) parses; its ID checks."""
        key = CosignerKey.from_string("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")
        assert key.name == "remora.n621.de"
        assert key.key_id.hex() == "da77ade7"

    def test_published_cosignature_carries_its_timestamp_big_endian_after_the_key_id(self) -> None:
        """In a published cosignature (transparency-dev formats tests), bytes 4..12 are the u64 big-endian time."""
        raw = base64.b64decode("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWW"
                               "OworDcFiEBYJXORmnFBOBA==")
        assert len(raw) == 4 + 8 + 64
        cosigner = Cosigner(NAME, Ed25519PrivateKey.from_private_bytes(SEED))
        ours = base64.b64decode(cosigner.cosign(BODY, 1727964367).split(" ")[-1])
        assert ours[4:12] == raw[4:12]  # the same time encodes to the same bytes

    def test_ed25519_note_key_is_not_a_cosigner_key(self) -> None:
        """A plain signed-note Ed25519 vkey (type 0x01) is refused as a witness key."""
        with pytest.raises(CheckpointError, match="0x04"):
            CosignerKey.from_string(Signer.generate("example.com/log").verifier().to_string())

    def test_wrong_key_id_in_vkey_is_refused(self) -> None:
        """A vkey whose key ID does not match its key is refused."""
        key = Cosigner.generate(NAME).verifier().to_string()
        name, key_id, data = key.split("+", 2)
        with pytest.raises(CheckpointError, match="does not match"):
            CosignerKey.from_string(f"{name}+{'0' * 8 if key_id != '0' * 8 else '1' * 8}+{data}")

    def test_signer_key_round_trips_and_hides_itself(self) -> None:
        """The private key string parses back to the same key, and repr shows no secret."""
        cosigner = Cosigner.generate(NAME)
        again = Cosigner.from_string(cosigner.to_string())
        assert again.verifier() == cosigner.verifier()
        assert cosigner.to_string().split("+", 4)[4] not in repr(cosigner)
        assert cosigner.to_string().startswith(f"PRIVATE+KEY+{NAME}+{cosigner.verifier().key_id.hex()}+")

    def test_zero_or_oversized_timestamp_is_refused(self) -> None:
        """A witness cosignature needs a non-zero timestamp of at most 2^63 - 1."""
        cosigner = Cosigner.generate(NAME)
        with pytest.raises(CheckpointError):
            cosigner.cosign(BODY, 0)
        with pytest.raises(CheckpointError):
            cosigner.cosign(BODY, 1 << 63)


class TestVerify:
    def test_valid_cosignature_verifies_and_log_signature_still_opens(self) -> None:
        """A cosigned checkpoint verifies for the witness, and the log's own signature check ignores the line."""
        log = Signer.generate("example.com/log")
        body = Checkpoint("example.com/log", 5, bytes(32)).body()
        witness = Cosigner.generate(NAME)
        note = log.sign_note(body) + witness.cosign(body, TIME)
        [found] = verify_cosignatures(note, [witness.verifier()])
        assert (found.key, found.timestamp) == (witness.verifier(), TIME)
        assert open_checkpoint(note, log.verifier()).size == 5

    def test_cosignature_by_unknown_key_does_not_count(self) -> None:
        """Lines of keys not trusted are ignored, including one with a trusted name but another key ID."""
        trusted = Cosigner.generate(NAME)
        impostor = Cosigner.generate(NAME)  # same name, other key: other key ID
        stranger = Cosigner.generate("other.example/w9")
        note = _note_with(BODY, impostor.cosign(BODY, TIME), stranger.cosign(BODY, TIME))
        assert verify_cosignatures(note, [trusted.verifier()]) == []
        with pytest.raises(CosignatureError, match="0 valid cosignature"):
            require_cosignatures(note, [trusted.verifier()], 1)

    def test_bad_cosignature_by_trusted_key_rejects_the_note(self) -> None:
        """A trusted witness's line that does not verify (here: over another body) is an error, not a skip."""
        witness = Cosigner.generate(NAME)
        other_body = BODY.replace("20852163", "20852164")
        note = _note_with(BODY, witness.cosign(other_body, TIME))
        with pytest.raises(CosignatureError, match="bad cosignature"):
            verify_cosignatures(note, [witness.verifier()])

    def test_changed_timestamp_breaks_the_cosignature(self) -> None:
        """The timestamp is signed: moving it invalidates the cosignature."""
        witness = Cosigner.generate(NAME)
        line = witness.cosign(BODY, TIME)
        raw = bytearray(base64.b64decode(line.split(" ")[-1]))
        raw[4:12] = struct.pack(">Q", TIME + 1)
        forged = f"\u2014 {NAME} {base64.b64encode(bytes(raw)).decode()}\n"
        with pytest.raises(CosignatureError):
            verify_cosignatures(_note_with(BODY, forged), [witness.verifier()])

    def test_log_type_signature_under_witness_key_is_not_a_cosignature(self) -> None:
        """A plain Ed25519 note signature (no header, no time) made with the witness's key does not verify."""
        seed_key = Ed25519PrivateKey.from_private_bytes(SEED)
        witness = Cosigner(NAME, seed_key)
        key_id = witness.verifier().key_id
        plain = seed_key.sign(BODY.encode())
        encoded = base64.b64encode(key_id + struct.pack(">Q", TIME) + plain).decode()
        line = f"\u2014 {NAME} {encoded}\n"
        with pytest.raises(CosignatureError):
            verify_cosignatures(_note_with(BODY, line), [witness.verifier()])

    def test_minimum_counts_distinct_trusted_witnesses(self) -> None:
        """Two lines by one witness count once; K of N distinct witnesses are required."""
        w1, w2, w3 = (Cosigner.generate(f"w{i}.example/w") for i in (1, 2, 3))
        note = _note_with(BODY, w1.cosign(BODY, TIME), w1.cosign(BODY, TIME + 5), w2.cosign(BODY, TIME))
        keys = [w1.verifier(), w2.verifier(), w3.verifier()]
        assert len(require_cosignatures(note, keys, 2)) == 2
        with pytest.raises(CosignatureError, match=r"2 valid cosignature.*3 required; missing: w3"):
            require_cosignatures(note, keys, 3)
        with pytest.raises(CosignatureError, match="can never be met"):
            require_cosignatures(note, [w1.verifier(), w1.verifier()], 2)
