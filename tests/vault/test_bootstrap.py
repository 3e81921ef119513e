"""Wiring the vault from the settings: first keys, opening the provider, building the service."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from api.runtime import Runtime
from audit.events import ActorKind
from audit.service import create_log_signer
from core import migrate
from core.errors import ConfigurationError
from core.settings import Settings, load_settings
from identity.principal import Principal, Role
from policies.authorizer import Decision, Resource
from vault.bootstrap import build_vault, init_keys, open_key_provider
from vault.errors import KeyProviderError
from vault.keys import LocalKeyfileProvider, Pkcs11KeyProvider

OFFICER = Principal("u-officer", ActorKind.USER, frozenset({Role.COMPLIANCE_OFFICER}))


class AllowAll:
    """An authorizer that allows everything."""

    def decide(self, principal: Principal, action: str, resource: Resource, *, purpose: str | None,
               now: datetime, justification: str | None = None) -> Decision:
        return Decision(True, "role")


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """A runtime on the test database (migrated, with an audit log key) that is closed afterwards."""
    rt = Runtime(settings)
    migrate.upgrade(rt.engine)
    create_log_signer(settings.log_key_path, "tarcza/test")
    yield rt
    rt.close()


class TestBootstrap:
    """vault.bootstrap."""

    def test_init_creates_a_private_keyfile_once(self, data_dir: Path) -> None:
        """init_keys creates the keyfile with mode 0600 the first time and does nothing the second."""
        rt = Runtime(load_settings(data_dir=data_dir))
        line = init_keys(rt)
        assert line is not None
        assert "keyfile" in line
        path = rt.settings.keyfile_path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert init_keys(rt) is None
        with open_key_provider(rt.settings) as provider:
            assert isinstance(provider, LocalKeyfileProvider)
            assert provider.versions() == [1]

    def test_passphrase_protects_the_keyfile(self, data_dir: Path) -> None:
        """With a passphrase the keyfile opens only with that passphrase."""
        settings = load_settings(data_dir=data_dir, keyfile_passphrase="długie hasło do kluczy")
        assert "passphrase-protected" in str(init_keys(Runtime(settings)))
        open_key_provider(settings).close()
        with pytest.raises(KeyProviderError):
            open_key_provider(load_settings(data_dir=data_dir, keyfile_passphrase="inne hasło"))

    def test_missing_keyfile_says_run_init(self, data_dir: Path) -> None:
        """Opening the provider before `tarcza init` is a one-line configuration error."""
        with pytest.raises(ConfigurationError, match="tarcza init"):
            open_key_provider(load_settings(data_dir=data_dir))

    def test_pkcs11_needs_module_and_pin(self, data_dir: Path) -> None:
        """PKCS#11 without a module or a PIN is a configuration error naming the setting."""
        with pytest.raises(ConfigurationError, match="TARCZA_PKCS11_MODULE"):
            open_key_provider(load_settings(data_dir=data_dir, key_provider="pkcs11"))
        with pytest.raises(ConfigurationError, match="TARCZA_PKCS11_PIN"):
            open_key_provider(load_settings(data_dir=data_dir, key_provider="pkcs11", pkcs11_module="/x.so"))

    def test_pkcs11_init_creates_the_first_kek(self, data_dir: Path, softhsm_token) -> None:  # type: ignore[no-untyped-def]
        """On a token, init_keys makes sure a KEK exists; afterwards the provider opens without bootstrapping."""
        settings = load_settings(data_dir=data_dir, key_provider="pkcs11", pkcs11_module=softhsm_token.module_path,
                                 pkcs11_token_label=softhsm_token.label, pkcs11_pin=softhsm_token.pin)
        first = init_keys(Runtime(settings))
        assert first is None or "created key-encryption key version 1" in first
        assert init_keys(Runtime(settings)) is None
        with open_key_provider(settings) as provider:
            assert isinstance(provider, Pkcs11KeyProvider)
            assert provider.versions()

    def test_build_vault_needs_an_authorizer(self, runtime: Runtime) -> None:
        """Without an authorizer the vault is not built; with one it works on the runtime's keys and log."""
        init_keys(runtime)
        runtime.__dict__["authorizer"] = None  # as if the policy engine were not configured
        with pytest.raises(ConfigurationError, match="authorizer"):
            build_vault(runtime)
        vault = build_vault(runtime, authorizer=AllowAll())
        token = vault.create_subject(OFFICER, "debtor", {"first_name": "Zofia"})
        assert vault.masked_view(OFFICER, token) == {"first_name": ["Zofia"]}
        assert runtime.audit.size() == 2
