"""tarcza_verify.subject_archive: a server's subject archive verifies, repacked or not; every file counts."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from audit.checkpoint import Signer
from tarcza_verify.errors import ArchiveError
from tarcza_verify.subject_archive import verify_subject_archive
from tarcza_verify.unpack import Limits

from .conftest import ArchiveSample


def repack(source: Path, target: Path, *, prefix: str = "", folders: bool = False, reverse: bool = False,
           change: Callable[[str, bytes], bytes | None] = lambda _n, d: d,
           add: dict[str, bytes] | None = None) -> Path:
    """Copy a zip member by member: under ``prefix``, with folder entries, in reverse order, changed or added."""
    with zipfile.ZipFile(source) as zin:
        members = [(info.filename, zin.read(info)) for info in zin.infolist()]
    if reverse:
        members.reverse()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        if prefix:
            zout.writestr(zipfile.ZipInfo(prefix), b"")
        if folders:
            for folder in ("log/", "recordings/"):
                zout.writestr(zipfile.ZipInfo(prefix + folder), b"")
        for name, data in members:
            changed = change(name, data)
            if changed is not None:
                zout.writestr(prefix + name, changed)
        for name, data in (add or {}).items():
            zout.writestr(prefix + name, data)
    return target


class TestServerArchive:
    def test_archive_verifies_with_the_log_key(self, server_exports: ArchiveSample) -> None:
        """The server's archive verifies with its log's key: signed, log entries backed, checkpoint time shown."""
        result = verify_subject_archive(server_exports.archive, server_exports.key)
        assert result.signed
        assert result.log_entries >= 2
        assert result.contacts_backed == 1
        assert result.checkpoint_time is not None
        assert result.key == server_exports.key.to_string()

    @pytest.mark.parametrize(("prefix", "folders", "reverse"), [
        ("", True, False), ("", True, True), ("subject/", True, False), ("subject/", False, True),
    ], ids=["folder-entries", "reordered", "enclosing-folder", "enclosing-reordered"])
    def test_repacked_archive_verifies(self, server_exports: ArchiveSample, tmp_path: Path, prefix: str,
                                       folders: bool, reverse: bool) -> None:
        """Folder entries (log/, recordings/), another order and one enclosing folder do not matter."""
        repacked = repack(server_exports.archive, tmp_path / "r.zip", prefix=prefix, folders=folders,
                          reverse=reverse)
        assert verify_subject_archive(repacked, server_exports.key).signed

    @pytest.mark.parametrize("name", ["__MACOSX/._data.json", ".DS_Store", "log/notes.txt", "extra/"])
    def test_anything_unlisted_is_refused(self, server_exports: ArchiveSample, tmp_path: Path, name: str) -> None:
        """A file or folder the manifest does not list refuses the archive, named."""
        bad = repack(server_exports.archive, tmp_path / "bad.zip", add={name: b""})
        with pytest.raises(ArchiveError) as caught:
            verify_subject_archive(bad, server_exports.key)
        assert caught.value.file.rstrip("/") in name

    def test_unsigned_archive_is_refused(self, server_exports: ArchiveSample, tmp_path: Path) -> None:
        """Without manifest.sig the archive is refused (unless the caller explicitly accepts unsigned ones)."""
        bad = repack(server_exports.archive, tmp_path / "bad.zip",
                     change=lambda n, d: None if n == "manifest.sig" else d)
        with pytest.raises(ArchiveError, match=r"manifest\.sig: missing"):
            verify_subject_archive(bad, server_exports.key)
        assert not verify_subject_archive(bad, server_exports.key, allow_unsigned=True).signed

    def test_another_key_is_refused(self, server_exports: ArchiveSample) -> None:
        """An archive checked with another key than its log's fails on manifest.sig, named."""
        with pytest.raises(ArchiveError) as caught:
            verify_subject_archive(server_exports.archive, Signer.generate("x.example.pl/log").verifier())
        assert caught.value.file == "manifest.sig"

    def test_changed_byte_is_named(self, server_exports: ArchiveSample, tmp_path: Path) -> None:
        """A changed byte of data.json is refused naming data.json, never quoting its content."""
        def flip(name: str, data: bytes) -> bytes:
            return data[:10] + bytes([data[10] ^ 1]) + data[11:] if name == "data.json" else data

        bad = repack(server_exports.archive, tmp_path / "bad.zip", change=flip)
        with pytest.raises(ArchiveError, match=r"data\.json: changed after the archive was made") as caught:
            verify_subject_archive(bad, server_exports.key)
        assert caught.value.file == "data.json"

    def test_limits_bound_what_is_read(self, server_exports: ArchiveSample) -> None:
        """An archive with more files than the limit, or listing more bytes, is refused before it is read."""
        with pytest.raises(ArchiveError, match="more than 3 files"):
            verify_subject_archive(server_exports.archive, server_exports.key, limits=Limits(3, 1 << 30))
        with pytest.raises(ArchiveError, match="more than 100 bytes"):
            verify_subject_archive(server_exports.archive, server_exports.key, limits=Limits(1000, 100))
