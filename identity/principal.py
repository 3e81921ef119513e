"""Who is asking: the authenticated principal every service decision is made for.

A principal is a person (``user``, logged in with password and TOTP) or a system
(``client``, an API client with scopes), or Tarcza itself (``system``, for jobs). It is
built by the edge (HTTP dependency, CLI login) after authentication and handed to
services; services never authenticate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from audit.events import Actor, ActorKind


class Role(StrEnum):
    ADMIN = "admin"
    DPO = "dpo"
    COMPLIANCE_OFFICER = "compliance_officer"
    AUDITOR = "auditor"
    COLLECTOR = "collector"
    FIELD_AGENT = "field_agent"


@dataclass(frozen=True)
class Principal:
    """An authenticated person or system."""

    id: str
    kind: ActorKind
    roles: frozenset[Role] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)
    allowed_purposes: frozenset[str] | None = None  # None: any purpose the policies allow
    second_factor_at: datetime | None = None  # when the second factor was last verified (users)
    assigned_cases: frozenset[str] = field(default_factory=frozenset)
    session_id: str | None = None  # the login session (users) or access token (clients) it came with

    @property
    def actor(self) -> Actor:
        return Actor(id=self.id, kind=self.kind)

    @property
    def primary_role(self) -> str:
        """The role masks are chosen by (the first in a fixed order); clients are ``client``."""
        if self.kind is ActorKind.CLIENT:
            return "client"
        for role in Role:
            if role in self.roles:
                return role.value
        return "none"


SYSTEM = Principal(id="tarcza", kind=ActorKind.SYSTEM)
