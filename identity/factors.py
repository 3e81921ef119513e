"""Second factors: TOTP enrolment (pending until the first valid code), verification, recovery codes, reset.

Invariants: the TOTP secret is stored sealed (:mod:`identity.secretbox`) and shown only
while the enrolment is pending; each time-step is accepted once per user (the newest
accepted step is stored and advanced with a conditional UPDATE, so two requests racing
with one code cannot both win); a recovery code works once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from audit.events import Actor, ActorKind
from core.clock import Clock
from core.errors import NotFoundError
from identity import recovery, repository, totp
from identity.errors import TotpStateError
from identity.events import EventQueue
from identity.models import RecoveryCode, TotpFactor, User
from identity.secretbox import SecretBox


@dataclass(frozen=True)
class Enrolment:
    """A pending TOTP enrolment: what the user's authenticator app needs, once."""

    user_id: str
    uri: str
    secret: str = field(repr=False)

    def qr_png(self) -> bytes:
        return totp.qr_png(self.uri)

    def qr_terminal(self) -> str:
        return totp.qr_terminal(self.uri)


@dataclass(frozen=True)
class FactorCheck:
    """Outcome of a second-factor check: ``method`` on success, else a data-free ``reason``."""

    ok: bool
    method: str | None = None  # "totp" or "recovery_code"
    reason: str | None = None  # "invalid_code", "replayed_code", "invalid_recovery_code", "not_enrolled"


class SecondFactors:
    def __init__(self, session: Session, *, clock: Clock, box: Callable[[], SecretBox], events: EventQueue,
                 recovery_codes: int = 10) -> None:
        self.session = session
        self.clock = clock
        self._box = box
        self.events = events
        self.recovery_codes = recovery_codes

    def active(self, user_id: str) -> TotpFactor | None:
        factor = repository.totp_factor(self.session, user_id)
        return factor if factor is not None and factor.confirmed_at is not None else None

    def _secret(self, factor: TotpFactor) -> str:
        return self._box().open(factor.sealed_secret, aad=factor.user_id).decode("ascii")

    # -- enrolment ----------------------------------------------------------------------------------

    def begin(self, user: User) -> Enrolment:
        """Start (or restart) enrolment with a fresh secret; refused while a confirmed factor exists."""
        factor = repository.totp_factor(self.session, user.id)
        if factor is not None and factor.confirmed_at is not None:
            raise TotpStateError("TOTP is already enrolled for this account; an administrator can reset it")
        secret = totp.new_secret()
        sealed = self._box().seal(secret.encode("ascii"), aad=user.id)
        if factor is None:
            self.session.add(TotpFactor(user_id=user.id, sealed_secret=sealed, created_at=self.clock.now()))
        else:
            factor.sealed_secret, factor.created_at, factor.last_step = sealed, self.clock.now(), None
        self.session.flush()
        return Enrolment(user.id, totp.provisioning_uri(secret, user.username), secret)

    def pending(self, user: User) -> Enrolment:
        """The pending enrolment again (e.g. for its QR code); NotFound once confirmed or never begun."""
        factor = repository.totp_factor(self.session, user.id)
        if factor is None or factor.confirmed_at is not None:
            raise NotFoundError("no TOTP enrolment is pending for this account")
        secret = self._secret(factor)
        return Enrolment(user.id, totp.provisioning_uri(secret, user.username), secret)

    def confirm(self, user: User, code: str) -> FactorCheck:
        """Activate a pending factor with its first valid code; on success, new recovery codes are made."""
        factor = repository.totp_factor(self.session, user.id)
        if factor is None or factor.confirmed_at is not None:
            raise TotpStateError("no TOTP enrolment is pending for this account")
        result = totp.check_code(self._secret(factor), code, self.clock.now(), last_step=factor.last_step)
        if result.outcome is not totp.CodeCheck.ACCEPTED or result.step is None:
            return FactorCheck(False, reason="invalid_code")
        factor.confirmed_at, factor.last_step = self.clock.now(), result.step
        self.events.add("identity.totp_enrolled", Actor(id=user.id, kind=ActorKind.USER), user_id=user.id)
        return FactorCheck(True, method="totp")

    def new_recovery_codes(self, user: User) -> list[str]:
        """Replace the user's recovery codes with fresh ones; returns them in clear, the only time."""
        repository.delete_recovery_codes(self.session, user.id)
        codes = recovery.generate(self.recovery_codes)
        now = self.clock.now()
        self.session.add_all(RecoveryCode(id=str(uuid.uuid4()), user_id=user.id, code_hash=recovery.code_hash(c),
                                          created_at=now) for c in codes)
        self.session.flush()
        return codes

    # -- verification -------------------------------------------------------------------------------

    def verify(self, user: User, *, totp_code: str | None, recovery_code: str | None) -> FactorCheck:
        """Check a TOTP code or a recovery code for an enrolled user; consumes what it accepts."""
        factor = self.active(user.id)
        if factor is None:
            return FactorCheck(False, reason="not_enrolled")
        if totp_code:
            result = totp.check_code(self._secret(factor), totp_code, self.clock.now(), last_step=factor.last_step)
            if result.outcome is totp.CodeCheck.REPLAYED:
                return FactorCheck(False, reason="replayed_code")
            if result.step is None or not repository.advance_totp_step(self.session, user.id, result.step):
                return FactorCheck(False, reason="invalid_code" if result.step is None else "replayed_code")
            factor.last_step = result.step
            return FactorCheck(True, method="totp")
        if recovery_code:
            for stored in repository.unused_recovery_codes(self.session, user.id):
                if recovery.matches(stored.code_hash, recovery_code):
                    if not repository.use_recovery_code(self.session, stored.id, self.clock.now()):
                        break
                    left = len(repository.unused_recovery_codes(self.session, user.id))
                    self.events.add("identity.recovery_code_used", Actor(id=user.id, kind=ActorKind.USER),
                                    user_id=user.id, reason=f"remaining:{left}")
                    return FactorCheck(True, method="recovery_code")
            return FactorCheck(False, reason="invalid_recovery_code")
        return FactorCheck(False, reason="missing_code")

    def remaining_recovery_codes(self, user_id: str) -> int:
        return len(repository.unused_recovery_codes(self.session, user_id))

    # -- administration -----------------------------------------------------------------------------

    def reset(self, user: User, *, actor: Actor, now: datetime | None = None) -> None:
        """Remove the user's TOTP factor and recovery codes and end their sessions (the user enrols again)."""
        when = now or self.clock.now()
        repository.delete_totp(self.session, user.id)
        repository.delete_recovery_codes(self.session, user.id)
        repository.revoke_user_sessions(self.session, user.id, when)
        user.failed_attempts, user.next_attempt_at, user.locked_until = 0, None, None
        self.events.add("identity.totp_reset", actor, user_id=user.id)
