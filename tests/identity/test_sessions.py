"""Sessions: password and TOTP login, password-only sessions, step-up, expiry, logout, disabling."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pyotp
import pytest

from api.runtime import Runtime
from audit.events import Actor, ActorKind
from core.clock import FixedClock
from identity.errors import (
    InvalidCredentialsError,
    InvalidTokenError,
    SecondFactorRequiredError,
    TotpStateError,
)
from identity.principal import Principal, Role

OPERATOR = Actor(id="operator:test", kind=ActorKind.SYSTEM)
PASSWORD = "correct horse battery staple"


@pytest.fixture
def enrolled(rt: Runtime, ident: Callable, clock: FixedClock) -> tuple[str, str]:  # type: ignore[type-arg]
    """A DPO with confirmed TOTP: (user id, TOTP secret); the clock is then one step later."""
    with ident() as identity:
        identity.users.create("tomasz.wojcik", PASSWORD, ["dpo"], actor=OPERATOR)
    with ident() as identity:
        token = identity.auth.login("tomasz.wojcik", PASSWORD).token
    with ident() as identity:
        principal = identity.resolve_bearer(token, source_ip=None)
        secret = identity.factors.begin(identity.users.get(principal.id)).secret
    with ident() as identity:
        identity.auth.confirm_enrolment(principal, pyotp.TOTP(secret).at(clock.now()))
    clock.advance(timedelta(seconds=30))
    return principal.id, secret


def code(secret: str, clock: FixedClock) -> str:
    return pyotp.TOTP(secret).at(clock.now())


class TestLogin:
    def test_password_only_login_has_no_second_factor(self, ident: Callable) -> None:  # type: ignore[type-arg]
        """A user without TOTP logs in with the password alone; the session has second_factor_at None."""
        with ident() as identity:
            identity.users.create("kasia.kaminska", PASSWORD, ["collector"], actor=OPERATOR)
        with ident() as identity:
            session = identity.auth.login("Kasia.Kaminska ", PASSWORD)
        assert session.second_factor_at is None
        assert not session.totp_enrolled
        assert session.token.startswith("tzs_")
        assert session.token not in repr(session)
        with ident() as identity:
            principal = identity.resolve_bearer(session.token, source_ip=None)
        assert principal.roles == frozenset({Role.COLLECTOR})
        assert principal.second_factor_at is None

    def test_enrolled_user_needs_the_code(self, ident: Callable, enrolled: tuple[str, str],  # type: ignore[type-arg]
                                          clock: FixedClock) -> None:
        """With TOTP enrolled, the password alone asks for the code; password + code opens a 2FA session."""
        _, secret = enrolled
        with pytest.raises(SecondFactorRequiredError), ident() as identity:
            identity.auth.login("tomasz.wojcik", PASSWORD)
        with ident() as identity:
            session = identity.auth.login("tomasz.wojcik", PASSWORD, totp_code=code(secret, clock))
        assert session.second_factor_at == clock.now()

    def test_totp_code_cannot_log_in_twice(self, ident: Callable, enrolled: tuple[str, str],  # type: ignore[type-arg]
                                           clock: FixedClock, audit_types: Callable[[], list[str]]) -> None:
        """A code that opened a session is refused for a second login in the same step (replay)."""
        _, secret = enrolled
        used = code(secret, clock)
        with ident() as identity:
            identity.auth.login("tomasz.wojcik", PASSWORD, totp_code=used)
        clock.advance(timedelta(seconds=10))
        with pytest.raises(InvalidCredentialsError), ident() as identity:
            identity.auth.login("tomasz.wojcik", PASSWORD, totp_code=used)
        assert audit_types()[-1] == "identity.second_factor_failed"

    def test_unknown_user_and_wrong_password_look_alike(self, ident: Callable) -> None:  # type: ignore[type-arg]
        """An unknown username and a wrong password give the same error."""
        with ident() as identity:
            identity.users.create("adam.nowicki", PASSWORD, ["dpo"], actor=OPERATOR)
        errors = []
        for username, password in (("adam.nowicki", "wrong password here"), ("nobody.here", PASSWORD)):
            with pytest.raises(InvalidCredentialsError) as info, ident() as identity:
                identity.auth.login(username, password)
            errors.append((info.value.detail, info.value.headers))
        assert errors[0] == errors[1]

    def test_disabled_user_cannot_log_in_and_loses_sessions(self, ident: Callable) -> None:  # type: ignore[type-arg]
        """Disabling a user ends their sessions and refuses their next login."""
        with ident() as identity:
            user_id = identity.users.create("ewa.mazur", PASSWORD, ["auditor"], actor=OPERATOR).id
        with ident() as identity:
            token = identity.auth.login("ewa.mazur", PASSWORD).token
        with ident() as identity:
            identity.users.disable(user_id, actor=OPERATOR)
        with pytest.raises(InvalidTokenError), ident() as identity:
            identity.resolve_bearer(token, source_ip=None)
        with pytest.raises(InvalidCredentialsError), ident() as identity:
            identity.auth.login("ewa.mazur", PASSWORD)


class TestLifetime:
    def test_idle_session_expires_after_thirty_minutes(self, ident: Callable,  # type: ignore[type-arg]
                                                       clock: FixedClock) -> None:
        """A session unused for 30 minutes ends; use within that keeps it alive."""
        with ident() as identity:
            identity.users.create("jan.kowal", PASSWORD, ["collector"], actor=OPERATOR)
        with ident() as identity:
            token = identity.auth.login("jan.kowal", PASSWORD).token
        for _ in range(3):
            clock.advance(timedelta(minutes=29))
            with ident() as identity:
                identity.resolve_bearer(token, source_ip=None)
        clock.advance(timedelta(minutes=30))
        with pytest.raises(InvalidTokenError), ident() as identity:
            identity.resolve_bearer(token, source_ip=None)

    def test_session_ends_after_eight_hours_however_active(self, ident: Callable,  # type: ignore[type-arg]
                                                           clock: FixedClock) -> None:
        """The absolute lifetime is 8 hours even with constant use."""
        with ident() as identity:
            identity.users.create("jan.kowal", PASSWORD, ["collector"], actor=OPERATOR)
        with ident() as identity:
            token = identity.auth.login("jan.kowal", PASSWORD).token
        for _ in range(31):
            clock.advance(timedelta(minutes=15))
            with ident() as identity:
                identity.resolve_bearer(token, source_ip=None)
        clock.advance(timedelta(minutes=15))
        with pytest.raises(InvalidTokenError), ident() as identity:
            identity.resolve_bearer(token, source_ip=None)

    def test_logout_ends_the_session(self, ident: Callable, audit_types: Callable[[], list[str]]) -> None:  # type: ignore[type-arg]
        """After logout the token is refused, and the logout is audited."""
        with ident() as identity:
            identity.users.create("jan.kowal", PASSWORD, ["collector"], actor=OPERATOR)
        with ident() as identity:
            token = identity.auth.login("jan.kowal", PASSWORD).token
        with ident() as identity:
            identity.revoke_bearer(identity.resolve_bearer(token, source_ip=None))
        with pytest.raises(InvalidTokenError), ident() as identity:
            identity.resolve_bearer(token, source_ip=None)
        assert audit_types()[-1] == "identity.logout"

    @pytest.mark.parametrize("token", ["", "tzs_", "tzs_nope", "tza_nope", "Bearer x", "x" * 500])
    def test_garbage_tokens_are_invalid(self, ident: Callable, token: str) -> None:  # type: ignore[type-arg]
        """Unknown or malformed tokens are InvalidTokenError, whatever their shape."""
        with pytest.raises(InvalidTokenError), ident() as identity:
            identity.resolve_bearer(token, source_ip=None)

    def test_session_tokens_are_compared_with_compare_digest(self, ident: Callable,  # type: ignore[type-arg]
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
        """Resolving a session token compares its hash with hmac.compare_digest."""
        import hmac

        from identity import tokens

        with ident() as identity:
            identity.users.create("jan.kowal", PASSWORD, ["collector"], actor=OPERATOR)
        with ident() as identity:
            token = identity.auth.login("jan.kowal", PASSWORD).token
        calls: list[tuple[bytes, bytes]] = []
        real = hmac.compare_digest
        monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
        with ident() as identity:
            identity.resolve_bearer(token, source_ip=None)
        expected = tokens.token_hash(token).encode()
        assert (expected, expected) in calls


class TestStepUp:
    def test_step_up_refreshes_the_second_factor(self, ident: Callable, enrolled: tuple[str, str],  # type: ignore[type-arg]
                                                 clock: FixedClock) -> None:
        """Step-up with a new code moves second_factor_at to now; the old code is refused."""
        _, secret = enrolled
        first = code(secret, clock)
        with ident() as identity:
            token = identity.auth.login("tomasz.wojcik", PASSWORD, totp_code=first).token
        clock.advance(timedelta(minutes=12))
        with ident() as identity:
            principal = identity.resolve_bearer(token, source_ip=None)
            at = identity.auth.step_up(principal, totp_code=code(secret, clock))
        assert at == clock.now()
        with ident() as identity:
            assert identity.resolve_bearer(token, source_ip=None).second_factor_at == clock.now()
        with pytest.raises(InvalidCredentialsError), ident() as identity:
            identity.auth.step_up(principal, totp_code=code(secret, clock))  # same step again

    def test_step_up_without_totp_is_a_conflict(self, ident: Callable) -> None:  # type: ignore[type-arg]
        """A user without TOTP cannot step up (409): they enrol first."""
        with ident() as identity:
            identity.users.create("jan.kowal", PASSWORD, ["collector"], actor=OPERATOR)
        with ident() as identity:
            token = identity.auth.login("jan.kowal", PASSWORD).token
        with pytest.raises(TotpStateError), ident() as identity:
            identity.auth.step_up(identity.resolve_bearer(token, source_ip=None), totp_code="123456")

    def test_step_up_failures_count_towards_the_lock(self, ident: Callable, enrolled: tuple[str, str],  # type: ignore[type-arg]
                                                     clock: FixedClock) -> None:
        """Wrong step-up codes are failures like wrong passwords."""
        user_id, secret = enrolled
        with ident() as identity:
            token = identity.auth.login("tomasz.wojcik", PASSWORD, totp_code=code(secret, clock)).token
        for _ in range(3):
            with pytest.raises(InvalidCredentialsError), ident() as identity:
                identity.auth.step_up(identity.resolve_bearer(token, source_ip=None), totp_code="000000")
        with ident() as identity:
            assert identity.users.info(identity.users.get(user_id)).failed_attempts == 3

    def test_client_principal_cannot_step_up(self, ident: Callable) -> None:  # type: ignore[type-arg]
        """Step-up is for user sessions only."""
        client = Principal(id="cl_x", kind=ActorKind.CLIENT)
        with pytest.raises(InvalidTokenError), ident() as identity:
            identity.auth.step_up(client, totp_code="123456")


class TestAdminReset:
    def test_reset_removes_factor_and_ends_sessions(self, ident: Callable, enrolled: tuple[str, str],  # type: ignore[type-arg]
                                                    clock: FixedClock, audit_types: Callable[[], list[str]]) -> None:
        """An admin reset deletes TOTP and recovery codes, ends sessions, and is audited."""
        user_id, secret = enrolled
        with ident() as identity:
            token = identity.auth.login("tomasz.wojcik", PASSWORD, totp_code=code(secret, clock)).token
        with ident() as identity:
            identity.factors.reset(identity.users.get(user_id), actor=OPERATOR)
        with pytest.raises(InvalidTokenError), ident() as identity:
            identity.resolve_bearer(token, source_ip=None)
        with ident() as identity:
            session = identity.auth.login("tomasz.wojcik", PASSWORD)
            assert session.second_factor_at is None
            assert not session.totp_enrolled
            assert identity.factors.remaining_recovery_codes(user_id) == 0
        assert "identity.totp_reset" in audit_types()

    def test_enrolment_cannot_restart_while_active(self, ident: Callable, enrolled: tuple[str, str]) -> None:  # type: ignore[type-arg]
        """Starting enrolment again while TOTP is active is refused (only a reset allows it)."""
        user_id, _ = enrolled
        with pytest.raises(TotpStateError), ident() as identity:
            identity.factors.begin(identity.users.get(user_id))


class TestConcurrency:
    def test_concurrent_logins_never_hit_a_locked_database(self, ident: Callable) -> None:  # type: ignore[type-arg]
        """Parallel logins (each committing, then appending audit entries) all succeed, on SQLite too."""
        import threading

        for n in range(6):
            with ident() as identity:
                identity.users.create(f"rownolegly.{n}", PASSWORD, ["collector"], actor=OPERATOR)
        errors: list[str] = []

        def work(n: int) -> None:
            for _ in range(8):
                try:
                    with ident() as identity:
                        token = identity.auth.login(f"rownolegly.{n}", PASSWORD).token
                    with ident() as identity:
                        identity.resolve_bearer(token, source_ip=None)
                except Exception as exc:  # noqa: BLE001 - collected and asserted below
                    errors.append(repr(exc)[:200])

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
