"""The sealed box identity keeps its own secrets in (TOTP seeds), and the identity key it uses.

``data_dir/keys/identity.key`` holds 32 random bytes (base64 after a tag, mode 0600),
created by ``tarcza init``. Identity sits below the vault in the import order, so it does
not seal anything itself: it states what it needs, :class:`SecretBox`, and the process
wiring (``api.runtime.Runtime.secret_box_loader``) hands it the vault's implementation,
:class:`vault.secretbox.RecipeSecretBox`: the sealing recipe (``vault/aead.py``, purpose
``secret box``) under a key derived from the identity key, bound to the owner (the user
id), so a sealed secret copied to another user's row does not open
(docs/adr/0016-one-sealing-recipe.md).

Invariants: a box fails with one opaque :class:`IdentityKeyError` for any failure to
open; no key in a repr; the key file is refused if missing, readable by others or malformed.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from pathlib import Path
from typing import Final, Protocol

from core.files import create_private_file, read_private_file
from core.settings import Settings
from identity.errors import IdentityKeyError

KEY_SIZE: Final = 32
KEY_FILE_TAG: Final = "tarcza-identity-key/v1:"


class SecretBox(Protocol):
    """Seals small secrets of identity (TOTP seeds) for one owner."""

    def seal(self, plaintext: bytes, *, aad: str) -> bytes:
        """``plaintext`` sealed for the owner ``aad`` (a user id)."""
        ...

    def open(self, sealed: bytes, *, aad: str) -> bytes:
        """What :meth:`seal` sealed for ``aad``; :class:`IdentityKeyError` on any failure."""
        ...


def identity_key_path(settings: Settings) -> Path:
    return settings.data_dir / "keys" / "identity.key"


def create_identity_key(path: Path) -> bool:
    """Create the key file (0600) if it is missing; True if created. Never overwrites."""
    return create_private_file(path, KEY_FILE_TAG + base64.b64encode(secrets.token_bytes(KEY_SIZE)).decode() + "\n")


def read_identity_key(path: Path) -> bytes:
    """The identity key; refuse a missing file, one readable by others, or a malformed one."""
    text = read_private_file(path, "identity key", IdentityKeyError)
    if not text.startswith(KEY_FILE_TAG):
        raise IdentityKeyError(f"identity key {path} is not a {KEY_FILE_TAG[:-1]} file")
    try:
        key = base64.b64decode(text[len(KEY_FILE_TAG):], validate=True)
    except (binascii.Error, ValueError):
        raise IdentityKeyError(f"identity key {path} is not valid base64") from None
    if len(key) != KEY_SIZE:
        raise IdentityKeyError(f"the identity key must be {KEY_SIZE} bytes, got {len(key)}")
    return key
