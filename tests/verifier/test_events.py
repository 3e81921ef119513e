"""tarcza_verify.events: an entry is an event written as RFC 8785 canonical JSON (checked against rfc8785)."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.events import Actor, ActorKind, build_event
from tarcza_verify.events import EventFormatError, canonical, parse_event

PROPERTY = settings(max_examples=300, deadline=None, database=None)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def _event() -> dict[str, Any]:
    from datetime import UTC, datetime

    event = build_event("contact.attempted", actor=Actor(id="agent-1", kind=ActorKind.USER),
                        time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), subject="sub_EVENTSUBJECT001",
                        payload={"channel": "sms", "direction": "outbound", "agent_id": "agent-1"})
    return event.json_value()


class TestCanonical:
    @PROPERTY
    @given(JSON)
    def test_matches_rfc8785(self, value: Any) -> None:
        """For JSON without floats, the verifier's serialisation is rfc8785's byte for byte."""
        try:
            expected = rfc8785.dumps(value)
        except (UnicodeEncodeError, rfc8785.CanonicalizationError):
            with pytest.raises(EventFormatError):
                canonical(value)
            return
        assert canonical(value) == expected

    def test_members_sort_by_utf16_code_units(self) -> None:
        """Names sort by UTF-16 code units, not code points: U+1F600 (D83D DE00) comes before U+E000."""
        value = {"\ue000": 2, "\U0001f600": 1, "a": 3}
        assert canonical(value) == rfc8785.dumps(value)
        assert canonical(value).index("\U0001f600".encode()) < canonical(value).index("\ue000".encode())


class TestParseEvent:
    def test_logged_event_parses(self) -> None:
        """The bytes the log writes for an event parse back to it."""
        from audit.events import canonical_json

        value = _event()
        assert parse_event(canonical_json(value)) == value

    @pytest.mark.parametrize(("line", "message"), [
        (b'{"a": 1}', "canonical"),
        (b'{"a":1,"a":2}', "canonical"),
        (b'{"a":1.5}', "fraction"),
        (b'{"a":NaN}', "NaN"),
        (b"[1]", "not a JSON object"),
        (b'{"a":', "not JSON"),
        (b'{"a":"\xff"}', "UTF-8"),
        (b'{"v":1}', "not an event"),
    ], ids=["whitespace", "duplicate-name", "float", "nan", "array", "truncated", "not-utf8", "not-event"])
    def test_refusals_say_why(self, line: bytes, message: str) -> None:
        """Bytes that are not canonical JSON of an event are refused with the reason."""
        with pytest.raises(EventFormatError, match=message):
            parse_event(line)

    def test_event_shape_is_checked(self) -> None:
        """A canonical object missing the actor's kind, or with a local time, is not an event."""
        from audit.events import canonical_json

        event = _event()
        event["actor"] = {"id": "agent-1"}
        with pytest.raises(EventFormatError, match="format v1"):
            parse_event(canonical_json(event))
        event = _event()
        event["time"] = "2026-01-02T03:04:05"
        with pytest.raises(EventFormatError, match="RFC 3339"):
            parse_event(canonical_json(event))
