"""Passwords: argon2id hashes, verification, length rules, timing equaliser for unknown users."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type

from identity.errors import WeakPasswordError
from identity.passwords import Passwords
from identity.service import default_passwords


class TestPasswords:
    def test_default_hash_is_argon2id(self) -> None:
        """The default hasher writes PHC-format argon2id hashes with RFC 9106 parameters."""
        stored = default_passwords().hash("correct horse battery staple")
        assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")

    def test_verify_accepts_right_and_refuses_wrong(self, fast_passwords: Passwords) -> None:
        """The right password verifies; a wrong one or a broken hash does not (no exception)."""
        stored = fast_passwords.hash("correct horse battery staple")
        assert fast_passwords.verify(stored, "correct horse battery staple")
        assert not fast_passwords.verify(stored, "correct horse battery stapler")
        assert not fast_passwords.verify("not-a-hash", "correct horse battery staple")

    def test_password_never_in_hash(self, fast_passwords: Passwords) -> None:
        """The stored hash does not contain the password and differs for the same password (salt)."""
        a, b = fast_passwords.hash("correct horse battery staple"), fast_passwords.hash("correct horse battery staple")
        assert "correct horse" not in a
        assert a != b

    @pytest.mark.parametrize("password", ["short", "x" * 11, "y" * 1025])
    def test_length_rules(self, fast_passwords: Passwords, password: str) -> None:
        """Passwords under 12 or over 1024 characters are refused, saying which limit."""
        with pytest.raises(WeakPasswordError):
            fast_passwords.hash(password)

    def test_weaker_parameters_need_rehash(self, fast_passwords: Passwords) -> None:
        """A hash made with weaker parameters than the default is flagged for re-hashing."""
        assert default_passwords().needs_rehash(fast_passwords.hash("correct horse battery staple"))

    def test_only_argon2id(self) -> None:
        """argon2i or argon2d hashers are refused."""
        with pytest.raises(ValueError, match="argon2id"):
            Passwords(PasswordHasher(type=Type.I))

    def test_burn_spends_a_verification(self, fast_passwords: Passwords) -> None:
        """burn() runs without an account and returns nothing."""
        assert fast_passwords.burn("anything") is None  # type: ignore[func-returns-value]
