"""Recovery codes: ten, 80 bits each, single use, forgiving input, stored as hashes."""

from __future__ import annotations

from collections.abc import Callable

import pyotp
import pytest

from api.runtime import Runtime
from audit.events import Actor, ActorKind
from identity import recovery
from identity.errors import InvalidCredentialsError

OPERATOR = Actor(id="operator:test", kind=ActorKind.SYSTEM)


class TestCodes:
    def test_ten_distinct_codes_of_eighty_bits(self) -> None:
        """Codes are 4 groups of 4 Crockford base32 characters (80 bits), all different."""
        codes = recovery.generate(10)
        assert len(set(codes)) == 10
        for code in codes:
            assert len(code) == 19
            assert code.count("-") == 3
            assert set(code.replace("-", "")) <= set(recovery.ALPHABET)

    def test_input_is_forgiving(self) -> None:
        """Lower case, spaces, missing dashes and I/L/O look-alikes still match."""
        stored = recovery.code_hash("1AB0-CDEF-GH1J-KM01")
        for typed in ("1ab0cdefgh1jkm01", "1AB0 CDEF GH1J KM01", "IAB0-CDEF-GHLJ-KMO1"):
            assert recovery.matches(stored, typed)
        assert not recovery.matches(stored, "1AB0-CDEF-GH1J-KM02")


class TestSingleUse:
    def test_recovery_code_works_once(self, rt: Runtime, ident: Callable,  # type: ignore[type-arg]
                                      audit_types: Callable[[], list[str]]) -> None:
        """A recovery code logs in once, is audited, and is refused the second time."""
        with ident() as identity:
            identity.users.create("marta.lewandowska", "correct horse battery staple", ["auditor"], actor=OPERATOR)
        with ident() as identity:
            token = identity.auth.login("marta.lewandowska", "correct horse battery staple").token
        with ident() as identity:
            principal = identity.resolve_bearer(token, source_ip=None)
            secret = identity.factors.begin(identity.users.get(principal.id)).secret
        with ident() as identity:
            codes = identity.auth.confirm_enrolment(principal, pyotp.TOTP(secret).at(rt.clock.now()))
        assert len(codes) == 10
        with ident() as identity:
            session = identity.auth.login("marta.lewandowska", "correct horse battery staple",
                                          recovery_code=codes[3].lower())
        assert session.second_factor_at is not None
        with pytest.raises(InvalidCredentialsError), ident() as identity:
            identity.auth.login("marta.lewandowska", "correct horse battery staple", recovery_code=codes[3])
        assert "identity.recovery_code_used" in audit_types()
        with ident() as identity:
            assert identity.factors.remaining_recovery_codes(principal.id) == 9
