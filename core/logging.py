"""Structured logging (structlog) that never writes personal data.

JSON lines when stderr is not a terminal, readable output on one. Two processors stand
between every log call and its output:

* :func:`drop_sensitive_keys` replaces the value under any sensitive key (``password``,
  ``pesel``, ``email``, ``token`` ...) with ``[redacted]``;
* :func:`mask_pii_values` masks anything that looks like a PESEL, NIP, IBAN, payment card
  number, e-mail address, phone number or another person's number inside every string
  logged, at any depth, however it is written (:mod:`core.pii` normalises first).

Invariant: both run before any renderer, so no configured output sees raw values.
Log subject tokens, never values.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from core.pii import find_personal_data, mask_text

REDACTED = "[redacted]"

SENSITIVE_KEYS = frozenset({
    "password", "passphrase", "secret", "client_secret", "token", "access_token", "refresh_token",
    "session_token", "authorization", "cookie", "pin", "so_pin", "totp", "otp", "code", "recovery_code",
    "api_key", "private_key", "key", "data_key", "plaintext", "value", "values", "fields",
    "pesel", "nip", "regon", "iban", "email", "phone", "first_name", "last_name", "name", "surname",
    "address", "id_card", "passport", "date_of_birth", "employer", "note", "notes", "gps",
})
SENSITIVE_SUFFIXES = ("_password", "_secret", "_pin", "_passphrase", "_plaintext")


def clear_of_pii_patterns(generate: Callable[[], str]) -> str:
    """A random identifier from ``generate`` in which :func:`core.pii.find_personal_data` finds nothing.

    Random hex or base62 now and then holds a run of digits that passes a card's Luhn
    check or reads as a phone number or a PESEL (:mod:`core.pii`). Such an id would be
    refused wherever the audit log checks plain text for personal data, so every
    identifier Tarcza generates is drawn again until it is clear.
    """
    while True:
        value = generate()
        if find_personal_data(value) is None:
            return value


def _is_sensitive(key: object) -> bool:
    if not isinstance(key, str):
        return False
    lowered = key.lower()
    return lowered in SENSITIVE_KEYS or lowered.endswith(SENSITIVE_SUFFIXES)


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return REDACTED
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return {k: (REDACTED if _is_sensitive(k) else _scrub(v, depth + 1)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v, depth + 1) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return mask_text(str(value))


def drop_sensitive_keys(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Replace the values under sensitive keys (at the top level) with ``[redacted]``."""
    for key in list(event_dict):
        if _is_sensitive(key):
            event_dict[key] = REDACTED
    return event_dict


def mask_pii_values(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Mask PII-looking text in every value, nested mappings and sequences included."""
    for key, value in list(event_dict.items()):
        if key == "exc_info":
            continue
        event_dict[key] = _scrub(value)
    return event_dict


def _format_exception_safely(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Render exceptions, then mask the rendered text (messages may quote values)."""
    event_dict = structlog.processors.format_exc_info(_logger, _method, event_dict)
    if "exception" in event_dict and isinstance(event_dict["exception"], str):
        event_dict["exception"] = mask_text(event_dict["exception"])
    return event_dict


PII_PROCESSORS: tuple[Processor, ...] = (drop_sensitive_keys, mask_pii_values)


def configure_logging(level: str = "INFO", fmt: str = "auto", stream: Any = None) -> None:
    """Configure structlog (and route stdlib logging through the same redaction)."""
    out = stream if stream is not None else sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not (hasattr(out, "isatty") and out.isatty()))
    renderer: Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        *PII_PROCESSORS,
        _format_exception_safely,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # Third-party libraries log through the stdlib: send those lines through the same processors.
    handler = logging.StreamHandler(out)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True),
                           *PII_PROCESSORS],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; bind subject tokens and ids, never personal values."""
    return structlog.get_logger(name)


__all__ = ["PII_PROCESSORS", "configure_logging", "drop_sensitive_keys", "get_logger", "mask_pii_values", "mask_text"]
