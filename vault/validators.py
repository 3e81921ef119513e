"""Validate a field value and bring it to the canonical form the vault stores.

Pure and I/O-free: no database, no DNS, no clock. Invariants:

- ``normalise`` either returns the canonical form or raises
  :class:`~vault.errors.InvalidFieldValueError` naming the field and a short rule slug;
  neither the message nor the exception chain ever holds the value (every re-raise is
  ``from None``, so a logged traceback cannot leak it through ``__context__``).
- ``normalise`` is idempotent: ``normalise(f, k, normalise(f, k, v)) == normalise(f, k, v)``.
  The blind index relies on this (it re-normalises defensively).

Rule slugs: ``not-text``, ``empty``, ``too-long``, ``control-character``,
``pesel-format``, ``pesel-checksum``, ``pesel-date``, ``nip-format``, ``nip-checksum``,
``regon-format``, ``regon-checksum``, ``id-card-format``, ``id-card-checksum``,
``passport-format``, ``passport-checksum``, ``iban-format``, ``iban-checksum``,
``phone-invalid``, ``email-syntax``, ``date-format``, ``date-range``, ``gps-format``,
``gps-range``.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Final

import phonenumbers

from vault.errors import InvalidFieldValueError

__all__ = ["KINDS", "canonical_or_none", "is_valid", "normalise"]

# Anything longer than this is refused before any parsing, whatever the kind, so no
# parser ever sees an unbounded input. The per-kind limits below are far smaller.
_MAX_RAW_CHARS: Final = 20_000

_TEXT_LIMITS: Final[dict[str, int]] = {
    "name": 100,
    "org_name": 200,
    "address": 300,
    "note": 10_000,
}
_EMAIL_MAX: Final = 254  # RFC 5321 forward-path limit, less the angle brackets
_EMAIL_LOCAL_MAX: Final = 64
_DNS_LABEL_MAX: Final = 63

_PESEL_WEIGHTS: Final = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
_NIP_WEIGHTS: Final = (6, 5, 7, 2, 3, 4, 5, 6, 7)
_REGON9_WEIGHTS: Final = (8, 9, 2, 3, 4, 5, 6, 7)
_REGON14_WEIGHTS: Final = (2, 4, 8, 5, 0, 9, 7, 3, 6, 1, 2, 4, 8)
_ID_CARD_WEIGHTS: Final = (7, 3, 1, 9, 7, 3, 1, 7, 3)
_PASSPORT_WEIGHTS: Final = (7, 3, 9, 1, 7, 3, 1, 7, 3)

# PESEL month offset -> first year of the century it encodes.
_PESEL_CENTURIES: Final = {80: 1800, 0: 1900, 20: 2000, 40: 2100, 60: 2200}

# Identifiers accept ASCII spaces and dashes as separators; text collapses any Unicode
# whitespace (after control characters have been refused).
_SEPARATORS = re.compile(r"[\s-]+", re.ASCII)
_ASCII_SPACES = re.compile(r"\s+", re.ASCII)
_SPACES = re.compile(r"\s+")
_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_DIGITS = re.compile(r"[0-9]+")
_ID_CARD = re.compile(r"[A-Z]{3}[0-9]{6}")
_PASSPORT = re.compile(r"[A-Z]{2}[0-9]{7}")
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_NRB = re.compile(r"[0-9]{26}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_COORDINATE = re.compile(r"[+-]?[0-9]{1,3}(?:\.[0-9]{1,15})?")
# RFC 5322 dot-atom for the local part (no quoted strings, no comments): the pragmatic
# subset real mailboxes use. Domain: LDH labels, at least two, alphabetic or IDNA TLD.
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_TLD = re.compile(r"(?:[a-z]{2,}|xn--[a-z0-9-]+)")

# Whitespace a text field may contain before it is collapsed; every other character of
# Unicode category C (control, format, surrogate, private use, unassigned) is refused.
_ALLOWED_SPACE: Final = frozenset(" \t\n\r")


def _fail(field: str, rule: str) -> InvalidFieldValueError:
    return InvalidFieldValueError(field, rule)


def _digits_of(text: str) -> list[int]:
    return [ord(ch) - 48 for ch in text]


def _weighted(values: Sequence[int], weights: Sequence[int]) -> int:
    return sum(v * w for v, w in zip(values, weights, strict=True))


def _strip_separators(value: str) -> str:
    return _SEPARATORS.sub("", value)


def _check_text_characters(field: str, value: str) -> None:
    if value.isprintable():  # no character of category C (nor Z, but a space), so nothing to refuse
        return
    for ch in value:
        if ch in _ALLOWED_SPACE or unicodedata.category(ch) == "Zs":
            continue
        if unicodedata.category(ch).startswith("C"):
            raise _fail(field, "control-character")


def _text(field: str, kind: str, value: str) -> str:
    """Names, organisation names, addresses: NFC, one line, single spaces, bounded."""
    value = unicodedata.normalize("NFC", value)
    _check_text_characters(field, value)
    out = _SPACES.sub(" ", value).strip()
    if not out:
        raise _fail(field, "empty")
    if len(out) > _TEXT_LIMITS[kind]:
        raise _fail(field, "too-long")
    return out


def _note(field: str, kind: str, value: str) -> str:
    """Free-text notes: like other text, but line breaks survive (at most one blank line)."""
    value = unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n")
    _check_text_characters(field, value)
    lines = [_HORIZONTAL_SPACE.sub(" ", line).strip() for line in value.split("\n")]
    out = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    if not out:
        raise _fail(field, "empty")
    if len(out) > _TEXT_LIMITS[kind]:
        raise _fail(field, "too-long")
    return out


def _pesel(field: str, value: str) -> str:
    """PESEL: 11 digits, checksum (weights 1,3,7,9,...), and a real encoded date of birth."""
    pesel = value.strip()
    if len(pesel) != 11 or not _DIGITS.fullmatch(pesel):
        raise _fail(field, "pesel-format")
    digits = _digits_of(pesel)
    if (10 - _weighted(digits[:10], _PESEL_WEIGHTS) % 10) % 10 != digits[10]:
        raise _fail(field, "pesel-checksum")
    encoded_month = digits[2] * 10 + digits[3]
    offset = encoded_month // 20 * 20
    century = _PESEL_CENTURIES.get(offset)
    if century is None:
        raise _fail(field, "pesel-date")
    year = century + digits[0] * 10 + digits[1]
    try:
        dt.date(year, encoded_month - offset, digits[4] * 10 + digits[5])
    except ValueError:
        raise _fail(field, "pesel-date") from None
    return pesel


def _nip(field: str, value: str) -> str:
    """NIP: 10 digits (dashes and spaces accepted), weights 6,5,7,2,3,4,5,6,7 mod 11."""
    nip = _strip_separators(value)
    if len(nip) != 10 or not _DIGITS.fullmatch(nip):
        raise _fail(field, "nip-format")
    digits = _digits_of(nip)
    check = _weighted(digits[:9], _NIP_WEIGHTS) % 11
    if check == 10 or check != digits[9]:  # a remainder of 10 is never issued
        raise _fail(field, "nip-checksum")
    return nip


def _regon_ok(digits: Sequence[int], weights: Sequence[int]) -> bool:
    return _weighted(digits[:-1], weights) % 11 % 10 == digits[-1]


def _regon(field: str, value: str) -> str:
    """REGON: 9 digits, or 14 digits whose first 9 are themselves a valid REGON.

    The 14-digit weights give position 5 a weight of 0, so that digit is protected only
    by the check of the 9-digit prefix; both checks are applied. Both checks map a
    remainder of 10 to 0, so a check digit of 0 cannot tell remainders 0 and 10 apart.
    """
    regon = _strip_separators(value)
    if len(regon) not in (9, 14) or not _DIGITS.fullmatch(regon):
        raise _fail(field, "regon-format")
    digits = _digits_of(regon)
    if not _regon_ok(digits[:9], _REGON9_WEIGHTS):
        raise _fail(field, "regon-checksum")
    if len(digits) == 14 and not _regon_ok(digits, _REGON14_WEIGHTS):
        raise _fail(field, "regon-checksum")
    return regon


def _alnum_values(text: str) -> list[int]:
    """Digits keep their value, letters A..Z count 10..35 (ICAO 9303 style)."""
    return [ord(ch) - 55 if ch.isalpha() else ord(ch) - 48 for ch in text]


def _id_card(field: str, value: str) -> str:
    """Dowód osobisty: 3 letters + 6 digits; weights 7,3,1,9,7,3,1,7,3, check digit 4th."""
    number = _strip_separators(value)
    if not number.isascii():  # checked first: "ß".upper() == "SS"
        raise _fail(field, "id-card-format")
    number = number.upper()
    if not _ID_CARD.fullmatch(number):
        raise _fail(field, "id-card-format")
    if _weighted(_alnum_values(number), _ID_CARD_WEIGHTS) % 10 != 0:
        raise _fail(field, "id-card-checksum")
    return number


def _passport(field: str, value: str) -> str:
    """Polish passport: 2 letters + 7 digits; the 3rd character is the check digit.

    Weights 7,3,9,1,7,3,1,7,3 over all nine characters (letters A=10..Z=35), the sum
    divisible by 10, as in the identity card's scheme with the check digit moved to
    index 2. There is no public normative text for it; the scheme comes from published
    validator descriptions that agree with one another. Only Polish passports are
    accepted here: a foreign passport number needs a field and kind of its own.
    """
    number = _strip_separators(value)
    if not number.isascii():  # checked first: "ß".upper() == "SS"
        raise _fail(field, "passport-format")
    number = number.upper()
    if not _PASSPORT.fullmatch(number):
        raise _fail(field, "passport-format")
    if _weighted(_alnum_values(number), _PASSPORT_WEIGHTS) % 10 != 0:
        raise _fail(field, "passport-checksum")
    return number


def _iban(field: str, value: str) -> str:
    """IBAN (ISO 13616 mod-97); a bare 26-digit Polish NRB is read as ``PL`` + NRB.

    Structure is checked generically (country letters, two check digits, 11 to 30
    alphanumerics) plus the Polish length of 28; other countries' registry lengths are
    not enforced, the mod-97 check still is.
    """
    iban = _ASCII_SPACES.sub("", value)
    if not iban.isascii():
        raise _fail(field, "iban-format")
    iban = iban.upper()
    if _NRB.fullmatch(iban):
        iban = "PL" + iban
    if not _IBAN.fullmatch(iban) or (iban.startswith("PL") and len(iban) != 28):
        raise _fail(field, "iban-format")
    if not 2 <= int(iban[2:4]) <= 98:  # 00, 01 and 99 are never issued check digits
        raise _fail(field, "iban-checksum")
    rearranged = "".join(str(v) for v in _alnum_values(iban[4:] + iban[:4]))
    if int(rearranged) % 97 != 1:
        raise _fail(field, "iban-checksum")
    return iban


def _phone(field: str, value: str) -> str:
    """Phone number: parsed with default region PL, must be a valid number; E.164."""
    try:
        number = phonenumbers.parse(value, "PL")
    except phonenumbers.NumberParseException:
        raise _fail(field, "phone-invalid") from None
    # An extension would be dropped by E.164, so it is refused rather than lost.
    if number.extension or not phonenumbers.is_valid_number(number):
        raise _fail(field, "phone-invalid")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _email(field: str, value: str) -> str:
    """E-mail: dot-atom local part (kept as given) @ ASCII domain (lower-cased); no DNS.

    Quoted local parts, comments, IP-literal domains and non-ASCII addresses (RFC 6531)
    are refused: collection systems cannot send to them reliably anyway.
    """
    address = value.strip()
    if len(address) > _EMAIL_MAX:
        raise _fail(field, "too-long")
    local, at, domain = address.rpartition("@")
    if not at or len(local) > _EMAIL_LOCAL_MAX or not _LOCAL_PART.fullmatch(local):
        raise _fail(field, "email-syntax")
    domain = domain.lower()
    labels = domain.split(".")
    if len(labels) < 2 or not _TLD.fullmatch(labels[-1]):
        raise _fail(field, "email-syntax")
    for label in labels:
        if len(label) > _DNS_LABEL_MAX or not _DNS_LABEL.fullmatch(label):
            raise _fail(field, "email-syntax")
    return f"{local}@{domain}"


def _date(field: str, value: str) -> str:
    """Date of birth: ISO 8601 calendar date ``YYYY-MM-DD``, year 1900 or later."""
    text = value.strip()
    if not _ISO_DATE.fullmatch(text):
        raise _fail(field, "date-format")
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise _fail(field, "date-format") from None
    if day.year < 1900:
        raise _fail(field, "date-range")
    return day.isoformat()


def _gps(field: str, value: str) -> str:
    """A ``lat,lon`` position in decimal degrees, normalised to six decimals (~0.1 m)."""
    parts = value.split(",")
    if len(parts) != 2:
        raise _fail(field, "gps-format")
    lat_text, lon_text = (part.strip() for part in parts)
    if not _COORDINATE.fullmatch(lat_text) or not _COORDINATE.fullmatch(lon_text):
        raise _fail(field, "gps-format")
    lat, lon = float(lat_text), float(lon_text)
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise _fail(field, "gps-range")
    # "+ 0.0" turns a rounded -0.0 into 0.0 so one position has one spelling.
    return f"{round(lat, 6) + 0.0:.6f},{round(lon, 6) + 0.0:.6f}"


def _with_kind(fn: Callable[[str, str, str], str], kind: str) -> Callable[[str, str], str]:
    return lambda field, value: fn(field, kind, value)


_NORMALISERS: Final[dict[str, Callable[[str, str], str]]] = {
    "name": _with_kind(_text, "name"),
    "org_name": _with_kind(_text, "org_name"),
    "address": _with_kind(_text, "address"),
    "note": _with_kind(_note, "note"),
    "pesel": _pesel,
    "nip": _nip,
    "regon": _regon,
    "id_card": _id_card,
    "passport": _passport,
    "iban": _iban,
    "phone": _phone,
    "email": _email,
    "date": _date,
    "gps": _gps,
}

#: The validator names a field's ``kind`` may take in ``policies/fields.yaml``.
KINDS: Final = frozenset(_NORMALISERS)


def normalise(field: str, kind: str, value: str) -> str:
    """Validate ``value`` as ``kind`` and return the canonical form stored for ``field``.

    Raises :class:`InvalidFieldValueError` (field and rule, never the value) when the
    value is refused, and :class:`ValueError` for an unknown ``kind``, which is a bug in
    the caller or the catalogue rather than bad input.
    """
    normaliser = _NORMALISERS.get(kind)
    if normaliser is None:
        raise ValueError(f"unknown field kind {kind!r}")
    if not isinstance(value, str):
        raise _fail(field, "not-text")
    if len(value) > _MAX_RAW_CHARS:
        raise _fail(field, "too-long")
    if not value.strip():
        raise _fail(field, "empty")
    return normaliser(field, value)


def canonical_or_none(kind: str, value: str) -> str | None:
    """The canonical form of ``value`` as ``kind``, or ``None`` when the validator refuses it.

    For callers that test candidates rather than store them (PII detection in free text,
    see :mod:`vault.detect`): a refusal is an expected outcome there, not an error, and
    the value never reaches an exception or a log line.
    """
    try:
        return normalise("candidate", kind, value)
    except InvalidFieldValueError:
        return None


def is_valid(kind: str, value: str) -> bool:
    """Whether ``value`` passes the ``kind`` validator, checksums and dates included."""
    return canonical_or_none(kind, value) is not None
