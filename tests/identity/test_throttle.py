"""Throttling of failed attempts: exponential waits after 5 failures, a 15-minute lock-out at 10."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from audit.events import Actor, ActorKind
from core.clock import FixedClock
from identity import throttle
from identity.config import ThrottlePolicy
from identity.errors import InvalidCredentialsError, ThrottledError

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POLICY = ThrottlePolicy()
OPERATOR = Actor(id="operator:test", kind=ActorKind.SYSTEM)


class TestThrottleArithmetic:
    def test_first_four_failures_cost_nothing(self) -> None:
        """Failures 1 to 4 set no waiting time."""
        state = throttle.ThrottleState()
        for n in range(1, 5):
            state, locked = throttle.after_failure(POLICY, state, NOW)
            assert (state.failures, state.next_attempt_at, locked) == (n, None, False)
            throttle.check(state, NOW)

    def test_waits_double_from_the_fifth_failure(self) -> None:
        """After failure 5..9 the next attempt waits 2, 4, 8, 16, 32 seconds."""
        state = throttle.ThrottleState(failures=4)
        for expected in (2, 4, 8, 16, 32):
            state, locked = throttle.after_failure(POLICY, state, NOW)
            assert not locked
            assert state.next_attempt_at == NOW + timedelta(seconds=expected)

    def test_tenth_failure_locks_for_fifteen_minutes(self) -> None:
        """Failure 10 locks the account for 15 minutes, and so does every later one."""
        state, locked = throttle.after_failure(POLICY, throttle.ThrottleState(failures=9), NOW)
        assert locked
        assert state.locked_until == NOW + timedelta(minutes=15)
        later = NOW + timedelta(minutes=16)
        state, locked = throttle.after_failure(POLICY, state, later)
        assert locked
        assert state.locked_until == later + timedelta(minutes=15)

    def test_check_refuses_early_attempts_with_retry_after(self) -> None:
        """An attempt before next_attempt_at is refused with the seconds to wait."""
        state = throttle.ThrottleState(5, NOW + timedelta(seconds=4), None)
        with pytest.raises(ThrottledError) as info:
            throttle.check(state, NOW + timedelta(seconds=1))
        assert info.value.headers == {"Retry-After": "3"}
        assert info.value.status == 429
        throttle.check(state, NOW + timedelta(seconds=4))


class TestBruteForce:
    def test_brute_force_run_is_throttled_then_locked(self, ident: Callable, clock: FixedClock,  # type: ignore[type-arg]
                                                       audit_types: Callable[[], list[str]]) -> None:
        """Guessing passwords: 4 free tries, then growing waits (429), then a 15-minute lock that is audited."""
        with ident() as identity:
            identity.users.create("ola.kowalczyk", "the right password!", ["collector"], actor=OPERATOR)
        failures = throttled = 0
        waits: list[int] = []
        while failures < 10:
            try:
                with ident() as identity:
                    identity.auth.login("ola.kowalczyk", f"guess {failures}")
            except InvalidCredentialsError:
                failures += 1
            except ThrottledError as exc:
                throttled += 1
                waits.append(int(exc.headers["Retry-After"]))
                clock.advance(timedelta(seconds=int(exc.headers["Retry-After"])))
        assert waits == [2, 4, 8, 16, 32]
        assert throttled == 5
        with pytest.raises(ThrottledError) as locked, ident() as identity:
            identity.auth.login("ola.kowalczyk", "the right password!")  # even the right one now
        assert locked.value.extra["locked"] is True
        assert locked.value.headers["Retry-After"] == str(15 * 60)
        assert audit_types().count("identity.locked_out") == 1
        assert audit_types().count("identity.login_failed") == 10
        clock.advance(timedelta(minutes=15))
        with ident() as identity:
            identity.auth.login("ola.kowalczyk", "the right password!")
        with ident() as identity:
            info = identity.users.info(identity.users.by_username("ola.kowalczyk"))
        assert (info.failed_attempts, info.locked_until) == (0, None)

    def test_operator_unlock_clears_the_lock(self, ident: Callable, clock: FixedClock) -> None:  # type: ignore[type-arg]
        """`tarcza user unlock` (UserService.unlock) lets a locked user in before the 15 minutes."""
        with ident() as identity:
            user_id = identity.users.create("piotr.zielinski", "the right password!", ["dpo"], actor=OPERATOR).id
        for n in range(10):
            with pytest.raises((InvalidCredentialsError, ThrottledError)), ident() as identity:
                identity.auth.login("piotr.zielinski", f"wrong {n}")
            clock.advance(timedelta(seconds=40))
        with pytest.raises(ThrottledError), ident() as identity:
            identity.auth.login("piotr.zielinski", "the right password!")
        with ident() as identity:
            identity.users.unlock(user_id, actor=OPERATOR)
        with ident() as identity:
            identity.auth.login("piotr.zielinski", "the right password!")
