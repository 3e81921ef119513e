"""Blind indexes: search sealed fields by equality without decrypting them.

A blind index is HMAC-SHA-256 over a normalised value, under a key of its own per field,
derived from a blind-index root key (never the data-encryption keys). Invariants:

- One value has one index input: the value is re-normalised (``normalise`` is
  idempotent), then folded per kind (names lose case and diacritics, e-mail addresses
  are lower-cased whole), so spelling variants of one value index equal.
- Field keys are independent (HKDF with the field name in ``info``): one value under two
  fields gives unrelated indexes, so indexes cannot be joined across fields.
- Keys never appear in ``repr`` or in errors.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import unicodedata
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.validators import normalise

__all__ = ["DEFAULT_TRUNCATE_BYTES", "BlindIndexer", "index_input"]

# 16 bytes (128 bits). Collisions: at 1e6..1e8 subjects per field the chance that any
# two distinct values share an index is about n^2 / 2^129, below 1e-22, so a lookup
# never returns a stranger. Leakage: truncation only hides anything once buckets hold
# many values (about 4 bytes or less at 1e8 rows), and then every search must decrypt
# and filter false positives; for low-entropy values (a PESEL, a phone) the secrecy of
# the HMAC key is the protection, not the length. 16 halves storage and index size
# against the full 32 at no practical collision cost.
DEFAULT_TRUNCATE_BYTES: Final = 16

ROOT_KEY_BYTES: Final = 32
_INFO_PREFIX: Final = b"tarcza/blind-index/v1/"

_NAME_KINDS: Final = frozenset({"name"})
_POLISH_L: Final = str.maketrans({"ł": "l", "Ł": "l"})


def _fold_name(value: str) -> str:
    """Case-fold, drop diacritics (NFKD, then no combining marks), collapse spaces.

    NFKD does not decompose the Polish "ł" (it is a letter of its own, not "l" with a
    mark), so it is mapped to "l" explicitly; other such letters (ø, đ) stay as they are.
    """
    folded = value.translate(_POLISH_L).casefold()
    decomposed = unicodedata.normalize("NFKD", folded)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.split())


def index_input(field: str, kind: str, normalised_value: str) -> bytes:
    """The bytes that get HMAC'd for ``field``: the canonical value, folded per kind.

    PESEL, NIP, REGON, documents and IBAN are their canonical forms (digits, uppercase,
    no spaces); a phone is E.164; an e-mail address is lower-cased whole (the local part
    too: mailboxes that differ only by case are treated as one person for search);
    names are folded with :func:`_fold_name`. The value is normalised again first, so a
    caller that passes a raw value gets the same index, or an ``InvalidFieldValueError``.
    """
    return _fold(kind, normalise(field, kind, normalised_value))


def _fold(kind: str, canonical: str) -> bytes:
    if kind in _NAME_KINDS:
        canonical = _fold_name(canonical)
    elif kind == "email":
        canonical = canonical.lower()
    return canonical.encode("utf-8")


class BlindIndexer:
    """Computes blind indexes under per-field keys derived from one root key."""

    __slots__ = ("_field_keys", "_lock", "_root_key", "truncate")

    def __init__(self, root_key: bytes, truncate: int = DEFAULT_TRUNCATE_BYTES) -> None:
        if len(root_key) != ROOT_KEY_BYTES:
            raise ValueError(f"blind-index root key must be {ROOT_KEY_BYTES} bytes")
        if not 1 <= truncate <= hashlib.sha256().digest_size:
            raise ValueError("truncate must be between 1 and 32 bytes")
        self._root_key = bytes(root_key)
        self.truncate = truncate
        self._field_keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BlindIndexer(truncate={self.truncate}, root_key=<hidden>)"

    __str__ = __repr__

    def field_key(self, field: str) -> bytes:
        """The HMAC key of ``field``: HKDF-SHA256(root, salt=None, info=prefix+field)."""
        key = self._field_keys.get(field)
        if key is None:
            hkdf = HKDF(
                algorithm=hashes.SHA256(),
                length=ROOT_KEY_BYTES,
                salt=None,
                info=_INFO_PREFIX + field.encode("utf-8"),
            )
            derived = hkdf.derive(self._root_key)
            with self._lock:
                key = self._field_keys.setdefault(field, derived)
        return key

    def compute(self, field: str, kind: str, normalised_value: str) -> bytes:
        """The blind index of a value of ``field``: truncated HMAC-SHA-256."""
        return self._digest(field, index_input(field, kind, normalised_value))

    def compute_canonical(self, field: str, kind: str, canonical_value: str) -> bytes:
        """:meth:`compute` for a value that :func:`~vault.validators.normalise` has just returned.

        Skips the defensive re-normalisation (for a phone number, most of the cost), so it
        must only see values straight from ``normalise`` for the same field and kind: the
        vault's sealer, which normalises every value before it seals and indexes it.
        """
        return self._digest(field, _fold(kind, canonical_value))

    def _digest(self, field: str, message: bytes) -> bytes:
        return hmac.digest(self.field_key(field), message, "sha256")[: self.truncate]
