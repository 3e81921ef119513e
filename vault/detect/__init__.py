"""PII detection and scrubbing of free-text notes, offline.

A collection agent's note ("Dzwoniłem do Jana Kowalskiego, PESEL 85010112345 ...") goes
through :meth:`PiiDetector.scrub` before it is stored: the personal data found is replaced
by placeholders (``[NAME#1]``, ``[PESEL#1]``...) and returned as :class:`Replacement`
objects for the caller to seal in the vault. Detection covers PESEL, NIP, REGON, ID card
and passport numbers, IBAN/NRB (all confirmed by their checksums), Polish phone numbers,
e-mail addresses, and the subject's known values (names, street, city... inflected).

:class:`PiiDetector` is the production path; :class:`PresidioDetector` and
:func:`build_presidio_analyzer` give the same detection through presidio's
``AnalyzerEngine``, the baseline for the benchmark and the equivalence tests. Nothing
here touches the network: see :mod:`vault.detect.offline`.
"""

import logging

from vault.detect.detector import KnownValues, PiiDetector, PresidioDetector, resolve, scrub_findings
from vault.detect.findings import (
    ADDRESS,
    CHECKSUMMED,
    DATE_OF_BIRTH,
    EMAIL,
    EMPLOYER,
    ENTITIES,
    IBAN,
    ID_CARD,
    NAME,
    NIP,
    PASSPORT,
    PESEL,
    PHONE,
    REGON,
    Finding,
    Replacement,
    ScrubResult,
)
from vault.detect.known_values import FIELD_ENTITIES, IGNORED_FIELDS, KnownValuesRecognizer
from vault.detect.offline import OfflineNlpError, build_presidio_analyzer, default_nlp_dir, ensure_blank_pipeline

# Presidio logs the words around each match at DEBUG ("Context list is: ...") and its
# decisions on a logger of their own: words of a note. Whatever level the process logs at,
# these loggers never go below WARNING.
for _name in ("presidio-analyzer", "decision_process"):
    logging.getLogger(_name).setLevel(logging.WARNING)

__all__ = [
    "ADDRESS",
    "CHECKSUMMED",
    "DATE_OF_BIRTH",
    "EMAIL",
    "EMPLOYER",
    "ENTITIES",
    "FIELD_ENTITIES",
    "IBAN",
    "ID_CARD",
    "IGNORED_FIELDS",
    "NAME",
    "NIP",
    "PASSPORT",
    "PESEL",
    "PHONE",
    "REGON",
    "Finding",
    "KnownValues",
    "KnownValuesRecognizer",
    "OfflineNlpError",
    "PiiDetector",
    "PresidioDetector",
    "Replacement",
    "ScrubResult",
    "build_presidio_analyzer",
    "default_nlp_dir",
    "ensure_blank_pipeline",
    "resolve",
    "scrub_findings",
]
