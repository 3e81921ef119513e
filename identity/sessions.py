"""Login sessions: password (+ second factor) login, step-up, logout, and resolving a session token.

A session token is ``tzs_`` + 256 random bits, given to the user once and stored as its
SHA-256. A session ends after ``session_idle`` without use, at ``session_absolute`` after
login, at logout, or when the account is disabled or its second factor reset.

``second_factor_at`` records when the second factor was last verified: at login, at
step-up, or when TOTP enrolment is confirmed. A password-only session (an account without
TOTP) has none; the policies let it do nothing but enrol (docs/authorisation-matrix.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from audit.events import Actor, ActorKind
from core.clock import Clock
from core.logging import get_logger
from identity import repository, tokens
from identity.attempts import Attempts
from identity.config import IdentityConfig
from identity.errors import InvalidCredentialsError, InvalidTokenError, SecondFactorRequiredError, TotpStateError
from identity.events import EventQueue
from identity.factors import SecondFactors
from identity.models import LoginSession, User
from identity.passwords import Passwords
from identity.principal import Principal
from identity.users import roles_of

log = get_logger(__name__)


@dataclass(frozen=True)
class IssuedSession:
    """A new session; ``token`` is shown to its user once and never stored."""

    token: str = field(repr=False)
    session_id: str
    user_id: str
    expires_at: datetime
    idle_timeout_seconds: int
    second_factor_at: datetime | None
    totp_enrolled: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "access_token": self.token, "token_type": "Bearer", "session_id": self.session_id,
            "user_id": self.user_id, "expires_at": self.expires_at.isoformat(),
            "idle_timeout_seconds": self.idle_timeout_seconds,
            "second_factor": self.second_factor_at is not None,
            "second_factor_at": self.second_factor_at.isoformat() if self.second_factor_at else None,
            "totp_enrolled": self.totp_enrolled,
        }


class Authenticator:
    def __init__(self, session: Session, *, clock: Clock, passwords: Passwords, factors: SecondFactors,
                 attempts: Attempts, events: EventQueue, config: IdentityConfig) -> None:
        self.session = session
        self.clock = clock
        self.passwords = passwords
        self.factors = factors
        self.attempts = attempts
        self.events = events
        self.config = config

    # -- login --------------------------------------------------------------------------------------

    def login(self, username: str, password: str, *, totp_code: str | None = None,
              recovery_code: str | None = None, source_ip: str | None = None) -> IssuedSession:
        """Verify password and, for an enrolled account, a TOTP or recovery code; open a session."""
        user = repository.user_by_username(self.session, username.strip().lower(), for_update=True)
        if user is None or user.disabled_at is not None:
            self.passwords.burn(password)
            if user is not None:
                self.events.add("identity.login_failed", Actor(id=user.id, kind=ActorKind.USER), user_id=user.id,
                                reason="disabled", source_ip=source_ip)
            else:
                log.info("login_unknown_user")
            raise InvalidCredentialsError()
        self.attempts.check(user)
        if not self.passwords.verify(user.password_hash, password):
            self.attempts.failed(user, event_type="identity.login_failed", reason="password", source_ip=source_ip)
            raise InvalidCredentialsError()
        enrolled = self.factors.active(user.id) is not None
        second_factor_at: datetime | None = None
        method = "password"
        if enrolled:
            if not totp_code and not recovery_code:
                raise SecondFactorRequiredError()
            check = self.factors.verify(user, totp_code=totp_code, recovery_code=recovery_code)
            if not check.ok:
                self.attempts.failed(user, event_type="identity.second_factor_failed", reason=check.reason or "invalid",
                                     source_ip=source_ip)
                raise InvalidCredentialsError()
            second_factor_at = self.clock.now()
            method = f"password+{check.method}"
        self.attempts.succeeded(user)
        if self.passwords.needs_rehash(user.password_hash):
            user.password_hash = self.passwords.hash_unchecked(password)
        issued = self._open(user, second_factor_at, enrolled)
        self.events.add("identity.login_succeeded", Actor(id=user.id, kind=ActorKind.USER), user_id=user.id,
                        reason=method, source_ip=source_ip)
        return issued

    def _open(self, user: User, second_factor_at: datetime | None, enrolled: bool) -> IssuedSession:
        now = self.clock.now()
        token = tokens.new_token(tokens.SESSION_PREFIX)
        row = LoginSession(id=str(uuid.uuid4()), token_hash=tokens.token_hash(token), user_id=user.id,
                           created_at=now, last_seen_at=now, expires_at=now + self.config.session_absolute,
                           second_factor_at=second_factor_at)
        self.session.add(row)
        self.session.flush()
        return IssuedSession(token, row.id, user.id, row.expires_at, int(self.config.session_idle.total_seconds()),
                             second_factor_at, enrolled)

    # -- step-up, enrolment confirmation, logout ------------------------------------------------------

    def _session_row(self, principal: Principal) -> LoginSession:
        if principal.kind is not ActorKind.USER or principal.session_id is None:
            raise InvalidTokenError("a user session is needed for this")
        row = self.session.get(LoginSession, principal.session_id)
        if row is None or row.revoked_at is not None:
            raise InvalidTokenError()
        return row

    def step_up(self, principal: Principal, *, totp_code: str | None = None, recovery_code: str | None = None,
                source_ip: str | None = None) -> datetime:
        """Verify the second factor again and refresh the session's ``second_factor_at``."""
        row = self._session_row(principal)
        user = repository.user_by_id(self.session, row.user_id, for_update=True)
        if user is None or user.disabled_at is not None:
            raise InvalidTokenError()
        if self.factors.active(user.id) is None:
            raise TotpStateError("this account has no TOTP factor yet; enrol one first")
        self.attempts.check(user)
        check = self.factors.verify(user, totp_code=totp_code, recovery_code=recovery_code)
        if not check.ok:
            self.attempts.failed(user, event_type="identity.second_factor_failed", reason=check.reason or "invalid",
                                 source_ip=source_ip)
            raise InvalidCredentialsError("second factor not accepted")
        self.attempts.succeeded(user)
        now = self.clock.now()
        row.second_factor_at = now
        row.last_seen_at = now
        self.events.add("identity.step_up", Actor(id=user.id, kind=ActorKind.USER), user_id=user.id,
                        reason=check.method, source_ip=source_ip)
        return now

    def confirm_enrolment(self, principal: Principal, code: str, *, source_ip: str | None = None) -> list[str]:
        """Confirm a pending TOTP enrolment with its first code; returns the recovery codes (shown once).

        The session that confirms has just verified the second factor, so it counts as fresh.
        """
        row = self._session_row(principal)
        user = repository.user_by_id(self.session, row.user_id, for_update=True)
        if user is None or user.disabled_at is not None:
            raise InvalidTokenError()
        self.attempts.check(user)
        check = self.factors.confirm(user, code)
        if not check.ok:
            self.attempts.failed(user, event_type="identity.second_factor_failed", reason="enrolment_code",
                                 source_ip=source_ip)
            raise InvalidCredentialsError("the code does not match; check the device's clock and try the next code")
        self.attempts.succeeded(user)
        row.second_factor_at = self.clock.now()
        return self.factors.new_recovery_codes(user)

    def logout(self, principal: Principal) -> None:
        row = self._session_row(principal)
        row.revoked_at = self.clock.now()
        self.events.add("identity.logout", principal.actor, user_id=row.user_id)

    # -- resolving ----------------------------------------------------------------------------------

    def resolve(self, token: str) -> Principal:
        """The principal of a live session token; :class:`InvalidTokenError` otherwise."""
        if not token.startswith(tokens.SESSION_PREFIX):
            raise InvalidTokenError()
        row = repository.session_by_token_hash(self.session, tokens.token_hash(token))
        if row is None or not tokens.hash_matches(row.token_hash, token):
            raise InvalidTokenError()
        now = self.clock.now()
        if row.revoked_at is not None or now >= row.expires_at or now >= row.last_seen_at + self.config.session_idle:
            raise InvalidTokenError("the session has ended; log in again")
        user = repository.user_by_id(self.session, row.user_id)
        if user is None or user.disabled_at is not None:
            raise InvalidTokenError()
        if now - row.last_seen_at >= self.config.session_touch_every:
            row.last_seen_at = now
        return Principal(id=user.id, kind=ActorKind.USER, roles=roles_of(user),
                         second_factor_at=row.second_factor_at,
                         assigned_cases=repository.assigned_cases(self.session, user.id), session_id=row.id)

