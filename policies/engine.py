"""The Cedar authorizer: loads, validates and fingerprints the policy set, and decides.

The policy set is every ``*.cedar`` file of a directory (by default this package),
validated against ``schema.cedarschema``, with the parameters of
``authorisation.yaml``. Loading refuses (``ConfigurationError``) a set that does not
parse or validate, or a policy without an ``@id("<kind>.<name>")`` of a known kind or a
``@reason``, so that every decision can be explained. The set's SHA-256 is that of a
``sha256sum``-style manifest (``<hex>  <file name>\\n`` per file, sorted by name) and goes
into the ``policy.loaded`` audit entry.

Decisions are pure: entities and context are built from the principal, the resource and
the parameters. A denial names the kind of rule that decided and the policy's
``@reason``, never the data. Invariant: anything Cedar cannot evaluate is a denial.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cedarpy
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from audit.events import ActorKind, PolicyLoadedPayload
from audit.service import AuditLog
from core.errors import ConfigurationError
from core.logging import get_logger
from identity.principal import SYSTEM, Principal, Role
from policies.actions import SUBJECT_RESOURCE_KINDS, canonical_action
from policies.authorizer import Decision, Resource

log = get_logger(__name__)

POLICY_DIR = Path(__file__).parent
SCHEMA_FILE = "schema.cedarschema"
PARAMETERS_FILE = "authorisation.yaml"
POLICY_SET_NAME = "authorisation"
KINDS = ("role", "scope", "second_factor", "purpose", "assignment", "restriction", "break_glass")
DENIAL_PRIORITY = ("restriction", "second_factor", "assignment", "purpose", "break_glass", "role", "scope")
NS = "Tarcza::"


class AuthorisationParameters(BaseModel):
    """``authorisation.yaml``: the numbers and names the policies are given as context."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = Field(ge=1, le=1)
    second_factor_max_age_minutes: int = Field(10, ge=1, le=24 * 60)
    break_glass_min_justification: int = Field(20, ge=1, le=2000)
    purposes: dict[str, str] = Field(min_length=1)
    role_purposes: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    reviewed_purposes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _purposes_are_known(self) -> AuthorisationParameters:
        roles = {role.value for role in Role}
        unknown_roles = sorted(set(self.role_purposes) - roles)
        if unknown_roles:
            raise ValueError(f"role_purposes names unknown role(s) {unknown_roles}")
        named = {p for purposes in self.role_purposes.values() for p in purposes} | set(self.reviewed_purposes)
        unknown = sorted(named - set(self.purposes))
        if unknown:
            raise ValueError(f"role_purposes or reviewed_purposes name purpose(s) not in purposes: {unknown}")
        return self

    @property
    def second_factor_max_age(self) -> timedelta:
        return timedelta(minutes=self.second_factor_max_age_minutes)

    def purposes_of(self, roles: Iterable[str]) -> frozenset[str]:
        """The purposes a person with ``roles`` may state: those of any of them."""
        return frozenset(p for role in roles for p in self.role_purposes.get(role, ()))


@dataclass(frozen=True)
class PolicyInfo:
    id: str  # the @id annotation, "<kind>.<name>"
    reason: str
    effect: str

    @property
    def kind(self) -> str:
        return self.id.split(".", 1)[0]


@dataclass(frozen=True)
class PolicyBundle:
    """A loaded, validated policy set: parsed handles, annotations, parameters and fingerprint."""

    name: str
    sha256: str
    policy_set: cedarpy.PolicySet
    schema: cedarpy.Schema
    policies: Mapping[str, PolicyInfo]  # Cedar's positional policy id -> annotations
    parameters: AuthorisationParameters
    # Whether a policy names a subject entity (Tarcza::Subject::"..."): only then can a
    # decision depend on which subject it is, rather than on the subject's attributes.
    subject_ids_matter: bool = True
    # Whether every use of a subject's ``case_ids`` is ``principal.assigned_cases.containsAny(
    # resource.case_ids)``: then only the overlap with the principal's cases can matter.
    case_overlap_only: bool = False

    def __repr__(self) -> str:
        return f"PolicyBundle(name={self.name!r}, sha256={self.sha256[:12]}..., policies={len(self.policies)})"


def _refuse(directory: Path, message: str) -> ConfigurationError:
    return ConfigurationError(f"policy set {directory}: {message}; refusing to start")


def load_policy_bundle(directory: Path | None = None) -> PolicyBundle:
    """Read, parse and validate the set in ``directory`` (default: this package); ConfigurationError if unusable."""
    directory = directory or POLICY_DIR
    cedar_files = sorted(directory.glob("*.cedar"))
    if not cedar_files:
        raise _refuse(directory, "no *.cedar files")
    schema_path, params_path = directory / SCHEMA_FILE, directory / PARAMETERS_FILE
    for required in (schema_path, params_path):
        if not required.is_file():
            raise _refuse(directory, f"{required.name} is missing")
    files = [*cedar_files, schema_path, params_path]
    raw = {p.name: p.read_bytes() for p in files}
    manifest = "".join(f"{hashlib.sha256(raw[name]).hexdigest()}  {name}\n" for name in sorted(raw))
    text = "\n".join(raw[p.name].decode("utf-8") for p in cedar_files)
    schema_text = raw[SCHEMA_FILE].decode("utf-8")
    try:
        schema = cedarpy.Schema.from_str(schema_text)
    except ValueError as exc:
        raise _refuse(directory, f"{SCHEMA_FILE} does not parse: {_first_line(exc)}") from None
    try:
        policy_set = cedarpy.PolicySet.from_str(text)
    except ValueError as exc:
        raise _refuse(directory, f"the policies do not parse: {_first_line(exc)}") from None
    result = cedarpy.validate_policies(text, schema_text)
    if not result.validation_passed:
        named = result.id_annotations_by_policy_id
        problems = [f"[{named.get(e.policy_id, e.policy_id)}] {_first_line(e.error)}" for e in result.errors[:3]]
        raise _refuse(directory, f"{len(result.errors)} validation error(s): " + "; ".join(problems))
    policies = _annotations(directory, policy_set)
    try:
        parameters = AuthorisationParameters.model_validate(yaml.safe_load(raw[PARAMETERS_FILE]) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        raise _refuse(directory, f"{PARAMETERS_FILE} is invalid: {_first_line(exc)}") from None
    return PolicyBundle(POLICY_SET_NAME, hashlib.sha256(manifest.encode()).hexdigest(), policy_set, schema,
                        policies, parameters, subject_ids_matter=_SUBJECT_LITERAL.search(text) is not None,
                        case_overlap_only=len(_CASE_IDS.findall(text)) == len(_CASE_OVERLAP.findall(text)))


_SUBJECT_LITERAL = re.compile(r"Subject\s*::\s*\"")
"""An entity literal of a subject in policy text (comments included: a false alarm only costs speed)."""


_CASE_IDS = re.compile(r"case_ids")
_CASE_OVERLAP = re.compile(r"principal\s*\.\s*assigned_cases\s*\.\s*containsAny\s*\(\s*resource\s*\.\s*case_ids\s*\)")
"""Uses of a subject's case ids in policy text, and those that only ask for an overlap with the principal's."""


def _annotations(directory: Path, policy_set: cedarpy.PolicySet) -> dict[str, PolicyInfo]:
    tree = policy_set.to_pst()
    if tree.templates:
        raise _refuse(directory, "templates are not used by Tarcza's policies")
    out: dict[str, PolicyInfo] = {}
    seen: set[str] = set()
    for policy_id, policy in tree.static_policies.items():
        annotations = dict(policy.annotations)
        ident, reason = annotations.get("id", ""), annotations.get("reason", "")
        if ident.split(".", 1)[0] not in KINDS or "." not in ident:
            raise _refuse(directory, f"policy {policy_id} needs @id(\"<kind>.<name>\") with kind one of "
                                     f"{', '.join(KINDS)} (got {ident!r})")
        if ident in seen:
            raise _refuse(directory, f"@id({ident!r}) is used twice")
        if not reason:
            raise _refuse(directory, f"policy {ident} needs a @reason")
        seen.add(ident)
        out[policy_id] = PolicyInfo(ident, reason, str(policy.effect))
    return out


def _first_line(exc: object) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def _attributes(resource: Resource, cases: frozenset[str] | None) -> tuple[object, ...]:
    """Everything of a resource a decision can see when no policy names a subject.

    With ``cases`` (the principal's assigned cases, when the policies only ask whether a
    subject's cases overlap them), a subject's case ids count only as that overlap.
    """
    if resource.kind in SUBJECT_RESOURCE_KINDS:
        case_ids = resource.case_ids if cases is None else resource.case_ids & cases
        return ("subject", case_ids, resource.restricted, resource.objection)
    return ("system", resource.kind, resource.id)  # a System entity's id is its kind and id: keep it


def _uid(kind: str, ident: str) -> dict[str, str]:
    return {"type": NS + kind, "id": ident}


class CedarAuthorizer:
    """:class:`policies.authorizer.Authorizer` backed by a validated Cedar policy set."""

    def __init__(self, bundle: PolicyBundle) -> None:
        self.bundle = bundle
        self.parameters = bundle.parameters
        self._max_age = int(bundle.parameters.second_factor_max_age.total_seconds())
        self._purposes = frozenset(bundle.parameters.purposes)
        self._reviewed = frozenset(bundle.parameters.reviewed_purposes)

    @classmethod
    def load(cls, directory: Path | None = None, *, audit: AuditLog | None = None) -> CedarAuthorizer:
        """Load and validate the set; with ``audit``, record ``policy.loaded`` with its SHA-256."""
        bundle = load_policy_bundle(directory)
        if audit is not None:
            audit.record("policy.loaded", actor=SYSTEM.actor, payload=PolicyLoadedPayload(
                policy_set=bundle.name, sha256=bundle.sha256, policies=len(bundle.policies)))
        log.info("policy_loaded", policy_set=bundle.name, sha256=bundle.sha256, policies=len(bundle.policies))
        return cls(bundle)

    @property
    def purposes(self) -> frozenset[str]:
        return self._purposes

    @property
    def reviewed_purposes(self) -> frozenset[str]:
        """Purposes whose accesses need a justification and land in the review queue (authorisation.yaml)."""
        return self._reviewed

    def purposes_for(self, principal: Principal) -> frozenset[str]:
        """The purposes ``principal`` may state: its roles' (people), its allowed ones (clients), any (Tarcza)."""
        if principal.kind is ActorKind.USER:
            return self.parameters.purposes_of(r.value for r in principal.roles)
        if principal.kind is ActorKind.CLIENT:
            limited = principal.allowed_purposes
            allowed = self._purposes if limited is None else self._purposes & limited
            return allowed - self._reviewed
        return self._purposes

    # -- building the request -------------------------------------------------------------------

    def _principal(self, principal: Principal) -> tuple[dict[str, str], list[dict[str, Any]]]:
        if principal.kind is ActorKind.USER:
            uid = _uid("User", principal.id)
            roles = sorted(r.value for r in principal.roles)
            entity = {"uid": uid, "attrs": {"assigned_cases": sorted(principal.assigned_cases),
                                            "purposes": sorted(self.parameters.purposes_of(roles))},
                      "parents": [_uid("Role", r) for r in roles]}
            return uid, [entity, *({"uid": _uid("Role", r), "attrs": {}, "parents": []} for r in roles)]
        if principal.kind is ActorKind.CLIENT:
            uid = _uid("Client", principal.id)
            purposes = principal.allowed_purposes
            return uid, [{"uid": uid, "parents": [], "attrs": {
                "scopes": sorted(principal.scopes), "purposes": sorted(purposes or ()),
                "any_purpose": purposes is None}}]
        uid = _uid("Service", principal.id)
        return uid, [{"uid": uid, "attrs": {}, "parents": []}]

    @staticmethod
    def _resource(resource: Resource) -> tuple[dict[str, str], dict[str, Any]]:
        if resource.kind in SUBJECT_RESOURCE_KINDS:
            uid = _uid("Subject", resource.id or "unknown")
            return uid, {"uid": uid, "parents": [], "attrs": {
                "case_ids": sorted(resource.case_ids), "restricted": resource.restricted,
                "objection": resource.objection}}
        uid = _uid("System", f"{resource.kind}:{resource.id}" if resource.id else resource.kind)
        return uid, {"uid": uid, "attrs": {}, "parents": []}

    def context(self, principal: Principal, *, purpose: str | None, now: datetime,
                justification: str | None) -> dict[str, Any]:
        verified = principal.second_factor_at
        age = 0 if verified is None else max(0, int((now - verified).total_seconds()))
        return {
            "purpose": purpose or "",
            "purpose_known": bool(purpose) and purpose in self._purposes,
            "purpose_reviewed": bool(purpose) and purpose in self._reviewed,
            "second_factor": verified is not None,
            "second_factor_age": age,
            "second_factor_max_age": self._max_age,
            "justification_length": len(justification.strip()) if justification else 0,
            "break_glass_min_justification": self.parameters.break_glass_min_justification,
        }

    def request(self, principal: Principal, action: str, resource: Resource, *, purpose: str | None,
                now: datetime, justification: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The Cedar request and entities for a decision (exposed for the benchmark and tests)."""
        principal_uid, entities = self._principal(principal)
        resource_uid, resource_entity = self._resource(resource)
        request = {"principal": principal_uid, "action": _uid("Action", action), "resource": resource_uid,
                   "context": self.context(principal, purpose=purpose, now=now, justification=justification)}
        return request, [*entities, resource_entity]

    # -- deciding -----------------------------------------------------------------------------

    def decide(self, principal: Principal, action: str, resource: Resource, *, purpose: str | None,
               now: datetime, justification: str | None = None) -> Decision:
        canonical = canonical_action(action)
        if canonical is None:
            return Decision(False, "action", f"unknown action {action!r}")
        request, entities = self.request(principal, canonical, resource, purpose=purpose, now=now,
                                         justification=justification)
        result = cedarpy.is_authorized(request, self.bundle.policy_set, entities, schema=self.bundle.schema)
        return self._decision(principal, action, resource, result, purpose)

    def decide_many(self, principal: Principal, action: str, resources: Sequence[Resource], *,
                    purpose: str | None, now: datetime, justification: str | None = None) -> list[Decision]:
        """One Cedar batch for many resources: the principal's entities and the context are built once."""
        canonical = canonical_action(action)
        if canonical is None:
            return [Decision(False, "action", f"unknown action {action!r}") for _ in resources]
        if not resources:
            return []
        if not self.bundle.subject_ids_matter:
            # No policy names a subject, and a subject entity has no parents and only the
            # attributes below: subjects alike in those are decided alike. Decide one of each.
            groups: dict[tuple[object, ...], int] = {}
            cases = principal.assigned_cases if self.bundle.case_overlap_only else None
            slots = [groups.setdefault(_attributes(r, cases), len(groups)) for r in resources]
            if len(groups) < len(resources):
                firsts: dict[int, Resource] = {}
                for resource, slot in zip(resources, slots, strict=True):
                    firsts.setdefault(slot, resource)
                decided = self._decide_batch(principal, action, canonical, [firsts[i] for i in range(len(groups))],
                                             purpose=purpose, now=now, justification=justification)
                return [decided[slot] for slot in slots]
        return self._decide_batch(principal, action, canonical, resources, purpose=purpose, now=now,
                                  justification=justification)

    def _decide_batch(self, principal: Principal, action: str, canonical: str, resources: Sequence[Resource], *,
                      purpose: str | None, now: datetime, justification: str | None) -> list[Decision]:
        principal_uid, entities = self._principal(principal)
        context = self.context(principal, purpose=purpose, now=now, justification=justification)
        requests, seen = [], set()
        for resource in resources:
            resource_uid, resource_entity = self._resource(resource)
            requests.append({"principal": principal_uid, "action": _uid("Action", canonical),
                             "resource": resource_uid, "context": context})
            if (resource_uid["type"], resource_uid["id"]) not in seen:
                seen.add((resource_uid["type"], resource_uid["id"]))
                entities.append(resource_entity)
        results = cedarpy.is_authorized_batch(requests, self.bundle.policy_set, entities, schema=self.bundle.schema)
        return [self._decision(principal, action, resource, result, purpose)
                for resource, result in zip(resources, results, strict=True)]

    def _decision(self, principal: Principal, action: str, resource: Resource, result: Any,
                  purpose: str | None) -> Decision:
        if result.diagnostics.errors or result.decision is cedarpy.Decision.NoDecision:
            log.warning("policy_evaluation_error", action=action, resource_kind=resource.kind,
                        errors=len(result.diagnostics.errors))
            return Decision(False, "error", "the request could not be evaluated by the policies")
        decided = [self.bundle.policies[r] for r in result.diagnostics.reasons if r in self.bundle.policies]
        if result.allowed:
            break_glass = all(p.kind == "break_glass" for p in decided)
            first = decided[0] if decided else None
            flagged = break_glass and bool(decided)
            return Decision(True, first.kind if first else "role", first.reason if first else "",
                            break_glass=flagged, review=flagged or purpose in self._reviewed)
        if decided:
            chosen = min(decided, key=lambda p: (DENIAL_PRIORITY.index(p.kind), p.id))
            return Decision(False, chosen.kind, f"{chosen.id}: {chosen.reason}")
        default = "scope" if principal.kind is ActorKind.CLIENT else "role"
        return Decision(False, default, f"no policy permits {action} for this {default}")
