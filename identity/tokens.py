"""Opaque bearer tokens and client secrets: random, prefixed, stored as SHA-256.

Prefixes say what a token is (and let secret scanners recognise them): ``tzs_`` a user
session, ``tza_`` a client access token, ``tzc_`` a client secret. Each carries 256
random bits (``secrets.token_urlsafe(32)``); with that much entropy a plain SHA-256 is as
strong as any slow hash against a stolen table, and costs nothing per request.
Comparisons of hashes use :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from typing import Final

from core.logging import clear_of_pii_patterns

SESSION_PREFIX: Final = "tzs_"
ACCESS_PREFIX: Final = "tza_"
SECRET_PREFIX: Final = "tzc_"  # noqa: S105 - a prefix, not a secret
CLIENT_ID_PREFIX: Final = "cl_"


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def new_client_id() -> str:
    return clear_of_pii_patterns(lambda: CLIENT_ID_PREFIX + secrets.token_hex(8))


def new_user_id() -> str:
    return clear_of_pii_patterns(lambda: str(uuid.uuid4()))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def hash_matches(stored_hash: str, presented: str) -> bool:
    """Whether ``presented`` hashes to ``stored_hash``, compared in constant time."""
    return hmac.compare_digest(stored_hash.encode(), token_hash(presented).encode())
