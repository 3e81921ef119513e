"""The objects one Tarcza process shares: settings, engine, sessions and the services built on them.

The HTTP app and the CLI both build a :class:`Runtime`; services are created lazily, so a
command that needs only the database does not open the key provider.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from core.clock import SYSTEM_CLOCK, Clock
from core.db import make_engine, session_factory
from core.errors import ConfigurationError
from core.settings import Settings

if TYPE_CHECKING:
    from audit.service import AuditLog
    from audit.witness_client import CosignatureCollector
    from contacts.service import ContactService
    from gdpr.registers import GdprRegisters
    from gdpr.retention_job import RetentionJob
    from gdpr.service import GdprService
    from identity.secretbox import SecretBox
    from policies.engine import CedarAuthorizer
    from vault.keys import KeyProvider
    from vault.service import VaultService


class Runtime:
    """Process-wide state; create one per process (or per test)."""

    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.clock = clock

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.effective_database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine)

    def installation_id(self) -> str:
        with self.engine.connect() as conn:
            value = conn.execute(text("SELECT id FROM installation")).scalar()
        if value is None:
            raise ConfigurationError("this database is not initialised; run `tarcza init`")
        return str(value)

    def audit_origin(self) -> str:
        return self.settings.audit_origin or f"tarcza/{self.installation_id()}"

    @cached_property
    def audit(self) -> AuditLog:
        """The audit log, signing with the log key from the data directory."""
        from audit.service import AuditLog, load_log_signer

        signer = load_log_signer(self.settings.log_key_path)
        if self.settings.audit_origin and signer.name != self.settings.audit_origin:
            raise ConfigurationError(
                f"TARCZA_AUDIT_ORIGIN is {self.settings.audit_origin!r} but the log key is for {signer.name!r}"
            )
        s = self.settings
        return AuditLog(self.engine, signer, clock=self.clock, batch_max=s.audit_batch_max,
                        checkpoint_every_entries=s.checkpoint_every_entries,
                        checkpoint_every_seconds=s.checkpoint_every_seconds)

    def secret_box_loader(self) -> Callable[[], SecretBox]:
        """Loads identity's secret box when a service first needs it: the vault's sealing recipe under the
        identity key of the data directory (identity cannot import the vault; this is where they meet)."""
        from vault.secretbox import box_loader

        return box_loader(self.settings)

    @cached_property
    def witness_client(self) -> CosignatureCollector:
        """Submits new checkpoints to ``TARCZA_WITNESSES`` in the background (ADR 0021); started by the app."""
        from audit.witness_client import CosignatureCollector, configured_witnesses

        s = self.settings
        return CosignatureCollector(self.audit, configured_witnesses(s.witness_list), clock=self.clock,
                                    retry_seconds=s.witness_retry_seconds, timeout=s.witness_timeout_seconds)

    @cached_property
    def key_provider(self) -> KeyProvider:
        """The key-encryption keys: the local keyfile or the PKCS#11 token, per the settings.

        Reopened when the keyfile changes on disk (a rotation by another process), so a
        long-running process follows a newer key-encryption key without a restart (ADR 0022).
        """
        from api.keyreload import ReloadingKeyProvider
        from vault.bootstrap import open_key_provider

        settings = self.settings
        watch = settings.keyfile_path if settings.key_provider == "local" else None
        return ReloadingKeyProvider(lambda: open_key_provider(settings), watch)

    @cached_property
    def vault(self) -> VaultService:
        """The PII vault; its authorizer is ``self.authorizer`` (the policy engine), looked up when built."""
        from contacts.common import subject_resources
        from vault.bootstrap import build_vault

        engine = self.engine
        return build_vault(self, resources_for=lambda tokens: subject_resources(engine, tokens))

    @cached_property
    def contacts(self) -> ContactService:
        """The contacts service: the firewall with policies/contact_rules.yaml, and the PII detector for notes."""
        from contacts.rules import load_rules
        from contacts.service import ContactService

        def detector() -> Any:
            from vault.detect import PiiDetector

            return PiiDetector()

        return ContactService(self.engine, self.vault, self.audit, self.authorizer, load_rules(),
                              detector=detector, clock=self.clock)

    @cached_property
    def authorizer(self) -> CedarAuthorizer:
        """The Cedar policy engine; loading validates the policy set and records ``policy.loaded``."""
        from policies.engine import CedarAuthorizer

        return CedarAuthorizer.load(audit=self.audit)

    @cached_property
    def gdpr(self) -> GdprService:
        """The GDPR toolkit: requests, erasure, restriction, objection, rectification, exports, legal holds."""
        from gdpr.service import GdprService

        return GdprService(self.engine, self.vault, self.contacts, self.audit, self.authorizer, self.clock)

    @cached_property
    def gdpr_registers(self) -> GdprRegisters:
        """The DPO's registers: Art. 14 notices, Art. 19 recipients, the Art. 33(5) breach register."""
        from gdpr.registers import GdprRegisters

        return GdprRegisters(self.engine, self.audit, self.clock)

    def retention_job(self) -> RetentionJob:
        """The retention job over ``policies/retention.yaml`` (validated when loaded)."""
        from gdpr.retention import load_retention
        from gdpr.retention_job import RetentionJob

        return RetentionJob(self.vault, self.contacts, load_retention(), self.clock)

    def close(self) -> None:
        """Release what the runtime opened."""
        if "witness_client" in self.__dict__:
            self.witness_client.stop()
        if "audit" in self.__dict__:
            self.audit.close()
        if "key_provider" in self.__dict__:
            self.key_provider.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
