"""Bearer headers for API tests: a user with roles (and a recent second factor), or an API client."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from api.runtime import Runtime
from identity.testing import add_client_token, add_session, add_user


def person_headers(runtime: Runtime, *roles: str, cases: Iterable[str] = (),
                   second_factor_minutes_ago: float | None = 1) -> dict[str, str]:
    """Headers of a new user with ``roles`` (assigned ``cases``), whose second factor was verified that
    many minutes ago (None: never)."""
    now = runtime.clock.now()
    verified = None if second_factor_minutes_ago is None else now - timedelta(minutes=second_factor_minutes_ago)
    with runtime.sessions.begin() as session:
        user = add_user(session, roles=roles, now=now, assigned_cases=cases)
        token = add_session(session, user, now=now, second_factor_at=verified)
    return {"Authorization": f"Bearer {token}"}


def client_headers(runtime: Runtime, *scopes: str) -> dict[str, str]:
    """Headers of a new API client holding ``scopes``."""
    with runtime.sessions.begin() as session:
        token = add_client_token(session, scopes=scopes, now=runtime.clock.now())
    return {"Authorization": f"Bearer {token}"}
