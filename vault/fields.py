"""The field catalogue: which personal-data fields exist and how each is treated.

Loaded from ``policies/fields.yaml`` and validated whole before use. Invariants:

- Every field names a data category, a known validator kind and a known mask strategy.
- The per-role mask table is complete: every field lists exactly the declared roles, so
  no display falls back to a default by accident; a role outside the table sees
  ``redacted``.
- An unknown field name is refused with ``InvalidFieldValueError(name, "unknown-field")``.
- Duplicate keys in the YAML are an error (YAML itself would keep the last silently).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import ConfigurationError
from vault.errors import InvalidFieldValueError
from vault.masking import STRATEGIES
from vault.validators import KINDS

__all__ = [
    "DEFAULT_CATALOGUE_PATH",
    "MASKED",
    "DataCategory",
    "FieldCatalogue",
    "FieldSpec",
    "catalogue_from_yaml",
    "load_catalogue",
]

# policies/ is a package (its __init__.py makes setuptools ship fields.yaml) installed
# beside vault/, both in site-packages or both in the source tree for an editable install.
# It is found by path rather than by ``import policies``: an editable install made before
# policies/ existed does not map the new package, and the catalogue must not depend on that.
DEFAULT_CATALOGUE_PATH: Final = Path(__file__).resolve().parents[1] / "policies" / "fields.yaml"

#: In the ``masks`` table, "use the field's own ``mask`` strategy".
MASKED: Final = "masked"
_FALLBACK_STRATEGY: Final = "redacted"
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")

DataCategory = Literal["identification", "contact", "financial", "location", "notes"]


class FieldSpec(BaseModel):
    """One field of the catalogue."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    name: str
    data_category: DataCategory
    kind: str
    blind_index: bool
    mask: str
    multi: bool = False

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        if not _FIELD_NAME.fullmatch(value):
            raise ValueError("field names are lower-case identifiers")
        return value

    @field_validator("kind")
    @classmethod
    def _kind_is_known(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"unknown kind {value!r}; known: {sorted(KINDS)}")
        return value

    @field_validator("mask")
    @classmethod
    def _mask_is_known(cls, value: str) -> str:
        if value not in STRATEGIES:
            raise ValueError(f"unknown mask strategy {value!r}; known: {sorted(STRATEGIES)}")
        return value


class FieldCatalogue(BaseModel):
    """Every field, and what each role sees of it."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    version: Literal[1]
    roles: Annotated[tuple[str, ...], Field(strict=False)]  # a YAML list
    fields: dict[str, FieldSpec]
    masks: dict[str, dict[str, str]]

    @model_validator(mode="before")
    @classmethod
    def _name_fields_by_key(cls, data: Any) -> Any:
        """Fields are keyed by name in the YAML; each spec gets its key as ``name``."""
        if isinstance(data, dict) and isinstance(data.get("fields"), dict):
            named: dict[str, Any] = {}
            for key, spec in data["fields"].items():
                if isinstance(spec, dict):
                    if spec.get("name", key) != key:
                        raise ValueError(f"field {key!r} declares another name")
                    spec = {**spec, "name": key}
                named[key] = spec
            data = {**data, "fields": named}
        return data

    @model_validator(mode="after")
    def _tables_are_complete(self) -> FieldCatalogue:
        if not self.roles or len(set(self.roles)) != len(self.roles):
            raise ValueError("roles must be a non-empty list without repeats")
        if not self.fields:
            raise ValueError("the catalogue declares no field")
        if set(self.masks) != set(self.fields):
            missing = sorted(set(self.fields) - set(self.masks))
            extra = sorted(set(self.masks) - set(self.fields))
            raise ValueError(f"masks must cover exactly the fields; missing {missing}, extra {extra}")
        allowed = set(STRATEGIES) | {MASKED}
        for field, by_role in self.masks.items():
            if set(by_role) != set(self.roles):
                missing = sorted(set(self.roles) - set(by_role))
                extra = sorted(set(by_role) - set(self.roles))
                raise ValueError(f"masks of {field!r}: missing roles {missing}, unknown roles {extra}")
            for role, strategy in by_role.items():
                if strategy not in allowed:
                    raise ValueError(f"masks of {field!r} for {role!r}: unknown strategy {strategy!r}")
        return self

    def get(self, name: str) -> FieldSpec:
        """The spec of field ``name``; ``InvalidFieldValueError(name, "unknown-field")`` if none."""
        spec = self.fields.get(name)
        if spec is None:
            raise InvalidFieldValueError(name, "unknown-field")
        return spec

    def names(self) -> tuple[str, ...]:
        """Every field name, in catalogue order."""
        return tuple(self.fields)

    def blind_indexed(self) -> tuple[str, ...]:
        """The names of the fields searchable by blind index."""
        return tuple(name for name, spec in self.fields.items() if spec.blind_index)

    def in_category(self, category: DataCategory) -> tuple[FieldSpec, ...]:
        """The fields of one data category (what a retention schedule applies to)."""
        return tuple(spec for spec in self.fields.values() if spec.data_category == category)

    def mask_strategy(self, field: str, role: str) -> str:
        """The strategy name for ``role`` viewing ``field``; ``redacted`` for unknown roles."""
        spec = self.get(field)
        if role not in self.roles:
            return _FALLBACK_STRATEGY
        strategy = self.masks[field][role]
        return spec.mask if strategy == MASKED else strategy


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a mapping with a repeated key."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def catalogue_from_yaml(text: str, source: str = "<string>") -> FieldCatalogue:
    """Parse and validate a catalogue; ``ConfigurationError`` naming ``source`` if it is wrong."""
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"field catalogue {source} is not valid YAML: {exc}") from None
    try:
        return FieldCatalogue.model_validate(document)
    except ValidationError as exc:
        raise ConfigurationError(f"field catalogue {source} is invalid: {exc}") from None


@functools.lru_cache(maxsize=8)
def load_catalogue(path: Path | None = None) -> FieldCatalogue:
    """The catalogue at ``path`` (default: the packaged ``policies/fields.yaml``), cached."""
    source = path if path is not None else DEFAULT_CATALOGUE_PATH
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"field catalogue {source} cannot be read: {exc.strerror}") from None
    return catalogue_from_yaml(text, source=str(source))
