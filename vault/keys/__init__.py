"""Key-encryption keys (KEKs) behind an abstract :class:`KeyProvider` (this package re-exports the public names).

A KEK wraps the per-subject data keys; it never encrypts personal data itself. A
provider holds numbered KEK versions; the highest is the *current* one, which every new
wrap uses, while older versions still unwrap what they wrapped until they are retired.
Each provider also holds a separate 32-byte *index root key* for blind indexes, which
is never a KEK.

Implementations:

- :class:`MemoryKeyProvider`: random keys in memory, for tests.
- :class:`LocalKeyfileProvider`: a JSON keyfile (mode 0600), optionally sealed under a
  passphrase (scrypt, then the sealing recipe). The embedded default.
- :class:`Pkcs11KeyProvider`: KEKs generated and used inside a PKCS#11 token (an HSM;
  tested against SoftHSM2). Key material never leaves the token.

Modules: ``base`` (the contract and the wrapped-key format), ``software`` (memory),
``keyfile``, ``pkcs11`` (and ``token_session``, its shared login). Wire format of a
wrapped key, for every provider: a frame of the sealing recipe (:mod:`vault.aead`,
purpose ``key wrap``, key id = KEK version, the caller's ``aad`` as its context item).
Keys wrapped before the recipe (``nonce || ciphertext || tag`` with ``aad`` as associated
data) still unwrap.

Invariants:

- ``wrap`` always uses the current version and says which one it used.
- ``unwrap`` raises :class:`~vault.errors.KeyProviderError` when the version is unknown,
  retired or the provider is unavailable, and one opaque
  :class:`~vault.errors.VaultDecryptError` for any other failure (wrong ``aad``,
  tampered bytes, wrong key).
- The current version can never be retired; version numbers are never reused (a new
  version is one above the highest one that exists, and the highest one is current).
- No error message and no ``repr`` contains key material, a passphrase or a PIN.
- Version changes of a keyfile are written atomically (temporary file, fsync, rename),
  so a crash leaves either the old or the new file, never a mix.
"""

from __future__ import annotations

from vault.keys.base import INDEX_KEY_SIZE, KEK_SIZE, KeyProvider
from vault.keys.keyfile import KEYFILE_FORMAT, LocalKeyfileProvider
from vault.keys.pkcs11 import Pkcs11KeyProvider
from vault.keys.software import MemoryKeyProvider

__all__ = [
    "INDEX_KEY_SIZE",
    "KEK_SIZE",
    "KEYFILE_FORMAT",
    "KeyProvider",
    "LocalKeyfileProvider",
    "MemoryKeyProvider",
    "Pkcs11KeyProvider",
]
