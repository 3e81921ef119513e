"""Witness cosignatures of checkpoints (C2SP tlog-cosignature, timestamped Ed25519), for verifying.

Format (c2sp.org/tlog-cosignature, c2sp.org/signed-note):

- A cosignature is a signed-note signature line on the checkpoint,
  ``"\u2014 <cosigner name> base64(key ID || timestamped_signature)"``.
- ``key ID = SHA-256(name || 0x0A || 0x04 || 32-byte Ed25519 public key)[:4]``; the verifier
  key (vkey) is ``"<name>+<key ID hex>+base64(0x04 || public key)"``.
- ``timestamped_signature`` is a big-endian ``u64`` POSIX timestamp (at most 2^63 - 1), then the
  64-byte Ed25519 signature.
- The signed message is ``"cosignature/v1\\n"``, ``"time <timestamp>\\n"`` (ASCII decimal, no
  leading zeroes), then the whole checkpoint body with its final newline (extension lines, such
  as the log's own ``time`` line, included; signature lines not).

Invariants:

- Only a line whose (name, key ID) is one of the keys the caller trusts is looked at; every other
  line is ignored, as signed-note requires. A line of a trusted key that does not verify (or has
  the wrong length, or a timestamp beyond 2^63 - 1) rejects the note with
  :class:`CosignatureError`; it never silently drops to "not counted".
- A trusted key counts once however many lines it has; :func:`require_cosignatures` counts
  distinct trusted keys.

The witness's signer (``audit.cosignature.Cosigner``) builds on this module; no I/O here.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tarcza_verify.errors import CheckpointError, VerificationError
from tarcza_verify.note import SIGNATURE_PREFIX, b64encode, check_key_name, split_key_string, split_note

__all__ = [
    "COSIGNATURE_TYPE",
    "HEADER",
    "MAX_TIMESTAMP",
    "Cosignature",
    "CosignatureError",
    "CosignerKey",
    "cosignature_key_id",
    "cosigned_message",
    "require_cosignatures",
    "verify_cosignatures",
]

COSIGNATURE_TYPE: Final = b"\x04"
"""The signed-note signature type of timestamped Ed25519 checkpoint cosignatures."""

HEADER: Final = "cosignature/v1"
MAX_TIMESTAMP: Final = (1 << 63) - 1
_TIMESTAMP_SIZE: Final = 8
_SIGNATURE_SIZE: Final = 64
_PUBLIC_KEY_SIZE: Final = 32


class CosignatureError(VerificationError):
    """A checkpoint lacks the cosignatures asked for, or a trusted witness's cosignature is bad."""

    code = "cosignature"


def cosignature_key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """``SHA-256(name || 0x0A || 0x04 || public key)[:4]``."""
    check_key_name(name)
    material = name.encode("utf-8") + b"\n" + COSIGNATURE_TYPE + public_key.public_bytes_raw()
    return hashlib.sha256(material).digest()[:4]


def check_timestamp(timestamp: int) -> None:
    """A cosignature timestamp: a whole number from 0 to 2^63 - 1."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CheckpointError(f"cosignature timestamp {timestamp!r} is not between 0 and {MAX_TIMESTAMP}")


def cosigned_message(body: str, timestamp: int) -> bytes:
    """The bytes a cosigner signs: header line, time line, then the checkpoint body."""
    check_timestamp(timestamp)
    if not body.endswith("\n"):
        raise CheckpointError("checkpoint body does not end with a newline")
    return f"{HEADER}\ntime {timestamp}\n{body}".encode()


@dataclass(frozen=True)
class CosignerKey:
    """A witness's public key as log clients pin it: name, key ID, Ed25519 key."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if not isinstance(self.public_key, Ed25519PublicKey):
            raise CheckpointError("cosigner key is not an Ed25519 public key")
        expected = cosignature_key_id(self.name, self.public_key)
        if self.key_id != expected:
            raise CheckpointError(f"cosigner key ID {self.key_id.hex()} does not match the key "
                                  f"(expected {expected.hex()})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CosignerKey):
            return NotImplemented
        return self.to_string() == other.to_string()

    def __hash__(self) -> int:
        return hash(self.to_string())

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey) -> Self:
        """The key of ``public_key`` under ``name``, key ID computed."""
        return cls(name, cosignature_key_id(name, public_key), public_key)

    @classmethod
    def from_string(cls, text: str) -> Self:
        """Parse ``"<name>+<key ID hex>+base64(0x04 || public key)"``."""
        name, key_id_hex, key_data = split_key_string(text.strip(), "cosigner", "name+keyid+keydata")
        if key_data[:1] != COSIGNATURE_TYPE:
            raise CheckpointError("cosigner key is not a timestamped Ed25519 cosignature key (type byte 0x04)")
        if len(key_data) != 1 + _PUBLIC_KEY_SIZE:
            raise CheckpointError(f"cosigner key is not {_PUBLIC_KEY_SIZE} bytes")
        try:
            public_key = Ed25519PublicKey.from_public_bytes(key_data[1:])
        except ValueError:
            raise CheckpointError("cosigner key is not a valid Ed25519 public key") from None
        return cls(name, bytes.fromhex(key_id_hex), public_key)

    def to_string(self) -> str:
        """The vkey string ``"<name>+<key ID hex>+base64(0x04 || public key)"``."""
        return f"{self.name}+{self.key_id.hex()}+{b64encode(COSIGNATURE_TYPE + self.public_key.public_bytes_raw())}"

    @property
    def label(self) -> str:
        """``name+keyid``: how messages and metrics name the witness."""
        return f"{self.name}+{self.key_id.hex()}"


@dataclass(frozen=True)
class Cosignature:
    """A verified cosignature: whose, when (POSIX seconds), and its signature line."""

    key: CosignerKey
    timestamp: int
    line: str


def verify_cosignatures(note: str, keys: Iterable[CosignerKey]) -> list[Cosignature]:
    """The verified cosignatures on ``note`` by ``keys``, one per key (its first line), in key order.

    Lines of other keys are ignored; a bad line of a trusted key raises :class:`CosignatureError`.
    """
    text, lines = split_note(note)
    trusted = {(k.name, k.key_id): k for k in keys}
    found: dict[tuple[str, bytes], Cosignature] = {}
    for line in lines:
        key = trusted.get((line.name, line.key_id))
        if key is None:
            continue
        raw = line.signature
        if len(raw) != _TIMESTAMP_SIZE + _SIGNATURE_SIZE:
            raise CosignatureError(f"cosignature by {key.label} is {len(raw)} bytes, not "
                                   f"{_TIMESTAMP_SIZE + _SIGNATURE_SIZE}", witness=key.label)
        (timestamp,) = struct.unpack(">Q", raw[:_TIMESTAMP_SIZE])
        if timestamp > MAX_TIMESTAMP:
            raise CosignatureError(f"cosignature by {key.label} has a timestamp beyond 2^63 - 1", witness=key.label)
        try:
            key.public_key.verify(raw[_TIMESTAMP_SIZE:], cosigned_message(text, timestamp))
        except InvalidSignature:
            raise CosignatureError(f"bad cosignature by witness {key.label} (time {timestamp})",
                                   witness=key.label) from None
        encoded = b64encode(line.key_id + raw)
        found.setdefault((key.name, key.key_id),
                         Cosignature(key, timestamp, f"{SIGNATURE_PREFIX}{key.name} {encoded}\n"))
    return [found[(k.name, k.key_id)] for k in trusted.values() if (k.name, k.key_id) in found]


def require_cosignatures(note: str, keys: Sequence[CosignerKey], minimum: int) -> list[Cosignature]:
    """Verify that ``note`` carries valid cosignatures by at least ``minimum`` distinct ``keys``.

    Raises :class:`CosignatureError` naming how many were found, from whom, and who is missing.
    """
    if minimum < 0:
        raise CosignatureError(f"minimum number of witnesses {minimum} is negative")
    distinct = {(k.name, k.key_id): k for k in keys}
    if minimum > len(distinct):
        raise CosignatureError(f"{minimum} witness cosignatures required but only {len(distinct)} witness "
                               "key(s) given: the requirement can never be met")
    valid = verify_cosignatures(note, distinct.values())
    if len(valid) < minimum:
        have = {c.key.label for c in valid}
        missing = sorted(k.label for k in distinct.values() if k.label not in have)
        raise CosignatureError(
            f"checkpoint carries {len(valid)} valid cosignature(s) from the {len(distinct)} trusted witness(es), "
            f"{minimum} required; missing: {', '.join(missing)}", found=len(valid), required=minimum)
    return valid
