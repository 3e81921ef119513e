"""Finding a subject's known values (names, street, city...) in a note, inflected or not.

The contacts service knows whose note it is and passes that subject's vault fields; this
module finds them in the text case- and diacritics-insensitively (``kowalskiego`` finds
``Kowalski``, ``Lodz`` finds ``Łódź``), including the usual Polish inflected forms.

Which field becomes which placeholder type (:data:`FIELD_ENTITIES`):

====================================================  =================  ===================
field                                                 entity type        matched as
====================================================  =================  ===================
``first_name``, ``last_name``, ``full_name``          ``NAME``           inflected words
``street``                                            ``ADDRESS``        inflected words, plus a
                                                                         following house number
``city``                                              ``ADDRESS``        inflected words
``address``, ``postal_code``                          ``ADDRESS``        the words as stored
``employer``                                          ``EMPLOYER``       the words as stored
``date_of_birth`` (ISO ``YYYY-MM-DD``)                ``DATE_OF_BIRTH``  ``D.MM.YYYY``, ``YYYY-MM-DD``,
                                                                         ``1 stycznia 1985``...
====================================================  =================  ===================

Fields holding identifiers (``pesel``, ``nip``, ``regon``, ``id_card``, ``passport``,
``iban``, ``phone``, ``email``) are accepted and ignored: the pattern recognizers find them
in any spelling, with their checksums. ``note`` and ``gps`` are ignored too. Any other field
name is a caller's bug and raises :class:`ValueError` (naming the field, never a value).

Inflection is a stem-and-suffix approximation, not a morphological analyser: for each word
of a known value it generates the nominative and the forms of the declension its ending
suggests (masculine and feminine adjectival ``-ski``/``-ska``/``-y``/``-a``, feminine nouns
in ``-a`` with the locative alternations ``t→cie``, ``r→rze``, ``k→ce``..., masculine nouns
with a fleeting ``e`` (``Marek→Marka``, ``Wróbel→Wróbla``, ``Stępień→Stępnia``), soft
stems (``Poznań→Poznaniu``, ``Łódź→Łodzi``), neuter and plural city names), plus a few
irregular city names. Words are compared after folding (lower case, diacritics removed),
which also absorbs the ``ó→o`` and ``ą→ę`` alternations. A value of several words
(``Gorzów Wielkopolski``, ``Kowalska-Nowak``, a full address) matches when its words appear
in order, separated by at most three non-word characters on one line.

Invariant: no function here logs, and no exception carries a value.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from vault.detect.findings import ADDRESS, DATE_OF_BIRTH, EMPLOYER, NAME, Finding

__all__ = [
    "FIELD_ENTITIES",
    "IGNORED_FIELDS",
    "KnownValueIndex",
    "KnownValuesRecognizer",
    "fold",
    "word_forms",
]

#: Known-value field -> entity type of its placeholder.
FIELD_ENTITIES: Final[Mapping[str, str]] = {
    "first_name": NAME,
    "last_name": NAME,
    "full_name": NAME,
    "street": ADDRESS,
    "city": ADDRESS,
    "address": ADDRESS,
    "postal_code": ADDRESS,
    "employer": EMPLOYER,
    "date_of_birth": DATE_OF_BIRTH,
}
#: Fields accepted in ``known_values`` and deliberately not matched as literal values.
IGNORED_FIELDS: Final = frozenset({"pesel", "nip", "regon", "id_card", "passport", "iban", "phone", "email",
                                   "note", "gps"})

_INFLECTED_NAME: Final = frozenset({"first_name", "last_name", "full_name"})
_INFLECTED_PLACE: Final = frozenset({"street", "city"})
_STREET_PREFIXES: Final = frozenset({"ul", "ulica", "al", "aleja", "aleje", "pl", "plac", "os", "osiedle"})
KNOWN_SCORE: Final = 0.85
_MAX_GAP: Final = 3  # non-word characters allowed between two words of one value
_MAX_WORD: Final = 64  # longer words before an anchor are not looked back for

_MONTHS_GENITIVE: Final = ("stycznia", "lutego", "marca", "kwietnia", "maja", "czerwca", "lipca", "sierpnia",
                           "wrzesnia", "pazdziernika", "listopada", "grudnia")

# Cities whose declension no suffix rule gives (a compound adjective + noun in one word).
_IRREGULAR: Final[Mapping[str, tuple[str, ...]]] = {
    "białystok": ("białegostoku", "białemustokowi", "białymstokiem", "białymstoku"),
}


def _fold_table() -> dict[int, str]:
    """Lower case and base letter for every Latin character up to U+024F, one character each."""
    table: dict[int, str] = {}
    for code in range(0x250):
        ch = chr(code)
        base = unicodedata.normalize("NFD", ch)[0]
        low = base.lower()
        if len(low) == 1 and low != ch:
            table[code] = low
    table.update({ord("ł"): "l", ord("Ł"): "l", ord("đ"): "d", ord("Đ"): "d", ord("ø"): "o", ord("Ø"): "o"})
    return table


_FOLD: Final = _fold_table()
_WORD: Final = re.compile(r"\w+")
_NON_ASCII: Final = re.compile(r"[^\x00-\x7f]")
# The next word after at most _MAX_GAP non-word characters on the same line; the word
# just before a position, likewise.
_NEXT_WORD: Final = re.compile(r"[^\w\n]{1,3}(\w+)")
_PREVIOUS_WORD: Final = re.compile(r"(\w+)[^\w\n]{1,3}$")
_TAIL: Final = re.compile(r"[^\w\s]+$")
_HOUSE_NUMBER: Final = re.compile(
    r"[ \t]{1,2}[0-9]{1,4}[A-Za-z]?(?:[ \t]?/[ \t]?[0-9]{1,4}[A-Za-z]?)?(?:[ \t]?(?:m\.|lok\.)[ \t]?[0-9]{1,4})?"
    r"(?![\w]|[.,:/-][0-9])"
)


def _fold_char(match: re.Match[str]) -> str:
    ch = match.group()
    return _FOLD.get(ord(ch), ch)


def fold(text: str) -> str:
    """Lower-case ``text`` and strip diacritics from Latin letters; the length never changes.

    Position ``i`` of the result is position ``i`` of the input, so a match in the folded
    text is a match at the same offsets in the original.
    """
    if text.isascii():
        return text.lower()
    if "\u0130" in text:  # the only character whose lower case is two characters long
        text = text.replace("\u0130", "I")
    # str.translate with a dict looks every character up one by one; a note has a few
    # non-ASCII characters among hundreds, so only those go through the table.
    return _NON_ASCII.sub(_fold_char, text.lower())


# ---------------------------------------------------------------------------------------
# inflection


def _locative_feminine(stem: str) -> set[str]:
    """Dative/locative of a feminine noun in -a from its stem: Marta→Marcie, Olga→Oldze, Anna→Annie."""
    if stem.endswith("ch"):
        return {stem[:-2] + "sze"}
    if stem.endswith("st"):
        return {stem[:-2] + "ście"}
    if stem.endswith(("sz", "cz", "rz", "ż", "dz", "c", "j", "l", "i")):
        return {stem + "y", stem + "i"}
    last = stem[-1]
    return {
        "k": {stem[:-1] + "ce"},
        "g": {stem[:-1] + "dze"},
        "r": {stem + "ze"},
        "t": {stem[:-1] + "cie"},
        "d": {stem[:-1] + "dzie"},
        "ł": {stem[:-1] + "le"},
    }.get(last, {stem + "ie"})


def _locative_masculine(stem: str) -> set[str]:
    """Locative/vocative of a masculine noun: Piotr→Piotrze, Paweł→Pawle, Jan→Janie, Nowak→Nowaku."""
    out = {stem + "u", stem + "iu"}
    if stem.endswith("st"):
        out.add(stem[:-2] + "ście")
    elif stem.endswith(("k", "g", "ch", "sz", "cz", "rz", "ż", "c", "dz", "j", "l", "i")):
        pass
    elif stem.endswith("r"):
        out.add(stem + "ze")
    elif stem.endswith("t"):
        out.add(stem[:-1] + "cie")
    elif stem.endswith("d"):
        out.add(stem[:-1] + "dzie")
    elif stem.endswith("ł"):
        out.add(stem[:-1] + "le")
    else:
        out.add(stem + "ie")
    return out


_SOFT: Final = {"ń": "ni", "ś": "si", "ć": "ci", "ź": "zi"}


def _masculine_stems(word: str) -> set[str]:
    """Stems of a masculine noun: the word itself, without a fleeting e, soft consonants spelt out."""
    stems = {word}
    if word.endswith("dź"):
        stems = {word[:-2] + "dzi"}
    elif word[-1] in _SOFT:
        stems = {word[:-1] + _SOFT[word[-1]]}
        if word.endswith("ień"):  # Stępień → Stępnia
            stems.add(word[:-3] + "ni")
    if len(word) > 3 and word[-2] == "e" and word[-1] in "kłlc":  # Marek, Paweł, Wróbel
        stems.add(word[:-2] + word[-1])
        if word[-3] == "i":  # Sosnowiec → Sosnowca
            stems.add(word[:-3] + word[-1])
    return stems


def _inflect(word: str, *, vocative: bool) -> set[str]:
    out = {word}
    irregular = _IRREGULAR.get(word)
    if irregular:
        out.update(irregular)
    if len(word) < 3 or not word.isalpha():
        return out
    if word.endswith("i"):  # Kowalski, Antoni, Wielkopolski
        out |= {word + "ego", word + "emu", word + "m", word + "ch", word + "mi"}
        if word.endswith(("ski", "cki", "dzki")):
            out.add(word[:-2] + "cy")  # Kowalscy, Nowiccy
    elif word.endswith("y"):  # Jerzy, Biały
        stem = word[:-1]
        out |= {stem + "ego", stem + "emu", stem + "ym", stem + "ych", stem + "ymi"}
    elif word.endswith("a"):  # Anna, Kowalska, Warszawa, Sikora, Maria
        stem = word[:-1]
        out |= {stem + "y", stem + "ę", stem + "ą", stem + "i", stem + "ami", stem + "om"}
        out.add(stem + ("iej" if stem.endswith(("k", "g")) else "ej"))
        if stem.endswith("i"):  # Gdynia → Gdyni, Maria → Marii
            out.add(stem)
        if vocative:
            out.add(stem + "o")
        out |= _locative_feminine(stem)
    elif word.endswith(("o", "e")):  # Mieszko, Bielsko, Opole, Zakopane, Katowice
        stem = word[:-1]
        out |= {stem + "a", stem + "u", stem + "owi", stem + "em", stem + "iem", stem + "ach", stem + "om",
                stem + "ami", stem + "ego", stem + "emu", stem + "ym"}
        if stem.endswith(("c", "ic", "yc")):
            out.add(stem)  # Katowic, Kielc
    elif word[-1] not in "ąęóuü":  # masculine nouns: Nowak, Jan, Paweł, Kraków, Poznań, Łódź
        for stem in _masculine_stems(word):
            out |= {stem + "a", stem + "owi", stem + "em", stem + "owie", stem + "ów", stem + "om",
                    stem + "ami", stem + "ach", stem + "y", stem + "i"}
            if stem.endswith(("k", "g")):
                out.add(stem + "iem")
            if stem.endswith("i"):  # soft stems: Łódź → Łodzi, Łodzią
                out |= {stem, stem + "ą"}
            out |= _locative_masculine(stem)
    return out


def _street_forms(word: str) -> set[str]:
    """A street word: adjectival feminine (Długa → Długiej, Długą) or as written (Mickiewicza)."""
    out = {word}
    if len(word) >= 3 and word.endswith("a") and word.isalpha():
        stem = word[:-1]
        out |= {stem + ("iej" if stem.endswith(("k", "g")) else "ej"), stem + "ą"}
    return out


@lru_cache(maxsize=8192)
def word_forms(word: str, style: str = "name") -> frozenset[str]:
    """The folded forms of one word of a known value.

    ``style`` is ``name`` (every declension the ending suggests, vocative included),
    ``place`` (the same without the vocative), ``street`` (adjectival feminine only, so
    ``Krótka`` does not turn into the everyday word ``krótki``) or ``literal``.
    """
    low = word.lower()
    if style == "literal":
        forms: set[str] = {low}
    elif style == "street":
        forms = _street_forms(low)
    else:
        forms = _inflect(low, vocative=style == "name")
    return frozenset(fold(f) for f in forms)


def _date_entries(value: str) -> list[tuple[frozenset[str], ...]]:
    match = re.fullmatch(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", value.strip())
    if not match:
        return []
    year, month, day = match.groups()
    days = frozenset({day, str(int(day))})
    months = frozenset({month, str(int(month))})
    month_names = months | {_MONTHS_GENITIVE[int(month) - 1]} if 1 <= int(month) <= 12 else months
    years = frozenset({year})
    return [(days, month_names, years), (years, frozenset({month}), frozenset({day}))]


# ---------------------------------------------------------------------------------------
# the index


@dataclass(frozen=True, slots=True)
class _Entry:
    """One known value as a sequence of words, each a set of folded forms.

    Matching starts at the ``anchor`` word, the one whose forms share the longest prefix
    (``kowalsk`` for Kowalski, the year of a date): ``needles`` are the substrings whose
    occurrences in the folded text are the only places that word can start.
    """

    words: tuple[frozenset[str], ...]
    entity: str
    field: str
    canonical: str
    street: bool
    tail: str  # punctuation the stored value ends with ("Sp. z o.o."), kept in the span if present
    anchor: int
    needles: tuple[str, ...]


def _common_prefix(forms: frozenset[str]) -> str:
    first, last = min(forms), max(forms)  # the common prefix of all is that of the extremes
    size = 0
    while size < len(first) and first[size] == last[size]:
        size += 1
    return first[:size]


def _entry(words: tuple[frozenset[str], ...], field: str, value: str, tail: str = "") -> _Entry:
    prefixes = [_common_prefix(forms) for forms in words]
    anchor = max(range(len(words)), key=lambda i: (len(prefixes[i]), -i))
    needles = (prefixes[anchor],) if prefixes[anchor] else tuple(sorted(words[anchor]))
    return _Entry(words, FIELD_ENTITIES[field], field, value, field == "street", tail, anchor, needles)


@lru_cache(maxsize=8192)
def _entries_for(field: str, value: str) -> tuple[_Entry, ...]:
    if field == "date_of_birth":
        return tuple(_entry(words, field, value) for words in _date_entries(value))
    words = _WORD.findall(value)
    if field == "street":
        while len(words) > 1 and fold(words[0]) in _STREET_PREFIXES:
            words = words[1:]
        style = "street"
    elif field in _INFLECTED_NAME:
        style = "name"
    elif field in _INFLECTED_PLACE:
        style = "place"
    else:
        style = "literal"
    if not words or (len(words) == 1 and len(words[0]) < 2):
        return ()
    tail = _TAIL.search(value.strip())
    return (_entry(tuple(word_forms(w, style) for w in words), field, value, tail.group() if tail else ""),)


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class KnownValueIndex:
    """The known values of one subject, ready to be found in notes. Cheap to build."""

    __slots__ = ("_entries",)

    def __init__(self, known_values: Mapping[str, Sequence[str]] | None) -> None:
        entries: list[_Entry] = []
        for field, values in (known_values or {}).items():
            if field in IGNORED_FIELDS:
                continue
            if field not in FIELD_ENTITIES:
                raise ValueError(f"unknown known-value field {field!r}; expected one of "
                                 f"{sorted(FIELD_ENTITIES)} or {sorted(IGNORED_FIELDS)}")
            if isinstance(values, str):
                raise TypeError(f"known values of field {field!r} must be a sequence of strings, not a string")
            for value in values:
                entries += _entries_for(field, value)
        self._entries = tuple(entries)

    def __repr__(self) -> str:
        return f"KnownValueIndex(entries={len(self._entries)})"

    def __bool__(self) -> bool:
        return bool(self._entries)

    def find(self, text: str) -> list[Finding]:
        """Every occurrence of a known value in ``text`` (overlaps included; the caller resolves them)."""
        if not self._entries:
            return []
        folded = fold(text)
        out: list[Finding] = []
        for entry in self._entries:
            starts: set[int] = set()
            for needle in entry.needles:
                pos = folded.find(needle)
                while pos != -1:
                    if pos == 0 or not _is_word_char(folded[pos - 1]):
                        starts.add(pos)
                    pos = folded.find(needle, pos + 1)
            for pos in sorted(starts):
                span = self._match(folded, pos, entry)
                if span is None:
                    continue
                start, end = span
                if entry.street:
                    number = _HOUSE_NUMBER.match(text, end)
                    if number:
                        end = number.end()
                elif entry.tail and text.startswith(entry.tail, end):
                    end += len(entry.tail)
                out.append(Finding(entry.entity, start, end, text[start:end], entry.canonical, entry.field,
                                   KNOWN_SCORE))
        return out

    @staticmethod
    def _match(folded: str, pos: int, entry: _Entry) -> tuple[int, int] | None:
        """The span of ``entry`` whose anchor word starts at ``pos``, if its words are all there."""
        word = _WORD.match(folded, pos)
        if word is None or word.group() not in entry.words[entry.anchor]:
            return None
        start, end = pos, word.end()
        for forms in entry.words[entry.anchor + 1:]:
            following = _NEXT_WORD.match(folded, end)
            if following is None or following.group(1) not in forms:
                return None
            end = following.end()
        for forms in reversed(entry.words[:entry.anchor]):
            preceding = _PREVIOUS_WORD.search(folded, max(0, start - _MAX_WORD - _MAX_GAP), start)
            if preceding is None or preceding.group(1) not in forms:
                return None
            first = preceding.start(1)
            if first > 0 and _is_word_char(folded[first - 1]):
                return None  # the window cut a longer word
            start = first
        return start, end


def index_for(known_values: Mapping[str, Sequence[str]] | None) -> KnownValueIndex:
    """The index for ``known_values`` (the forms of each value are cached, the index is not)."""
    return KnownValueIndex(known_values) if known_values else _EMPTY


_EMPTY: Final = KnownValueIndex(None)


class KnownValuesRecognizer(EntityRecognizer):
    """The known-value finder as a presidio recognizer, for presidio's ``ad_hoc_recognizers``.

    Findings carry the known value and field in ``recognition_metadata`` so that presidio's
    results convert back into the same :class:`Finding` objects as the fast path's.
    """

    NAME: Final = "KnownValuesRecognizer"
    CANONICAL_KEY: Final = "tarcza_canonical"
    FIELD_KEY: Final = "tarcza_field"

    def __init__(self, known_values: KnownValueIndex | Mapping[str, Sequence[str]] | None,
                 language: str = "pl") -> None:
        self.index = known_values if isinstance(known_values, KnownValueIndex) else index_for(known_values)
        super().__init__(supported_entities=list(dict.fromkeys(FIELD_ENTITIES.values())),
                         supported_language=language, name=self.NAME)

    def load(self) -> None:
        """Nothing to load: the index is built in the constructor."""

    def analyze(self, text: str, entities: list[str],  # noqa: ARG002 - presidio's signature, called by keyword
                nlp_artifacts: NlpArtifacts | None = None) -> list[RecognizerResult]:  # noqa: ARG002
        """Presidio's hook: every occurrence of a known value, as RecognizerResults."""
        return [
            RecognizerResult(f.entity_type, f.start, f.end, f.score, recognition_metadata=self._metadata(f))
            for f in self.index.find(text)
        ]

    def _metadata(self, finding: Finding) -> dict[str, Any]:
        return {
            RecognizerResult.RECOGNIZER_NAME_KEY: self.NAME,
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
            self.CANONICAL_KEY: finding.canonical,
            self.FIELD_KEY: finding.field,
        }

