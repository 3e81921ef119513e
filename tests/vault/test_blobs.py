"""Streaming encryption of recordings, and the blob stores that keep them."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import stat
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vault import aead
from vault.blobs import (
    SEGMENT_SIZE,
    BlobExistsError,
    BlobNotFoundError,
    BlobStore,
    InvalidBlobIdError,
    LocalBlobStore,
    MemoryBlobStore,
    blob_key_version,
    decrypt_stream,
    encrypt_stream,
)
from vault.errors import VaultDecryptError

KEY = bytes(range(32))
SUBJECT = "SUBJ-7f3a9c"
HEADER_SIZE = 28
TAG_SIZE = 16
SEGMENT_OVERHEAD = 35  # a recipe frame: header 7, nonce 12, tag 16
SMALL_SEGMENT = 32
STRIDE = SMALL_SEGMENT + SEGMENT_OVERHEAD


def _plaintext(size: int, seed: int = 0) -> bytes:
    return hashlib.shake_256(f"{seed}:{size}".encode()).digest(size) if size else b""


def _read_all(store: BlobStore, blob_id: str, *, subject: str = SUBJECT, key: bytes = KEY) -> bytes:
    return b"".join(decrypt_stream(key, store, subject=subject, blob_id=blob_id))


def _raw(store: BlobStore, blob_id: str) -> bytes:
    with store.open_read(blob_id) as stream:
        return stream.read()


def _replace_raw(store: BlobStore, blob_id: str, data: bytes) -> None:
    store.delete(blob_id)
    with store.open_write(blob_id) as sink:
        sink.write(data)


def _seal_small(store: BlobStore, blob_id: str, plaintext: bytes) -> None:
    encrypt_stream(
        KEY,
        [plaintext],
        store,
        subject=SUBJECT,
        blob_id=blob_id,
        key_version=1,
        segment_size=SMALL_SEGMENT,
    )


class TestEncryptStream:
    """encrypt_stream / decrypt_stream: round trips, layout and the sealed-blob facts."""

    @pytest.mark.parametrize(
        "size",
        [0, 1, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 3 * SEGMENT_SIZE + 5],
    )
    def test_round_trip_and_info(self, size: int) -> None:
        """A recording opens to itself and its info gives the plaintext size, hash and segments."""
        store = MemoryBlobStore()
        plaintext = _plaintext(size)
        info = encrypt_stream(
            KEY, io.BytesIO(plaintext), store, subject=SUBJECT, blob_id="rec-1", key_version=7
        )
        segments = max(1, -(-size // SEGMENT_SIZE))
        assert (info.blob_id, info.size, info.segments) == ("rec-1", size, segments)
        assert info.sha256 == hashlib.sha256(plaintext).hexdigest()
        assert len(_raw(store, "rec-1")) == HEADER_SIZE + size + segments * SEGMENT_OVERHEAD
        assert blob_key_version(store, "rec-1") == 7
        assert _read_all(store, "rec-1") == plaintext

    def test_empty_plaintext_is_one_empty_last_segment(self) -> None:
        """An empty recording still has one authenticated segment."""
        store = MemoryBlobStore()
        info = encrypt_stream(KEY, [], store, subject=SUBJECT, blob_id="empty", key_version=1)
        assert (info.size, info.segments) == (0, 1)
        raw = _raw(store, "empty")
        assert len(raw) == HEADER_SIZE + SEGMENT_OVERHEAD
        assert _read_all(store, "empty") == b""
        _replace_raw(store, "empty", raw[:HEADER_SIZE])  # no segment at all
        with pytest.raises(VaultDecryptError):
            _read_all(store, "empty")

    def test_iterable_source_with_odd_chunks(self) -> None:
        """Chunks of any size (empty ones too) are re-cut into segments correctly."""
        store = MemoryBlobStore()
        plaintext = _plaintext(1000)
        cuts = [0, 0, 1, 33, 33, 200, 999, 1000]
        chunks = [plaintext[a:b] for a, b in itertools.pairwise(cuts)]
        info = encrypt_stream(
            KEY, chunks, store, subject=SUBJECT, blob_id="r", key_version=1, segment_size=64
        )
        assert info.segments == 16
        assert _read_all(store, "r") == plaintext

    def test_plaintext_never_appears_in_the_blob(self) -> None:
        """No plaintext segment is visible in the stored bytes."""
        store = MemoryBlobStore()
        plaintext = b"PESEL 44051401359 " * 100
        encrypt_stream(KEY, [plaintext], store, subject=SUBJECT, blob_id="r", key_version=1)
        assert b"44051401359" not in _raw(store, "r")

    def test_same_plaintext_seals_differently(self) -> None:
        """Two blobs of the same recording differ (fresh per-blob salt)."""
        store = MemoryBlobStore()
        _seal_small(store, "a", b"x" * 100)
        _seal_small(store, "b", b"x" * 100)
        assert _raw(store, "a")[HEADER_SIZE:] != _raw(store, "b")[HEADER_SIZE:]

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        size=st.integers(min_value=0, max_value=400),
        segment_size=st.integers(min_value=1, max_value=96),
        start=st.integers(min_value=0, max_value=450),
        length=st.one_of(st.none(), st.integers(min_value=0, max_value=450)),
    )
    @example(size=1, segment_size=1, start=0, length=0)  # empty range inside the blob
    @example(size=0, segment_size=1, start=0, length=None)  # empty blob
    @example(size=64, segment_size=32, start=64, length=None)  # start at the very end
    @example(size=64, segment_size=32, start=32, length=0)  # empty range on a boundary
    @example(size=64, segment_size=32, start=31, length=2)  # straddles two segments
    @example(size=10, segment_size=32, start=20, length=5)  # wholly past the end
    def test_range_read_matches_plaintext(
        self, size: int, segment_size: int, start: int, length: int | None
    ) -> None:
        """Any range [start, end) reads exactly plaintext[start:end]."""
        store = MemoryBlobStore()
        plaintext = _plaintext(size)
        encrypt_stream(
            KEY,
            [plaintext],
            store,
            subject=SUBJECT,
            blob_id="r",
            key_version=1,
            segment_size=segment_size,
        )
        end = None if length is None else start + length
        chunks = list(
            decrypt_stream(KEY, store, subject=SUBJECT, blob_id="r", start=start, end=end)
        )
        assert b"".join(chunks) == plaintext[start:end]
        assert all(len(chunk) <= segment_size for chunk in chunks)

    def test_range_read_decrypts_only_needed_segments(self) -> None:
        """A middle range still reads while a segment it does not need is damaged."""
        store = MemoryBlobStore()
        plaintext = _plaintext(10 * SMALL_SEGMENT)
        _seal_small(store, "r", plaintext)
        raw = bytearray(_raw(store, "r"))
        raw[HEADER_SIZE + 5] ^= 0x01  # damage segment 0
        _replace_raw(store, "r", bytes(raw))
        start, end = 3 * SMALL_SEGMENT + 4, 6 * SMALL_SEGMENT
        got = b"".join(
            decrypt_stream(KEY, store, subject=SUBJECT, blob_id="r", start=start, end=end)
        )
        assert got == plaintext[start:end]
        with pytest.raises(VaultDecryptError):
            _read_all(store, "r")

    def test_invalid_range_is_refused(self) -> None:
        """A negative start or an end before the start is a ValueError, raised at once."""
        store = MemoryBlobStore()
        _seal_small(store, "r", b"abc")
        with pytest.raises(ValueError, match="invalid range"):
            decrypt_stream(KEY, store, subject=SUBJECT, blob_id="r", start=-1)
        with pytest.raises(ValueError, match="invalid range"):
            decrypt_stream(KEY, store, subject=SUBJECT, blob_id="r", start=5, end=4)

    def test_source_that_would_block_is_not_taken_for_its_end(self) -> None:
        """A non-blocking source returning None fails the seal instead of ending the blob early."""

        class WouldBlock(io.RawIOBase):
            def __init__(self) -> None:
                self.calls = 0

            def readable(self) -> bool:
                return True

            def read(self, size: int = -1, /) -> bytes | None:
                self.calls += 1
                return b"abc" if self.calls == 1 else None

        store = MemoryBlobStore()
        with pytest.raises(BlockingIOError):
            encrypt_stream(KEY, WouldBlock(), store, subject=SUBJECT, blob_id="r", key_version=1)
        assert not store.exists("r")

    def test_bare_bytes_source_is_refused(self) -> None:
        """Bare bytes (an iterable of ints) are refused rather than misread."""
        with pytest.raises(TypeError, match="not bare"):
            encrypt_stream(
                KEY,
                b"abc",  # type: ignore[arg-type]  # the mistake under test
                MemoryBlobStore(),
                subject=SUBJECT,
                blob_id="r",
                key_version=1,
            )

    def test_failed_source_leaves_no_blob(self, tmp_path: Path) -> None:
        """If the source breaks mid-stream, no blob (and no temporary file) is left."""

        def broken() -> Iterator[bytes]:
            yield b"x" * (3 * SEGMENT_SIZE)
            raise OSError("upload interrupted")

        store = LocalBlobStore(tmp_path / "blobs")
        with pytest.raises(OSError, match="upload interrupted"):
            encrypt_stream(KEY, broken(), store, subject=SUBJECT, blob_id="r", key_version=1)
        assert not store.exists("r")
        assert list((tmp_path / "blobs").iterdir()) == []

    def test_memory_is_bounded_by_a_segment(self, tmp_path: Path) -> None:
        """Sealing and opening 16 MiB never holds more than a few segments in memory."""
        total = 16 * 1024 * 1024
        block = b"\xa5" * 4096

        def source() -> Iterator[bytes]:
            for _ in range(total // len(block)):
                yield block

        store = LocalBlobStore(tmp_path / "blobs")
        tracemalloc.start()
        try:
            info = encrypt_stream(
                KEY, source(), store, subject=SUBJECT, blob_id="big", key_version=1
            )
            _, encrypt_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            seen = 0
            for chunk in decrypt_stream(KEY, store, subject=SUBJECT, blob_id="big"):
                seen += len(chunk)
            _, decrypt_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert info.size == seen == total
        assert encrypt_peak < 6 * SEGMENT_SIZE
        assert decrypt_peak < 6 * SEGMENT_SIZE


class TestBlobFormat:
    """A blob of format 2: the 28-byte header, then one recipe frame per segment."""

    def test_segments_are_recipe_frames(self) -> None:
        """Each segment is a blob-segment frame naming the data-key version, at a fixed stride."""
        store = MemoryBlobStore()
        encrypt_stream(KEY, [_plaintext(70)], store, subject=SUBJECT, blob_id="r", key_version=9,
                       segment_size=SMALL_SEGMENT)
        raw = _raw(store, "r")
        assert raw[:4] == b"TZB\x02"
        frames = [raw[offset:offset + STRIDE] for offset in range(HEADER_SIZE, len(raw), STRIDE)]
        assert [len(frame) - SEGMENT_OVERHEAD for frame in frames] == [32, 32, 6]
        assert all(aead.is_frame(frame) and aead.key_id_of(frame) == 9 for frame in frames)

    def test_segment_frame_opens_only_as_its_own_segment(self) -> None:
        """A segment frame is bound to the blob's header, subject, id, index and last flag, and to its purpose."""
        store = MemoryBlobStore()
        encrypt_stream(KEY, [_plaintext(40)], store, subject=SUBJECT, blob_id="r", key_version=1,
                       segment_size=SMALL_SEGMENT)
        raw = _raw(store, "r")
        header, first = raw[:HEADER_SIZE], raw[HEADER_SIZE:HEADER_SIZE + STRIDE]
        key = aead.derive_key(KEY, aead.BLOB_SEGMENT, salt=header[12:28])
        right = aead.context(header, SUBJECT, "r", (0).to_bytes(8, "big"), b"\x00")
        assert aead.open_sealed(key, first, purpose=aead.BLOB_SEGMENT, ctx=right) == _plaintext(40)[:32]
        for wrong in (aead.context(header, SUBJECT, "r", (1).to_bytes(8, "big"), b"\x00"),
                      aead.context(header, SUBJECT, "r", (0).to_bytes(8, "big"), b"\x01"),
                      aead.context(header, SUBJECT, "s", (0).to_bytes(8, "big"), b"\x00")):
            with pytest.raises(VaultDecryptError):
                aead.open_sealed(key, first, purpose=aead.BLOB_SEGMENT, ctx=wrong)
        with pytest.raises(VaultDecryptError):
            aead.open_sealed(key, first, purpose=aead.FIELD, ctx=right)


class TestTamperedBlobs:
    """Every change to a sealed blob is refused with the opaque VaultDecryptError."""

    @pytest.fixture
    def sealed(self) -> tuple[MemoryBlobStore, bytes, bytes]:
        """A store holding blob "r": 5 full segments and one of 8 bytes."""
        store = MemoryBlobStore()
        plaintext = _plaintext(5 * SMALL_SEGMENT + 8)
        _seal_small(store, "r", plaintext)
        return store, plaintext, _raw(store, "r")

    def test_truncated_recording_is_refused(
        self, sealed: tuple[MemoryBlobStore, bytes, bytes]
    ) -> None:
        """Dropping trailing segments, or cutting inside one, makes a full read fail."""
        store, _, raw = sealed
        for keep in range(HEADER_SIZE, len(raw)):
            _replace_raw(store, "r", raw[:keep])
            with pytest.raises(VaultDecryptError):
                _read_all(store, "r")

    def test_truncation_at_a_segment_boundary_is_refused(self) -> None:
        """A blob cut exactly after a full segment (valid-looking length) is still refused."""
        store = MemoryBlobStore()
        _seal_small(store, "r", _plaintext(4 * SMALL_SEGMENT))
        raw = _raw(store, "r")
        _replace_raw(store, "r", raw[: HEADER_SIZE + 2 * STRIDE])
        with pytest.raises(VaultDecryptError):
            _read_all(store, "r")
        with pytest.raises(VaultDecryptError):  # a range that reaches the end checks it too
            list(decrypt_stream(KEY, store, subject=SUBJECT, blob_id="r", start=10**6))

    def test_reordered_segments_are_refused(
        self, sealed: tuple[MemoryBlobStore, bytes, bytes]
    ) -> None:
        """Swapping two segments makes reading either position fail."""
        store, _, raw = sealed
        segments = [
            raw[HEADER_SIZE + i * STRIDE : HEADER_SIZE + (i + 1) * STRIDE] for i in range(5)
        ]
        segments[1], segments[2] = segments[2], segments[1]
        tail = raw[HEADER_SIZE + 5 * STRIDE :]
        _replace_raw(store, "r", raw[:HEADER_SIZE] + b"".join(segments) + tail)
        with pytest.raises(VaultDecryptError):
            _read_all(store, "r")
        with pytest.raises(VaultDecryptError):
            list(
                decrypt_stream(
                    KEY, store, subject=SUBJECT, blob_id="r", start=SMALL_SEGMENT, end=40
                )
            )

    def test_spliced_segment_from_other_blob_is_refused(
        self, sealed: tuple[MemoryBlobStore, bytes, bytes]
    ) -> None:
        """A segment taken from another blob of the same subject and key does not verify."""
        store, plaintext, raw = sealed
        _seal_small(store, "other", plaintext)  # same key, subject, segment size and position
        other = _raw(store, "other")
        lo, hi = HEADER_SIZE + STRIDE, HEADER_SIZE + 2 * STRIDE
        _replace_raw(store, "r", raw[:lo] + other[lo:hi] + raw[hi:])
        with pytest.raises(VaultDecryptError):
            _read_all(store, "r")

    def test_changed_header_is_refused(self, sealed: tuple[MemoryBlobStore, bytes, bytes]) -> None:
        """Changing any byte of the header (magic, version, key version, size, salt) is refused."""
        store, _, raw = sealed
        for position in range(HEADER_SIZE):
            tampered = bytearray(raw)
            tampered[position] ^= 0x01
            _replace_raw(store, "r", bytes(tampered))
            with pytest.raises(VaultDecryptError):
                _read_all(store, "r")

    def test_tampered_segment_fails_closed(
        self, sealed: tuple[MemoryBlobStore, bytes, bytes]
    ) -> None:
        """Flipping a byte anywhere in the segments makes the full read fail."""
        store, _, raw = sealed
        for position in range(HEADER_SIZE, len(raw), 7):
            tampered = bytearray(raw)
            tampered[position] ^= 0x80
            _replace_raw(store, "r", bytes(tampered))
            with pytest.raises(VaultDecryptError):
                _read_all(store, "r")

    def test_appended_bytes_are_refused(self, sealed: tuple[MemoryBlobStore, bytes, bytes]) -> None:
        """Bytes or a whole segment appended to a blob are refused."""
        store, _, raw = sealed
        for extra in (b"\x00", b"\x00" * TAG_SIZE, raw[HEADER_SIZE : HEADER_SIZE + STRIDE]):
            _replace_raw(store, "r", raw + extra)
            with pytest.raises(VaultDecryptError):
                _read_all(store, "r")

    def test_blob_moved_to_other_subject_or_id_is_refused(
        self, sealed: tuple[MemoryBlobStore, bytes, bytes]
    ) -> None:
        """A blob read for another subject, or copied under another id, does not open."""
        store, _, raw = sealed
        with pytest.raises(VaultDecryptError):
            _read_all(store, "r", subject="SUBJ-000001")
        with store.open_write("copy") as sink:
            sink.write(raw)
        with pytest.raises(VaultDecryptError):
            _read_all(store, "copy")

    def test_wrong_data_key_fails_closed(
        self, sealed: tuple[MemoryBlobStore, bytes, bytes]
    ) -> None:
        """Another data key (a shredded subject's replacement, say) does not open the blob."""
        store, _, _ = sealed
        with pytest.raises(VaultDecryptError):
            _read_all(store, "r", key=os.urandom(32))

    def test_not_a_blob_is_refused(self) -> None:
        """Bytes that are not a sealed blob (too short, wrong magic) are refused."""
        store = MemoryBlobStore()
        for data in (b"", b"TZB", b"XXXX" + b"\x00" * 60):
            _replace_raw(store, "r", data)
            with pytest.raises(VaultDecryptError):
                _read_all(store, "r")


@pytest.fixture(params=["local", "memory"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """Each BlobStore implementation in turn."""
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    return MemoryBlobStore()


class TestBlobStoreContract:
    """Run once per store: local directory and memory."""

    def test_write_read_exists_delete(self, blob_store: BlobStore) -> None:
        """A written blob reads back, exists until deleted, and delete is idempotent."""
        with blob_store.open_write("rec-2026-001.tzb") as sink:
            sink.write(b"sealed bytes")
        assert blob_store.exists("rec-2026-001.tzb")
        assert _raw(blob_store, "rec-2026-001.tzb") == b"sealed bytes"
        blob_store.delete("rec-2026-001.tzb")
        blob_store.delete("rec-2026-001.tzb")
        assert not blob_store.exists("rec-2026-001.tzb")

    def test_missing_blob_is_not_found(self, blob_store: BlobStore) -> None:
        """Reading a blob that does not exist is a BlobNotFoundError, also through decryption."""
        with pytest.raises(BlobNotFoundError):
            blob_store.open_read("absent")
        with pytest.raises(BlobNotFoundError):
            list(decrypt_stream(KEY, blob_store, subject=SUBJECT, blob_id="absent"))

    def test_existing_blob_is_never_overwritten(self, blob_store: BlobStore) -> None:
        """Writing under a taken id is refused and the old blob is kept."""
        with blob_store.open_write("r") as sink:
            sink.write(b"first")
        with pytest.raises(BlobExistsError), blob_store.open_write("r") as sink:
            sink.write(b"second")
        assert _raw(blob_store, "r") == b"first"

    def test_failed_write_leaves_nothing(self, blob_store: BlobStore) -> None:
        """A write that raises inside its block leaves no blob under the id."""

        def write_then_fail() -> None:
            with blob_store.open_write("r") as sink:
                sink.write(b"half")
                raise RuntimeError("interrupted")

        with pytest.raises(RuntimeError, match="interrupted"):
            write_then_fail()
        assert not blob_store.exists("r")

    def test_read_stream_is_seekable(self, blob_store: BlobStore) -> None:
        """open_read returns a seekable stream (range reads rely on it)."""
        with blob_store.open_write("r") as sink:
            sink.write(b"0123456789")
        with blob_store.open_read("r") as stream:
            assert stream.seekable()
            stream.seek(4)
            assert stream.read(3) == b"456"

    @pytest.mark.parametrize(
        "blob_id",
        ["", ".", "..", "../escape", "a/b", "/etc/passwd", ".hidden", "a\x00b", "a b", "x" * 129],
    )
    def test_unsafe_blob_ids_are_refused(self, blob_store: BlobStore, blob_id: str) -> None:
        """Ids that could leave the store's directory, or hide in it, are refused everywhere."""
        with pytest.raises(InvalidBlobIdError):
            blob_store.open_write(blob_id)
        with pytest.raises(InvalidBlobIdError):
            blob_store.open_read(blob_id)
        with pytest.raises(InvalidBlobIdError):
            blob_store.exists(blob_id)
        with pytest.raises(InvalidBlobIdError):
            blob_store.delete(blob_id)
        with pytest.raises(InvalidBlobIdError):
            encrypt_stream(KEY, [b"x"], blob_store, subject=SUBJECT, blob_id=blob_id, key_version=1)


class TestLocalBlobStore:
    """What only the directory store adds: permissions and crash safety."""

    def test_root_is_0700_and_blobs_are_0600(self, tmp_path: Path) -> None:
        """The store's directory and files are private even under a permissive umask."""
        old_umask = os.umask(0)
        try:
            store = LocalBlobStore(tmp_path / "blobs")
            encrypt_stream(KEY, [b"abc"], store, subject=SUBJECT, blob_id="r", key_version=1)
        finally:
            os.umask(old_umask)
        assert stat.S_IMODE((tmp_path / "blobs").stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "blobs" / "r").stat().st_mode) == 0o600

    def test_root_that_is_a_file_is_refused(self, tmp_path: Path) -> None:
        """A store root that exists as a regular file is refused."""
        (tmp_path / "blobs").write_bytes(b"")
        with pytest.raises(NotADirectoryError):
            LocalBlobStore(tmp_path / "blobs")

    def test_crash_never_leaves_a_half_blob(self, tmp_path: Path) -> None:
        """A process killed mid-write leaves nothing under the blob's final name."""
        root = tmp_path / "blobs"
        script = textwrap.dedent(
            f"""
            import os
            from vault.blobs import LocalBlobStore
            store = LocalBlobStore({str(root)!r})
            with store.open_write("r") as sink:
                sink.write(b"half a recording")
                sink.flush()
                os._exit(3)
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=Path(__file__).resolve().parents[2],
            check=False,
            timeout=60,
        )
        assert result.returncode == 3
        store = LocalBlobStore(root)
        assert not store.exists("r")
        leftovers = [p.name for p in root.iterdir()]
        assert all(name.startswith(".r.") and name.endswith(".tmp") for name in leftovers)
        with pytest.raises(BlobNotFoundError):
            store.open_read("r")
