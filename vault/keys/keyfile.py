"""The local keyfile: KEKs and the index root key in a private JSON file, optionally passphrase-sealed."""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from core.files import fsync_directory
from vault import aead
from vault.errors import KeyProviderError, VaultDecryptError
from vault.keys.base import INDEX_KEY_SIZE, KEK_SIZE
from vault.keys.software import SoftwareKeyProvider

KEYFILE_FORMAT: Final = "tarcza-keyfile/v2"
"""Written by this code: the sealed key material is a frame of the sealing recipe."""
LEGACY_KEYFILE_FORMAT: Final = "tarcza-keyfile/v1"
"""Read only: the sealed key material is ``nonce || ciphertext || tag`` (before the recipe)."""
_PASSPHRASE_KEY_ID: Final = 1  # the passphrase-derived key has no versions; its frames say 1

_MAX_KEYFILE_SIZE: Final = 1024 * 1024
_SCRYPT_N: Final = 2**15
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
_SCRYPT_SALT_SIZE: Final = 16
_SCRYPT_MAX_MEMORY: Final = 256 * 1024 * 1024  # bound what a keyfile may ask scrypt for


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
        header = aead.context(_canonical({"format": KEYFILE_FORMAT, "kdf": kdf}))
        sealed = aead.seal(sealing.key, _canonical(material), purpose=aead.KEYFILE, ctx=header,
                           key_id=_PASSPHRASE_KEY_ID)
        keys = {"sealed": _b64encode(sealed)}
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
    keyfile_format = document.get("format")
    if keyfile_format not in (KEYFILE_FORMAT, LEGACY_KEYFILE_FORMAT):
        raise KeyProviderError(f"keyfile format is not {KEYFILE_FORMAT} (nor the older {LEGACY_KEYFILE_FORMAT})")
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
    header = _canonical({"format": keyfile_format, "kdf": sealing.descriptor()})
    try:
        if keyfile_format == LEGACY_KEYFILE_FORMAT:
            plain = aead.legacy_open_nonce_first(sealing.key, sealed, header)
        else:
            plain = aead.open_sealed(sealing.key, sealed, purpose=aead.KEYFILE, ctx=aead.context(header),
                                     key_id=_PASSPHRASE_KEY_ID)
        material = json.loads(plain.decode("utf-8"))
    except (VaultDecryptError, ValueError):
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


class LocalKeyfileProvider(SoftwareKeyProvider):
    """KEKs and the index root key in a private JSON keyfile.

    Format (``tarcza-keyfile/v2``)::

        {"format": "tarcza-keyfile/v2",
         "kdf": null,
         "keys": {"kek": {"1": "<base64 32 bytes>", ...}, "index": "<base64 32 bytes>"}}

    With a passphrase, ``kdf`` is ``{"name": "scrypt", "salt": "<base64>", "n": 32768,
    "r": 8, "p": 1}`` and ``keys`` is ``{"sealed": "<base64 frame>"}``: the object above
    sealed under the scrypt-derived key as a frame of the sealing recipe (:mod:`vault.aead`,
    purpose ``keyfile``, key id 1), whose one context item is the canonical JSON of
    ``{"format", "kdf"}``. A ``tarcza-keyfile/v1`` file (before the recipe: ``sealed`` is
    ``nonce || ciphertext || tag`` with that JSON as associated data) still opens; the
    first rotation rewrites it as v2.

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
