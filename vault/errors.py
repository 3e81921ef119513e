"""Errors of the PII vault. Invariant: no message ever contains a field value."""

from __future__ import annotations

from core.errors import InvalidInputError, NotFoundError, TarczaError


class VaultError(TarczaError):
    """Root of the vault's errors."""

    code = "vault-error"
    title = "Vault error"


class VaultDecryptError(VaultError):
    """Sealed data could not be opened. One opaque error whatever the cause."""

    status = 500
    code = "vault-decrypt"
    title = "Sealed data could not be opened"

    def __init__(self) -> None:
        super().__init__("sealed data could not be opened")


class KeyProviderError(VaultError):
    """The key provider failed (missing keyfile, wrong passphrase, token unavailable)."""

    status = 503
    code = "key-provider"
    title = "Key provider unavailable"


class InvalidFieldValueError(InvalidInputError, VaultError):
    """A field value failed validation. Names the field and the rule, never the value."""

    code = "invalid-field-value"
    title = "Invalid field value"

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"field {field!r} failed rule {rule!r}", field=field, rule=rule)


class SubjectNotFoundError(NotFoundError, VaultError):
    """No subject has this token (or it was shredded)."""

    code = "subject-not-found"
    title = "Subject not found"
