"""tarcza_verify.unpack: a .tar.gz is unpacked only if it holds plain files within the limits."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tarcza_verify.errors import TooLargeError, UnpackError
from tarcza_verify.unpack import Limits, unpack_tar_gz

LIMITS = Limits(max_files=8, max_bytes=1 << 20)


def tar_gz(*members: tuple[str, bytes | None, bytes]) -> io.BytesIO:
    """An archive of (name, data or None for a folder, type) members."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/passwd"
            info.size = len(data) if data is not None else 0
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    out.seek(0)
    return out


class TestUnpack:
    def test_plain_files_are_unpacked(self, tmp_path: Path) -> None:
        """Folders and regular files are written as they are."""
        unpack_tar_gz(tar_gz(("e/", None, tarfile.DIRTYPE), ("e/a.txt", b"a", tarfile.REGTYPE)), tmp_path, LIMITS)
        assert (tmp_path / "e" / "a.txt").read_bytes() == b"a"

    @pytest.mark.parametrize(("name", "kind"), [
        ("e/link", tarfile.SYMTYPE), ("e/hard", tarfile.LNKTYPE), ("e/fifo", tarfile.FIFOTYPE),
        ("../escape.txt", tarfile.REGTYPE), ("/abs.txt", tarfile.REGTYPE), ("e/../../x", tarfile.REGTYPE),
    ], ids=["symlink", "hardlink", "fifo", "dotdot", "absolute", "inner-dotdot"])
    def test_anything_but_a_plain_relative_file_is_refused(self, tmp_path: Path, name: str, kind: bytes) -> None:
        """Links, special files and names that leave the folder refuse the archive; nothing is written outside."""
        target = tmp_path / "t"
        target.mkdir()
        with pytest.raises(UnpackError):
            unpack_tar_gz(tar_gz((name, b"x" if kind == tarfile.REGTYPE else None, kind)), target, LIMITS)
        assert not (tmp_path / "escape.txt").exists()

    def test_too_many_files_are_refused(self, tmp_path: Path) -> None:
        """More members than the limit refuse the archive."""
        members = [(f"f{i}", b"x", tarfile.REGTYPE) for i in range(9)]
        with pytest.raises(TooLargeError, match="more than 8 files"):
            unpack_tar_gz(tar_gz(*members), tmp_path, LIMITS)

    def test_declared_size_over_the_limit_is_refused_before_writing(self, tmp_path: Path) -> None:
        """A member that would pass the byte limit is refused before any of its bytes are written."""
        with pytest.raises(TooLargeError, match="more than 1048576 bytes"):
            unpack_tar_gz(tar_gz(("big.bin", bytes(2 << 20), tarfile.REGTYPE)), tmp_path, LIMITS)
        assert not (tmp_path / "big.bin").exists()

    def test_duplicate_member_is_refused(self, tmp_path: Path) -> None:
        """A name that appears twice refuses the archive (the second never overwrites the first)."""
        with pytest.raises(UnpackError, match="appears twice"):
            unpack_tar_gz(tar_gz(("a", b"1", tarfile.REGTYPE), ("a", b"2", tarfile.REGTYPE)), tmp_path, LIMITS)
        assert (tmp_path / "a").read_bytes() == b"1"

    def test_not_a_tar_gz_is_refused(self, tmp_path: Path) -> None:
        """Bytes that are not a gzip'd tar are refused as such."""
        with pytest.raises(UnpackError, match=r"not a readable \.tar\.gz"):
            unpack_tar_gz(io.BytesIO(b"PK\x03\x04 not a tarball"), tmp_path, LIMITS)
