"""Helpers for tests elsewhere in the suite: principals with real tokens, without the login ceremony.

They write rows directly (no password hashing, no audit entries), so a test of the vault
or the audit API can call the HTTP API as "a DPO with a fresh second factor" or "a
client holding audit:read" in a few milliseconds. Never used by Tarcza itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from identity import scopes as scope_names
from identity import tokens
from identity.config import DEFAULT_CONFIG, IdentityConfig
from identity.models import AccessToken, ApiClient, CaseAssignment, LoginSession, User

UNUSABLE_PASSWORD_HASH = "!test-user-without-password"  # noqa: S105 - verifies nothing


def add_user(session: Session, *, roles: Iterable[str], now: datetime, username: str | None = None,
             assigned_cases: Iterable[str] = ()) -> User:
    user = User(id=tokens.new_user_id(), username=username or f"test-{uuid.uuid4().hex[:12]}",
                password_hash=UNUSABLE_PASSWORD_HASH, roles=" ".join(sorted(roles)), created_at=now,
                failed_attempts=0)
    session.add(user)
    session.flush()
    session.add_all(CaseAssignment(user_id=user.id, case_id=c) for c in sorted(set(assigned_cases)))
    session.flush()
    return user


def add_session(session: Session, user: User, *, now: datetime, second_factor_at: datetime | None,
                config: IdentityConfig = DEFAULT_CONFIG) -> str:
    """A live session of ``user`` opened at ``now``; returns its bearer token."""
    token = tokens.new_token(tokens.SESSION_PREFIX)
    session.add(LoginSession(id=str(uuid.uuid4()), token_hash=tokens.token_hash(token), user_id=user.id,
                             created_at=now, last_seen_at=now, expires_at=now + config.session_absolute,
                             second_factor_at=second_factor_at))
    session.flush()
    return token


def add_client_token(session: Session, *, scopes: Iterable[str], now: datetime,
                     purposes: Iterable[str] | None = None, config: IdentityConfig = DEFAULT_CONFIG) -> str:
    """A new client holding ``scopes`` and a live access token for all of them; returns the token."""
    granted = scope_names.parse_scopes(list(scopes))
    client = ApiClient(id=tokens.new_client_id(), name="test client", scopes=scope_names.join(granted),
                       purposes=None if purposes is None else scope_names.join(purposes), created_at=now)
    session.add(client)
    session.flush()
    token = tokens.new_token(tokens.ACCESS_PREFIX)
    session.add(AccessToken(id=str(uuid.uuid4()), token_hash=tokens.token_hash(token), client_id=client.id,
                            scopes=scope_names.join(granted), issued_at=now,
                            expires_at=now + config.access_token_lifetime))
    session.flush()
    return token
