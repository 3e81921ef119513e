"""Notes in a subject's export: the subject's own data stays, other people's is redacted.

Pure apart from the detector passed in (:mod:`vault.detect`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from vault.detect import PiiDetector

__all__ = ["redact_third_parties"]


# Detector entity type -> validator kind (vault/validators.py) of the identifiers compared canonically.
_ENTITY_KINDS: Final[Mapping[str, str]] = {
    "PESEL": "pesel", "NIP": "nip", "REGON": "regon", "ID_CARD": "id_card", "PASSPORT": "passport",
    "IBAN": "iban", "PHONE": "phone", "EMAIL": "email",
}


def redact_third_parties(note: str, own_values: Mapping[str, Sequence[str]], detector: PiiDetector, *,
                         field_kinds: Mapping[str, str] | None = None) -> str:
    """``note`` with the personal data that is not the subject's own replaced by ``[redacted: <TYPE>]``.

    ``own_values`` are the subject's vault fields (name -> values). A finding of the
    known-value recognizer (a name, the street...) is the subject's own; an identifier
    (PESEL, phone, e-mail, IBAN...) is when its canonical form equals the canonical form of
    one of the subject's values of that kind. ``field_kinds`` maps a field to its validator
    kind where the two differ (by default a field's name is its kind: ``pesel``, ``phone``...).
    Names of third parties are not found (no NER): only identifiers and the subject's values are.
    """
    from vault.detect import FIELD_ENTITIES, IGNORED_FIELDS
    from vault.validators import canonical_or_none

    known = {name: list(values) for name, values in own_values.items()
             if name in FIELD_ENTITIES or name in IGNORED_FIELDS}
    kinds = field_kinds or {}
    own: dict[str, set[str]] = {}
    for name, values in own_values.items():
        kind = kinds.get(name, name)
        for entity, entity_kind in _ENTITY_KINDS.items():
            if entity_kind != kind:
                continue
            canon = {c for c in (canonical_or_none(kind, v) for v in values) if c is not None}
            own.setdefault(entity, set()).update(canon)
    parts: list[str] = []
    position = 0
    for finding in detector.detect(note, known):
        if finding.field is not None or finding.canonical in own.get(finding.entity_type, ()):
            continue
        parts += [note[position:finding.start], f"[redacted: {finding.entity_type}]"]
        position = finding.end
    parts.append(note[position:])
    return "".join(parts)
