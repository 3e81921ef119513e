"""The injectable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.clock import FixedClock, SystemClock


class TestClocks:
    def test_system_clock_is_utc(self) -> None:
        """The system clock gives timezone-aware UTC times."""
        assert SystemClock().now().tzinfo == UTC

    def test_fixed_clock_moves_only_when_told(self) -> None:
        """A fixed clock stays put until advanced or set."""
        start = datetime(2026, 11, 23, 9, 0, tzinfo=timezone(timedelta(hours=1)))
        clock = FixedClock(start)
        assert clock.now() == start
        assert clock.now().tzinfo == UTC
        clock.advance(timedelta(minutes=5))
        assert clock.now() == start + timedelta(minutes=5)

    def test_fixed_clock_refuses_naive_time(self) -> None:
        """A naive datetime is refused: every recorded time is UTC-aware."""
        with pytest.raises(ValueError, match="timezone-aware"):
            FixedClock(datetime(2026, 1, 1))  # noqa: DTZ001 - the naive value is the point
