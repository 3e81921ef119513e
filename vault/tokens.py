"""Opaque tokens: the names the rest of Tarcza knows subjects (and recordings) by.

A token is a short prefix (``sub_`` for subjects, ``rec_`` for recordings) followed by
22 base62 characters that encode 16 random bytes (128 bits). Invariants:

- A token says nothing about the subject: it comes from :mod:`secrets`, never from a
  field value, so holding one tells nothing without asking the vault.
- Every token matches the audit log's subject pattern ``^[A-Za-z0-9_\\-]{8,64}$`` and is
  a valid blob id (``[A-Za-z0-9._-]``, alphanumeric first).
- 22 base62 characters hold any 128-bit value (62**22 > 2**128), so the body has a fixed
  length and no padding.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import Final

from core.logging import clear_of_pii_patterns

__all__ = ["RECORDING_PREFIX", "SUBJECT_PREFIX", "TOKEN_BYTES", "encode_base62", "is_token", "new_token"]

SUBJECT_PREFIX: Final = "sub_"
RECORDING_PREFIX: Final = "rec_"
TOKEN_BYTES: Final = 16
BODY_LENGTH: Final = 22

_ALPHABET: Final = string.digits + string.ascii_uppercase + string.ascii_lowercase
_BODY: Final = re.compile(rf"[0-9A-Za-z]{{{BODY_LENGTH}}}")


def encode_base62(data: bytes, length: int) -> str:
    """``data`` as a big-endian number in base62, left-padded with ``0`` to ``length`` characters."""
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(_ALPHABET[rest])
    if len(digits) > length:
        raise ValueError(f"{len(data)} bytes do not fit in {length} base62 characters")
    return "".join(reversed(digits)).rjust(length, _ALPHABET[0])


def new_token(prefix: str = SUBJECT_PREFIX) -> str:
    """A fresh random token: ``prefix`` and 22 base62 characters of 16 random bytes."""
    return clear_of_pii_patterns(lambda: prefix + encode_base62(secrets.token_bytes(TOKEN_BYTES), BODY_LENGTH))


def is_token(value: object, prefix: str = SUBJECT_PREFIX) -> bool:
    """Whether ``value`` has the shape of a token with ``prefix`` (not whether it exists)."""
    return (
        isinstance(value, str)
        and value.startswith(prefix)
        and _BODY.fullmatch(value[len(prefix):]) is not None
    )
