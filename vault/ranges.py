"""One HTTP byte range of a recording (RFC 9110 section 14), decided against its size. Pure.

The gate (:mod:`vault.access`) applies it only after the subject decision: the size of a
recording is told (``416`` with ``Content-Range: bytes */<size>``) to no one who may not play it.
"""

from __future__ import annotations

import re
from typing import Final

from core.errors import TarczaError

__all__ = ["RangeNotSatisfiableError", "byte_range"]

_RANGE: Final = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")


class RangeNotSatisfiableError(TarczaError):
    """A ``Range`` that starts at or past the end of the recording."""

    status = 416
    code = "range-not-satisfiable"
    title = "Range not satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(f"the recording has {size} bytes")
        self.headers = {"Content-Range": f"bytes */{size}"}


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of a single ``Range: bytes=...`` header, clamped to ``size``.

    None means "send the whole recording": no header, or one this server ignores as RFC 9110
    section 14.2 allows (several ranges, another unit, a malformed one). A range that starts
    at or past the end raises :class:`RangeNotSatisfiableError`.
    """
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if not first:  # a suffix: the last N bytes
        if int(last) == 0 or size == 0:
            raise RangeNotSatisfiableError(size)
        return max(size - int(last), 0), size
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiableError(size)
    return start, size if not last else min(int(last) + 1, size)
