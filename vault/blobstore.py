"""Where sealed blobs (recordings) are kept: a small :class:`BlobStore` interface, a directory, memory.

A store holds only ciphertext and knows nothing of keys (the format is :mod:`vault.blobs`).

Invariants:

- A blob id is a plain file name (1-128 of ``[A-Za-z0-9._-]``, alphanumeric first).
- :class:`LocalBlobStore` never shows a half-written blob under its final name: a blob
  is written to a temporary name, fsynced, then linked into place, and an existing
  blob is never overwritten.
"""

from __future__ import annotations

import errno
import io
import os
import re
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO, Final

from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.files import fsync_directory
from vault.errors import VaultError

__all__ = [
    "BlobExistsError",
    "BlobNotFoundError",
    "BlobStore",
    "InvalidBlobIdError",
    "LocalBlobStore",
    "MemoryBlobStore",
    "validate_blob_id",
]

_BLOB_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class BlobNotFoundError(NotFoundError, VaultError):
    """No blob has this id (or it was deleted)."""

    code = "blob-not-found"
    title = "Blob not found"


class BlobExistsError(ConflictError, VaultError):
    """A blob with this id already exists; blobs are never overwritten."""

    code = "blob-exists"
    title = "Blob already exists"


class InvalidBlobIdError(InvalidInputError, VaultError):
    """A blob id that is not a plain file name (letters, digits, ``.``, ``_``, ``-``)."""

    code = "invalid-blob-id"
    title = "Invalid blob id"


def validate_blob_id(blob_id: str) -> str:
    """Return ``blob_id`` if it is a safe name: 1-128 of ``[A-Za-z0-9._-]``, alphanumeric first."""
    if not isinstance(blob_id, str) or not _BLOB_ID.fullmatch(blob_id):
        shown = repr(blob_id)[:80]
        raise InvalidBlobIdError(f"invalid blob id {shown}")
    return blob_id



class BlobStore(ABC):
    """Where sealed blobs are kept. Stores only ciphertext; knows nothing of keys."""

    @abstractmethod
    def open_write(self, blob_id: str) -> AbstractContextManager[BinaryIO]:
        """A writable stream for a new blob.

        The blob exists under ``blob_id`` only once the ``with`` block exits without an
        exception. Raises :class:`BlobExistsError` if the id is taken.
        """

    @abstractmethod
    def open_read(self, blob_id: str) -> BinaryIO:
        """A readable, seekable stream of the blob. Raises :class:`BlobNotFoundError`."""

    @abstractmethod
    def delete(self, blob_id: str) -> None:
        """Delete the blob; deleting a missing blob is not an error."""

    @abstractmethod
    def exists(self, blob_id: str) -> bool:
        """Whether a blob with this id exists."""


class LocalBlobStore(BlobStore):
    """Blobs as files (mode 0600) in one directory (created with mode 0700)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            if not self.root.is_dir():
                raise NotADirectoryError(
                    errno.ENOTDIR, "blob store root is not a directory", str(self.root)
                ) from None
        else:
            os.chmod(self.root, 0o700)  # the umask must not decide

    def _path(self, blob_id: str) -> Path:
        return self.root / validate_blob_id(blob_id)

    @contextmanager
    def _open_write(self, blob_id: str) -> Iterator[BinaryIO]:
        final = self._path(blob_id)
        if os.path.lexists(final):
            raise BlobExistsError(f"blob {blob_id} already exists", blob_id=blob_id)
        temporary = self.root / f".{blob_id}.{secrets.token_hex(8)}.tmp"
        fd = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as stream:
                yield stream
                stream.flush()
                os.fsync(stream.fileno())
            self._link_into_place(temporary, final, blob_id)
        finally:
            temporary.unlink(missing_ok=True)
        fsync_directory(self.root)

    @staticmethod
    def _link_into_place(temporary: Path, final: Path, blob_id: str) -> None:
        try:
            os.link(temporary, final)  # atomic, and fails if the blob exists
        except FileExistsError:
            raise BlobExistsError(f"blob {blob_id} already exists", blob_id=blob_id) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # A filesystem without hard links: check, then rename (a narrow race remains).
            if os.path.lexists(final):
                raise BlobExistsError(f"blob {blob_id} already exists", blob_id=blob_id) from None
            os.rename(temporary, final)

    def open_write(self, blob_id: str) -> AbstractContextManager[BinaryIO]:
        validate_blob_id(blob_id)
        return self._open_write(blob_id)

    def open_read(self, blob_id: str) -> BinaryIO:
        path = self._path(blob_id)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise BlobNotFoundError(f"no blob {blob_id}", blob_id=blob_id) from None
        return os.fdopen(fd, "rb")

    def delete(self, blob_id: str) -> None:
        self._path(blob_id).unlink(missing_ok=True)
        fsync_directory(self.root)

    def exists(self, blob_id: str) -> bool:
        return os.path.lexists(self._path(blob_id))

    def __repr__(self) -> str:
        return f"LocalBlobStore(root={str(self.root)!r})"


class MemoryBlobStore(BlobStore):
    """Blobs in a dict, for tests. Same contract as :class:`LocalBlobStore`."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @contextmanager
    def _open_write(self, blob_id: str) -> Iterator[BinaryIO]:
        if self.exists(blob_id):
            raise BlobExistsError(f"blob {blob_id} already exists", blob_id=blob_id)
        buffer = io.BytesIO()
        yield buffer
        with self._lock:
            if blob_id in self._blobs:
                raise BlobExistsError(f"blob {blob_id} already exists", blob_id=blob_id)
            self._blobs[blob_id] = buffer.getvalue()

    def open_write(self, blob_id: str) -> AbstractContextManager[BinaryIO]:
        validate_blob_id(blob_id)
        return self._open_write(blob_id)

    def open_read(self, blob_id: str) -> BinaryIO:
        validate_blob_id(blob_id)
        with self._lock:
            data = self._blobs.get(blob_id)
        if data is None:
            raise BlobNotFoundError(f"no blob {blob_id}", blob_id=blob_id)
        return io.BytesIO(data)

    def delete(self, blob_id: str) -> None:
        validate_blob_id(blob_id)
        with self._lock:
            self._blobs.pop(blob_id, None)

    def exists(self, blob_id: str) -> bool:
        validate_blob_id(blob_id)
        with self._lock:
            return blob_id in self._blobs

