"""Streaming encryption of recordings, and where the sealed bytes are kept.

Sealed blob layout (integers big-endian)::

    header, 28 bytes: magic b"TZB" | format version (1 byte, 1) | data-key version (4)
                      | segment size (4) | random per-blob salt (16)
    segment 0, 1, ..., n-1: AES-256-GCM ciphertext of ``segment size`` plaintext bytes
                      (the last one: 0 to ``segment size`` bytes), each followed by its
                      16-byte tag

Every blob has at least one segment; an empty plaintext is one empty, last segment. A
plaintext whose length is a multiple of the segment size ends with a full last segment.

Segment keys and nonces (the construction of Tink's AES-GCM-HKDF streaming AEAD): the
blob's segment key is HKDF-SHA-256 of the subject's data key with the blob's salt, so
no two blobs share a segment key; segment ``i`` is sealed under the nonce ``i`` (12
bytes, big-endian), unique within the blob. The associated data of segment ``i`` is
``header || len(subject) || subject || len(blob_id) || blob_id || i (8 bytes) ||
last-segment flag (1 byte)``, lengths 4-byte big-endian.

Invariants:

- Any change of the header, a segment moved, dropped (trailing ones too), duplicated or
  spliced in from another blob, or a blob moved to another subject or id, makes
  decryption fail with the opaque :class:`~vault.errors.VaultDecryptError`.
- A range read returns only authenticated bytes at their true offsets; a read that
  reaches the end of the blob (``end`` omitted or past the size) also authenticates
  the last segment, so a truncated blob is refused. A read of a middle range does not
  prove that the rest of the blob is intact.
- Streaming: encryption holds at most one segment plus one input chunk, decryption one
  segment, whatever the blob's size. A decryption failure may come after earlier
  segments were yielded: a consumer must treat the whole stream as failed then.
- :class:`LocalBlobStore` never shows a half-written blob under its final name: a blob
  is written to a temporary name, fsynced, then linked into place, and an existing
  blob is never overwritten.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import secrets
import struct
import threading
import wave
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.files import fsync_directory
from vault.errors import VaultDecryptError, VaultError

__all__ = [
    "FORMAT_VERSION",
    "MAX_SEGMENT_SIZE",
    "SEGMENT_SIZE",
    "BlobExistsError",
    "BlobNotFoundError",
    "BlobStore",
    "InvalidBlobIdError",
    "LocalBlobStore",
    "MemoryBlobStore",
    "SealedBlobInfo",
    "blob_key_version",
    "decrypt_stream",
    "encrypt_stream",
    "validate_blob_id",
]

SEGMENT_SIZE: Final = 64 * 1024
MAX_SEGMENT_SIZE: Final = 8 * 1024 * 1024  # bounds what a (tampered) header can make us read
FORMAT_VERSION: Final = 1

_MAGIC: Final = b"TZB"
_SALT_SIZE: Final = 16
_TAG_SIZE: Final = 16
_DATA_KEY_SIZE: Final = 32
_MAX_KEY_VERSION: Final = 2**32 - 1
_HEADER: Final = struct.Struct(">3sBII16s")  # magic, version, key version, segment size, salt
_HKDF_INFO: Final = b"tarcza/blob-segment-key/v1"
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


@dataclass(frozen=True)
class SealedBlobInfo:
    """What sealing a blob learned about its plaintext (for the audit log)."""

    blob_id: str
    size: int
    sha256: str
    segments: int


# --------------------------------------------------------------------------- stores


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


# --------------------------------------------------------------------------- sealing


@runtime_checkable
class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes | None: ...


def _segment_aead(data_key: bytes, salt: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO).derive(data_key)
    return AESGCM(key)


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _associated_data(header: bytes, subject: str, blob_id: str, index: int, last: bool) -> bytes:
    subject_bytes = subject.encode("utf-8")
    blob_id_bytes = blob_id.encode("utf-8")
    return b"".join(
        (
            header,
            struct.pack(">I", len(subject_bytes)),
            subject_bytes,
            struct.pack(">I", len(blob_id_bytes)),
            blob_id_bytes,
            struct.pack(">QB", index, 1 if last else 0),
        )
    )


def _chunks(source: BinaryIO | Iterable[bytes], size: int) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        raise TypeError("pass bytes as [data] or io.BytesIO(data), not bare")
    if not isinstance(source, _Readable):
        yield from source
        return
    while True:
        chunk = source.read(size)
        if chunk is None:  # a non-blocking stream with nothing yet: never seal it as the end
            raise BlockingIOError(errno.EAGAIN, "the source stream would block")
        if not chunk:
            return
        yield chunk


WAV_MEDIA_TYPES: Final = frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"})
_HEAD_BYTES: Final = 64 * 1024


class RecordingTooLargeError(InvalidInputError, VaultError):
    """A recording longer than the configured limit; nothing of it is kept."""

    status = 413
    code = "recording-too-large"
    title = "Recording too large"


class StreamMeter:
    """An iterable over a source's chunks that keeps its first bytes and enforces a size limit.

    Raising :class:`RecordingTooLargeError` as soon as the limit is passed makes
    :func:`encrypt_stream` give up before its blob appears.
    """

    def __init__(self, source: BinaryIO | Iterable[bytes], max_bytes: int | None) -> None:
        self._source = source
        self._max = max_bytes
        self.size = 0
        self.head = b""

    def __iter__(self) -> Iterator[bytes]:
        for chunk in _chunks(self._source, SEGMENT_SIZE):
            self.size += len(chunk)
            if self._max is not None and self.size > self._max:
                raise RecordingTooLargeError(f"a recording may hold at most {self._max} bytes")
            if len(self.head) < _HEAD_BYTES:
                self.head += bytes(chunk[:_HEAD_BYTES - len(self.head)])
            yield chunk


def wav_duration_ms(head: bytes) -> int | None:
    """The duration a WAV header declares (frames / rate), in milliseconds; None if it has none."""
    try:
        with wave.open(io.BytesIO(head), "rb") as reader:
            frames, rate = reader.getnframes(), reader.getframerate()
    except (wave.Error, EOFError, ValueError, struct.error):
        return None
    return frames * 1000 // rate if rate > 0 else None


def _segments(source: BinaryIO | Iterable[bytes], size: int) -> Iterator[tuple[bytes, bool]]:
    """Cut the source into ``size``-byte segments, flagging the last (always at least one)."""
    buffer = bytearray()
    for chunk in _chunks(source, size):
        buffer += chunk
        while len(buffer) > size:  # more follows this segment, so it is not the last
            yield bytes(buffer[:size]), False
            del buffer[:size]
    yield bytes(buffer), True


def encrypt_stream(
    data_key: bytes,
    source: BinaryIO | Iterable[bytes],
    store: BlobStore,
    *,
    subject: str,
    blob_id: str,
    key_version: int,
    segment_size: int = SEGMENT_SIZE,
) -> SealedBlobInfo:
    """Seal ``source`` segment by segment into a new blob ``blob_id`` of ``store``.

    The blob appears only if the whole source was sealed. ``segment_size`` exists for
    tests and tuning; it is recorded in the header.
    """
    if len(data_key) != _DATA_KEY_SIZE:
        raise ValueError(f"data key must be {_DATA_KEY_SIZE} bytes, got {len(data_key)}")
    if not subject:
        raise ValueError("subject must not be empty")
    if not 0 <= key_version <= _MAX_KEY_VERSION:
        raise ValueError(f"key version must be in [0, {_MAX_KEY_VERSION}], got {key_version}")
    if not 1 <= segment_size <= MAX_SEGMENT_SIZE:
        raise ValueError(f"segment size must be in [1, {MAX_SEGMENT_SIZE}], got {segment_size}")
    validate_blob_id(blob_id)
    salt = os.urandom(_SALT_SIZE)
    header = _HEADER.pack(_MAGIC, FORMAT_VERSION, key_version, segment_size, salt)
    aead = _segment_aead(data_key, salt)
    digest = hashlib.sha256()
    size = 0
    index = 0
    with store.open_write(blob_id) as sink:
        sink.write(header)
        for segment, last in _segments(source, segment_size):
            digest.update(segment)
            size += len(segment)
            ad = _associated_data(header, subject, blob_id, index, last)
            sink.write(aead.encrypt(_nonce(index), segment, ad))
            index += 1
    return SealedBlobInfo(blob_id=blob_id, size=size, sha256=digest.hexdigest(), segments=index)


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            raise VaultDecryptError()
        data += chunk
    return bytes(data)


@dataclass(frozen=True)
class _Header:
    raw: bytes
    key_version: int
    segment_size: int
    salt: bytes


def _read_header(stream: BinaryIO) -> _Header:
    raw = _read_exact(stream, _HEADER.size)
    magic, version, key_version, segment_size, salt = _HEADER.unpack(raw)
    if magic != _MAGIC or version != FORMAT_VERSION or not 1 <= segment_size <= MAX_SEGMENT_SIZE:
        raise VaultDecryptError()
    return _Header(raw=raw, key_version=key_version, segment_size=segment_size, salt=salt)


def blob_key_version(store: BlobStore, blob_id: str) -> int:
    """The data-key version in a blob's header (not authenticated until decryption)."""
    with store.open_read(blob_id) as stream:
        return _read_header(stream).key_version


def decrypt_stream(
    data_key: bytes,
    store: BlobStore,
    *,
    subject: str,
    blob_id: str,
    start: int = 0,
    end: int | None = None,
) -> Iterator[bytes]:
    """Plaintext bytes ``[start, end)`` of a sealed blob, as Python slicing clamps them.

    Decrypts only the segments the range needs (plus the last one when the range reaches
    the end). Raises :class:`VaultDecryptError` on any authentication failure, possibly
    after earlier chunks were yielded, and :class:`BlobNotFoundError` for a missing blob.
    """
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"invalid range [{start}, {end})")
    validate_blob_id(blob_id)
    return _decrypt(data_key, store, subject, blob_id, start, end)


def _decrypt(
    data_key: bytes, store: BlobStore, subject: str, blob_id: str, start: int, end: int | None
) -> Iterator[bytes]:
    with store.open_read(blob_id) as stream:
        if not stream.seekable():
            raise ValueError("the blob store returned a stream that cannot seek")
        header = _read_header(stream)
        segment_size = header.segment_size
        stride = segment_size + _TAG_SIZE
        body = stream.seek(0, io.SEEK_END) - _HEADER.size
        count, remainder = divmod(body, stride)
        if remainder:
            if remainder < _TAG_SIZE:
                raise VaultDecryptError()
            count += 1
        if count == 0:
            raise VaultDecryptError()
        size = body - count * _TAG_SIZE
        stop = size if end is None else min(end, size)
        reaches_end = end is None or end >= size
        if start < stop:
            first, last_needed = start // segment_size, (stop - 1) // segment_size
        else:
            first, last_needed = count, count - 1  # nothing to return ...
        if reaches_end:  # ... but a read that reaches the end proves the end is there
            first, last_needed = min(first, count - 1), count - 1
        try:
            aead = _segment_aead(data_key, header.salt)
        except (TypeError, ValueError):
            raise VaultDecryptError() from None
        stream.seek(_HEADER.size + first * stride)
        for index in range(first, last_needed + 1):
            is_last = index == count - 1
            ciphertext = _read_exact(stream, body - index * stride if is_last else stride)
            ad = _associated_data(header.raw, subject, blob_id, index, is_last)
            try:
                plaintext = aead.decrypt(_nonce(index), ciphertext, ad)
            except (InvalidTag, ValueError):
                raise VaultDecryptError() from None
            offset = index * segment_size
            low, high = max(start - offset, 0), min(stop - offset, len(plaintext))
            if low < high:
                yield plaintext[low:high]
