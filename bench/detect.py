"""``tarcza bench detect``: scrubbing notes of PII, next to presidio's AnalyzerEngine.

Both sides scrub the same synthetic corpus (:func:`vault.detect.corpus.generate`, ``notes``
notes, ``seed``), each note with its subject's known values, in the same run:

* **throughput**: notes scrubbed per second by :class:`~vault.detect.PiiDetector` (the
  production path: the recognizers' patterns and validators run directly, with cheap
  pre-filters, no spaCy pass, no context-enhancement pass), next to
  :class:`~vault.detect.PresidioDetector`: presidio's ``AnalyzerEngine`` with the same
  recognizers, a blank Polish spaCy pipeline (created in a temporary directory, offline)
  and language ``pl``, the known values as an ad-hoc recognizer, then the same overlap
  resolution and placeholders. The two run in alternating rounds over the whole corpus
  (after a warm-up), and each side's fastest round counts, so a burst of load on the
  machine penalises neither side alone.
* **quality**: recall on the checksummed identifiers (PESEL, NIP, REGON, ID card, passport,
  IBAN), overall recall and overall precision, exact span and type, measured against the
  corpus's ground truth; presidio's figures on the same corpus are the baseline values.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Final

from bench.common import Progress, Result, rate
from vault.detect import PiiDetector, PresidioDetector
from vault.detect.corpus import Note, evaluate, generate

ROUNDS: Final = 3
WARM_UP: Final = 20


def run(notes: int = 1000, seed: int = 7, progress: Progress | None = None) -> list[Result]:
    """Scrub ``notes`` synthetic notes with both detectors; see the module docstring."""
    say = progress or (lambda _msg: None)
    say(f"corpus: generating {notes:,} notes (seed {seed})")
    corpus = generate(notes, seed)
    with tempfile.TemporaryDirectory(prefix="tarcza-bench-nlp-") as directory:
        say("building the detectors (presidio: blank Polish spaCy pipeline, offline)")
        ours = PiiDetector()
        theirs = PresidioDetector(Path(directory) / "pl_blank")
        for note in corpus[:WARM_UP]:
            ours.scrub(note.text, note.known_values)
            theirs.scrub(note.text, note.known_values)
        best_ours = best_theirs = float("inf")
        for round_ in range(1, ROUNDS + 1):
            best_ours = min(best_ours, _scrub_all(ours, corpus))
            best_theirs = min(best_theirs, _scrub_all(theirs, corpus))
            say(f"  round {round_}/{ROUNDS}: {rate(len(corpus), best_ours):,.0f} notes/s ours, "
                f"{rate(len(corpus), best_theirs):,.0f} notes/s presidio (best so far)")
        say("quality: precision and recall against the corpus's ground truth")
        mine = evaluate(ours.detect, corpus)
        base = evaluate(theirs.detect, corpus)
    return [
        Result("scrub_notes_per_s", rate(len(corpus), best_ours), "notes/s",
               "presidio_analyzer_engine_notes_per_s", rate(len(corpus), best_theirs), True, "ratio >= 2"),
        Result("recall_checksummed", mine.checksummed.recall, "fraction", "presidio_analyzer_engine_recall_checksummed",
               base.checksummed.recall, True, "value >= 0.99"),
        Result("recall_overall", mine.overall.recall, "fraction", "presidio_analyzer_engine_recall_overall",
               base.overall.recall, True, "value >= 0.95"),
        Result("precision_overall", mine.overall.precision, "fraction",
               "presidio_analyzer_engine_precision_overall", base.overall.precision, True, "value >= 0.95"),
    ]


def _scrub_all(detector: PiiDetector, corpus: list[Note]) -> float:
    started = time.perf_counter()
    for note in corpus:
        detector.scrub(note.text, note.known_values)
    return time.perf_counter() - started
