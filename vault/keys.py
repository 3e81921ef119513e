"""Key-encryption keys (KEKs) behind an abstract :class:`KeyProvider`.

A KEK wraps the per-subject data keys; it never encrypts personal data itself. A
provider holds numbered KEK versions; the highest is the *current* one, which every new
wrap uses, while older versions still unwrap what they wrapped until they are retired.
Each provider also holds a separate 32-byte *index root key* for blind indexes, which
is never a KEK.

Implementations:

- :class:`MemoryKeyProvider`: random keys in memory, for tests.
- :class:`LocalKeyfileProvider`: a JSON keyfile (mode 0600), optionally sealed under a
  passphrase (scrypt + AES-256-GCM). The embedded default.
- :class:`Pkcs11KeyProvider`: KEKs generated and used inside a PKCS#11 token (an HSM;
  tested against SoftHSM2). Key material never leaves the token.

Wire format of a wrapped key, for every provider: ``nonce (12 bytes) || AES-256-GCM
ciphertext || tag (16 bytes)``, with the caller's ``aad`` as associated data.

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

import base64
import binascii
import contextlib
import errno
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Final, Self, TypeVar

import pkcs11
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pkcs11 import exceptions as p11

from core.files import fsync_directory
from vault.errors import KeyProviderError, VaultDecryptError

__all__ = [
    "INDEX_KEY_SIZE",
    "KEK_SIZE",
    "KEYFILE_FORMAT",
    "KeyProvider",
    "LocalKeyfileProvider",
    "MemoryKeyProvider",
    "Pkcs11KeyProvider",
]

KEK_SIZE: Final = 32
INDEX_KEY_SIZE: Final = 32
KEYFILE_FORMAT: Final = "tarcza-keyfile/v1"

_NONCE_SIZE: Final = 12
_TAG_SIZE: Final = 16
_MAX_KEYFILE_SIZE: Final = 1024 * 1024
_SCRYPT_N: Final = 2**15
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
_SCRYPT_SALT_SIZE: Final = 16
_SCRYPT_MAX_MEMORY: Final = 256 * 1024 * 1024  # bound what a keyfile may ask scrypt for
_INDEX_ROOT_LABEL: Final = b"tarcza-index-root-v1"

_T = TypeVar("_T")


class KeyProvider(ABC):
    """Holds the versioned key-encryption keys and the blind-index root key."""

    name: ClassVar[str]

    @abstractmethod
    def current_version(self) -> int:
        """The KEK version that :meth:`wrap` uses now."""

    @abstractmethod
    def versions(self) -> list[int]:
        """Every KEK version that can still unwrap, ascending."""

    @abstractmethod
    def wrap(self, data_key: bytes, *, aad: bytes) -> tuple[int, bytes]:
        """Wrap ``data_key`` under the current KEK; returns ``(kek_version, wrapped)``."""

    @abstractmethod
    def unwrap(self, kek_version: int, wrapped: bytes, *, aad: bytes) -> bytes:
        """Unwrap what :meth:`wrap` returned.

        Raises :class:`KeyProviderError` if ``kek_version`` is unknown or unavailable,
        :class:`VaultDecryptError` on any other failure.
        """

    @abstractmethod
    def create_version(self) -> int:
        """Create a new KEK version, which becomes current; returns its number."""

    @abstractmethod
    def retire_version(self, version: int) -> None:
        """Destroy an old KEK version. Refuses the current one with KeyProviderError."""

    @abstractmethod
    def index_key(self) -> bytes:
        """The 32-byte root key for blind indexes (never a KEK)."""

    @abstractmethod
    def close(self) -> None:
        """Release what the provider holds (sessions, key references). Idempotent.

        Every other method raises :class:`KeyProviderError` afterwards.
        """

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _refuse_current(version: int, current: int) -> None:
    if version == current:
        raise KeyProviderError(
            f"refusing to retire key-encryption key version {version}: it is the current version",
            kek_version=version,
        )


def _unknown_version(version: int) -> KeyProviderError:
    return KeyProviderError(
        f"key-encryption key version {version} is not available", kek_version=version
    )


def _check_data_key(data_key: bytes) -> None:
    if not data_key:
        raise ValueError("data key must not be empty")


# --------------------------------------------------------------------------- software


class _SoftwareKeyProvider(KeyProvider):
    """KEKs held in process memory; AES-256-GCM wrapping done here."""

    def __init__(self, keks: Mapping[int, bytes], index_key: bytes) -> None:
        if not keks:
            raise KeyProviderError("a key provider needs at least one key-encryption key")
        self._keks: dict[int, bytes] = dict(keks)
        self._index_key = index_key
        self._lock = threading.RLock()
        self._closed = False

    def _open_keks(self) -> dict[int, bytes]:
        if self._closed:
            raise KeyProviderError(f"the {self.name} key provider is closed")
        return self._keks

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._keks = {}
            self._index_key = b""

    def current_version(self) -> int:
        with self._lock:
            return max(self._open_keks())

    def versions(self) -> list[int]:
        with self._lock:
            return sorted(self._open_keks())

    def wrap(self, data_key: bytes, *, aad: bytes) -> tuple[int, bytes]:
        _check_data_key(data_key)
        with self._lock:
            keks = self._open_keks()
            version = max(keks)
            kek = keks[version]
        nonce = os.urandom(_NONCE_SIZE)
        return version, nonce + AESGCM(kek).encrypt(nonce, data_key, aad)

    def unwrap(self, kek_version: int, wrapped: bytes, *, aad: bytes) -> bytes:
        with self._lock:
            kek = self._open_keks().get(kek_version)
        if kek is None:
            raise _unknown_version(kek_version)
        if len(wrapped) < _NONCE_SIZE + _TAG_SIZE:
            raise VaultDecryptError()
        try:
            return AESGCM(kek).decrypt(wrapped[:_NONCE_SIZE], wrapped[_NONCE_SIZE:], aad)
        except (InvalidTag, ValueError, TypeError):
            raise VaultDecryptError() from None

    def create_version(self) -> int:
        with self._lock:
            keks = self._open_keks()
            version = max(keks) + 1
            updated = {**keks, version: os.urandom(KEK_SIZE)}
            self._persist(updated)
            self._keks = updated
            return version

    def retire_version(self, version: int) -> None:
        with self._lock:
            keks = self._open_keks()
            _refuse_current(version, max(keks))
            if version not in keks:
                raise _unknown_version(version)
            updated = {v: k for v, k in keks.items() if v != version}
            self._persist(updated)
            self._keks = updated

    def index_key(self) -> bytes:
        with self._lock:
            self._open_keks()
            return self._index_key

    def _persist(self, keks: Mapping[int, bytes]) -> None:
        """Store ``keks`` durably before they take effect (no-op in memory)."""


class MemoryKeyProvider(_SoftwareKeyProvider):
    """Random keys that live as long as the object. For tests."""

    name: ClassVar[str] = "memory"

    def __init__(self) -> None:
        super().__init__({1: os.urandom(KEK_SIZE)}, os.urandom(INDEX_KEY_SIZE))

    def __repr__(self) -> str:
        return f"MemoryKeyProvider(versions={sorted(self._keks)})"


# --------------------------------------------------------------------------- keyfile


@dataclass(frozen=True)
class _Sealing:
    """The passphrase-derived key that seals a keyfile's key material."""

    salt: bytes
    n: int
    r: int
    p: int
    key: bytes = field(repr=False)

    @classmethod
    def derive(cls, passphrase: str, *, salt: bytes, n: int, r: int, p: int) -> _Sealing:
        kdf = Scrypt(salt=salt, length=32, n=n, r=r, p=p)
        return cls(salt=salt, n=n, r=r, p=p, key=kdf.derive(passphrase.encode("utf-8")))

    @classmethod
    def from_descriptor(cls, descriptor: object, passphrase: str) -> _Sealing:
        if not isinstance(descriptor, dict) or descriptor.get("name") != "scrypt":
            raise _malformed()
        n, r, p = descriptor.get("n"), descriptor.get("r"), descriptor.get("p")
        if not (isinstance(n, int) and isinstance(r, int) and isinstance(p, int)):
            raise _malformed()
        if n < 2 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
            raise _malformed()
        if 128 * n * r > _SCRYPT_MAX_MEMORY:
            raise KeyProviderError("keyfile asks for more scrypt memory than allowed")
        return cls.derive(passphrase, salt=_b64decode(descriptor.get("salt")), n=n, r=r, p=p)

    def descriptor(self) -> dict[str, Any]:
        return {
            "name": "scrypt",
            "salt": _b64encode(self.salt),
            "n": self.n,
            "r": self.r,
            "p": self.p,
        }


def _malformed() -> KeyProviderError:
    return KeyProviderError("keyfile is malformed")


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(value: object) -> bytes:
    if not isinstance(value, str):
        raise _malformed()
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise _malformed() from None


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _encode_keyfile(keks: Mapping[int, bytes], index_key: bytes, sealing: _Sealing | None) -> bytes:
    material = {
        "kek": {str(v): _b64encode(k) for v, k in sorted(keks.items())},
        "index": _b64encode(index_key),
    }
    keys: dict[str, Any]
    if sealing is None:
        kdf = None
        keys = material
    else:
        kdf = sealing.descriptor()
        nonce = os.urandom(_NONCE_SIZE)
        aad = _canonical({"format": KEYFILE_FORMAT, "kdf": kdf})
        sealed = AESGCM(sealing.key).encrypt(nonce, _canonical(material), aad)
        keys = {"sealed": _b64encode(nonce + sealed)}
    document = {"format": KEYFILE_FORMAT, "kdf": kdf, "keys": keys}
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _decode_material(material: object) -> tuple[dict[int, bytes], bytes]:
    if not isinstance(material, dict):
        raise _malformed()
    kek_entries = material.get("kek")
    if not isinstance(kek_entries, dict) or not kek_entries:
        raise _malformed()
    keks: dict[int, bytes] = {}
    for name, encoded in kek_entries.items():
        if not (isinstance(name, str) and name.isascii() and name.isdigit()):
            raise _malformed()
        version = int(name)
        if version < 1 or str(version) != name:
            raise _malformed()
        key = _b64decode(encoded)
        if len(key) != KEK_SIZE:
            raise _malformed()
        keks[version] = key
    index_key = _b64decode(material.get("index"))
    if len(index_key) != INDEX_KEY_SIZE:
        raise _malformed()
    return keks, index_key


def _decode_keyfile(
    raw: bytes, passphrase: str | None
) -> tuple[dict[int, bytes], bytes, _Sealing | None]:
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _malformed() from None
    if not isinstance(document, dict):
        raise _malformed()
    if document.get("format") != KEYFILE_FORMAT:
        raise KeyProviderError(f"keyfile format is not {KEYFILE_FORMAT}")
    kdf, keys = document.get("kdf"), document.get("keys")
    if not isinstance(keys, dict):
        raise _malformed()
    if kdf is None:
        if passphrase is not None:
            raise KeyProviderError(
                "keyfile is not passphrase-protected, but a passphrase was given"
            )
        keks, index_key = _decode_material(keys)
        return keks, index_key, None
    if passphrase is None:
        raise KeyProviderError("keyfile is passphrase-protected; a passphrase is required")
    sealing = _Sealing.from_descriptor(kdf, passphrase)
    sealed = _b64decode(keys.get("sealed"))
    aad = _canonical({"format": KEYFILE_FORMAT, "kdf": sealing.descriptor()})
    try:
        plain = AESGCM(sealing.key).decrypt(sealed[:_NONCE_SIZE], sealed[_NONCE_SIZE:], aad)
        material = json.loads(plain.decode("utf-8"))
    except (InvalidTag, ValueError):
        raise KeyProviderError("wrong passphrase or corrupted keyfile") from None
    keks, index_key = _decode_material(material)
    return keks, index_key, sealing


def _mode_text(mode: int) -> str:
    return f"{stat.S_IMODE(mode):04o}"


def _read_keyfile(path: Path) -> tuple[bytes, int]:
    """The keyfile's bytes and mode, refusing anything but a private regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise KeyProviderError(f"keyfile {path} does not exist", path=str(path)) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise KeyProviderError(
                f"keyfile {path} is a symbolic link; refusing it", path=str(path)
            ) from None
        raise KeyProviderError(
            f"cannot open keyfile {path}: {exc.strerror}", path=str(path)
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyProviderError(f"keyfile {path} is not a regular file", path=str(path))
        if stat.S_IMODE(info.st_mode) & ~0o600:
            mode = _mode_text(info.st_mode)
            raise KeyProviderError(
                f"keyfile {path} has mode {mode}; it must be 0600 or narrower",
                path=str(path),
                mode=mode,
            )
        if info.st_size > _MAX_KEYFILE_SIZE:
            raise _malformed()
        chunks: list[bytes] = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks), stat.S_IMODE(info.st_mode)
    finally:
        os.close(fd)


def _write_temporary(final: Path, data: bytes, mode: int) -> Path:
    """Write ``data`` to a fresh file (O_EXCL, ``mode``) beside ``final``, fsynced."""
    while True:
        temporary = final.with_name(f".{final.name}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(
                temporary,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                mode,
            )
        except FileExistsError:
            continue
        break
    try:
        os.fchmod(fd, mode)  # the umask must not decide
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        raise
    os.close(fd)
    return temporary


def _create_exclusively(path: Path, data: bytes) -> None:
    """Atomically create ``path`` with ``data`` and mode 0600; never overwrite."""
    temporary = _write_temporary(path, data, 0o600)
    try:
        try:
            os.link(temporary, path)  # atomic, and fails if path exists
        except FileExistsError:
            raise KeyProviderError(
                f"keyfile {path} already exists; refusing to overwrite it", path=str(path)
            ) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # A filesystem without hard links: check, then rename (a narrow race remains).
            if os.path.lexists(path):
                raise KeyProviderError(
                    f"keyfile {path} already exists; refusing to overwrite it", path=str(path)
                ) from None
            os.rename(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(path.parent)


def _replace_atomically(path: Path, data: bytes, mode: int) -> None:
    temporary = _write_temporary(path, data, mode)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


class LocalKeyfileProvider(_SoftwareKeyProvider):
    """KEKs and the index root key in a private JSON keyfile.

    Format (``tarcza-keyfile/v1``)::

        {"format": "tarcza-keyfile/v1",
         "kdf": null,
         "keys": {"kek": {"1": "<base64 32 bytes>", ...}, "index": "<base64 32 bytes>"}}

    With a passphrase, ``kdf`` is ``{"name": "scrypt", "salt": "<base64>", "n": 32768,
    "r": 8, "p": 1}`` and ``keys`` is ``{"sealed": "<base64 nonce || ciphertext>"}``:
    the object above sealed with AES-256-GCM under the scrypt-derived key, with the
    canonical JSON of ``{"format", "kdf"}`` as associated data.

    A rotation (:meth:`create_version`, :meth:`retire_version`) rewrites the file
    atomically with the same permissions. It refuses to run if the file changed on disk
    since this object read or wrote it (another process rotated): reopen it first.
    Rotations are meant to be run by one operator at a time.
    """

    name: ClassVar[str] = "local"

    def __init__(
        self,
        path: Path,
        keks: Mapping[int, bytes],
        index_key: bytes,
        sealing: _Sealing | None,
        fingerprint: bytes,
    ) -> None:
        """Use :meth:`create` or :meth:`open`; this constructor trusts its arguments."""
        super().__init__(keks, index_key)
        self.path = path
        self._sealing = sealing
        self._fingerprint = fingerprint

    @classmethod
    def create(cls, path: Path | str, passphrase: str | None = None) -> LocalKeyfileProvider:
        """Create a new keyfile (mode 0600) with KEK version 1 and an index root key."""
        path = Path(path)
        if passphrase is not None and not passphrase:
            raise KeyProviderError("an empty passphrase is not accepted")
        sealing = None
        if passphrase is not None:
            sealing = _Sealing.derive(
                passphrase,
                salt=os.urandom(_SCRYPT_SALT_SIZE),
                n=_SCRYPT_N,
                r=_SCRYPT_R,
                p=_SCRYPT_P,
            )
        keks = {1: os.urandom(KEK_SIZE)}
        index_key = os.urandom(INDEX_KEY_SIZE)
        data = _encode_keyfile(keks, index_key, sealing)
        try:
            _create_exclusively(path, data)
        except OSError as exc:
            raise KeyProviderError(
                f"cannot create keyfile {path}: {exc.strerror}", path=str(path)
            ) from None
        return cls(path, keks, index_key, sealing, hashlib.sha256(data).digest())

    @classmethod
    def open(cls, path: Path | str, passphrase: str | None = None) -> LocalKeyfileProvider:
        """Open an existing keyfile, refusing one readable or writable by others."""
        path = Path(path)
        raw, _ = _read_keyfile(path)
        keks, index_key, sealing = _decode_keyfile(raw, passphrase)
        return cls(path, keks, index_key, sealing, hashlib.sha256(raw).digest())

    def _persist(self, keks: Mapping[int, bytes]) -> None:
        raw, mode = _read_keyfile(self.path)
        if not hmac.compare_digest(hashlib.sha256(raw).digest(), self._fingerprint):
            raise KeyProviderError(
                f"keyfile {self.path} changed on disk since it was opened; reopen it",
                path=str(self.path),
            )
        data = _encode_keyfile(keks, self._index_key, self._sealing)
        try:
            _replace_atomically(self.path, data, mode)
        except OSError as exc:
            raise KeyProviderError(
                f"cannot rewrite keyfile {self.path}: {exc.strerror}", path=str(self.path)
            ) from None
        self._fingerprint = hashlib.sha256(data).digest()

    def __repr__(self) -> str:
        sealed = self._sealing is not None
        versions = sorted(self._keks)
        path = str(self.path)
        return f"LocalKeyfileProvider(path={path!r}, sealed={sealed}, versions={versions})"


# --------------------------------------------------------------------------- PKCS#11

# Errors after which the shared session is presumed dead and is reopened once.
_SESSION_LOST: Final[tuple[type[p11.PKCS11Error], ...]] = (
    p11.SessionClosed,
    p11.SessionHandleInvalid,
    p11.DeviceRemoved,
    p11.TokenNotPresent,
    p11.TokenNotRecognised,
    p11.UserNotLoggedIn,
)


class _SharedTokenSession:
    """One logged-in read-write session per (module, token) in this process.

    PKCS#11 login state belongs to the application, not to a session: a second
    ``C_Login`` fails and any ``C_Logout`` logs every session out. So all providers for
    the same token share one session, used under one lock, and the last to close it
    logs out.
    """

    def __init__(self, module_path: str, token_label: str) -> None:
        self.module_path = module_path
        self.token_label = token_label
        self.lock = threading.RLock()
        self.users = 0
        self._session: pkcs11.Session | None = None
        self._pin_digest: bytes | None = None

    def session(self, pin: str) -> pkcs11.Session:
        """The open session, opening (and logging in with ``pin``) if needed. Hold ``lock``."""
        digest = hashlib.sha256(pin.encode("utf-8")).digest()
        if self._session is not None:
            if self._pin_digest is None or not hmac.compare_digest(digest, self._pin_digest):
                raise KeyProviderError(f"wrong PIN for PKCS#11 token {self.token_label!r}")
            return self._session
        label = self.token_label
        try:
            library = pkcs11.lib(self.module_path)
            token = library.get_token(token_label=label)
            self._session = token.open(rw=True, user_pin=pin)
        except p11.NoSuchToken:
            raise KeyProviderError(f"no PKCS#11 token labelled {label!r}") from None
        except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
            raise KeyProviderError(f"wrong PIN for PKCS#11 token {label!r}") from None
        except p11.PinLocked:
            raise KeyProviderError(f"the PIN of PKCS#11 token {label!r} is locked") from None
        except (p11.PKCS11Error, OSError) as exc:
            raise KeyProviderError(
                f"cannot open a session on PKCS#11 token {label!r} "
                f"({type(exc).__name__}) with module {self.module_path}"
            ) from None
        self._pin_digest = digest
        return self._session

    def drop(self) -> None:
        """Forget the session (closing it if possible). Hold ``lock``."""
        session, self._session, self._pin_digest = self._session, None, None
        if session is not None:
            with contextlib.suppress(p11.PKCS11Error):
                session.close()


_SHARED_SESSIONS: dict[tuple[str, str], _SharedTokenSession] = {}
_SHARED_SESSIONS_LOCK = threading.Lock()


class Pkcs11KeyProvider(KeyProvider):
    """KEKs that live and work inside a PKCS#11 token.

    Each KEK version is an AES-256 secret key generated in the token (``CKA_TOKEN``,
    ``CKA_PRIVATE``, ``CKA_SENSITIVE`` true, ``CKA_EXTRACTABLE`` false, usable only to
    encrypt and decrypt) labelled ``f"{prefix}-v{n}"``. The index root key comes from an
    HMAC (generic secret) key in the token labelled ``f"{prefix}-index"``, also
    sensitive and not extractable: ``index_key()`` is the token-side
    HMAC-SHA-256 of ``b"tarcza-index-root-v1"``. Only that derived value leaves the
    token, never a key object's value.

    Mechanism: wrap and unwrap are ``CKM_AES_GCM`` ``C_Encrypt``/``C_Decrypt`` inside the
    token, with a 96-bit random nonce from the host, the caller's ``aad`` in
    ``CK_GCM_PARAMS`` and a 128-bit tag. It was chosen over ``CKM_AES_KEY_WRAP_PAD``
    plus an HMAC because it binds ``aad`` natively, gives the same wire format as the
    software providers (``nonce || ciphertext || tag``), and works with SoftHSM2 2.6 and
    python-pkcs11. The data key is handled as data (``C_Encrypt``), not as a token key
    object, since data keys are used by the host anyway. SoftHSM2 reports a bad tag as
    ``CKR_GENERAL_ERROR``, so every token failure during a decryption that is not a
    lost session becomes :class:`VaultDecryptError`.

    With ``bootstrap=True`` (the default) a token without KEK version 1 or without the
    index key gets them generated on first use; with ``bootstrap=False`` that is a
    :class:`KeyProviderError`, so a misconfigured label prefix cannot silently start
    a new key hierarchy.

    Sessions: every provider for the same module and token in this process shares one
    logged-in session under one lock (see ``_SharedTokenSession``); a session that was
    lost (token removed, session closed) is reopened once before an error is raised.
    """

    name: ClassVar[str] = "pkcs11"

    def __init__(
        self,
        module_path: str,
        token_label: str,
        pin: str,
        key_label_prefix: str = "tarcza-kek",
        *,
        bootstrap: bool = True,
    ) -> None:
        if not key_label_prefix:
            raise ValueError("key_label_prefix must not be empty")
        self.module_path = os.path.realpath(module_path)  # one library handle per file
        self.token_label = token_label
        self.key_label_prefix = key_label_prefix
        self._pin = pin
        self._version_label = re.compile(rf"{re.escape(key_label_prefix)}-v([1-9][0-9]{{0,8}})")
        self._index_label = f"{key_label_prefix}-index"
        self._index_key: bytes | None = None
        self._closed = False
        key = (self.module_path, token_label)
        with _SHARED_SESSIONS_LOCK:
            shared = _SHARED_SESSIONS.get(key)
            if shared is None:
                shared = _SHARED_SESSIONS[key] = _SharedTokenSession(self.module_path, token_label)
            shared.users += 1
        self._shared = shared
        try:
            self._call(lambda session: self._prepare(session, bootstrap=bootstrap))
        except BaseException:
            self.close()
            raise

    # -- session handling

    def _call(self, operation: Callable[[pkcs11.Session], _T]) -> _T:
        """Run ``operation`` on the shared session under its lock; reopen a lost session once."""
        if self._closed:
            raise KeyProviderError("the PKCS#11 key provider is closed")
        with self._shared.lock:
            for attempt in (1, 2):
                session = self._shared.session(self._pin)
                try:
                    return operation(session)
                except _SESSION_LOST:
                    self._shared.drop()
                    if attempt == 2:
                        raise KeyProviderError(
                            f"lost the session on PKCS#11 token {self.token_label!r}"
                        ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Give up this provider's share of the token session; the last one logs out."""
        if self._closed:
            return
        self._closed = True
        with _SHARED_SESSIONS_LOCK:
            self._shared.users -= 1
            last = self._shared.users == 0
            if last:
                _SHARED_SESSIONS.pop((self._shared.module_path, self._shared.token_label), None)
        if last:
            with self._shared.lock:
                self._shared.drop()

    # -- token objects

    def _prepare(self, session: pkcs11.Session, *, bootstrap: bool) -> None:
        if not self._list_versions(session):
            if not bootstrap:
                raise KeyProviderError(
                    f"no key-encryption key labelled {self.key_label_prefix}-v<n> "
                    f"on PKCS#11 token {self.token_label!r}"
                )
            self._generate_kek(session, 1)
        if not list(self._find(session, pkcs11.KeyType.GENERIC_SECRET, self._index_label)):
            if not bootstrap:
                raise KeyProviderError(
                    f"no index key labelled {self._index_label} "
                    f"on PKCS#11 token {self.token_label!r}"
                )
            self._generate(
                session,
                pkcs11.KeyType.GENERIC_SECRET,
                self._index_label,
                pkcs11.MechanismFlag.SIGN | pkcs11.MechanismFlag.VERIFY,
            )

    @staticmethod
    def _find(
        session: pkcs11.Session, key_type: pkcs11.KeyType, label: str | None = None
    ) -> Iterator[pkcs11.Object]:
        attrs: dict[pkcs11.Attribute, Any] = {
            pkcs11.Attribute.CLASS: pkcs11.ObjectClass.SECRET_KEY,
            pkcs11.Attribute.KEY_TYPE: key_type,
        }
        if label is not None:
            attrs[pkcs11.Attribute.LABEL] = label
        # Materialise: a search must end before the session runs anything else.
        return iter(list(session.get_objects(attrs)))

    def _list_versions(self, session: pkcs11.Session) -> list[int]:
        found: set[int] = set()
        for obj in self._find(session, pkcs11.KeyType.AES):
            match = self._version_label.fullmatch(str(obj[pkcs11.Attribute.LABEL]))
            if match:
                found.add(int(match.group(1)))
        return sorted(found)

    def _current(self, session: pkcs11.Session) -> int:
        versions = self._list_versions(session)
        if not versions:
            raise KeyProviderError(f"no key-encryption key on PKCS#11 token {self.token_label!r}")
        return versions[-1]

    def _single(
        self, session: pkcs11.Session, key_type: pkcs11.KeyType, label: str
    ) -> pkcs11.Object:
        matches = list(self._find(session, key_type, label))
        if len(matches) > 1:
            raise KeyProviderError(
                f"{len(matches)} keys on PKCS#11 token {self.token_label!r} carry label {label!r}"
            )
        if not matches:
            raise KeyProviderError(
                f"no key labelled {label!r} on PKCS#11 token {self.token_label!r}"
            )
        return matches[0]

    def _kek(self, session: pkcs11.Session, version: int) -> pkcs11.Object:
        matches = list(self._find(session, pkcs11.KeyType.AES, self._kek_label(version)))
        if not matches:
            raise _unknown_version(version)
        if len(matches) > 1:
            raise KeyProviderError(
                f"key-encryption key version {version} is ambiguous on PKCS#11 token "
                f"{self.token_label!r}: {len(matches)} keys carry its label",
                kek_version=version,
            )
        return matches[0]

    def _kek_label(self, version: int) -> str:
        return f"{self.key_label_prefix}-v{version}"

    def _generate(
        self,
        session: pkcs11.Session,
        key_type: pkcs11.KeyType,
        label: str,
        capabilities: pkcs11.MechanismFlag,
    ) -> None:
        try:
            session.generate_key(
                key_type,
                256,
                label=label,
                store=True,
                capabilities=capabilities,
                template={
                    pkcs11.Attribute.PRIVATE: True,
                    pkcs11.Attribute.SENSITIVE: True,
                    pkcs11.Attribute.EXTRACTABLE: False,
                },
            )
        except _SESSION_LOST:
            raise
        except p11.PKCS11Error as exc:
            raise KeyProviderError(
                f"cannot generate key {label!r} on PKCS#11 token {self.token_label!r} "
                f"({type(exc).__name__})"
            ) from None

    def _generate_kek(self, session: pkcs11.Session, version: int) -> None:
        self._generate(
            session,
            pkcs11.KeyType.AES,
            self._kek_label(version),
            pkcs11.MechanismFlag.ENCRYPT | pkcs11.MechanismFlag.DECRYPT,
        )

    # -- KeyProvider

    def current_version(self) -> int:
        return self._call(self._current)

    def versions(self) -> list[int]:
        return self._call(self._list_versions)

    def wrap(self, data_key: bytes, *, aad: bytes) -> tuple[int, bytes]:
        _check_data_key(data_key)
        nonce = os.urandom(_NONCE_SIZE)
        params = pkcs11.GCMParams(nonce, aad)

        def operation(session: pkcs11.Session) -> tuple[int, bytes]:
            version = self._current(session)
            kek = self._kek(session, version)
            if not isinstance(kek, pkcs11.EncryptMixin):
                raise KeyProviderError(f"KEK version {version} cannot encrypt", kek_version=version)
            try:
                sealed = kek.encrypt(
                    data_key, mechanism=pkcs11.Mechanism.AES_GCM, mechanism_param=params
                )
            except _SESSION_LOST:
                raise
            except p11.PKCS11Error as exc:
                raise KeyProviderError(
                    f"PKCS#11 token {self.token_label!r} failed to wrap ({type(exc).__name__})"
                ) from None
            if not isinstance(sealed, bytes):  # only iterator input yields an iterator
                raise KeyProviderError("PKCS#11 wrap returned an unexpected type")
            return version, nonce + sealed

        return self._call(operation)

    def unwrap(self, kek_version: int, wrapped: bytes, *, aad: bytes) -> bytes:
        def operation(session: pkcs11.Session) -> bytes:
            kek = self._kek(session, kek_version)
            if len(wrapped) < _NONCE_SIZE + _TAG_SIZE or not isinstance(kek, pkcs11.DecryptMixin):
                raise VaultDecryptError()
            params = pkcs11.GCMParams(wrapped[:_NONCE_SIZE], aad)
            try:
                plain = kek.decrypt(
                    wrapped[_NONCE_SIZE:],
                    mechanism=pkcs11.Mechanism.AES_GCM,
                    mechanism_param=params,
                )
            except _SESSION_LOST:
                raise
            except p11.PKCS11Error:
                raise VaultDecryptError() from None
            if not isinstance(plain, bytes):
                raise VaultDecryptError()
            return plain

        return self._call(operation)

    def create_version(self) -> int:
        def operation(session: pkcs11.Session) -> int:
            version = self._current(session) + 1
            self._generate_kek(session, version)
            return version

        return self._call(operation)

    def retire_version(self, version: int) -> None:
        def operation(session: pkcs11.Session) -> None:
            _refuse_current(version, self._current(session))
            kek = self._kek(session, version)
            try:
                kek.destroy()
            except _SESSION_LOST:
                raise
            except p11.PKCS11Error as exc:
                raise KeyProviderError(
                    f"cannot destroy key-encryption key version {version} ({type(exc).__name__})",
                    kek_version=version,
                ) from None

        self._call(operation)

    def index_key(self) -> bytes:
        if self._index_key is not None:
            return self._index_key

        def operation(session: pkcs11.Session) -> bytes:
            key = self._single(session, pkcs11.KeyType.GENERIC_SECRET, self._index_label)
            if not isinstance(key, pkcs11.SignMixin):
                raise KeyProviderError(f"index key {self._index_label!r} cannot sign")
            try:
                derived = key.sign(_INDEX_ROOT_LABEL, mechanism=pkcs11.Mechanism.SHA256_HMAC)
            except _SESSION_LOST:
                raise
            except p11.PKCS11Error as exc:
                raise KeyProviderError(
                    f"cannot derive the index root key ({type(exc).__name__})"
                ) from None
            if len(derived) != INDEX_KEY_SIZE:
                raise KeyProviderError("the token's HMAC returned an unexpected length")
            return derived

        self._index_key = self._call(operation)
        return self._index_key

    def __repr__(self) -> str:
        return (
            f"Pkcs11KeyProvider(module_path={self.module_path!r}, "
            f"token_label={self.token_label!r}, key_label_prefix={self.key_label_prefix!r})"
        )
