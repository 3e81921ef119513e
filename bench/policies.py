"""``tarcza bench policies``: Cedar decisions per second with the policy set cached, next to a
trivial Python role check over the same requests in the same run.

Decisions touch no database (the principal, the resource and the parameters are all in
memory), so ``backend`` is accepted for symmetry with the other areas and reported, not used.
Two figures per size: the whole :meth:`CedarAuthorizer.decide` (entities and context built
per call, validation against the schema) and Cedar's evaluation alone (requests built
beforehand). The target, 1,000 decisions per second, keeps an authorisation under 1 ms.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import cedarpy

from audit.events import ActorKind
from bench.common import Result, rate, timed
from identity.principal import Principal, Role
from identity.scopes import SCOPES
from policies.actions import ACTIONS
from policies.authorizer import Resource
from policies.engine import CedarAuthorizer

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PURPOSES = ("debt_collection", "field_visit", "complaint_handling", "gdpr_request", None)
TARGET = "value >= 1000"

# What the trivial baseline knows: which role may do which action (no purpose, factor or case logic).
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"account.self", "subject.read_masked", "identity.read", "identity.manage", "keys.rotate"}),
    "dpo": frozenset({"account.self", "subject.read_masked", "subject.reveal", "subject.write", "audit.read",
                      "audit.append", "audit.export", "gdpr.manage", "policies.review"}),
    "compliance_officer": frozenset({"account.self", "subject.read_masked", "subject.write", "contact.record",
                                     "audit.read", "audit.append", "gdpr.manage"}),
    "auditor": frozenset({"account.self", "subject.read_masked", "audit.read", "audit.export", "policies.review"}),
    "collector": frozenset({"account.self", "subject.read_masked", "subject.reveal", "subject.write",
                            "contact.record"}),
    "field_agent": frozenset({"account.self", "subject.read_masked", "subject.reveal", "subject.write",
                              "contact.record"}),
}

Request = tuple[Principal, str, Resource, str | None, str | None]


def workload(count: int, seed: int = 6238) -> list[Request]:
    """``count`` mixed requests: people of every role and clients, every action, varied subjects."""
    rng = random.Random(seed)
    actions = sorted(ACTIONS)
    out: list[Request] = []
    for n in range(count):
        action = rng.choice(actions)
        if rng.random() < 0.7:
            role = rng.choice(list(Role))
            verified = NOW - timedelta(minutes=rng.choice((1, 5, 11))) if rng.random() < 0.9 else None
            principal = Principal(id=f"user-{n % 500}", kind=ActorKind.USER, roles=frozenset({role}),
                                  second_factor_at=verified,
                                  assigned_cases=frozenset(f"SPR-{rng.randrange(50)}" for _ in range(3)))
        else:
            principal = Principal(id=f"cl_{n % 20:04d}", kind=ActorKind.CLIENT,
                                  scopes=frozenset(rng.sample(SCOPES, 3)))
        if ACTIONS[action].resource == "subject" or (ACTIONS[action].resource == "any" and rng.random() < 0.5):
            resource = Resource("subject", f"subj_{n:010d}", frozenset({f"SPR-{rng.randrange(50)}"}),
                                restricted=rng.random() < 0.05)
        else:
            resource = Resource("system")
        justification = "Complaint 2026/114: confirm the address on file" if rng.random() < 0.05 else None
        out.append((principal, action, resource, rng.choice(PURPOSES), justification))
    return out


def _baseline(requests: list[Request]) -> Callable[[], int]:
    def check() -> int:
        allowed = 0
        for principal, action, _resource, _purpose, _justification in requests:
            if principal.kind is ActorKind.CLIENT:
                allowed += ACTIONS[action].scope in principal.scopes
            else:
                allowed += any(action in ROLE_ACTIONS[r.value] for r in principal.roles)
        return allowed

    return check


def results(backend: str = "sqlite", sizes: Sequence[int] = (1_000, 10_000),
            authorizer: CedarAuthorizer | None = None) -> list[Result]:
    """Measure each size; the policy set is loaded (and cached) once, outside the timings."""
    del backend  # decisions use no database
    engine = authorizer or CedarAuthorizer.load()
    bundle = engine.bundle
    out: list[Result] = []
    for size in sizes:
        requests = workload(size)
        prepared = [engine.request(p, a, r, purpose=purpose, now=NOW, justification=j)
                    for p, a, r, purpose, j in requests]

        def decide_all(requests: list[Request] = requests) -> None:
            for p, a, r, purpose, j in requests:
                engine.decide(p, a, r, purpose=purpose, now=NOW, justification=j)

        def evaluate_all(prepared: list[tuple[dict[str, Any], list[dict[str, Any]]]] = prepared) -> None:
            for request, entities in prepared:
                cedarpy.is_authorized(request, bundle.policy_set, entities, schema=bundle.schema)

        base_rate = rate(size, min(timed(_baseline(requests)) for _ in range(3)))
        out.append(Result(f"decide_{size}", rate(size, timed(decide_all)), "decisions/s", "python_role_check",
                          base_rate, True, TARGET))
        out.append(Result(f"cedar_only_{size}", rate(size, timed(evaluate_all)), "decisions/s",
                          "python_role_check", base_rate, True, TARGET))
    return out


def run(backend: str = "sqlite", sizes: Sequence[int] = (1_000, 10_000)) -> list[dict[str, Any]]:
    """The results as dicts: name, value, unit, baseline_name, baseline_value, ratio, target, higher_is_better."""
    return [r.to_json() for r in results(backend, sizes)]
