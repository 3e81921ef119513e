"""The actions services ask the authorizer about, and the client scope each one needs.

The Cedar schema (``schema.cedarschema``) declares the same names; a test keeps the two
in step. Which roles may do what is in ``authorisation.cedar``, not here: the scope in
this table is for documentation and for :func:`api.auth.require_scope`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActionInfo:
    resource: str  # "subject", "system" or "any"
    scope: str | None  # the client scope that permits it (None: clients never may)
    description: str


ACTIONS: dict[str, ActionInfo] = {
    "account.self": ActionInfo("system", None, "a person's own account: who am I, TOTP enrolment, step-up"),
    "subject.read_masked": ActionInfo("subject", "subjects:read-masked", "read a subject's fields, masked"),
    "subject.reveal": ActionInfo("subject", "subjects:reveal", "reveal a subject's fields in clear"),
    "subject.write": ActionInfo("subject", "subjects:write", "create a subject or change its fields"),
    "contact.record": ActionInfo("subject", "contacts:write", "record a contact, visit or recording"),
    "audit.read": ActionInfo("any", "audit:read", "read audit entries, checkpoints and proofs"),
    "audit.append": ActionInfo("system", "audit:append", "append an operator note to the audit log"),
    "audit.export": ActionInfo("any", "audit:export", "export a range of the audit log"),
    "gdpr.manage": ActionInfo("any", "gdpr:manage", "handle data subject requests, holds and retention"),
    "gdpr.erase": ActionInfo("any", "gdpr:manage", "erase (crypto-shred) where the erasure decision allows it"),
    "gdpr.erase_override": ActionInfo("any", None, "erase against the erasure decision: the DPO, justified, reviewed"),
    "keys.rotate": ActionInfo("system", "keys:rotate", "rotate key-encryption keys"),
    "identity.read": ActionInfo("system", None, "list users and API clients"),
    "identity.manage": ActionInfo("system", None, "create, disable and reset users; create, rotate, revoke clients"),
    "policies.review": ActionInfo("system", "audit:read", "review break-glass accesses"),
}

ALIASES: dict[str, str] = {
    "create_subject": "subject.write",
    "update_field": "subject.write",
    "read_masked": "subject.read_masked",
    "reveal": "subject.reveal",
    "search": "subject.read_masked",
    "store_recording": "contact.record",
    "play_recording": "subject.reveal",
    "shred": "gdpr.erase",
}
"""The names vault/service.py (``Action``) asks about, and the action each one is decided as."""


def canonical_action(name: str) -> str | None:
    """The Cedar action for ``name`` (an action or an alias); None if unknown."""
    if name in ACTIONS:
        return name
    return ALIASES.get(name)


SUBJECT_RESOURCE_KINDS = frozenset({"subject", "recording"})
"""Resource kinds that are a data subject to Cedar (``Tarcza::Subject``); every other kind is ``Tarcza::System``."""
