"""Masks: what a role sees of a field value without a reveal.

Strategies are small pure functions in a registry, keyed by the names used in
``policies/fields.yaml``. They take the canonical stored value (the output of
``vault.validators.normalise``). Invariants:

- A mask fails closed: a value a strategy cannot read is shown as ``[redacted]``, never
  as is.
- An unknown role sees ``[redacted]``; an unknown strategy is a bug and raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import phonenumbers

if TYPE_CHECKING:
    from vault.fields import FieldCatalogue

__all__ = ["REDACTED", "STRATEGIES", "mask", "mask_for"]

REDACTED: Final = "[redacted]"
_STAR: Final = "*"
_ISO_DATE = re.compile(r"([0-9]{4})-[0-9]{2}-[0-9]{2}")
_GPS = re.compile(r"\s*([+-]?[0-9]{1,3}(?:\.[0-9]+)?)\s*,\s*([+-]?[0-9]{1,3}(?:\.[0-9]+)?)\s*")


def _groups(text: str, size: int) -> str:
    return " ".join(text[i : i + size] for i in range(0, len(text), size))


def _keep_last(value: str, keep: int) -> str:
    """All characters as ``*`` except the last ``keep``; all starred when too short."""
    if len(value) <= keep:
        return _STAR * len(value)
    return _STAR * (len(value) - keep) + value[-keep:]


def mask_none(value: str) -> str:
    """The value as it is."""
    return value


def mask_redacted(value: str) -> str:  # noqa: ARG001 - every strategy takes the value
    """Nothing of the value: ``[redacted]``."""
    return REDACTED


def mask_pesel(value: str) -> str:
    """``*******1359``: every character but the last four starred (length is public)."""
    return _keep_last(value, 4)


def mask_last4(value: str) -> str:
    """``****1234``: a fixed run of stars, so the mask does not tell the length."""
    if len(value) <= 4:
        return _STAR * 4
    return _STAR * 4 + value[-4:]


def mask_phone(value: str) -> str:
    """``+48 *** *** 567``: country code, starred groups of three, last three digits."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return REDACTED
    national = phonenumbers.national_significant_number(number)
    if len(national) <= 3:
        return REDACTED
    hidden = _groups(_STAR * (len(national) - 3), 3)
    return f"+{number.country_code} {hidden} {national[-3:]}"


def mask_iban(value: str) -> str:
    """``PL** **** **** **** **** **** 1234``: country code and last four, in groups of four."""
    compact = "".join(value.split())
    if len(compact) < 8 or not compact[:2].isalpha():
        return REDACTED
    return _groups(compact[:2] + _STAR * (len(compact) - 6) + compact[-4:], 4)


def mask_initials(value: str) -> str:
    """``J. K.``: the first letter of each name (and of each part of a double name)."""
    words = value.split()
    if not words:
        return REDACTED
    return " ".join("-".join(f"{part[0].upper()}." for part in word.split("-") if part) for word in words)


def mask_email(value: str) -> str:
    """``j***@example.pl``: the first character of the local part, then the domain."""
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        return REDACTED
    return f"{local[0]}***@{domain}"


def mask_year_only(value: str) -> str:
    """``1985-**-**``: the year of a date, not the day."""
    match = _ISO_DATE.fullmatch(value.strip())
    if match is None:
        return REDACTED
    return f"{match.group(1)}-**-**"


def mask_gps_coarse(value: str) -> str:
    """``52.2,21.0``: a position rounded to one decimal (about 11 km of latitude)."""
    match = _GPS.fullmatch(value)
    if match is None:
        return REDACTED
    lat, lon = (round(float(part), 1) + 0.0 for part in match.groups())
    return f"{lat:.1f},{lon:.1f}"


STRATEGIES: Final[dict[str, Callable[[str], str]]] = {
    "none": mask_none,
    "redacted": mask_redacted,
    "pesel": mask_pesel,
    "last4": mask_last4,
    "phone": mask_phone,
    "iban": mask_iban,
    "initials": mask_initials,
    "email": mask_email,
    "year_only": mask_year_only,
    "gps_coarse": mask_gps_coarse,
}


def mask(strategy: str, value: str) -> str:
    """Apply the named strategy to a canonical value.

    Raises :class:`ValueError` for an unknown strategy (the catalogue is validated
    against :data:`STRATEGIES` when it loads, so this is a bug, not input).
    """
    fn = STRATEGIES.get(strategy)
    if fn is None:
        raise ValueError(f"unknown mask strategy {strategy!r}")
    return fn(value)


def mask_for(field: str, role: str, value: str, catalogue: FieldCatalogue) -> str:
    """What ``role`` sees of ``field``'s value, per the catalogue; unknown roles see nothing."""
    return mask(catalogue.mask_strategy(field, role), value)
