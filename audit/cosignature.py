"""Witness cosignatures of checkpoints: C2SP tlog-cosignature, the timestamped Ed25519 type.

The format and its verification are the standalone verifier's (:mod:`tarcza_verify.cosignature`,
re-exported here, so that auditors check witnesses with the code the server uses; ADR 0019,
ADR 0021). This module adds :class:`Cosigner`, the witness's signing key:

- a cosigner's signer key is kept as ``"PRIVATE+KEY+<name>+<key ID hex>+base64(0x04 || seed)"``
  (the log key's layout with this type byte);
- everything :class:`Cosigner` emits verifies with its :meth:`Cosigner.verifier`;
- through this module, refusals are :mod:`audit.errors`' (:class:`CosignatureError`,
  :class:`~audit.errors.CheckpointError`).

Pure: no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Final, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.errors import CheckpointError, CosignatureError, from_verifier
from tarcza_verify import cosignature as _cosignature
from tarcza_verify.cosignature import COSIGNATURE_TYPE, HEADER, MAX_TIMESTAMP, Cosignature, cosignature_key_id
from tarcza_verify.errors import VerifyError
from tarcza_verify.note import SIGNATURE_PREFIX, b64encode, split_key_string

__all__ = [
    "COSIGNATURE_TYPE",
    "HEADER",
    "MAX_TIMESTAMP",
    "Cosignature",
    "CosignatureError",
    "Cosigner",
    "CosignerKey",
    "cosignature_key_id",
    "cosigned_message",
    "require_cosignatures",
    "verify_cosignatures",
]

_PRIVATE_PREFIX: Final = "PRIVATE+KEY+"
_PUBLIC_KEY_SIZE: Final = 32


@contextmanager
def _as_audit_errors() -> Iterator[None]:
    try:
        yield
    except VerifyError as exc:
        raise from_verifier(exc) from None


class CosignerKey(_cosignature.CosignerKey):
    """The verifier's :class:`tarcza_verify.cosignature.CosignerKey`, parsing with audit errors."""

    def __post_init__(self) -> None:
        with _as_audit_errors():
            super().__post_init__()

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey) -> Self:
        """The key of ``public_key`` under ``name``, key ID computed; :class:`CheckpointError` for a bad name."""
        with _as_audit_errors():
            return super().from_public_key(name, public_key)

    @classmethod
    def from_string(cls, text: str) -> Self:
        """Parse ``"<name>+<key ID hex>+base64(0x04 || public key)"``; :class:`CheckpointError` if not."""
        with _as_audit_errors():
            return super().from_string(text)


def cosigned_message(body: str, timestamp: int) -> bytes:
    """The bytes a cosigner signs: header line, time line, then the checkpoint body."""
    with _as_audit_errors():
        return _cosignature.cosigned_message(body, timestamp)


def verify_cosignatures(note: str, keys: Iterable[_cosignature.CosignerKey]) -> list[Cosignature]:
    """:func:`tarcza_verify.cosignature.verify_cosignatures`, raising :class:`CosignatureError`."""
    with _as_audit_errors():
        return _cosignature.verify_cosignatures(note, keys)


def require_cosignatures(note: str, keys: Sequence[_cosignature.CosignerKey], minimum: int) -> list[Cosignature]:
    """:func:`tarcza_verify.cosignature.require_cosignatures`, raising :class:`CosignatureError`."""
    with _as_audit_errors():
        return _cosignature.require_cosignatures(note, keys, minimum)


class Cosigner:
    """A witness's Ed25519 signing key. Holds a secret: ``repr`` shows only name and key ID."""

    __slots__ = ("_key", "_private_key")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise CheckpointError("cosigner key is not an Ed25519 private key")
        self._private_key = private_key
        self._key = CosignerKey.from_public_key(name, private_key.public_key())

    def __repr__(self) -> str:
        return f"Cosigner(name={self._key.name!r}, key_id={self._key.key_id.hex()!r})"

    @property
    def name(self) -> str:
        return self._key.name

    @classmethod
    def generate(cls, name: str) -> Cosigner:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_string(cls, secret_key: str) -> Cosigner:
        """Parse ``"PRIVATE+KEY+<name>+<key ID hex>+base64(0x04 || seed)"``; errors never repeat it."""
        secret_key = secret_key.strip()
        if not secret_key.startswith(_PRIVATE_PREFIX):
            raise CheckpointError("cosigner key does not start with PRIVATE+KEY+")
        with _as_audit_errors():
            name, key_id_hex, key_data = split_key_string(secret_key[len(_PRIVATE_PREFIX):], "cosigner",
                                                          "PRIVATE+KEY+name+keyid+keydata")
        if key_data[:1] != COSIGNATURE_TYPE or len(key_data) != 1 + _PUBLIC_KEY_SIZE:
            raise CheckpointError("cosigner key data is not 0x04 and a 32-byte Ed25519 seed")
        cosigner = cls(name, Ed25519PrivateKey.from_private_bytes(key_data[1:]))
        if cosigner.verifier().key_id.hex() != key_id_hex.lower():
            raise CheckpointError(f"cosigner key ID {key_id_hex} does not match the key")
        return cosigner

    def to_string(self) -> str:
        """The secret key string. Treat it as a secret."""
        key_data = COSIGNATURE_TYPE + self._private_key.private_bytes_raw()
        return f"{_PRIVATE_PREFIX}{self._key.name}+{self._key.key_id.hex()}+{b64encode(key_data)}"

    def verifier(self) -> CosignerKey:
        return self._key

    def cosign(self, body: str, timestamp: int) -> str:
        """The cosignature line (newline-terminated) of the checkpoint ``body`` at ``timestamp``."""
        if timestamp == 0:
            raise CheckpointError("a witness cosignature must carry a timestamp (tlog-witness)")
        signature = self._private_key.sign(cosigned_message(body, timestamp))
        raw = self._key.key_id + struct.pack(">Q", timestamp) + signature
        return f"{SIGNATURE_PREFIX}{self._key.name} {b64encode(raw)}\n"
