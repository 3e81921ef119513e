"""What detection returns: findings in a note, and the note with placeholders.

Invariant: no type here shows a matched value in its ``repr`` (nor in ``str``), so a
finding or a scrub result can be logged, printed in a failing assertion or put in an
exception without leaking the personal data it stands for. The values stay reachable
as attributes for the caller that seals them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

#: Entity types of the pattern recognizers (identifiers confirmed by a checksum or a
#: validator) and of the known-value recognizer (the vault field's category).
PESEL: Final = "PESEL"
NIP: Final = "NIP"
REGON: Final = "REGON"
ID_CARD: Final = "ID_CARD"
PASSPORT: Final = "PASSPORT"
IBAN: Final = "IBAN"
PHONE: Final = "PHONE"
EMAIL: Final = "EMAIL"
NAME: Final = "NAME"
ADDRESS: Final = "ADDRESS"
EMPLOYER: Final = "EMPLOYER"
DATE_OF_BIRTH: Final = "DATE_OF_BIRTH"

#: Identifiers that carry a checksum: a candidate whose checksum fails is never reported.
CHECKSUMMED: Final = frozenset({PESEL, NIP, REGON, ID_CARD, PASSPORT, IBAN})
PATTERN_ENTITIES: Final = (PESEL, NIP, REGON, ID_CARD, PASSPORT, IBAN, PHONE, EMAIL)
KNOWN_VALUE_ENTITIES: Final = (NAME, ADDRESS, EMPLOYER, DATE_OF_BIRTH)
ENTITIES: Final = PATTERN_ENTITIES + KNOWN_VALUE_ENTITIES


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of personal data found in a text: ``text[start:end]`` is an ``entity_type``.

    ``canonical`` is what the finding stands for: the validator's canonical form for an
    identifier (E.164 for a phone, the compact IBAN...), the subject's known value for a
    known-value match (``Kowalski`` for ``Kowalskiego``). Two findings with the same entity
    type and canonical value get the same placeholder. ``field`` names the known-value
    field that matched (``last_name``), ``None`` for the pattern recognizers.
    """

    entity_type: str
    start: int
    end: int
    text: str = field(repr=False)
    canonical: str = field(repr=False)
    field: str | None = None
    score: float = 1.0

    def __repr__(self) -> str:
        return (f"Finding(entity_type={self.entity_type!r}, start={self.start}, end={self.end}, "
                f"field={self.field!r}, score={self.score})")

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Replacement:
    """A placeholder put in the note, the entity type it stands for and the value it replaced.

    ``value`` is the text of the first occurrence; ``canonical`` the value every occurrence
    stands for (see :class:`Finding`); ``field`` the known-value field, if any.
    """

    placeholder: str
    entity_type: str
    value: str = field(repr=False)
    canonical: str = field(repr=False)
    field: str | None = None

    def __repr__(self) -> str:
        return (f"Replacement(placeholder={self.placeholder!r}, entity_type={self.entity_type!r}, "
                f"field={self.field!r})")

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class ScrubResult:
    """A note with its personal data replaced by placeholders, and what each placeholder replaced.

    ``findings`` are the spans in the *original* text, sorted and non-overlapping.
    """

    text: str = field(repr=False)
    replacements: tuple[Replacement, ...]
    findings: tuple[Finding, ...] = field(repr=False)

    def __repr__(self) -> str:
        return f"ScrubResult(chars={len(self.text)}, replacements={list(self.replacements)!r})"

    __str__ = __repr__
