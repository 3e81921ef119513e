"""Identity's secret box (``identity.secretbox.SecretBox``) on the sealing recipe.

A TOTP seed is a frame of :mod:`vault.aead` for the purpose ``secret box``: key =
HKDF of the identity key for that purpose, key id 1 (the identity key has one version
today), one context item = the owner's user id. Seeds sealed before the recipe (``b"v1" ||
nonce || ciphertext || tag``) still open (:class:`vault.aead.SubkeyBox`); confirming a new
enrolment seals the new seed as a frame.

Identity cannot import the vault, so ``api.runtime.Runtime.secret_box_loader`` wires this
in (docs/adr/0016-one-sealing-recipe.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.settings import Settings
from identity.errors import IdentityKeyError
from identity.secretbox import KEY_SIZE, SecretBox, identity_key_path, read_identity_key
from vault import aead
from vault.errors import VaultDecryptError

__all__ = ["RecipeSecretBox", "box_loader", "load_secret_box"]


class RecipeSecretBox:
    """The recipe's box under a key derived from the identity key; raises IdentityKeyError opaquely."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_SIZE:
            raise IdentityKeyError(f"the identity key must be {KEY_SIZE} bytes, got {len(master_key)}")
        self._box = aead.SubkeyBox(master_key, aead.SECRET_BOX)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def seal(self, plaintext: bytes, *, aad: str) -> bytes:
        return self._box.seal(plaintext, aad)

    def open(self, sealed: bytes, *, aad: str) -> bytes:
        try:
            return self._box.open(sealed, aad)
        except VaultDecryptError:
            raise IdentityKeyError("a sealed identity secret cannot be opened") from None


def load_secret_box(path: Path) -> SecretBox:
    """The box keyed by the identity key file at ``path`` (refused if missing, malformed or not private)."""
    return RecipeSecretBox(read_identity_key(path))


def box_loader(settings: Settings) -> Callable[[], SecretBox]:
    """A loader of the box of ``settings``' identity key, for services that may not need it."""
    path = identity_key_path(settings)
    return lambda: load_secret_box(path)
