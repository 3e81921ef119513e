"""Single-use recovery codes: 80 random bits each, shown once, stored as SHA-256.

A code is 16 characters of Crockford's base32 in four groups (``7KQ2-M9XD-...``); 80
bits make an offline search of the SHA-256 hashes hopeless, so a slow hash would add
nothing (docs/adr/0005-authorisation.md). Input is forgiving: case, spaces and dashes
do not matter, and the look-alikes I, L and O read as 1, 1 and 0.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
GROUPS, GROUP_SIZE = 4, 4
_LOOKALIKES = str.maketrans({"I": "1", "L": "1", "O": "0"})


def generate(count: int) -> list[str]:
    return ["-".join("".join(secrets.choice(ALPHABET) for _ in range(GROUP_SIZE)) for _ in range(GROUPS))
            for _ in range(count)]


def normalise(code: str) -> str:
    return code.upper().replace("-", "").replace(" ", "").translate(_LOOKALIKES)


def code_hash(code: str) -> str:
    return hashlib.sha256(b"tarcza-recovery-v1:" + normalise(code).encode("ascii", "replace")).hexdigest()


def matches(stored_hash: str, code: str) -> bool:
    """Constant-time comparison of a stored hash with the hash of ``code``."""
    return hmac.compare_digest(stored_hash.encode(), code_hash(code).encode())
