"""Password hashing with argon2id (argon2-cffi's RFC 9106 low-memory profile).

Invariants: only the PHC-format hash is stored; verification of an unknown user still
spends one argon2 verification (:meth:`Passwords.burn`) so that timing does not tell
which usernames exist; a hash made with weaker parameters is re-hashed on the next
successful login (:meth:`Passwords.needs_rehash`).
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from identity.errors import WeakPasswordError

MAX_PASSWORD_LENGTH = 1024


class Passwords:
    """Hash and verify passwords; one instance per process is enough."""

    def __init__(self, hasher: PasswordHasher | None = None, *, min_length: int = 12) -> None:
        self._hasher = hasher or PasswordHasher(type=Type.ID)
        if self._hasher.type is not Type.ID:
            raise ValueError("passwords are hashed with argon2id only")
        self.min_length = min_length
        self._dummy: str | None = None

    def check_strength(self, password: str) -> None:
        """Refuse passwords that are too short or too long; say which limit."""
        if len(password) < self.min_length:
            raise WeakPasswordError(f"the password needs at least {self.min_length} characters (got {len(password)})")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise WeakPasswordError(f"the password may have at most {MAX_PASSWORD_LENGTH} characters")

    def hash(self, password: str) -> str:
        self.check_strength(password)
        return self._hasher.hash(password)

    def hash_unchecked(self, password: str) -> str:
        """Re-hash a password that was just verified (an older one may predate today's length rule)."""
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        """True if ``password`` matches ``stored_hash``; False for a mismatch or an unusable hash."""
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def burn(self, password: str) -> None:
        """Spend the time of one verification, for a user that does not exist."""
        if self._dummy is None:
            self._dummy = self._hasher.hash("tarcza-dummy-password-for-timing")
        self.verify(self._dummy, password[:MAX_PASSWORD_LENGTH] + "\x00")
