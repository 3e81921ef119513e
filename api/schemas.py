"""Shapes the whole HTTP API shares: problem details, pages of a list, and their opaque cursors.

Every list answers ``{"items": [...], "next_cursor": "..." | null}``; ``limit`` has a default
and a maximum per route, and ``next_cursor`` is passed back as ``cursor`` for the next page.
A cursor is opaque: it wraps whatever position the service pages by (a log index, a
``(due date, id)`` pair...) so callers cannot build one, and a cursor this server did not
issue is a 422 problem (``invalid-cursor``), never a 500.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Final, TypeVar

from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from core.errors import InvalidInputError

T = TypeVar("T")

_CURSOR_PREFIX: Final = "c1:"
MAX_CURSOR_LENGTH: Final = 400
FIRST_YEAR: Final = 1900
LAST_YEAR: Final = 8999


class InvalidCursorError(InvalidInputError):
    """A ``cursor`` this server did not issue (or issued for another list)."""

    code = "invalid-cursor"
    title = "Invalid cursor"


class ValidationItem(BaseModel):
    """One field that failed validation: where and which rule; never the value sent."""

    loc: list[str] = Field(description="Path to the field, e.g. [\"body\", \"fields\", \"pesel\"]")
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details. Members beyond the standard ones depend on ``type`` (e.g. ``rule``
    and ``reason`` for a refusal by a policy, ``errors`` for a validation failure)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "urn:tarcza:problem:forbidden", "title": "Forbidden", "status": 403,
        "detail": "subject.reveal refused by a second_factor rule", "instance": "/v1/subjects/sub_x/reveal",
        "request_id": "5f0c6c3b2a0e4b8f9d1e7a6b4c3d2e1f", "rule": "second_factor", "reason": "stale",
        "step_up": "/v1/auth/step-up"}]})
    type: str = Field(description="A URI naming the kind of problem, e.g. urn:tarcza:problem:not-found")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str | None = None
    instance: str | None = Field(None, description="The path of the request")
    request_id: str | None = Field(None, description="Quote it to the operator: it finds the server log lines")
    errors: list[ValidationItem] | None = Field(None, description="Validation failures (request-validation)")


class Page(BaseModel):
    """One page of a list."""

    items: list[dict[str, Any]]
    next_cursor: str | None = Field(description="Pass as ``cursor`` for the next page; null on the last page")


def encode_cursor(position: str) -> str:
    """The opaque cursor for a service's ``position``."""
    return base64.urlsafe_b64encode((_CURSOR_PREFIX + position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The position inside an opaque cursor; :class:`InvalidCursorError` for one this server did not issue."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError):
        raise InvalidCursorError("cursor is not one this server issued") from None
    if not raw.startswith(_CURSOR_PREFIX) or len(raw) == len(_CURSOR_PREFIX):
        raise InvalidCursorError("cursor is not one this server issued")
    return raw[len(_CURSOR_PREFIX):]


def page_json(items: Sequence[Any], position: str | None) -> dict[str, Any]:
    """The answer for a page whose service gave ``position`` as the next one (None: the last page)."""
    return {"items": list(items), "next_cursor": None if position is None else encode_cursor(position)}


def page_of(items: Sequence[T], key: Callable[[T], str], cursor: str | None, limit: int) -> tuple[list[T], str | None]:
    """A page of a short list the service reads whole (a subject's debts, the API clients):
    the items whose ``key`` sorts after the cursor's, in ``key`` order, and the next position."""
    after = decode_cursor(cursor)
    ordered = sorted(items, key=key)
    remaining = [i for i in ordered if after is None or key(i) > after]
    page = remaining[:limit]
    return page, key(page[-1]) if len(remaining) > limit and page else None


Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH,
                                     description="The previous page's next_cursor; omit for the first page")]


def limit_query(default: int, maximum: int) -> Any:
    """The ``limit`` query parameter of a list: at most ``maximum`` items a page."""
    return Query(ge=1, le=maximum, description=f"Items per page (default {default}, at most {maximum})")


def _in_years(value: date) -> date:
    """Times and days from 1900 to 8999: the arithmetic on them (offsets, deadlines, limitation
    periods of years) stays far from the calendar's ends, where it would overflow."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be in the years {FIRST_YEAR} to {LAST_YEAR}")
    return value


Instant = Annotated[datetime, AfterValidator(_in_years)]
"""A date and time the API accepts (RFC 3339, in the years 1900 to 8999)."""
Day = Annotated[date, AfterValidator(_in_years)]
"""A calendar day the API accepts (in the years 1900 to 8999)."""
