"""The field envelope: one field value sealed under the subject's data key.

An envelope is a frame of the sealing recipe (:mod:`vault.aead`) for the purpose ``field``:
key id = data-key version, context items = (subject token, field label). Its bytes are those
written since the first release (integers big-endian)::

    offset  size  content
    0       2     magic b"TZ"
    2       1     format version (FORMAT_VERSION = 1)
    3       4     data-key version (unsigned)
    7       12    random AES-GCM nonce
    19      n+16  AES-256-GCM ciphertext of the n-byte value, then the 16-byte tag

with associated data ``LP("tarcza/field-envelope") || LP(1) || LP(subject) || LP(field) ||
LP(data-key version)`` (``LP`` = 4-byte length, then the bytes).

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
from collections.abc import Sequence

from vault import aead
from vault.errors import VaultDecryptError

__all__ = [
    "DATA_KEY_SIZE",
    "FORMAT_VERSION",
    "envelope_key_version",
    "new_data_key",
    "open_field",
    "open_fields",
    "seal_field",
    "seal_fields",
]

FORMAT_VERSION = aead.FORMAT_VERSION
DATA_KEY_SIZE = aead.KEY_SIZE


def new_data_key() -> bytes:
    """A fresh random 256-bit data key."""
    return os.urandom(DATA_KEY_SIZE)


@functools.lru_cache(maxsize=1024)
def _field_context(field: str) -> aead.Context:
    """A field's context item: a handful of values (catalogue names and labels), so cached."""
    return aead.context(field)


def seal_field(
    data_key: bytes, plaintext: bytes, *, subject: str, field: str, key_version: int
) -> bytes:
    """Seal ``plaintext`` for ``(subject, field)`` under ``data_key`` (of ``key_version``).

    Raises ``ValueError`` for a malformed argument (a programming error, never data).
    """
    return seal_fields(data_key, [(field, plaintext)], subject=subject, key_version=key_version)[0]


def seal_fields(
    data_key: bytes, items: Sequence[tuple[str, bytes]], *, subject: str, key_version: int
) -> list[bytes]:
    """:func:`seal_field` for several ``(field, plaintext)`` of one subject, in order.

    The same envelopes (each with its own random nonce), with one sealer for the subject's
    key: the vault's bulk path seals thousands of fields at a time.
    """
    if len(data_key) != DATA_KEY_SIZE:
        raise ValueError(f"data key must be {DATA_KEY_SIZE} bytes, got {len(data_key)}")
    if not subject:
        raise ValueError("subject must not be empty")
    sealer = aead.Sealer(data_key, aead.FIELD, prefix=aead.context(subject))
    out: list[bytes] = []
    for field, plaintext in items:
        if not field:
            raise ValueError("field must not be empty")
        out.append(sealer.seal(plaintext, _field_context(field), key_id=key_version))
    return out


def envelope_key_version(envelope: bytes) -> int:
    """The data-key version in the envelope's header, read without decrypting.

    The number is not authenticated until :func:`open_field` succeeds; use it only to
    choose which key to try. Raises :class:`VaultDecryptError` if the header is not a
    format-1 envelope header.
    """
    return aead.key_id_of(envelope)


def open_fields(data_key: bytes, items: Sequence[tuple[str, bytes]], *, subject: str) -> list[bytes]:
    """:func:`open_field` for several ``(field, envelope)`` of one subject, with one sealer.

    Raises :class:`VaultDecryptError` if any of them does not open.
    """
    try:
        sealer = aead.Sealer(data_key, aead.FIELD, prefix=aead.context(subject))
        return [sealer.open(envelope, _field_context(field)) for field, envelope in items]
    except (ValueError, TypeError):  # a data key of the wrong size, names that do not encode
        raise VaultDecryptError() from None


def open_field(data_key: bytes, envelope: bytes, *, subject: str, field: str) -> bytes:
    """Open an envelope sealed by :func:`seal_field` for ``(subject, field)``.

    Raises :class:`VaultDecryptError` on any failure.
    """
    try:
        ctx = aead.Context(aead.context(subject) + _field_context(field))
    except UnicodeEncodeError:
        raise VaultDecryptError() from None
    return aead.open_sealed(data_key, envelope, purpose=aead.FIELD, ctx=ctx)
