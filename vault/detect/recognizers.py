"""The pattern recognizers: Polish identifiers, IBAN, phone numbers and e-mail addresses.

Each is a presidio :class:`~presidio_analyzer.PatternRecognizer` (PESEL is presidio's own
:class:`PlPeselRecognizer`, e-mail presidio's :class:`EmailRecognizer`), so the same
objects serve presidio's ``AnalyzerEngine`` (see :mod:`vault.detect.offline`) and the
fast path, which runs their patterns directly (:meth:`FastMatcher.find`): the same regular
expressions, compiled once with :mod:`re`, and the same validation (presidio's
``validate_result`` is ``canonical(text) is not None``; the fast path keeps the canonical
form it computed).

Invariants:

- an identifier that carries a checksum (PESEL, NIP, REGON, ID card, passport, IBAN) is
  reported only when its checksum holds, as checked by :mod:`vault.validators` (no
  checksum code is duplicated here); a phone number only when ``phonenumbers`` says it
  is a valid number (region PL); an e-mail address only when its domain ends in a public
  suffix known to the bundled, offline public-suffix list;
- every pattern is anchored on both sides (no digit, letter or separator continues it),
  so no identifier is found inside a longer number;
- nothing here logs, and no exception carries a matched value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar, Final

import phonenumbers
import tldextract
from presidio_analyzer import Pattern, PatternRecognizer
from presidio_analyzer.predefined_recognizers import EmailRecognizer, PlPeselRecognizer

from vault.detect.findings import CHECKSUMMED, EMAIL, IBAN, ID_CARD, NIP, PASSPORT, PESEL, PHONE, REGON, Finding
from vault.validators import canonical_or_none

__all__ = [
    "FastMatcher",
    "IbanNrbRecognizer",
    "OfflineEmailRecognizer",
    "PlIdCardRecognizer",
    "PlNipRecognizer",
    "PlPassportRecognizer",
    "PlPeselChecksumRecognizer",
    "PlPhoneRecognizer",
    "PlRegonRecognizer",
    "TextStats",
    "offline_tld_extractor",
    "pattern_recognizers",
]

LANGUAGE: Final = "pl"
# Case-sensitive on purpose: identifiers are written in capitals; lower-case letter runs
# followed by digits are far more often something else. DOTALL/MULTILINE as presidio's own.
FLAGS: Final = re.DOTALL | re.MULTILINE

# The public-suffix list bundled with tldextract, never fetched: no suffix-list URLs, no
# cache directory (so no file written, none read). Shared: extraction is read-only.
_OFFLINE_TLD: tldextract.TLDExtract | None = None


def offline_tld_extractor() -> tldextract.TLDExtract:
    """A TLDExtract that uses the bundled public-suffix snapshot only: no HTTP, no cache files."""
    global _OFFLINE_TLD  # noqa: PLW0603 - one lazily built, read-only extractor per process
    if _OFFLINE_TLD is None:
        _OFFLINE_TLD = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)
    return _OFFLINE_TLD


class TextStats:
    """Cheap facts about a text that let the fast path skip recognizers that cannot match."""

    __slots__ = ("digits", "has_at")

    def __init__(self, text: str) -> None:
        count = text.count
        self.digits = (count("0") + count("1") + count("2") + count("3") + count("4") + count("5") + count("6")
                       + count("7") + count("8") + count("9"))
        self.has_at = "@" in text


class _Checked:
    """What each recognizer here declares on top of presidio's PatternRecognizer."""

    ENTITY: ClassVar[str]
    KIND: ClassVar[str]  # the validator kind in vault.validators
    MIN_DIGITS: ClassVar[int] = 0  # fewer digits in the whole text: the recognizer cannot match
    NEEDS_AT: ClassVar[bool] = False
    #: Words (folded: lower case, no diacritics) that, just before a match, say which of two
    #: recognizers finding the same span is right (a bare 9-digit number: REGON or phone).
    CONTEXT_WORDS: ClassVar[tuple[str, ...]] = ()

    def canonical(self, text: str) -> str | None:
        """The validator's canonical form of a candidate, or ``None`` if it is not valid."""
        return canonical_or_none(self.KIND, text)

    def validate_result(self, pattern_text: str) -> bool:
        """Presidio's validation hook: the candidate passes its checksum or validator."""
        return self.canonical(pattern_text) is not None


def _bounded(regex: str, before: str, after: str, first: str) -> str:
    """``regex`` with no ``before`` character before it and no ``after`` match after it.

    The leading look-ahead on the characters a match can start with is only there for
    speed: it lets the regex engine reject most positions before trying the rest.
    """
    return f"(?={first})(?<!{before})(?:{regex})(?!{after})"


class PlPeselChecksumRecognizer(_Checked, PlPeselRecognizer):
    """PESEL: presidio's PlPeselRecognizer, anchored, and also checked for a real birth date."""

    ENTITY = PESEL
    KIND = "pesel"
    MIN_DIGITS = 11
    CONTEXT_WORDS = ("pesel",)

    def __init__(self) -> None:
        base = PlPeselRecognizer.PATTERNS[0]
        # Presidio's pattern is unanchored: inside a 26-digit account number it would
        # find an 11-digit window. Anchor it: no digit or letter on either side, no "+"
        # before ("+48720805495" is a phone number even if its last 11 digits pass as a PESEL).
        pattern = Pattern(base.name, _bounded(base.regex, "[A-Za-z0-9+]", "[A-Za-z0-9]", "[0-9]"), base.score)
        super().__init__(patterns=[pattern], context=["pesel"], supported_language=LANGUAGE,
                         supported_entity=PESEL)
        self.global_regex_flags = FLAGS

    def canonical(self, text: str) -> str | None:
        """Presidio's PESEL checksum, then the vault's (checksum and encoded birth date)."""
        if not PlPeselRecognizer.validate_result(self, text):
            return None
        return super().canonical(text)


class _Recognizer(_Checked, PatternRecognizer):
    """A PatternRecognizer whose patterns, entity and context come from class attributes."""

    PATTERNS: ClassVar[Sequence[tuple[str, str]]]  # (name, regex)
    SCORE: ClassVar[float] = 0.5

    def __init__(self) -> None:
        super().__init__(
            supported_entity=self.ENTITY,
            patterns=[Pattern(name, regex, self.SCORE) for name, regex in self.PATTERNS],
            context=list(self.CONTEXT_WORDS),
            supported_language=LANGUAGE,
            global_regex_flags=FLAGS,
        )


class PlNipRecognizer(_Recognizer):
    """NIP: 10 digits, bare or grouped 3-3-2-2 / 3-2-2-3 with dashes, or 3-3-2-2 with spaces;
    optionally with the EU VAT prefix ``PL``."""

    ENTITY = NIP
    KIND = "nip"
    MIN_DIGITS = 10
    CONTEXT_WORDS = ("nip",)
    PATTERNS = (("NIP", _bounded(
        r"(?:PL ?)?(?:[0-9]{10}|[0-9]{3}-[0-9]{3}-[0-9]{2}-[0-9]{2}|[0-9]{3}-[0-9]{2}-[0-9]{2}-[0-9]{3}"
        r"|[0-9]{3} [0-9]{3} [0-9]{2} [0-9]{2})",
        r"[A-Za-z0-9+/-]", r"[A-Za-z0-9]|[ /-][0-9]", "[0-9P]")),)

    def canonical(self, text: str) -> str | None:
        """The 10 digits, checked by the vault's NIP validator (the ``PL`` prefix is not part of a NIP)."""
        return super().canonical(text[2:] if text.startswith("PL") else text)


class PlRegonRecognizer(_Recognizer):
    """REGON: 9 or 14 digits, written without separators."""

    ENTITY = REGON
    KIND = "regon"
    MIN_DIGITS = 9
    CONTEXT_WORDS = ("regon",)
    PATTERNS = (("REGON", _bounded(r"[0-9]{14}|[0-9]{9}", r"[A-Za-z0-9+/-]", r"[A-Za-z0-9]|[/-][0-9]", "[0-9]")),)


class PlIdCardRecognizer(_Recognizer):
    """Dowód osobisty: 3 capital letters and 6 digits (a space allowed between them)."""

    ENTITY = ID_CARD
    KIND = "id_card"
    MIN_DIGITS = 6
    CONTEXT_WORDS = ("dowod", "d.o.", "dow. os")
    PATTERNS = (("ID card", _bounded(r"[A-Z]{3} ?[0-9]{6}", "[A-Za-z0-9]", "[A-Za-z0-9]", "[A-Z]")),)


class PlPassportRecognizer(_Recognizer):
    """Polish passport: 2 capital letters and 7 digits (a space allowed between them)."""

    ENTITY = PASSPORT
    KIND = "passport"
    MIN_DIGITS = 7
    CONTEXT_WORDS = ("paszport",)
    PATTERNS = (("Passport", _bounded(r"[A-Z]{2} ?[0-9]{7}", "[A-Za-z0-9]", "[A-Za-z0-9]", "[A-Z]")),)


class IbanNrbRecognizer(_Recognizer):
    """IBAN (any country, mod-97) and the bare 26-digit Polish NRB, grouped by 4 or not.

    The Polish form comes first in the alternation so that a capitalised word after a
    Polish IBAN ("... 2874 PKO") is not swallowed as one more group; for other countries
    the trailing partial group must be digits for the same reason.
    """

    ENTITY = IBAN
    KIND = "iban"
    MIN_DIGITS = 14
    CONTEXT_WORDS = ("konto", "konta", "rachun", "iban", "nrb", "przelew")
    PATTERNS = (("IBAN or NRB", _bounded(
        r"PL[0-9]{2}(?:[ -]?[0-9]{4}){6}(?![A-Za-z0-9])"
        r"|[A-Z]{2}[0-9]{2}(?:[ -]?[A-Z0-9]{4}){2,7}(?:[ -]?[0-9]{1,3})?"
        r"|[0-9]{2}(?:[ -]?[0-9]{4}){6}",
        "[A-Za-z0-9]", "[A-Za-z0-9]", "[A-Z0-9]")),)

    def canonical(self, text: str) -> str | None:
        """The compact IBAN, mod-97 checked by the vault's validator (groups may be split by dashes)."""
        return super().canonical(text.replace("-", " "))


class PlPhoneRecognizer(_Recognizer):
    """Polish phone numbers, optionally with +48 / 0048, validated by ``phonenumbers`` (region PL).

    Accepted groupings: ``601234567``, ``601 234 567``, ``601-234-567``, ``601.234.567``, ``601 23 45 67``,
    ``22 123 45 67``, ``(22) 123 45 67``, ``(22) 1234567``, each with an optional
    ``+48``/``0048`` prefix. A number followed by ``,00`` or ``.5`` is an amount, not a phone.
    """

    ENTITY = PHONE
    KIND = "phone"
    MIN_DIGITS = 9
    SCORE = 0.4
    CONTEXT_WORDS = ("tel", "telefon", "kom", "komork", "dzwon", "sms", "numer", "nr", "kontakt")
    _INTERNATIONAL: ClassVar[re.Pattern[str]] = re.compile(r"(?:\+|00)48")
    _NOT_DIGITS: ClassVar[re.Pattern[str]] = re.compile(r"[^0-9]")

    def canonical(self, text: str) -> str | None:
        """E.164, if ``phonenumbers`` says the number is valid, as :func:`vault.validators.normalise` does.

        A candidate of this recognizer is 9 national digits, with or without +48/0048; for
        it, ``phonenumbers.parse(text, "PL")`` yields country code 48 and those digits, so
        the parse is skipped and the number built directly (a third of the cost). Anything
        else goes through the vault's validator.
        """
        digits = self._NOT_DIGITS.sub("", text)
        if self._INTERNATIONAL.match(text):
            digits = digits[2:] if text.startswith("+") else digits[4:]
        if len(digits) != 9 or digits[0] == "0":
            return super().canonical(text)
        number = phonenumbers.PhoneNumber(country_code=48, national_number=int(digits))
        return f"+48{digits}" if phonenumbers.is_valid_number(number) else None

    PATTERNS = (("PL phone", _bounded(
        r"(?<![0-9]\.)(?:(?:\+|00)48[ -]?)?"
        r"(?:[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{3}"
        r"|[0-9]{3}\.[0-9]{3}\.[0-9]{3}"
        r"|[0-9]{3} [0-9]{2} [0-9]{2} [0-9]{2}"
        r"|\([0-9]{2}\) ?[0-9]{3}[ -]?[0-9]{2}[ -]?[0-9]{2}"
        r"|[0-9]{2}[ -][0-9]{3}[ -]?[0-9]{2}[ -]?[0-9]{2}"
        r"|\([0-9]{2}\) ?[0-9]{7})",
        r"[\w+/-]", r"\w|[.,/-][0-9]", r"[0-9+(]")),)


class OfflineEmailRecognizer(_Checked, EmailRecognizer):
    """E-mail addresses: presidio's EmailRecognizer pattern, its domain checked against the
    bundled public-suffix list only (presidio's own check calls ``tldextract.extract``,
    whose default extractor may download the list; this one cannot)."""

    ENTITY = EMAIL
    KIND = "email"
    NEEDS_AT = True
    CONTEXT_WORDS = ("mail", "e-mail", "adres")

    def __init__(self) -> None:
        super().__init__(supported_language=LANGUAGE, supported_entity=EMAIL, context=["mail", "e-mail"])
        self.global_regex_flags = FLAGS

    def canonical(self, text: str) -> str | None:
        """The address with its domain lower-cased, if the domain ends in a known public suffix.

        Non-ASCII addresses the vault would refuse to store are still found: they are
        still personal data in a note.
        """
        local, _, domain = text.rpartition("@")
        if not local or offline_tld_extractor()(domain).fqdn == "":
            return None
        return f"{local}@{domain.lower()}"


def pattern_recognizers() -> list[PatternRecognizer]:
    """One instance of each pattern recognizer, in the order ties are broken (first wins)."""
    return [
        PlPeselChecksumRecognizer(), PlNipRecognizer(), PlRegonRecognizer(), PlIdCardRecognizer(),
        PlPassportRecognizer(), IbanNrbRecognizer(), PlPhoneRecognizer(), OfflineEmailRecognizer(),
    ]


class FastMatcher:
    """Runs one recognizer's patterns directly: stdlib ``re``, validation, no NLP, no context pass."""

    __slots__ = ("_compiled", "checksummed", "entity", "min_digits", "needs_at", "recognizer")

    def __init__(self, recognizer: PatternRecognizer) -> None:
        if not isinstance(recognizer, _Checked):  # pragma: no cover - a wiring bug
            raise TypeError("FastMatcher needs one of the recognizers of this module")
        self.recognizer = recognizer
        self.entity = recognizer.ENTITY
        self.min_digits = recognizer.MIN_DIGITS
        self.needs_at = recognizer.NEEDS_AT
        self.checksummed = recognizer.ENTITY in CHECKSUMMED
        patterns: list[Pattern] = recognizer.patterns  # type: ignore[has-type]  # set in presidio's __init__
        self._compiled = [re.compile(p.regex, recognizer.global_regex_flags or 0) for p in patterns]

    def applies(self, stats: TextStats) -> bool:
        """Whether the text can hold a match at all (a necessary condition, never a sufficient one)."""
        return stats.digits >= self.min_digits and (stats.has_at or not self.needs_at)

    def find(self, text: str) -> list[Finding]:
        """Every valid match of the recognizer's patterns in ``text``."""
        if self.needs_at:
            out: list[Finding] = []
            for start, end in _at_chunks(text):
                out += self._find(text[start:end], start)
            return out
        return self._find(text, 0)

    def _find(self, text: str, offset: int) -> list[Finding]:
        out: list[Finding] = []
        canonical = self.recognizer.canonical
        for pattern in self._compiled:
            for match in pattern.finditer(text):
                start, end = match.span()
                if start == end:
                    continue
                value = match.group()
                normal = canonical(value)
                if normal is not None:
                    out.append(Finding(self.entity, start + offset, end + offset, value, normal))
        return out


# No e-mail address contains one of these: whitespace, or a character that neither
# presidio's local-part class nor its domain pattern admits. All are non-word characters,
# so a ``\b`` at a chunk's edge means what it means in the whole text.
_EMAIL_STOP: Final = frozenset(" \t\n\r\f\v,;<>()[]\"")
_EMAIL_STOP_RE: Final = re.compile(r'[\s,;<>()\[\]"]')


def _at_chunks(text: str) -> list[tuple[int, int]]:
    """The maximal runs of text around each ``@`` that an e-mail address could span.

    Presidio's e-mail pattern backtracks from every word boundary of the text; run on
    these few short runs only, it finds the same addresses, far faster.
    """
    chunks: list[tuple[int, int]] = []
    at = text.find("@")
    while at != -1:
        start = at
        while start > 0 and text[start - 1] not in _EMAIL_STOP:
            start -= 1
        stop = _EMAIL_STOP_RE.search(text, at)
        end = stop.start() if stop else len(text)
        chunks.append((start, end))
        at = text.find("@", end)
    return chunks
