"""Throttling of failed authentication attempts: a pure function of the account's state and now.

The state is three columns of the user (``failed_attempts``, ``next_attempt_at``,
``locked_until``). :func:`check` refuses an attempt made too early; :func:`after_failure`
computes the state after one more failure and whether it starts a lock-out. Nothing
sleeps: the server answers 429 with ``Retry-After`` until the time has come.
See :class:`identity.config.ThrottlePolicy` for the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from identity.config import ThrottlePolicy
from identity.errors import ThrottledError


@dataclass(frozen=True)
class ThrottleState:
    failures: int = 0
    next_attempt_at: datetime | None = None
    locked_until: datetime | None = None


def check(state: ThrottleState, now: datetime) -> None:
    """Raise :class:`ThrottledError` if an attempt at ``now`` must wait."""
    if state.locked_until is not None and now < state.locked_until:
        raise ThrottledError(state.locked_until, now, locked=True)
    if state.next_attempt_at is not None and now < state.next_attempt_at:
        raise ThrottledError(state.next_attempt_at, now, locked=False)


def after_failure(policy: ThrottlePolicy, state: ThrottleState, now: datetime) -> tuple[ThrottleState, bool]:
    """The state after one more failure at ``now``, and True if this failure locks the account."""
    failures = state.failures + 1
    if failures >= policy.lock_after:
        until = now + policy.lock_duration
        return ThrottleState(failures, until, until), True
    if failures >= policy.free_failures:
        delay = policy.base_delay * (2 ** (failures - policy.free_failures))
        return ThrottleState(failures, now + delay, None), False
    return ThrottleState(failures, None, None), False


def after_success() -> ThrottleState:
    return ThrottleState()
