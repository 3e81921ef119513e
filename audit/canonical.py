"""The bytes of an event: RFC 8785 canonical JSON and the one spelling of a time.

Pure functions, no clock: the leaf input of an entry is :func:`canonical_json` of the event's
JSON value, and anyone can recompute it from an exported entry (ADR 0002).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import rfc8785

from core.errors import InvalidInputError


def canonical_json(value: dict[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of an event value.

    Events hold only ASCII keys, strings, integers, booleans, null, lists and objects (no
    floats: the catalogue has none, see tests). In that domain the JCS rules (keys sorted by
    UTF-16 code unit, no whitespace, only ``"``, ``\\`` and control characters escaped,
    lowercase ``\\u00xx``) are exactly what the standard library's ``json`` writes with
    these options, many times faster than a general JCS serializer. ``rfc8785`` stays the
    reference: the verifier's event check and a property test use it.
    """
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError("event text holds an unpaired surrogate (not valid Unicode)") from None


def format_time(value: datetime) -> str:
    """RFC 3339 UTC with microseconds, the one spelling used in canonical events."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_leaf_input(data: bytes) -> dict[str, Any]:
    """Parse an exported leaf input and check that it is canonical; ValueError if not."""
    value = json.loads(data.decode("utf-8"))
    if not isinstance(value, dict) or rfc8785.dumps(value) != data:
        raise ValueError("leaf input is not canonical JSON (RFC 8785)")
    return value
