"""The only place identity runs queries. Functions take the caller's ORM session; none commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from identity.models import (
    AccessToken,
    ApiClient,
    CaseAssignment,
    ClientSecret,
    LoginSession,
    RecoveryCode,
    TotpFactor,
    User,
)

# -- users --------------------------------------------------------------------------------------


def user_by_username(session: Session, username: str, *, for_update: bool = False) -> User | None:
    stmt = select(User).where(User.username == username)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def user_by_id(session: Session, user_id: str, *, for_update: bool = False) -> User | None:
    stmt = select(User).where(User.id == user_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def list_users(session: Session) -> Sequence[User]:
    return session.scalars(select(User).order_by(User.username)).all()


def assigned_cases(session: Session, user_id: str) -> frozenset[str]:
    rows = session.scalars(select(CaseAssignment.case_id).where(CaseAssignment.user_id == user_id)).all()
    return frozenset(rows)


def replace_assignments(session: Session, user_id: str, case_ids: frozenset[str]) -> None:
    session.execute(delete(CaseAssignment).where(CaseAssignment.user_id == user_id))
    session.add_all(CaseAssignment(user_id=user_id, case_id=c) for c in sorted(case_ids))


# -- second factors -----------------------------------------------------------------------------


def totp_factor(session: Session, user_id: str) -> TotpFactor | None:
    return session.get(TotpFactor, user_id)


def active_user_ids_with_totp(session: Session, user_ids: Sequence[str]) -> frozenset[str]:
    if not user_ids:
        return frozenset()
    rows = session.scalars(select(TotpFactor.user_id).where(
        TotpFactor.user_id.in_(user_ids), TotpFactor.confirmed_at.is_not(None))).all()
    return frozenset(rows)


def delete_totp(session: Session, user_id: str) -> None:
    session.execute(delete(TotpFactor).where(TotpFactor.user_id == user_id))


def advance_totp_step(session: Session, user_id: str, step: int) -> bool:
    """Record ``step`` as used if it is newer than the last one; False if another request got there first."""
    result = session.execute(
        update(TotpFactor)
        .where(TotpFactor.user_id == user_id,
               or_(TotpFactor.last_step.is_(None), TotpFactor.last_step < step))
        .values(last_step=step)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def unused_recovery_codes(session: Session, user_id: str) -> Sequence[RecoveryCode]:
    return session.scalars(select(RecoveryCode).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)).order_by(RecoveryCode.id)).all()


def use_recovery_code(session: Session, code_id: str, now: datetime) -> bool:
    """Mark a code used unless another request did; True if this call used it."""
    result = session.execute(
        update(RecoveryCode).where(RecoveryCode.id == code_id, RecoveryCode.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def delete_recovery_codes(session: Session, user_id: str) -> None:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


# -- sessions -----------------------------------------------------------------------------------


def session_by_token_hash(session: Session, token_hash: str) -> LoginSession | None:
    return session.scalars(select(LoginSession).where(LoginSession.token_hash == token_hash)).one_or_none()


def revoke_user_sessions(session: Session, user_id: str, now: datetime) -> None:
    session.execute(
        update(LoginSession).where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=now).execution_options(synchronize_session=False)
    )


# -- clients ------------------------------------------------------------------------------------


def client_by_id(session: Session, client_id: str) -> ApiClient | None:
    return session.get(ApiClient, client_id)


def list_clients(session: Session) -> Sequence[ApiClient]:
    return session.scalars(select(ApiClient).order_by(ApiClient.created_at, ApiClient.id)).all()


def live_client_secrets(session: Session, client_id: str, now: datetime) -> Sequence[ClientSecret]:
    return session.scalars(select(ClientSecret).where(
        ClientSecret.client_id == client_id,
        or_(ClientSecret.expires_at.is_(None), ClientSecret.expires_at > now),
    ).order_by(ClientSecret.created_at)).all()


def access_token_by_hash(session: Session, token_hash: str) -> AccessToken | None:
    return session.scalars(select(AccessToken).where(AccessToken.token_hash == token_hash)).one_or_none()


def revoke_client_tokens(session: Session, client_id: str, now: datetime) -> None:
    session.execute(
        update(AccessToken).where(AccessToken.client_id == client_id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=now).execution_options(synchronize_session=False)
    )
