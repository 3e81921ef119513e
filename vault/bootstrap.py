"""Wiring the vault from the settings: open the key provider, create first keys, build the service.

Used by ``api.runtime`` (which the HTTP app and the CLI share) and by ``tarcza init``. The
vault does not import ``api``: the runtime is described here by the small protocol
:class:`VaultRuntime`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from core.clock import Clock
from core.errors import ConfigurationError
from core.settings import Settings
from vault.blobs import LocalBlobStore
from vault.errors import KeyProviderError
from vault.fields import load_catalogue
from vault.keys import KeyProvider, LocalKeyfileProvider, Pkcs11KeyProvider

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import Engine

    from audit.service import AuditLog
    from policies.authorizer import Authorizer, Resource
    from vault.service import VaultService

__all__ = ["VaultRuntime", "build_vault", "init_keys", "open_key_provider"]


class VaultRuntime(Protocol):
    """What the vault needs of the process runtime (``api.runtime.Runtime``)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def key_provider(self) -> KeyProvider: ...


def _passphrase(settings: Settings) -> str | None:
    secret = settings.keyfile_passphrase
    return secret.get_secret_value() if secret is not None and secret.get_secret_value() else None


def _pkcs11(settings: Settings, *, bootstrap: bool) -> Pkcs11KeyProvider:
    if not settings.pkcs11_module:
        raise ConfigurationError("TARCZA_KEY_PROVIDER=pkcs11 needs TARCZA_PKCS11_MODULE")
    if settings.pkcs11_pin is None or not settings.pkcs11_pin.get_secret_value():
        raise ConfigurationError("TARCZA_KEY_PROVIDER=pkcs11 needs TARCZA_PKCS11_PIN")
    return Pkcs11KeyProvider(settings.pkcs11_module, settings.pkcs11_token_label,
                             settings.pkcs11_pin.get_secret_value(), bootstrap=bootstrap)


def open_key_provider(settings: Settings) -> KeyProvider:
    """The configured provider, which must already hold its keys (``tarcza init`` creates them)."""
    if settings.key_provider == "pkcs11":
        return _pkcs11(settings, bootstrap=False)
    path = settings.keyfile_path
    if not path.exists():
        raise ConfigurationError(f"keyfile {path} is missing; run `tarcza init`")
    return LocalKeyfileProvider.open(path, _passphrase(settings))


def init_keys(runtime: VaultRuntime) -> str | None:
    """Create the first keys if missing: the local keyfile (0600), or KEK version 1 in the token."""
    settings = runtime.settings
    if settings.key_provider == "pkcs11":
        try:
            _pkcs11(settings, bootstrap=False).close()
        except KeyProviderError:
            provider = _pkcs11(settings, bootstrap=True)  # raises again if the token itself is the problem
            version = provider.current_version()
            provider.close()
            return f"created key-encryption key version {version} on PKCS#11 token {settings.pkcs11_token_label!r}"
        return None
    path = settings.keyfile_path
    if path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    LocalKeyfileProvider.create(path, _passphrase(settings)).close()
    protected = "passphrase-protected " if _passphrase(settings) else ""
    return f"created {protected}keyfile {path} (0600)"


def build_vault(runtime: VaultRuntime, authorizer: Authorizer | None = None,
                resources_for: Callable[[Sequence[str]], list[Resource]] | None = None) -> VaultService:
    """The vault service on the runtime's engine, keys, audit log, clock and blob directory.

    ``authorizer`` defaults to ``runtime.authorizer`` (the policy engine), which must exist.
    ``resources_for`` describes subjects to the policies (its cases, a restriction); the
    runtime passes the contacts' description, which the vault cannot import.
    """
    from vault.service import VaultService

    chosen = authorizer if authorizer is not None else getattr(runtime, "authorizer", None)
    if chosen is None:
        raise ConfigurationError("the vault needs an authorizer (policies) and none is configured")
    settings = runtime.settings
    return VaultService(runtime.engine, runtime.key_provider, runtime.audit, chosen, load_catalogue(),
                        runtime.clock, LocalBlobStore(settings.blob_dir), resources_for=resources_for)
