"""The versioned AEAD envelope that seals one field value.

Layout (all integers big-endian)::

    offset  size  content
    0       2     magic b"TZ"
    2       1     format version (FORMAT_VERSION = 1)
    3       4     data-key version (unsigned)
    7       12    random AES-GCM nonce
    19      n+16  AES-256-GCM ciphertext of the n-byte value, then the 16-byte tag

The associated data is the canonical encoding of (domain, format version, subject,
field, data-key version): every item is a 4-byte length followed by its bytes, so no
two distinct tuples encode alike.

Invariants:

- An envelope opens only under the data key, subject and field it was sealed for, and
  only with the header it was written with: moving it to another subject or field, or
  changing any byte of it, makes :func:`open_field` fail.
- :func:`open_field` fails with one opaque :class:`~vault.errors.VaultDecryptError`,
  whatever the cause (short input, wrong magic, unknown version, bad tag); it never says
  which.
- The nonce is 96 random bits per seal. Under one data key (one subject, one key
  version) this stays far below the 2**32 seals where random GCM nonces become a
  concern.
- Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.errors import VaultDecryptError

__all__ = [
    "DATA_KEY_SIZE",
    "FORMAT_VERSION",
    "envelope_key_version",
    "new_data_key",
    "open_field",
    "seal_field",
    "seal_fields",
]

FORMAT_VERSION = 1
DATA_KEY_SIZE = 32

_MAGIC = b"TZ"
_NONCE_SIZE = 12
_TAG_SIZE = 16
_HEADER = struct.Struct(">2sBI")  # magic, format version, key version
_PREFIX_SIZE = _HEADER.size + _NONCE_SIZE
_MAX_KEY_VERSION = 2**32 - 1
_DOMAIN = b"tarcza/field-envelope"


def new_data_key() -> bytes:
    """A fresh random 256-bit data key."""
    return os.urandom(DATA_KEY_SIZE)


def _length_prefixed(*items: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(item)) + item for item in items)


_AD_HEAD = _length_prefixed(_DOMAIN, bytes([FORMAT_VERSION]))


def _associated_data(subject: str, field: str, key_version: int) -> bytes:
    """Length-prefixed (domain, format version, subject, field, key version)."""
    return _subject_part(subject) + _field_part(field, key_version)


def _subject_part(subject: str) -> bytes:
    return _AD_HEAD + _length_prefixed(subject.encode("utf-8"))


@functools.lru_cache(maxsize=1024)
def _field_part(field: str, key_version: int) -> bytes:
    """The tail of the associated data: a handful of values (catalogue names, key versions)."""
    return _length_prefixed(field.encode("utf-8"), struct.pack(">I", key_version))


def _check_seal_arguments(data_key: bytes, subject: str, field: str, key_version: int) -> None:
    if len(data_key) != DATA_KEY_SIZE:
        raise ValueError(f"data key must be {DATA_KEY_SIZE} bytes, got {len(data_key)}")
    if not subject:
        raise ValueError("subject must not be empty")
    if not field:
        raise ValueError("field must not be empty")
    if not 0 <= key_version <= _MAX_KEY_VERSION:
        raise ValueError(f"key version must be in [0, {_MAX_KEY_VERSION}], got {key_version}")


def seal_field(
    data_key: bytes, plaintext: bytes, *, subject: str, field: str, key_version: int
) -> bytes:
    """Seal ``plaintext`` for ``(subject, field)`` under ``data_key`` (of ``key_version``).

    Raises ``ValueError`` for a malformed argument (a programming error, never data).
    """
    _check_seal_arguments(data_key, subject, field, key_version)
    nonce = os.urandom(_NONCE_SIZE)
    header = _HEADER.pack(_MAGIC, FORMAT_VERSION, key_version)
    ciphertext = AESGCM(data_key).encrypt(
        nonce, plaintext, _associated_data(subject, field, key_version)
    )
    return header + nonce + ciphertext


def seal_fields(
    data_key: bytes, items: Sequence[tuple[str, bytes]], *, subject: str, key_version: int
) -> list[bytes]:
    """:func:`seal_field` for several ``(field, plaintext)`` of one subject, in order.

    The same envelopes (each with its own random nonce), with one cipher object for the
    subject's key: the vault's bulk path seals thousands of fields at a time.
    """
    aead: AESGCM | None = None
    header = _HEADER.pack(_MAGIC, FORMAT_VERSION, key_version) if 0 <= key_version <= _MAX_KEY_VERSION else b""
    head = _subject_part(subject)
    out: list[bytes] = []
    for field, plaintext in items:
        _check_seal_arguments(data_key, subject, field, key_version)
        if aead is None:
            aead = AESGCM(data_key)
        nonce = os.urandom(_NONCE_SIZE)
        out.append(header + nonce + aead.encrypt(nonce, plaintext, head + _field_part(field, key_version)))
    return out


def envelope_key_version(envelope: bytes) -> int:
    """The data-key version in the envelope's header, read without decrypting.

    The number is not authenticated until :func:`open_field` succeeds; use it only to
    choose which key to try. Raises :class:`VaultDecryptError` if the header is not a
    format-1 envelope header.
    """
    if len(envelope) < _PREFIX_SIZE + _TAG_SIZE:
        raise VaultDecryptError()
    magic, version, key_version = _HEADER.unpack_from(envelope)
    if magic != _MAGIC or version != FORMAT_VERSION:
        raise VaultDecryptError()
    return int(key_version)


def open_fields(data_key: bytes, items: Sequence[tuple[str, bytes]], *, subject: str) -> list[bytes]:
    """:func:`open_field` for several ``(field, envelope)`` of one subject, with one cipher object.

    Raises :class:`VaultDecryptError` if any of them does not open.
    """
    try:
        aead = AESGCM(data_key)
        head = _subject_part(subject)
        out: list[bytes] = []
        for field, envelope in items:
            key_version = envelope_key_version(envelope)
            nonce = envelope[_HEADER.size : _PREFIX_SIZE]
            out.append(aead.decrypt(nonce, envelope[_PREFIX_SIZE:], head + _field_part(field, key_version)))
        return out
    except VaultDecryptError:
        raise
    except (InvalidTag, ValueError, TypeError, struct.error):
        raise VaultDecryptError() from None


def open_field(data_key: bytes, envelope: bytes, *, subject: str, field: str) -> bytes:
    """Open an envelope sealed by :func:`seal_field` for ``(subject, field)``.

    Raises :class:`VaultDecryptError` on any failure.
    """
    try:
        key_version = envelope_key_version(envelope)
        nonce = envelope[_HEADER.size : _PREFIX_SIZE]
        ad = _associated_data(subject, field, key_version)
        return AESGCM(data_key).decrypt(nonce, envelope[_PREFIX_SIZE:], ad)
    except VaultDecryptError:
        raise
    except (InvalidTag, ValueError, TypeError, struct.error):
        # ValueError covers a data key of the wrong size and unencodable names.
        raise VaultDecryptError() from None
