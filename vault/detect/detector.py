"""Detection and scrubbing: :class:`PiiDetector` (production) and :class:`PresidioDetector` (baseline).

Both gather candidate findings from the same recognizers, then make the same decision
(:func:`resolve`) and the same placeholders (:func:`scrub_findings`):

- :class:`PiiDetector` runs each recognizer's compiled patterns and validator directly,
  skipping a recognizer when the text cannot hold a match (no ``@``: no e-mail; fewer
  than 9 digits: no PESEL, NIP, REGON, IBAN or phone), with no spaCy pass and no
  context-enhancement pass;
- :class:`PresidioDetector` asks presidio's ``AnalyzerEngine`` (blank Polish spaCy
  pipeline, language ``pl``), known values passed as an ad-hoc recognizer.

Decision on overlapping candidates: on one and the same span, the candidate whose
context words (``regon``, ``tel.``...) appear in the 30 characters before it wins, then
a checksummed identifier over one that is not, then the higher score, then the fixed
order of :data:`~vault.detect.findings.ENTITIES`; between overlapping spans, a
checksummed identifier wins over a non-checksummed one, then the longer span, then the
higher score.

Invariants: findings are sorted and never overlap; nothing here logs a value, and the
only exceptions raised carry no text from the note.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final

from presidio_analyzer import AnalyzerEngine, EntityRecognizer, PatternRecognizer

from vault.detect.findings import CHECKSUMMED, ENTITIES, Finding, Replacement, ScrubResult
from vault.detect.known_values import KnownValueIndex, KnownValuesRecognizer, fold, index_for
from vault.detect.offline import build_presidio_analyzer
from vault.detect.recognizers import LANGUAGE, FastMatcher, TextStats, pattern_recognizers

__all__ = ["KnownValues", "PiiDetector", "PresidioDetector", "resolve", "scrub_findings"]

KnownValues = Mapping[str, Sequence[str]]

_PRIORITY: Final = {entity: i for i, entity in enumerate(ENTITIES)}
_CONTEXT_WINDOW: Final = 30
_PLACEHOLDER: Final = re.compile(r"\[[A-Z_]+#[0-9]+\]")


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    return text


class PiiDetector:
    """Finds personal data in Polish free text and replaces it with placeholders. Build once, reuse.

    Thread-safe: after construction nothing is mutated except bounded LRU caches.
    """

    def __init__(self) -> None:
        self._recognizers: list[PatternRecognizer] = pattern_recognizers()
        self._matchers = [FastMatcher(r) for r in self._recognizers]
        self._context = {m.entity: m.recognizer.CONTEXT_WORDS for m in self._matchers}
        self._by_entity = {m.entity: m for m in self._matchers}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(recognizers={len(self._recognizers)})"

    @property
    def recognizers(self) -> list[PatternRecognizer]:
        """The pattern recognizers (presidio objects), in tie-break order."""
        return list(self._recognizers)

    def detect(self, text: str, known_values: KnownValues | None = None) -> list[Finding]:
        """The personal data in ``text``: sorted, non-overlapping findings.

        ``known_values`` maps vault field names (``first_name``, ``street``...; see
        :data:`~vault.detect.known_values.FIELD_ENTITIES`) to the subject's values.
        """
        text = _check_text(text)
        if not text:
            return []
        candidates = self._candidates(text, index_for(known_values))
        return resolve(text, candidates, self._context)

    def scrub(self, text: str, known_values: KnownValues | None = None) -> ScrubResult:
        """``text`` with every finding replaced by a placeholder such as ``[PESEL#1]``."""
        return scrub_findings(text, self.detect(text, known_values))

    def _candidates(self, text: str, index: KnownValueIndex) -> list[Finding]:
        stats = TextStats(text)
        out: list[Finding] = []
        for matcher in self._matchers:
            if matcher.applies(stats):
                out += matcher.find(text)
        if index:
            out += index.find(text)
        return out


class PresidioDetector(PiiDetector):
    """The same detection through presidio's AnalyzerEngine: the baseline, slower, same answers."""

    def __init__(self, nlp_dir: Path | None = None, analyzer: AnalyzerEngine | None = None) -> None:
        super().__init__()
        self.analyzer = analyzer if analyzer is not None else build_presidio_analyzer(nlp_dir)
        # The engine holds its own recognizer instances: canonical forms are computed by
        # ours, which are the same classes.
        self._recognizers = [r for r in self.analyzer.registry.recognizers if isinstance(r, PatternRecognizer)]

    def _candidates(self, text: str, index: KnownValueIndex) -> list[Finding]:
        ad_hoc: list[EntityRecognizer] | None = [KnownValuesRecognizer(index)] if index else None
        results = self.analyzer.analyze(text=text, language=LANGUAGE, ad_hoc_recognizers=ad_hoc)
        out: list[Finding] = []
        for result in results:
            start, end, entity = result.start, result.end, result.entity_type
            value = text[start:end]
            metadata = result.recognition_metadata or {}
            if KnownValuesRecognizer.CANONICAL_KEY in metadata:
                out.append(Finding(entity, start, end, value, metadata[KnownValuesRecognizer.CANONICAL_KEY],
                                   metadata[KnownValuesRecognizer.FIELD_KEY], float(result.score)))
                continue
            canonical = self._by_entity[entity].recognizer.canonical(value)
            if canonical is not None:  # presidio keeps only validated results; checked again for the type
                out.append(Finding(entity, start, end, value, canonical, None, float(result.score)))
        return out


def _context_hit(text: str, finding: Finding, context: Mapping[str, Sequence[str]]) -> bool:
    words = context.get(finding.entity_type)
    if not words:
        return False
    window = fold(text[max(0, finding.start - _CONTEXT_WINDOW):finding.start])
    return any(word in window for word in words)


def resolve(text: str, candidates: Iterable[Finding],
            context: Mapping[str, Sequence[str]] | None = None) -> list[Finding]:
    """Turn overlapping candidates into sorted, non-overlapping findings (see the module docstring)."""
    pool = list(candidates)
    if len(pool) <= 1:
        return pool
    by_span: dict[tuple[int, int], list[Finding]] = {}
    for finding in pool:
        by_span.setdefault((finding.start, finding.end), []).append(finding)
    unique: list[Finding] = []
    for group in by_span.values():
        if len(group) == 1:
            unique.append(group[0])
            continue
        unique.append(max(group, key=lambda f: (
            _context_hit(text, f, context or {}), f.entity_type in CHECKSUMMED, f.score,
            -_PRIORITY.get(f.entity_type, len(_PRIORITY)), f.field is not None,
        )))
    unique.sort(key=lambda f: (f.entity_type not in CHECKSUMMED, f.start - f.end, -f.score,
                               _PRIORITY.get(f.entity_type, len(_PRIORITY)), f.start))
    chosen: list[Finding] = []
    for finding in unique:
        if all(finding.end <= other.start or finding.start >= other.end for other in chosen):
            chosen.append(finding)
    chosen.sort(key=lambda f: f.start)
    return chosen


def scrub_findings(text: str, findings: Sequence[Finding]) -> ScrubResult:
    """Replace ``findings`` (sorted, non-overlapping) in ``text`` with numbered placeholders.

    Numbers count per entity type in order of first appearance; findings with the same
    entity type and canonical value share a placeholder. A placeholder that the text
    already contains is skipped, so a restored note cannot confuse the two.
    """
    taken = frozenset(_PLACEHOLDER.findall(text)) if "[" in text else frozenset()
    numbers: dict[str, int] = {}
    assigned: dict[tuple[str, str], Replacement] = {}
    parts: list[str] = []
    position = 0
    for finding in findings:
        key = (finding.entity_type, finding.canonical)
        replacement = assigned.get(key)
        if replacement is None:
            number = numbers.get(finding.entity_type, 0) + 1
            while f"[{finding.entity_type}#{number}]" in taken:
                number += 1
            numbers[finding.entity_type] = number
            replacement = Replacement(f"[{finding.entity_type}#{number}]", finding.entity_type, finding.text,
                                      finding.canonical, finding.field)
            assigned[key] = replacement
        parts.append(text[position:finding.start])
        parts.append(replacement.placeholder)
        position = finding.end
    parts.append(text[position:])
    return ScrubResult("".join(parts), tuple(assigned.values()), tuple(findings))
