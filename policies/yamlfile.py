"""Reading a policy file: YAML whose every mapping key is unique, and key paths for error messages.

Shared by the loaders of ``policies/*.yaml`` (contact rules, retention schedules). A key
written twice is an error naming its path and line, never silently the last value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class DuplicateKeyError(ValueError):
    """A mapping of the document repeats a key; ``path`` names it (``rules.objection``)."""

    def __init__(self, path: str, line: int) -> None:
        super().__init__(f"duplicate key {path} (line {line})")
        self.path = path
        self.line = line


def _key_text(node: yaml.Node) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else f"<{node.tag}>"


def _refuse_duplicate_keys(node: yaml.Node, path: str) -> None:
    """Walk the composed YAML tree; a mapping repeating a key raises :class:`DuplicateKeyError`."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = _key_text(key_node)
            child = f"{path}.{key}" if path else key
            if key in seen:
                raise DuplicateKeyError(child, key_node.start_mark.line + 1)
            seen.add(key)
            _refuse_duplicate_keys(value_node, child)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _refuse_duplicate_keys(item, f"{path}[{index}]")


def parse_unique_yaml(text: str) -> Any:
    """The document in ``text`` (safe YAML); DuplicateKeyError for a repeated key, yaml.YAMLError if not YAML."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_duplicate_keys(node, "")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def key_path(location: Sequence[int | str]) -> str:
    """A pydantic error location as a key path: ``rules.allowed_hours.hours.phone.end``, ``x[2]``."""
    parts: list[str] = []
    for part in location:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part != "[key]":
            parts.append(f".{part}" if parts else part)
    return "".join(parts) or "<document>"


def validated_document(text: str, source: str, model: type[M], fail: Callable[..., Exception], label: str,
                       verb: str = "is") -> M:
    """``text`` parsed (unique keys) and validated as ``model``; else ``fail(message, ...)`` naming ``source``
    and the key paths. ``label`` names the kind of file in messages ("contact rules"), ``verb`` agrees with it."""
    try:
        document = parse_unique_yaml(text)
    except DuplicateKeyError as exc:
        raise fail(f"{label} {source}: {exc}", path=exc.path) from None
    except yaml.YAMLError as exc:
        raise fail(f"{label} {source} {verb} not valid YAML: {exc}") from None
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        paths = [key_path(error["loc"]) for error in errors]
        problems = [f"{path}: {error['msg']}" for path, error in zip(paths, errors, strict=True)]
        raise fail(f"{label} {source} {verb} invalid: {'; '.join(problems)}", paths=paths) from None


def read_policy_text(path: Path, fail: Callable[..., Exception], label: str, verb: str = "is") -> str:
    """The UTF-8 text of a policy file, or ``fail(message)`` saying why it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise fail(f"{label} {path} cannot be read: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise fail(f"{label} {path} {verb} not UTF-8 text") from None
