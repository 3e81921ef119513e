"""Secrets at rest: TOTP seeds sealed under the identity key, tokens and codes only as hashes."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from api.runtime import Runtime
from audit.events import Actor, ActorKind
from identity import recovery
from identity.errors import IdentityKeyError
from identity.secretbox import create_identity_key, identity_key_path
from vault.secretbox import RecipeSecretBox, load_secret_box

OPERATOR = Actor(id="operator:test", kind=ActorKind.SYSTEM)


class TestSecretBox:
    def test_round_trip_and_binding_to_the_user(self) -> None:
        """A sealed secret is a recipe frame that opens for its user id only; a tampered one does not open."""
        box = RecipeSecretBox(os.urandom(32))
        sealed = box.seal(b"JBSWY3DPEHPK3PXP", aad="user-1")
        assert sealed.startswith(b"TZ\x01")  # a frame of the sealing recipe (vault/aead.py)
        assert b"JBSWY3DP" not in sealed
        assert box.open(sealed, aad="user-1") == b"JBSWY3DPEHPK3PXP"
        with pytest.raises(IdentityKeyError):
            box.open(sealed, aad="user-2")
        with pytest.raises(IdentityKeyError):
            box.open(sealed[:-1] + bytes([sealed[-1] ^ 1]), aad="user-1")
        with pytest.raises(IdentityKeyError):
            RecipeSecretBox(os.urandom(32)).open(sealed, aad="user-1")

    def test_repr_hides_the_key(self) -> None:
        """No key material in the repr."""
        assert repr(RecipeSecretBox(b"k" * 32)) == "SecretBox(<key hidden>)"

    def test_key_file_is_private_and_never_overwritten(self, tmp_path: Path) -> None:
        """The key file is created 0600, a second create keeps it, and a readable-by-others file is refused."""
        path = tmp_path / "keys" / "identity.key"
        assert create_identity_key(path)
        first = path.read_text()
        assert not create_identity_key(path)
        assert path.read_text() == first
        assert path.stat().st_mode & 0o777 == 0o600
        load_secret_box(path)
        path.chmod(0o644)
        with pytest.raises(IdentityKeyError, match="permissions 644"):
            load_secret_box(path)

    def test_missing_or_malformed_key_file(self, tmp_path: Path) -> None:
        """A missing file names `tarcza init`; a malformed one is refused."""
        with pytest.raises(IdentityKeyError, match="tarcza init"):
            load_secret_box(tmp_path / "nope.key")
        bad = tmp_path / "bad.key"
        bad.write_text("hello\n")
        bad.chmod(0o600)
        with pytest.raises(IdentityKeyError):
            load_secret_box(bad)


class TestNothingInClear:
    def test_init_creates_the_identity_key(self, rt: Runtime) -> None:
        """`tarcza init` created data_dir/keys/identity.key with 0600."""
        path = identity_key_path(rt.settings)
        assert path.exists()
        assert path.stat().st_mode & 0o777 == 0o600

    def test_database_holds_no_secret_in_clear(self, rt: Runtime, ident: Callable) -> None:  # type: ignore[type-arg]
        """After enrolment, login and a client, no TOTP seed, token, secret or recovery code is in the tables."""
        import pyotp

        with ident() as identity:
            identity.users.create("anna.wisniewska", "correct horse battery staple", ["dpo"], actor=OPERATOR)
        with ident() as identity:
            session = identity.auth.login("anna.wisniewska", "correct horse battery staple")
        principal_token = session.token
        with ident() as identity:
            principal = identity.resolve_bearer(principal_token, source_ip=None)
            enrolment = identity.factors.begin(identity.users.get(principal.id))
        with ident() as identity:
            codes = identity.auth.confirm_enrolment(principal, pyotp.TOTP(enrolment.secret).at(rt.clock.now()))
        with ident() as identity:
            issued = identity.clients.create("crm", ["audit:read"], actor=OPERATOR)
        with ident() as identity:
            access = identity.clients.issue_token(issued.client.id, issued.secret)
        secrets = [enrolment.secret, principal_token, issued.secret, access.token, *codes,
                   *(recovery.normalise(c) for c in codes)]
        dump = _dump(rt)
        for secret in secrets:
            assert secret not in dump
        assert "correct horse" not in dump


def _dump(rt: Runtime) -> str:
    tables = ("identity_users", "identity_totp_factors", "identity_recovery_codes", "identity_sessions",
              "identity_clients", "identity_client_secrets", "identity_access_tokens", "audit_entries")
    out: list[str] = []
    with rt.engine.connect() as conn:
        for table in tables:
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                out.extend(v.hex() + " " + bytes(v).decode("latin-1") if isinstance(v, bytes | memoryview)
                           else str(v) for v in row)
    return "\n".join(out)
