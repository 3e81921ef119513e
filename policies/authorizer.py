"""The authorisation interface the vault and the API ask before acting.

:class:`Authorizer` is what services depend on; :mod:`policies.engine` implements it with
Cedar policies. A decision names the kind of rule that decided (``role``, ``scope``,
``purpose``, ``second_factor``, ``assignment``, ``restriction``, ``break_glass``; or
``action`` for an unknown action and ``error`` for a request the policies cannot evaluate),
never the data involved. Action names: :mod:`policies.actions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from identity.principal import Principal


@dataclass(frozen=True)
class Resource:
    """What an action is on: a subject (by token), with what the policies need to know of it."""

    kind: str  # "subject", "audit_log", "recording", "gdpr_request", "user", "client"
    id: str = ""
    case_ids: frozenset[str] = field(default_factory=frozenset)
    restricted: bool = False  # GDPR Art. 18 restriction in force
    objection: bool = False  # GDPR Art. 21 objection recorded


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str  # the kind of rule that decided
    reason: str = ""  # short, data-free explanation
    break_glass: bool = False
    review: bool = False  # the access waits for review: break-glass, or a reviewed purpose (legal_claim)


class Authorizer(Protocol):
    def decide(self, principal: Principal, action: str, resource: Resource, *, purpose: str | None,
               now: datetime, justification: str | None = None) -> Decision:
        """Decide whether ``principal`` may do ``action`` on ``resource`` for ``purpose`` at ``now``."""
        ...


@runtime_checkable
class BatchAuthorizer(Authorizer, Protocol):
    """An authorizer that also decides many resources in one call (a bulk reveal)."""

    def decide_many(self, principal: Principal, action: str, resources: Sequence[Resource], *,
                    purpose: str | None, now: datetime, justification: str | None = None) -> list[Decision]:
        """The decision for each of ``resources``, in order; the same as deciding each alone."""
        ...


def decide_each(authorizer: Authorizer, principal: Principal, action: str, resources: Sequence[Resource], *,
                purpose: str | None, now: datetime, justification: str | None = None) -> list[Decision]:
    """One decision per resource: in one call where the authorizer can, else one by one."""
    if isinstance(authorizer, BatchAuthorizer):
        return authorizer.decide_many(principal, action, resources, purpose=purpose, now=now,
                                      justification=justification)
    return [authorizer.decide(principal, action, r, purpose=purpose, now=now, justification=justification)
            for r in resources]
