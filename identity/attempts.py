"""Failure accounting for every factor: checks the throttle, counts failures, audits lock-outs.

One counter per account covers all its factors (password, TOTP code, recovery code), in
login, step-up and enrolment, so an attacker cannot spread guesses over several doors.
"""

from __future__ import annotations

from audit.events import Actor, ActorKind
from core.clock import Clock
from identity import throttle
from identity.config import ThrottlePolicy
from identity.events import EventQueue
from identity.models import User


class Attempts:
    def __init__(self, *, clock: Clock, policy: ThrottlePolicy, events: EventQueue) -> None:
        self.clock = clock
        self.policy = policy
        self.events = events

    @staticmethod
    def state(user: User) -> throttle.ThrottleState:
        return throttle.ThrottleState(user.failed_attempts or 0, user.next_attempt_at, user.locked_until)

    def check(self, user: User) -> None:
        """Raise :class:`~identity.errors.ThrottledError` if this account must wait."""
        throttle.check(self.state(user), self.clock.now())

    def failed(self, user: User, *, event_type: str, reason: str, source_ip: str | None) -> None:
        """Count one failure, queue its audit event and, if it starts a lock-out, ``identity.locked_out``."""
        now = self.clock.now()
        new, locked = throttle.after_failure(self.policy, self.state(user), now)
        user.failed_attempts, user.next_attempt_at, user.locked_until = (
            new.failures, new.next_attempt_at, new.locked_until)
        actor = Actor(id=user.id, kind=ActorKind.USER)
        self.events.add(event_type, actor, user_id=user.id, reason=reason, source_ip=source_ip)
        if locked:
            self.events.add("identity.locked_out", actor, user_id=user.id,
                            reason=f"failures:{new.failures}", source_ip=source_ip)

    def succeeded(self, user: User) -> None:
        user.failed_attempts, user.next_attempt_at, user.locked_until = 0, None, None
