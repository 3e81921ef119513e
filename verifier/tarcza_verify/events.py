"""The check that an exported entry is an event, written as RFC 8785 canonical JSON.

An entry's line is the leaf input itself, so its bytes are what the log committed to. This
module checks what they must be: a JSON object that parses, holds no float (numbers are
integers of at most 2**53 - 1 in absolute value, as events never carry fractions), and is
written exactly as RFC 8785 writes it (no whitespace, members sorted by their names' UTF-16
code units, only ``"``, ``\\`` and control characters escaped, ``\\u00xx`` in lower case);
and an event: ``v`` 1, ``id``, ``type``, ``time`` (RFC 3339 UTC ending in ``Z``),
``actor`` ``{"id", "kind"}``, ``payload`` (an object) and an optional ``subject``.

Standard library only; Tarcza's tests check the serialisation byte for byte against the
``rfc8785`` package.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

__all__ = ["EventFormatError", "canonical", "event_time", "parse_event"]

_MAX_SAFE_INTEGER: Final = 2**53 - 1
_REQUIRED: Final = {"v", "id", "type", "time", "actor", "payload"}
_OPTIONAL: Final = {"subject"}


class EventFormatError(ValueError):
    """An entry's bytes are not canonical JSON of an event; the message says what is wrong."""


def _refuse_constant(name: str) -> Any:
    raise EventFormatError(f"{name} is not a JSON number an event holds")


def _refuse_float(text: str) -> Any:
    raise EventFormatError(f"the number {text[:20]} has a fraction or exponent; events hold whole numbers only")


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append("{")
        for position, name in enumerate(sorted(value, key=lambda key: key.encode("utf-16-be"))):
            if position:
                out.append(",")
            out.append(json.dumps(name, ensure_ascii=False))
            out.append(":")
            _write(value[name], out)
        out.append("}")
    elif isinstance(value, list):
        out.append("[")
        for position, item in enumerate(value):
            if position:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        if abs(value) > _MAX_SAFE_INTEGER:
            raise EventFormatError(f"the integer {value} is beyond 2**53 - 1, which RFC 8785 cannot write exactly")
        out.append(str(value))
    else:  # pragma: no cover - json.loads gives no other type once floats are refused
        raise EventFormatError(f"a {type(value).__name__} is not a JSON value")


def canonical(value: Any) -> bytes:
    """The RFC 8785 bytes of a JSON value without floats (integers up to 2**53 - 1)."""
    out: list[str] = []
    _write(value, out)
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError:
        raise EventFormatError("a string holds an unpaired surrogate (not valid Unicode)") from None


def parse_event(line: bytes) -> dict[str, Any]:
    """The event an entry's line holds; :class:`EventFormatError` saying what is wrong otherwise."""
    try:
        value = json.loads(line.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_refuse_float)
    except UnicodeDecodeError:
        raise EventFormatError("not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise EventFormatError(f"not JSON ({exc.msg} at byte {exc.pos})") from None
    if not isinstance(value, dict):
        raise EventFormatError("not a JSON object")
    if canonical(value) != line:
        raise EventFormatError("not written as RFC 8785 canonical JSON (the log never writes it so)")
    missing, unknown = _REQUIRED - set(value), set(value) - _REQUIRED - _OPTIONAL
    if missing or unknown:
        raise EventFormatError(f"not an event: missing {sorted(missing)}, unknown {sorted(unknown)}")
    actor = value["actor"]
    if value["v"] != 1 or not all(isinstance(value[k], str) for k in ("id", "type", "time")) \
            or not isinstance(value["payload"], dict) or not isinstance(actor, dict) \
            or set(actor) != {"id", "kind"} or not all(isinstance(v, str) for v in actor.values()) \
            or not isinstance(value.get("subject", ""), str):
        raise EventFormatError("not an event of format v1 (v, id, type, time, actor {id, kind}, payload, subject)")
    event_time(value)
    return value


def event_time(event: dict[str, Any]) -> datetime:
    """The event's ``time`` (RFC 3339 UTC with a ``Z``) as an aware datetime."""
    text = event.get("time")
    if not isinstance(text, str) or not text.endswith("Z"):
        raise EventFormatError("time is not RFC 3339 UTC ending in Z")
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError:
        raise EventFormatError("time is not RFC 3339 UTC ending in Z") from None
