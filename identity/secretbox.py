"""Sealing of identity's own secrets (TOTP seeds) under a key from the data directory.

``data_dir/keys/identity.key`` holds 32 random bytes (base64, mode 0600), created by
``tarcza init``. The sealing key is derived from it with HKDF-SHA256 (info
``tarcza/identity/totp/v1``), so the file can later serve other purposes under other
``info`` strings. Format of a sealed value: ``b"v1" || nonce (12) || AES-256-GCM
ciphertext || tag (16)``, with ``b"tarcza-identity-v1|" + aad`` as associated data (the
user id), so a sealed secret copied to another user's row does not open.

TOTP seeds are not debtors' personal data, and identity sits below vault in the import
order, so this small box lives here rather than in vault/ (docs/adr/0005-authorisation.md).
Invariant: one opaque :class:`IdentityKeyError` for any failure to open; no key in a repr.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.files import create_private_file, read_private_file
from core.settings import Settings
from identity.errors import IdentityKeyError

KEY_SIZE: Final = 32
VERSION: Final = b"v1"
KEY_FILE_TAG: Final = "tarcza-identity-key/v1:"
_NONCE: Final = 12
_INFO: Final = b"tarcza/identity/totp/v1"
_AAD_PREFIX: Final = b"tarcza-identity-v1|"


def identity_key_path(settings: Settings) -> Path:
    return settings.data_dir / "keys" / "identity.key"


class SecretBox:
    """AES-256-GCM under a key derived from the identity key."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_SIZE:
            raise IdentityKeyError(f"the identity key must be {KEY_SIZE} bytes, got {len(master_key)}")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(master_key)
        self._aead = AESGCM(derived)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def seal(self, plaintext: bytes, *, aad: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext, _AAD_PREFIX + aad.encode())

    def open(self, sealed: bytes, *, aad: str) -> bytes:
        if sealed[:2] != VERSION or len(sealed) < 2 + _NONCE + 16:
            raise IdentityKeyError("a sealed identity secret cannot be opened")
        try:
            return self._aead.decrypt(sealed[2:2 + _NONCE], sealed[2 + _NONCE:], _AAD_PREFIX + aad.encode())
        except InvalidTag:
            raise IdentityKeyError("a sealed identity secret cannot be opened") from None


def create_identity_key(path: Path) -> bool:
    """Create the key file (0600) if it is missing; True if created. Never overwrites."""
    return create_private_file(path, KEY_FILE_TAG + base64.b64encode(secrets.token_bytes(KEY_SIZE)).decode() + "\n")


def load_secret_box(path: Path) -> SecretBox:
    """Read the identity key; refuse a missing file, one readable by others, or a malformed one."""
    text = read_private_file(path, "identity key", IdentityKeyError)
    if not text.startswith(KEY_FILE_TAG):
        raise IdentityKeyError(f"identity key {path} is not a {KEY_FILE_TAG[:-1]} file")
    try:
        key = base64.b64decode(text[len(KEY_FILE_TAG):], validate=True)
    except (binascii.Error, ValueError):
        raise IdentityKeyError(f"identity key {path} is not valid base64") from None
    return SecretBox(key)


def box_loader(settings: Settings) -> Callable[[], SecretBox]:
    """A loader of the identity key of ``settings``, for services that may not need it."""
    path = identity_key_path(settings)
    return lambda: load_secret_box(path)
