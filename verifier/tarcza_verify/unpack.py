"""Unpacking an audit export's ``.tar.gz`` without trusting it: no links, no path outside, bounded size.

Invariants:

- Only regular files and directories are unpacked; a link, a device, an absolute name or a
  ``..`` refuses the whole archive (:class:`~tarcza_verify.errors.UnpackError`).
- The archive is read as a stream, once. Before any member's bytes are read, its declared
  size is added to the total: more than ``limits.max_bytes`` in all, or more than
  ``limits.max_files`` members, refuses it (:class:`~tarcza_verify.errors.TooLargeError`);
  so a decompression bomb is never unpacked, and no more than the limit is ever written.
- Files are created new (``x`` mode) under a directory the caller owns; nothing else is touched.
"""

from __future__ import annotations

import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tarcza_verify.errors import TooLargeError, UnpackError

__all__ = ["DEFAULT_LIMITS", "Limits", "unpack_tar_gz"]


@dataclass(frozen=True)
class Limits:
    """The most an archive may unpack to: members (files and folders) and bytes in all."""

    max_files: int
    max_bytes: int

    def check(self, files: int, total: int, name: str) -> None:
        """Refuse once ``files`` members or ``total`` bytes (counting ``name``) pass the limits."""
        if files > self.max_files:
            raise TooLargeError(f"the archive holds more than {self.max_files} files; an export holds a handful",
                                max_files=self.max_files)
        if total > self.max_bytes:
            raise TooLargeError(f"the archive unpacks to more than {self.max_bytes} bytes (reached at {name}); "
                                "refusing it before writing more", max_bytes=self.max_bytes)


DEFAULT_LIMITS = Limits(max_files=100_000, max_bytes=256 << 30)
"""Generous bounds for an auditor's own machine (recordings can be large); the server sets its own."""


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or any(part in ("..", "") for part in name.rstrip("/").split("/")) \
            or "\\" in name or "\x00" in name:
        raise UnpackError(f"{name!r}: not a plain relative name; refusing the archive")
    return path


def unpack_tar_gz(source: BinaryIO | Path, target: Path, limits: Limits = DEFAULT_LIMITS) -> None:
    """Unpack the ``.tar.gz`` ``source`` (a file object or a path) into the existing empty ``target``."""
    files = total = 0
    opened: BinaryIO | None = None
    try:
        if isinstance(source, Path):
            opened = source.open("rb")
        stream = opened if opened is not None else source
        assert not isinstance(stream, Path)  # noqa: S101 - narrowed above
        with tarfile.open(fileobj=stream, mode="r|gz") as tar:
            for member in tar:
                files += 1
                total += max(member.size, 0) if member.isfile() else 0
                limits.check(files, total, member.name)
                relative = _safe_name(member.name)
                destination = target.joinpath(*relative.parts)
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True, mode=0o700)
                    continue
                if not member.isfile():
                    raise UnpackError(f"{member.name!r}: a link or special file; an export holds plain files only")
                destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                data = tar.extractfile(member)
                if data is None:  # pragma: no cover - a regular member always has data
                    raise UnpackError(f"{member.name!r}: unreadable")
                try:
                    sink = open(destination, "xb")  # noqa: SIM115 - closed by the with below
                except FileExistsError:
                    raise UnpackError(f"{member.name!r}: appears twice in the archive") from None
                with data, sink:
                    shutil.copyfileobj(data, sink, 1 << 20)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise UnpackError(f"not a readable .tar.gz ({type(exc).__name__})") from None
    finally:
        if opened is not None:
            opened.close()
