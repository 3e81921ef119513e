"""Recognising personal data in plain text, however it is written.

Two uses: masking what the server log writes (:func:`mask_text`, through :mod:`core.logging`), and
refusing plain strings that would enter the audit log, which can never be erased
(:func:`find_personal_data`, through ``audit.events``; :func:`mentions_any` with the subject's own
values for events that name a subject).

Invariants:

* text is normalised before any pattern sees it (:func:`normalise`): Unicode NFKC, then, if anything
  non-ASCII is left, transliteration to ASCII (``anyascii``). Full-width digits and ``＠``, other
  scripts' digits, Cyrillic or Greek letters that look Latin, Unicode dashes and spaces all reach the
  patterns in their plain ASCII shape;
* separators do not hide a number: a run of nine or more digits, where up to three spaces, dashes,
  dots, slashes or brackets may stand between any two, and where ``x``, ``*``, ``#`` or ``?`` stand
  for hidden digits (``601-555-777x``) and ``O``/``l``/``I`` for ``0``/``1`` before a digit, is a
  number that may identify a person (a phone, PESEL, NIP, REGON, account or card number) once seven
  of its characters are real digits;
* shapes Tarcza writes itself are not numbers of a person: a UUID, a hex digest (32 or more hex
  characters, at least one in eight a letter), an ISO 8601 date or time, an IPv4 address;
* the functions are pure and never return or log the value they found, only its kind.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Final

from anyascii import anyascii

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+ ?@ ?[A-Za-z0-9\-]+(?: ?\. ?[A-Za-z0-9\-]+)*")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_NRB = re.compile(r"(?<![A-Za-z0-9])[0-9]{2}(?:[ ]?[0-9]{4}){6}(?![A-Za-z0-9])")
_CARD = re.compile(r"(?<![A-Za-z0-9])[0-9](?:[ \-]?[0-9]){12,18}(?![A-Za-z0-9])")
_PESEL = re.compile(r"(?<![A-Za-z0-9])[0-9]{11}(?![A-Za-z0-9])")
_NIP = re.compile(
    r"(?<![A-Za-z0-9])(?:[0-9]{10}|[0-9]{3}-[0-9]{3}-[0-9]{2}-[0-9]{2}|[0-9]{3}-[0-9]{2}-[0-9]{2}-[0-9]{3})"
    r"(?![A-Za-z0-9])")
_PHONE = re.compile(
    r"(?<![A-Za-z0-9])(?:(?:\+|00)[0-9]{2}[ \-]?)?"
    r"(?:[0-9]{3}[ \-]?[0-9]{3}[ \-]?[0-9]{3}|[0-9]{2}[ \-]?[0-9]{3}[ \-]?[0-9]{2}[ \-]?[0-9]{2})(?![A-Za-z0-9])"
)

_SEP = r"[ ./()\-]{0,3}"
_DIGITISH = r"[0-9xX*#?]"
_NUMBER = re.compile(rf"{_DIGITISH}(?:{_SEP}(?:{_DIGITISH}|[oOlI](?={_SEP}[0-9])))+")
NUMBER_MIN_DIGITS: Final = 9  # the shortest Polish number that identifies a person: a phone or a REGON
NUMBER_MIN_REAL_DIGITS: Final = 7

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_OWN_SHAPES = re.compile(
    r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![0-9A-Za-z])"
    r"|(?<![0-9A-Za-z])(?P<hex>[0-9a-fA-F]{32,})(?![0-9A-Za-z])"
    r"|(?<![0-9])(?:19|20|21)[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,9})?)?(?:Z|[+\-][0-9]{2}:?[0-9]{2})?)?(?![0-9])"
    rf"|(?<![0-9.]){_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?![0-9.])"
)
_ANY_DIGIT = re.compile(r"\d").search
_PLACEHOLDER = re.compile(r"\[(?:IBAN|CARD|PESEL|NIP|PHONE)\]")


def normalise(text: str) -> str:
    """``text`` in the shape the patterns read: NFKC, then transliterated to ASCII if anything else is left."""
    if text.isascii():
        return text
    return anyascii(unicodedata.normalize("NFKC", text))


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _own_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _OWN_SHAPES.finditer(text):
        hexes = match.group("hex")
        if hexes is not None and sum(c.isalpha() for c in hexes) * 8 < len(hexes):
            continue  # mostly digits: a number written long, not a digest
        spans.append(match.span())
    return spans


def _segments(text: str, spans: list[tuple[int, int]]) -> list[tuple[str, bool]]:
    """``text`` cut into pieces, each marked whether it is one of Tarcza's own shapes (left as it is)."""
    out: list[tuple[str, bool]] = []
    at = 0
    for start, end in spans:
        out.append((text[at:start], False))
        out.append((text[start:end], True))
        at = end
    out.append((text[at:], False))
    return out


def _numbers(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans of runs that read as a person's number and whose digits are not all in Tarcza's own shapes."""
    out = []
    for match in _NUMBER.finditer(text):
        if not _is_number(match.group(0)):
            continue
        digits = [match.start() + i for i, c in enumerate(match.group(0)) if c.isdigit()]
        if not all(any(a <= d < b for a, b in spans) for d in digits):
            out.append(match.span())
    return out


def _is_number(run: str) -> bool:
    digitish = sum(1 for c in run if c.isdigit() or c in "xX*#?oOlI")
    return digitish >= NUMBER_MIN_DIGITS and sum(1 for c in run if c.isdigit()) >= NUMBER_MIN_REAL_DIGITS


def _card(match: re.Match[str]) -> bool:
    return _luhn_ok(re.sub(r"[^0-9]", "", match.group(0)))


_PATTERNS: Final = (("email", _EMAIL), ("iban", _IBAN), ("iban", _NRB))
_DIGIT_PATTERNS: Final = (("card", _CARD), ("pesel", _PESEL), ("nip", _NIP), ("phone", _PHONE))
_MASKS: Final = {"email": "[EMAIL]", "iban": "[IBAN]", "card": "[CARD]", "pesel": "[PESEL]", "nip": "[NIP]",
                 "phone": "[PHONE]"}


def _masker(kind: str) -> Callable[[re.Match[str]], str]:
    def mask(match: re.Match[str]) -> str:
        return _MASKS[kind] if kind != "card" or _card(match) else match.group(0)

    return mask


def _needs_a_look(text: str) -> bool:
    return not text.isascii() or "@" in text or _ANY_DIGIT(text) is not None


def find_personal_data(text: str) -> str | None:
    """The kind of personal data ``text`` holds (``email``, ``iban``, ``card``, ``pesel``, ``nip``, ``phone``
    or ``number``), or None. Never the value itself."""
    if not _needs_a_look(text):
        return None
    norm = normalise(text)
    if "@" not in norm and _ANY_DIGIT(norm) is None:
        return None
    for kind, pattern in _PATTERNS:
        if pattern.search(norm):
            return kind
    spans = _own_spans(norm)
    for segment, own in _segments(norm, spans):
        if own:
            continue
        for kind, pattern in _DIGIT_PATTERNS:
            if any(kind != "card" or _card(m) for m in pattern.finditer(segment)):
                return kind
    return "number" if _numbers(norm, spans) else None


def mask_text(text: str) -> str:
    """``text`` with everything that looks like personal data masked (``[PHONE]``, ``[NUMBER]``...).

    Text with nothing to mask comes back exactly as it was given; masked text comes back normalised.
    """
    if not _needs_a_look(text):
        return text
    norm = normalise(text)
    masked = norm
    for kind, pattern in _PATTERNS:
        masked = pattern.sub(_MASKS[kind], masked)
    pieces = []
    for segment, own in _segments(masked, _own_spans(masked)):
        if not own:
            for kind, pattern in _DIGIT_PATTERNS:
                segment = pattern.sub(_masker(kind), segment)
        pieces.append(segment)
    masked = "".join(pieces)
    # What is masked already still counts as digits, so the rest of a number around it goes too.
    shadow = _PLACEHOLDER.sub(lambda m: "0" * len(m.group(0)), masked)
    for start, end in reversed(_numbers(shadow, _own_spans(shadow))):
        masked = masked[:start] + "[NUMBER]" + masked[end:]
    return text if masked == norm else masked


# -- the subject's own values ------------------------------------------------------------------------

_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")


def _fold(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", normalise(text).casefold())


def _words(text: str) -> set[str]:
    return {w.casefold() for w in _WORD.findall(normalise(text))}


def mentions_any(text: str, values: Iterable[str]) -> bool:
    """Whether ``text`` spells one of ``values`` (a subject's own names, numbers, addresses), in any case, with
    or without accents, separators or look-alike letters.

    A value that is mostly digits (a phone, a PESEL, an account) is found by its last nine digits among
    the text's digits; a name of four letters or more anywhere in the text, and each hyphenated or
    spaced part of one of four letters or more; a shorter name only as a word of its own (``Jan`` in
    ``called_jan``, not in ``january``). An e-mail address is found by its local part too.
    """
    folded = _fold(text)
    if not folded:
        return False
    digits = re.sub(r"[^0-9]", "", folded)
    words = _words(text)
    for value in values:
        for candidate in _candidates(value):
            v = _fold(candidate)
            v_digits = re.sub(r"[^0-9]", "", v)
            if len(v_digits) >= 6 and len(v_digits) * 10 >= len(v) * 6:
                if v_digits[-NUMBER_MIN_DIGITS:] in digits:
                    return True
            elif (len(v) >= 4 and v in folded) or (v and v in words):
                return True
    return False


def _candidates(value: str) -> list[str]:
    """``value`` and the parts of it that identify on their own: a name's parts, an e-mail's local part."""
    out = [value]
    if "@" in value:
        out.append(value.split("@", 1)[0])
    elif not _ANY_DIGIT(value):
        parts = [p for p in re.split(r"[\s\-]+", value.strip()) if len(_fold(p)) >= 4]
        if len(parts) > 1:
            out.extend(parts)
    return out

