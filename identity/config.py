"""The numbers of identity: throttling, session and token lifetimes, secret rotation.

They are constants of the code, not settings, because they are security properties the
ADR (docs/adr/0005-authorisation.md) promises; tests construct :class:`IdentityConfig`
with other values where they need to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class ThrottlePolicy:
    """Consecutive failed attempts per account (any factor) and what they cost.

    Failures 1 to ``free_failures - 1`` cost nothing. After failure ``n`` with
    ``free_failures <= n < lock_after`` the next attempt is refused until
    ``base_delay * 2 ** (n - free_failures)`` has passed (2, 4, 8, 16, 32 s with the
    defaults). Failure ``lock_after`` and every later one lock the account for
    ``lock_duration``. Only a complete success resets the count.
    """

    free_failures: int = 5
    lock_after: int = 10
    base_delay: timedelta = timedelta(seconds=2)
    lock_duration: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class IdentityConfig:
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    session_idle: timedelta = timedelta(minutes=30)
    session_absolute: timedelta = timedelta(hours=8)
    session_touch_every: timedelta = timedelta(seconds=60)  # last_seen_at is written at most this often
    access_token_lifetime: timedelta = timedelta(minutes=15)
    default_rotation_overlap: timedelta = timedelta(hours=24)
    max_rotation_overlap: timedelta = timedelta(days=30)
    recovery_codes: int = 10
    min_password_length: int = 12


DEFAULT_CONFIG = IdentityConfig()
