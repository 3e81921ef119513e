"""From caller values to stored rows: validate, normalise, seal, blind-index. Opening is the gate's
(:mod:`vault.access`), never this module's.

Pure apart from the randomness of sealing: no I/O, no clock (times are passed in).
Invariants:

- every value is validated and normalised by :func:`vault.validators.normalise` before it
  is sealed; a refused value raises :class:`InvalidFieldValueError` naming the field and
  the rule, never the value;
- a field that is not ``multi`` in the catalogue holds exactly one value;
- an envelope is sealed for ``(subject, field)`` under the subject's data key, so it opens
  nowhere else; a blind index is computed only for catalogue fields marked searchable;
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final

from vault.blind_index import BlindIndexer
from vault.envelope import seal_fields
from vault.errors import InvalidFieldValueError
from vault.fields import FieldCatalogue
from vault.repository import FieldRowValues
from vault.validators import normalise

__all__ = ["MAX_VALUES_PER_FIELD", "FieldSealer", "FieldValues"]

MAX_VALUES_PER_FIELD: Final = 50
_REQUEST_KEY_NAME: Final = "~request"  # never a field name (fields are lower-case identifiers)

FieldValues = Mapping[str, str | Sequence[str]]
"""What callers pass: a field name and one value, or a list of values for ``multi`` fields."""


class FieldSealer:
    """Validates and seals field values for one catalogue and one blind-index key."""

    def __init__(self, catalogue: FieldCatalogue, indexer: BlindIndexer) -> None:
        self.catalogue = catalogue
        self.indexer = indexer

    def check_names(self, names: Sequence[str]) -> list[str]:
        """The names, each checked against the catalogue (``unknown-field`` otherwise), without repeats."""
        out: list[str] = []
        for name in names:
            self.catalogue.get(name)
            if name not in out:
                out.append(name)
        return out

    def normalise(self, values: FieldValues) -> dict[str, list[str]]:
        """Every value validated and in canonical form, duplicates dropped, in the caller's order."""
        out: dict[str, list[str]] = {}
        for name, given in values.items():
            spec = self.catalogue.get(name)
            items: Sequence[object] = [given] if isinstance(given, str) else given
            if not isinstance(items, list | tuple):
                raise InvalidFieldValueError(name, "not-text")
            if not items:
                raise InvalidFieldValueError(name, "empty")
            if len(items) > MAX_VALUES_PER_FIELD:
                raise InvalidFieldValueError(name, "too-many-values")
            canonical: list[str] = []
            for item in items:
                if not isinstance(item, str):
                    raise InvalidFieldValueError(name, "not-text")
                value = normalise(name, spec.kind, item)
                if value not in canonical:
                    canonical.append(value)
            if len(canonical) > 1 and not spec.multi:
                raise InvalidFieldValueError(name, "single-valued")
            out[name] = canonical
        return out

    def rows(self, subject: str, data_key: bytes, dek_version: int, values: Mapping[str, Sequence[str]], *,
             now: datetime, created_at: Mapping[str, datetime] | None = None) -> list[FieldRowValues]:
        """Rows for ``vault_fields`` (in :data:`vault.repository.FIELD_COLUMNS` order): one per
        (already normalised) value, sealed and blind-indexed."""
        rows: list[FieldRowValues] = []
        plain = [(name, value.encode("utf-8")) for name, items in values.items() for value in items]
        envelopes = iter(seal_fields(data_key, plain, subject=subject, key_version=dek_version))
        indexer = self.indexer
        for name, items in values.items():
            spec = self.catalogue.get(name)
            created = now if created_at is None else created_at.get(name, now)
            for seq, value in enumerate(items):
                index = indexer.compute_canonical(name, spec.kind, value) if spec.blind_index else None
                rows.append((subject, name, seq, next(envelopes), index, created, now))
        return rows

    def blind_index(self, field: str, value: str) -> bytes:
        """The blind index of a raw search value; ``not-searchable`` for fields without one."""
        spec = self.catalogue.get(field)
        if not spec.blind_index:
            raise InvalidFieldValueError(field, "not-searchable")
        return self.indexer.compute(field, spec.kind, normalise(field, spec.kind, value))

    def request_hash(self, kind: str, values: Mapping[str, Sequence[str]]) -> bytes:
        """A keyed hash of a normalised create request, to tell a retry from a different request."""
        canonical = json.dumps({"kind": kind, "fields": {k: list(v) for k, v in sorted(values.items())}},
                               sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return hmac.new(self.indexer.field_key(_REQUEST_KEY_NAME), canonical, hashlib.sha256).digest()
