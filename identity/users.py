"""Users: create, list, disable, unlock, case assignments. Roles come from :class:`identity.principal.Role`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from audit.events import Actor
from core.clock import Clock
from core.errors import ConflictError, InvalidInputError, NotFoundError
from identity import repository, tokens
from identity.events import EventQueue
from identity.models import User
from identity.passwords import Passwords
from identity.principal import Role

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._\-]{2,63}$")
CASE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


def parse_roles(values: Iterable[str]) -> frozenset[Role]:
    names = [n for v in values for n in v.replace(",", " ").split()]
    known = {r.value for r in Role}
    unknown = sorted(set(names) - known)
    if unknown:
        raise InvalidInputError(f"unknown role(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if not names:
        raise InvalidInputError("a user needs at least one role")
    return frozenset(Role(n) for n in names)


def roles_of(user: User) -> frozenset[Role]:
    return frozenset(Role(n) for n in user.roles.split())


@dataclass(frozen=True)
class UserInfo:
    id: str
    username: str
    roles: frozenset[Role]
    created_at: datetime
    disabled_at: datetime | None
    totp_enrolled: bool
    failed_attempts: int
    locked_until: datetime | None
    assigned_cases: frozenset[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "username": self.username, "roles": sorted(r.value for r in self.roles),
            "created_at": self.created_at.isoformat(), "disabled": self.disabled_at is not None,
            "disabled_at": self.disabled_at.isoformat() if self.disabled_at else None,
            "totp_enrolled": self.totp_enrolled, "failed_attempts": self.failed_attempts,
            "locked_until": self.locked_until.isoformat() if self.locked_until else None,
            "assigned_cases": sorted(self.assigned_cases),
        }


class UserService:
    def __init__(self, session: Session, *, clock: Clock, passwords: Passwords, events: EventQueue) -> None:
        self.session = session
        self.clock = clock
        self.passwords = passwords
        self.events = events

    def get(self, user_id: str, *, for_update: bool = False) -> User:
        user = repository.user_by_id(self.session, user_id, for_update=for_update)
        if user is None:
            raise NotFoundError("no such user", user_id=user_id)
        return user

    def by_username(self, username: str) -> User:
        user = repository.user_by_username(self.session, username.strip().lower())
        if user is None:
            raise NotFoundError("no user with that username")
        return user

    def info(self, user: User) -> UserInfo:
        enrolled = bool(repository.active_user_ids_with_totp(self.session, [user.id]))
        return self._info(user, enrolled)

    def _info(self, user: User, enrolled: bool) -> UserInfo:
        return UserInfo(user.id, user.username, roles_of(user), user.created_at, user.disabled_at, enrolled,
                        user.failed_attempts or 0, user.locked_until,
                        repository.assigned_cases(self.session, user.id))

    def create(self, username: str, password: str, roles: Iterable[str], *, actor: Actor) -> UserInfo:
        username = username.strip().lower()
        if not USERNAME_PATTERN.match(username):
            raise InvalidInputError("a username is 3 to 64 characters: a-z, 0-9, '.', '_' or '-', "
                                    "starting with a letter or digit")
        parsed = parse_roles(roles)
        if repository.user_by_username(self.session, username) is not None:
            raise ConflictError("a user with that username exists")
        user = User(id=tokens.new_user_id(), username=username, password_hash=self.passwords.hash(password),
                    roles=" ".join(sorted(r.value for r in parsed)), created_at=self.clock.now(),
                    failed_attempts=0)
        self.session.add(user)
        try:
            self.session.flush()
        except IntegrityError:
            raise ConflictError("a user with that username exists") from None
        self.events.add("identity.user_created", actor, user_id=user.id,
                        reason="roles:" + ",".join(sorted(r.value for r in parsed)))
        return self._info(user, False)

    def list(self) -> list[UserInfo]:
        users = repository.list_users(self.session)
        enrolled = repository.active_user_ids_with_totp(self.session, [u.id for u in users])
        return [self._info(u, u.id in enrolled) for u in users]

    def disable(self, user_id: str, *, actor: Actor) -> UserInfo:
        """Disable the account and end its sessions at once."""
        user = self.get(user_id, for_update=True)
        now = self.clock.now()
        if user.disabled_at is None:
            user.disabled_at = now
            repository.revoke_user_sessions(self.session, user.id, now)
            self.events.add("identity.user_disabled", actor, user_id=user.id)
        return self.info(user)

    def unlock(self, user_id: str, *, actor: Actor) -> UserInfo:
        """Clear failed attempts and any lock-out (after checking who was locked out, and why)."""
        user = self.get(user_id, for_update=True)
        user.failed_attempts, user.next_attempt_at, user.locked_until = 0, None, None
        self.events.add("identity.user_updated", actor, user_id=user.id, reason="unlocked")
        return self.info(user)

    def assign_cases(self, user_id: str, case_ids: Iterable[str], *, actor: Actor) -> UserInfo:
        """Replace the cases assigned to a user (what a field agent may see)."""
        user = self.get(user_id, for_update=True)
        cases = frozenset(c.strip() for c in case_ids if c.strip())
        bad = sorted(c for c in cases if not CASE_ID_PATTERN.match(c))
        if bad:
            raise InvalidInputError(f"{len(bad)} case id(s) are not 1-64 characters of A-Z a-z 0-9 _ . : -")
        repository.replace_assignments(self.session, user.id, cases)
        self.session.flush()
        self.events.add("identity.user_updated", actor, user_id=user.id, reason=f"case_assignments:{len(cases)}")
        return self.info(user)
