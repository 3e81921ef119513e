"""The scopes an API client can hold, and purpose names.

What each scope allows is decided by the Cedar policies (policies/*.cedar), which map
actions to scopes; this module only knows the names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from core.errors import InvalidInputError

SCOPES: tuple[str, ...] = (
    "contacts:write",
    "subjects:read-masked",
    "subjects:reveal",
    "subjects:write",
    "audit:read",
    "audit:append",
    "audit:export",
    "gdpr:manage",
    "keys:rotate",
)
PURPOSE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


def parse_scopes(value: str | Iterable[str] | None) -> frozenset[str]:
    """Scope names from a space-separated string or an iterable; unknown names are refused."""
    if value is None:
        return frozenset()
    items = value.split() if isinstance(value, str) else [s for v in value for s in v.split()]
    unknown = sorted(set(items) - set(SCOPES))
    if unknown:
        raise InvalidInputError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}",
                                unknown_scopes=unknown)
    return frozenset(items)


def parse_purposes(value: Iterable[str] | None) -> frozenset[str] | None:
    """Purpose names (lower-case identifiers); None means any purpose the policies allow."""
    if value is None:
        return None
    items = frozenset(s for v in value for s in v.split())
    bad = sorted(p for p in items if not PURPOSE_PATTERN.match(p))
    if bad:
        raise InvalidInputError(f"purpose names are lower-case identifiers; refused: {', '.join(bad)}")
    return items


def join(items: Iterable[str]) -> str:
    return " ".join(sorted(items))
