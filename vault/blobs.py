"""Streaming encryption of recordings: the sealed blob format.

Sealed blob layout, format 2 (integers big-endian)::

    header, 28 bytes: magic b"TZB" | blob format (1 byte, 2) | data-key version (4)
                      | segment size (4) | random per-blob salt (16)
    segment 0, 1, ..., n-1: each a frame of the sealing recipe (vault/aead.py, purpose
                      ``blob segment``, 35 bytes more than its plaintext) of ``segment size``
                      plaintext bytes (the last one: 0 to ``segment size`` bytes)

Every blob has at least one segment; an empty plaintext is one empty, last segment. A
plaintext whose length is a multiple of the segment size ends with a full last segment.

Segment keys (the construction of Tink's AES-GCM-HKDF streaming AEAD): the blob's segment
key is :func:`vault.aead.derive_key` of the subject's data key with the blob's salt, so no
two blobs share a segment key. A segment frame's key id is the data-key version and its
context items are ``(header, subject, blob id, segment index (8 bytes), last-segment flag
(1 byte))``. Blobs of format 1 (before the recipe: the segment index as nonce, no frame
header) are read through :class:`vault.aead.LegacyBlobSegments`; nothing writes them.

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
- Where blobs are kept is :mod:`vault.blobstore` (re-exported here).
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import struct
import wave
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final, Protocol, runtime_checkable

from core.errors import InvalidInputError
from vault import aead
from vault.blobstore import (
    BlobExistsError,
    BlobNotFoundError,
    BlobStore,
    InvalidBlobIdError,
    LocalBlobStore,
    MemoryBlobStore,
    validate_blob_id,
)
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
FORMAT_VERSION: Final = 2
LEGACY_FORMAT_VERSION: Final = 1  # read only

_MAGIC: Final = b"TZB"
_SALT_SIZE: Final = 16
_LEGACY_TAG_SIZE: Final = 16
_DATA_KEY_SIZE: Final = 32
_MAX_KEY_VERSION: Final = 2**32 - 1
_HEADER: Final = struct.Struct(">3sBII16s")  # magic, version, key version, segment size, salt
HEADER_SIZE: Final = _HEADER.size


@dataclass(frozen=True)
class SealedBlobInfo:
    """What sealing a blob learned about its plaintext (for the audit log)."""

    blob_id: str
    size: int
    sha256: str
    segments: int


@runtime_checkable
class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes | None: ...


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


def _segment_context(header: bytes, subject: str, blob_id: str, index: int, last: bool) -> aead.Context:
    return aead.context(header, subject, blob_id, index.to_bytes(8, "big"), b"\x01" if last else b"\x00")


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
    sealer = aead.Sealer(aead.derive_key(data_key, aead.BLOB_SEGMENT, salt=salt), aead.BLOB_SEGMENT)
    digest = hashlib.sha256()
    size = 0
    index = 0
    with store.open_write(blob_id) as sink:
        sink.write(header)
        for segment, last in _segments(source, segment_size):
            digest.update(segment)
            size += len(segment)
            ctx = _segment_context(header, subject, blob_id, index, last)
            sink.write(sealer.seal(segment, ctx, key_id=key_version))
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
    version: int
    key_version: int
    segment_size: int
    salt: bytes

    @property
    def overhead(self) -> int:
        """Bytes each segment adds to its plaintext."""
        return aead.OVERHEAD if self.version == FORMAT_VERSION else _LEGACY_TAG_SIZE


def _read_header(stream: BinaryIO) -> _Header:
    raw = _read_exact(stream, _HEADER.size)
    magic, version, key_version, segment_size, salt = _HEADER.unpack(raw)
    if magic != _MAGIC or version not in (FORMAT_VERSION, LEGACY_FORMAT_VERSION) \
            or not 1 <= segment_size <= MAX_SEGMENT_SIZE:
        raise VaultDecryptError()
    return _Header(raw=raw, version=version, key_version=key_version, segment_size=segment_size, salt=salt)


def _segment_opener(header: _Header, data_key: bytes, subject: str, blob_id: str
                    ) -> Callable[[int, bool, bytes], bytes]:
    """``open(index, last, sealed segment) -> plaintext`` for the blob's format; VaultDecryptError if none."""
    if header.version == LEGACY_FORMAT_VERSION:
        return aead.LegacyBlobSegments(data_key, header.salt, header.raw, subject, blob_id).open
    try:
        sealer = aead.Sealer(aead.derive_key(data_key, aead.BLOB_SEGMENT, salt=header.salt), aead.BLOB_SEGMENT)
    except (TypeError, ValueError):
        raise VaultDecryptError() from None

    def open_segment(index: int, last: bool, sealed: bytes) -> bytes:
        try:
            ctx = _segment_context(header.raw, subject, blob_id, index, last)
        except UnicodeEncodeError:
            raise VaultDecryptError() from None
        return sealer.open(sealed, ctx, key_id=header.key_version)

    return open_segment


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
        segment_size, overhead = header.segment_size, header.overhead
        stride = segment_size + overhead
        body = stream.seek(0, io.SEEK_END) - _HEADER.size
        count, remainder = divmod(body, stride)
        if remainder:
            if remainder < overhead:
                raise VaultDecryptError()
            count += 1
        if count == 0:
            raise VaultDecryptError()
        size = body - count * overhead
        stop = size if end is None else min(end, size)
        reaches_end = end is None or end >= size
        if start < stop:
            first, last_needed = start // segment_size, (stop - 1) // segment_size
        else:
            first, last_needed = count, count - 1  # nothing to return ...
        if reaches_end:  # ... but a read that reaches the end proves the end is there
            first, last_needed = min(first, count - 1), count - 1
        open_segment = _segment_opener(header, data_key, subject, blob_id)
        stream.seek(_HEADER.size + first * stride)
        for index in range(first, last_needed + 1):
            is_last = index == count - 1
            sealed = _read_exact(stream, body - index * stride if is_last else stride)
            plaintext = open_segment(index, is_last, sealed)
            offset = index * segment_size
            low, high = max(start - offset, 0), min(stop - offset, len(plaintext))
            if low < high:
                yield plaintext[low:high]
