"""The one sealing recipe: every byte Tarcza seals is an AES-256-GCM *frame* of this format.

Frame, format version 1 (integers big-endian)::

    offset  size   content
    0       2      magic b"TZ"
    2       1      format version (FORMAT_VERSION = 1)
    3       4      key id: the version of the key that sealed it (unsigned)
    7       12     random nonce
    19      n+16   AES-256-GCM ciphertext of the n-byte plaintext, then the 16-byte tag

Associated data, built one way for every use, each item length-prefixed
(``LP(x) = len(x) as 4 bytes || x``)::

    LP(purpose label) || LP(format version, 1 byte) || LP(context item 1) || ... || LP(context item k)
        || LP(key id, 4 bytes)

The magic is a constant checked on opening and the header's other two fields are items of
the associated data, so the whole header is authenticated. The purposes (one label each,
never shared; see :data:`PURPOSES` and docs/adr/0016-one-sealing-recipe.md):

=============  =========================  ===================================  ===============================
purpose        label                      key                                  context items
=============  =========================  ===================================  ===============================
field          ``tarcza/field-envelope``  the subject's data key               subject token, field label
blob segment   ``tarcza/blob-segment``    HKDF(data key, blob's salt)          blob header, subject token,
                                                                               blob id, index (8), last (1)
key wrap       ``tarcza/key-wrap``        a KEK (in memory or in a token)      the wrap context
keyfile        ``tarcza/keyfile``         scrypt(passphrase)                   canonical JSON {format, kdf}
secret box     ``tarcza/secret-box``      HKDF(identity key)                   owner (user id)
stored answer  ``tarcza/stored-answer``   HKDF(identity key)                   principal, idempotency key
=============  =========================  ===================================  ===============================

Field labels cover stored values (catalogue names), values sealed for audit events
(``~event:<field>``) and reveal justifications (``~justification``): one purpose, labels
from disjoint namespaces. The field frame is exactly the envelope written since the first
release, so every stored envelope is already a frame.

Invariants:

- A frame opens only under the key, purpose, context and key id it was sealed with; a
  change of any byte, a truncation or an extension fails. Every failure to open is the one
  opaque :class:`~vault.errors.VaultDecryptError`; an error of a token cipher that is not
  about the data (a lost session) passes through unchanged.
- Distinct (purpose, version, context items, key id) tuples give distinct associated data
  (the length-prefixed encoding is injective), so no use can take another's ciphertext.
- Nonces are 96 random bits per seal; keys that seal many values are per subject (and per
  blob for segments), far below the 2**32 seals per key where random nonces need care.
- Keys for a sub-purpose come from :func:`derive_key` (HKDF-SHA-256, info naming the purpose).
- Framings written before the recipe are read by the ``legacy_*`` readers at the end of this
  module, and only read: nothing seals in them any more.
- Pure: no I/O, no clock, no logging. This module is the only one that imports the AEAD
  primitive (tests/vault/test_aead.py checks it).
"""

from __future__ import annotations

import functools
import os
import struct
from typing import Final, NewType, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.errors import VaultDecryptError

__all__ = [
    "BLOB_SEGMENT",
    "FIELD",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "KEYFILE",
    "KEY_SIZE",
    "KEY_WRAP",
    "NONCE_SIZE",
    "OVERHEAD",
    "PURPOSES",
    "SECRET_BOX",
    "STORED_ANSWER",
    "TAG_SIZE",
    "Cipher",
    "Context",
    "LegacyBlobSegments",
    "Purpose",
    "Sealer",
    "SubkeyBox",
    "cipher",
    "context",
    "derive_key",
    "is_frame",
    "key_id_of",
    "legacy_open_nonce_first",
    "open_sealed",
    "seal",
]

FORMAT_VERSION: Final = 1
KEY_SIZE: Final = 32
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
MAX_KEY_ID: Final = 2**32 - 1
MAGIC: Final = b"TZ"
_HEADER: Final = struct.Struct(">2sBI")  # magic, format version, key id
HEADER_SIZE: Final = _HEADER.size
_PREFIX_SIZE: Final = HEADER_SIZE + NONCE_SIZE
OVERHEAD: Final = _PREFIX_SIZE + TAG_SIZE
"""Bytes a frame adds to its plaintext (header, nonce, tag)."""
_MARK: Final = MAGIC + bytes([FORMAT_VERSION])
_OPEN_FAILURES: Final = (InvalidTag, ValueError, TypeError, OverflowError, struct.error)

Context = NewType("Context", bytes)
"""The caller's context items, encoded by :func:`context` (concatenations of contexts are contexts)."""
_NO_CONTEXT: Final = Context(b"")
_LENGTH: Final = struct.Struct(">I").pack
_KEY_ID_LENGTH: Final = _LENGTH(4)


def _lp(item: bytes) -> bytes:
    return _LENGTH(len(item)) + item


def context(*items: bytes | str) -> Context:
    """Encode context items for the associated data: each length-prefixed, text as UTF-8."""
    out = b""
    for item in items:
        data = item.encode("utf-8") if isinstance(item, str) else item
        out += _LENGTH(len(data)) + data
    return Context(out)


class Purpose:
    """One use of the recipe: its label (the first item of the associated data) and its context items."""

    __slots__ = ("ad_head", "items", "label", "name")

    def __init__(self, name: str, label: bytes, items: tuple[str, ...]) -> None:
        self.name = name
        self.label = label
        self.items = items
        self.ad_head = _lp(label) + _lp(bytes([FORMAT_VERSION]))

    def __repr__(self) -> str:
        return f"Purpose({self.name!r}, label={self.label!r})"


FIELD: Final = Purpose("field", b"tarcza/field-envelope", ("subject token", "field label"))
BLOB_SEGMENT: Final = Purpose("blob segment", b"tarcza/blob-segment",
                              ("blob header", "subject token", "blob id", "segment index", "last-segment flag"))
KEY_WRAP: Final = Purpose("key wrap", b"tarcza/key-wrap", ("wrap context",))
KEYFILE: Final = Purpose("keyfile", b"tarcza/keyfile", ("keyfile header",))
SECRET_BOX: Final = Purpose("secret box", b"tarcza/secret-box", ("owner",))
STORED_ANSWER: Final = Purpose("stored answer", b"tarcza/stored-answer", ("principal", "idempotency key"))
PURPOSES: Final = (FIELD, BLOB_SEGMENT, KEY_WRAP, KEYFILE, SECRET_BOX, STORED_ANSWER)
"""Every purpose. A new use gets a new label here, never an existing one."""

if len({purpose.label for purpose in PURPOSES}) != len(PURPOSES):  # pragma: no cover - a programming error
    raise RuntimeError("two purposes share a label")


class Cipher(Protocol):
    """An AES-256-GCM key that may live elsewhere (a PKCS#11 token): the AEAD under the recipe.

    ``decrypt`` raises ``InvalidTag`` (or :class:`~vault.errors.VaultDecryptError`) when the
    data does not authenticate; anything else it raises passes through the recipe unchanged.
    """

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None, /) -> bytes: ...

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None, /) -> bytes: ...


def cipher(key: bytes | Cipher) -> Cipher:
    """The AES-256-GCM object of a 32-byte key (a :class:`Cipher` is returned as is).

    For callers that keep one per key (a provider's KEKs); use it only through this
    module's functions. Raises ``ValueError`` for a key that is not 32 bytes.
    """
    if not isinstance(key, (bytes, bytearray, memoryview)):
        return key
    if len(key) != KEY_SIZE:
        raise ValueError(f"key must be {KEY_SIZE} bytes, got {len(key)}")
    return AESGCM(bytes(key))


@functools.lru_cache(maxsize=256)
def _framing(key_id: int) -> tuple[bytes, bytes]:
    """The frame header and the associated data's last item for ``key_id``."""
    if not 0 <= key_id <= MAX_KEY_ID:
        raise ValueError(f"key id must be in [0, {MAX_KEY_ID}], got {key_id}")
    return _HEADER.pack(MAGIC, FORMAT_VERSION, key_id), _lp(key_id.to_bytes(4, "big"))


def is_frame(data: bytes) -> bool:
    """Whether ``data`` is long enough and starts like a frame of this format version (not authenticated)."""
    return len(data) >= OVERHEAD and data[:3] == _MARK


def key_id_of(sealed: bytes) -> int:
    """The key id in a frame's header, read without opening it (to choose a key; authenticated only by opening).

    Raises :class:`VaultDecryptError` for anything that is not a frame of this format version.
    """
    if not is_frame(sealed):
        raise VaultDecryptError()
    return int.from_bytes(sealed[3:HEADER_SIZE], "big")


class Sealer:
    """One key (32 bytes, or a :class:`Cipher`) for one purpose: seals frames and opens them.

    ``prefix`` holds context items every frame of this sealer starts with (a subject's
    token for its fields), encoded once; each call adds the rest. Raises ``ValueError``
    when built with a key that is not 32 bytes (a programming error).
    """

    __slots__ = ("_cipher", "_head", "purpose")

    def __init__(self, key: bytes | Cipher, purpose: Purpose, *, prefix: Context = _NO_CONTEXT) -> None:
        self._cipher = cipher(key)
        self._head = purpose.ad_head + prefix
        self.purpose = purpose

    def __repr__(self) -> str:
        return f"Sealer({self.purpose.name!r}, <key hidden>)"

    def seal(self, plaintext: bytes, ctx: Context = _NO_CONTEXT, *, key_id: int) -> bytes:
        """A frame of ``plaintext`` bound to this purpose, the prefix and ``ctx``, and ``key_id``."""
        header, tail = _framing(key_id)
        nonce = os.urandom(NONCE_SIZE)
        return header + nonce + self._cipher.encrypt(nonce, plaintext, self._head + ctx + tail)

    def open(self, sealed: bytes, ctx: Context = _NO_CONTEXT, *, key_id: int | None = None) -> bytes:
        """The plaintext of a frame sealed for this purpose, the prefix and ``ctx`` (and ``key_id`` if given).

        Without ``key_id`` the frame's own key id is taken (it is authenticated as part of
        the associated data). Raises :class:`VaultDecryptError` on any failure.
        """
        if len(sealed) < OVERHEAD or sealed[:3] != _MARK:
            raise VaultDecryptError()
        raw_id = sealed[3:HEADER_SIZE]
        if key_id is not None and int.from_bytes(raw_id, "big") != key_id:
            raise VaultDecryptError()
        try:  # the associated data's last item, LP(key id), is the length 4 and the header's key id bytes
            ad = self._head + ctx + _KEY_ID_LENGTH + raw_id
            return self._cipher.decrypt(sealed[HEADER_SIZE:_PREFIX_SIZE], sealed[_PREFIX_SIZE:], ad)
        except _OPEN_FAILURES:
            raise VaultDecryptError() from None


def seal(key: bytes | Cipher, plaintext: bytes, *, purpose: Purpose, ctx: Context, key_id: int) -> bytes:
    """:meth:`Sealer.seal` with a one-off sealer."""
    return Sealer(key, purpose).seal(plaintext, ctx, key_id=key_id)


def open_sealed(key: bytes | Cipher, sealed: bytes, *, purpose: Purpose, ctx: Context,
                key_id: int | None = None) -> bytes:
    """:meth:`Sealer.open` with a one-off sealer; a key of the wrong size is a failure to open too."""
    try:
        sealer = Sealer(key, purpose)
    except ValueError:
        raise VaultDecryptError() from None
    return sealer.open(sealed, ctx, key_id=key_id)


def derive_key(master: bytes, purpose: Purpose, *, salt: bytes | None = None) -> bytes:
    """A 32-byte key for ``purpose`` from a 32-byte ``master`` (HKDF-SHA-256; ``salt`` per blob)."""
    if len(master) != KEY_SIZE:
        raise ValueError(f"master key must be {KEY_SIZE} bytes, got {len(master)}")
    return _hkdf(master, _lp(b"tarcza/derived-key") + purpose.ad_head, salt)


def _hkdf(master: bytes, info: bytes, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=info).derive(master)


class SubkeyBox:
    """Small secrets sealed under a key derived from a master key (the identity key) for one purpose.

    :meth:`open` also opens what the same use sealed before the recipe (a ``b"v1"`` box,
    see :data:`_LEGACY_BOXES`); the two are told apart by their first two bytes.
    """

    __slots__ = ("_legacy", "_legacy_ad", "_sealer", "key_id")

    def __init__(self, master: bytes, purpose: Purpose, *, key_id: int = 1) -> None:
        info, self._legacy_ad = _LEGACY_BOXES[purpose.label]
        self._sealer = Sealer(derive_key(master, purpose), purpose)
        self._legacy = AESGCM(_hkdf(master, info))
        self.key_id = key_id

    def __repr__(self) -> str:
        return f"SubkeyBox({self._sealer.purpose.name!r}, <key hidden>)"

    def seal(self, plaintext: bytes, *items: str) -> bytes:
        return self._sealer.seal(plaintext, context(*items), key_id=self.key_id)

    def open(self, sealed: bytes, *items: str) -> bytes:
        """The plaintext; :class:`VaultDecryptError` on any failure."""
        try:
            if sealed[:2] != _LEGACY_BOX_MARK:
                return self._sealer.open(sealed, context(*items), key_id=self.key_id)
            # legacy box: b"v1" || nonce || ciphertext || tag
            ad = self._legacy_ad + b"\0".join(item.encode("utf-8") for item in items)
        except UnicodeEncodeError:
            raise VaultDecryptError() from None
        return _legacy_open(self._legacy, sealed[2:], ad)


# ------------------------------------------------------------------------ legacy readers (read only)
#
# What was sealed before the recipe, still opened so existing data stays readable:
#
# - KEK wraps and passphrase keyfiles: ``nonce (12) || ciphertext || tag`` with the caller's
#   associated data as is (:func:`legacy_open_nonce_first`);
# - the identity secret box and stored HTTP answers: ``b"v1" || nonce || ciphertext || tag``
#   under HKDF-SHA-256(identity key, info) with ``prefix || items joined by NUL`` as
#   associated data (:class:`SubkeyBox`);
# - recordings of blob format 1: segments under HKDF-SHA-256(data key, salt, blob info) with
#   the segment index as nonce (:class:`LegacyBlobSegments`).

_LEGACY_BOX_MARK: Final = b"v1"
_LEGACY_BOXES: Final = {
    SECRET_BOX.label: (b"tarcza/identity/totp/v1", b"tarcza-identity-v1|"),
    STORED_ANSWER.label: (b"tarcza/http/idempotency/v1", b"tarcza-http-idempotency-v1|"),
}
_LEGACY_BLOB_INFO: Final = b"tarcza/blob-segment-key/v1"


def _legacy_open(cipher: Cipher, data: bytes, associated_data: bytes) -> bytes:
    if len(data) < NONCE_SIZE + TAG_SIZE:
        raise VaultDecryptError()
    try:
        return cipher.decrypt(data[:NONCE_SIZE], data[NONCE_SIZE:], associated_data)
    except _OPEN_FAILURES:
        raise VaultDecryptError() from None


def legacy_open_nonce_first(key: bytes | Cipher, data: bytes, associated_data: bytes) -> bytes:
    """Open a pre-recipe KEK wrap or keyfile seal: ``nonce || ciphertext || tag``, the AD as given."""
    try:
        aes = cipher(key)
    except ValueError:
        raise VaultDecryptError() from None
    return _legacy_open(aes, data, associated_data)


class LegacyBlobSegments:
    """Opens the segments of a format-1 recording (the nonce is the segment index)."""

    __slots__ = ("_cipher", "_header", "_names")

    def __init__(self, data_key: bytes, salt: bytes, header: bytes, subject: str, blob_id: str) -> None:
        try:
            self._cipher = cipher(_hkdf(data_key, _LEGACY_BLOB_INFO, salt))
            self._names = _lp(subject.encode("utf-8")) + _lp(blob_id.encode("utf-8"))
        except (TypeError, ValueError):  # UnicodeEncodeError is a ValueError
            raise VaultDecryptError() from None
        self._header = header

    def open(self, index: int, last: bool, ciphertext: bytes) -> bytes:
        ad = self._header + self._names + struct.pack(">QB", index, 1 if last else 0)
        try:
            return self._cipher.decrypt(index.to_bytes(NONCE_SIZE, "big"), ciphertext, ad)
        except _OPEN_FAILURES:
            raise VaultDecryptError() from None
