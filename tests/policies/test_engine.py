"""The Cedar authorizer: a table of decisions, explanations without data, and refusal of bad policy sets."""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from audit.events import ActorKind
from core.errors import ConfigurationError
from identity.principal import SYSTEM, Principal, Role
from policies.actions import ACTIONS, ALIASES
from policies.authorizer import Authorizer, Resource
from policies.engine import POLICY_DIR, CedarAuthorizer, load_policy_bundle

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FRESH = NOW - timedelta(minutes=2)
STALE = NOW - timedelta(minutes=11)
SUBJECT = Resource("subject", "subj_0123456789", frozenset({"SPR-1"}))
OTHER_CASE = Resource("subject", "subj_9876543210", frozenset({"SPR-2"}))
RESTRICTED = Resource("subject", "subj_0123456789", frozenset({"SPR-1"}), restricted=True)
SYSTEM_RESOURCE = Resource("system")
JUSTIFICATION = "Debtor complaint 2026/114 needs the address check"


@pytest.fixture(scope="module")
def authorizer() -> CedarAuthorizer:
    return CedarAuthorizer.load()


def user(*roles: Role, at: datetime | None = FRESH, cases: frozenset[str] = frozenset({"SPR-1"})) -> Principal:
    return Principal(id="u-" + "-".join(roles), kind=ActorKind.USER, roles=frozenset(roles), second_factor_at=at,
                     assigned_cases=cases)


def client(*scopes: str, purposes: frozenset[str] | None = None) -> Principal:
    return Principal(id="cl_test", kind=ActorKind.CLIENT, scopes=frozenset(scopes), allowed_purposes=purposes)


# (description, principal, action, resource, purpose, justification, allowed, rule)
TABLE = [
    ("dpo reveals with a purpose", user(Role.DPO), "subject.reveal", SUBJECT, "debt_collection", None, True, "role"),
    ("reveal needs a purpose", user(Role.DPO), "subject.reveal", SUBJECT, None, None, False, "purpose"),
    ("unknown purpose", user(Role.DPO), "subject.reveal", SUBJECT, "curiosity", None, False, "purpose"),
    ("stale second factor", user(Role.DPO, at=STALE), "subject.reveal", SUBJECT, "debt_collection", None, False,
     "second_factor"),
    ("password-only session", user(Role.DPO, at=None), "subject.reveal", SUBJECT, "debt_collection", None, False,
     "second_factor"),
    ("password-only may read itself", user(Role.DPO, at=None), "account.self", SYSTEM_RESOURCE, None, None, True,
     "role"),
    ("password-only may not read masked", user(Role.COLLECTOR, at=None), "subject.read_masked", SUBJECT, None, None,
     False, "second_factor"),
    ("stale is fine for masked reads", user(Role.COLLECTOR, at=STALE), "subject.read_masked", SUBJECT, None, None,
     True, "role"),
    ("collector reveals", user(Role.COLLECTOR), "subject.reveal", SUBJECT, "debt_collection", None, True, "role"),
    ("auditor never reveals", user(Role.AUDITOR), "subject.reveal", SUBJECT, "audit", None, False, "role"),
    ("admin never reveals", user(Role.ADMIN), "subject.reveal", SUBJECT, "debt_collection", None, False,
     "purpose"),  # admins are given no purpose at all (authorisation.yaml role_purposes)
    ("field agent on an assigned case", user(Role.FIELD_AGENT), "subject.reveal", SUBJECT, "field_visit", None, True,
     "role"),
    ("field agent outside their cases", user(Role.FIELD_AGENT), "subject.reveal", OTHER_CASE, "field_visit", None,
     False, "assignment"),
    ("field agent masked read outside cases", user(Role.FIELD_AGENT), "subject.read_masked", OTHER_CASE, None, None,
     False, "assignment"),
    ("restricted subject: collector", user(Role.COLLECTOR), "subject.reveal", RESTRICTED, "debt_collection", None,
     False, "restriction"),
    ("restricted subject: dpo", user(Role.DPO), "subject.reveal", RESTRICTED, "gdpr_request", None, True, "role"),
    ("restricted subject: collector may not state legal_claim", user(Role.COLLECTOR), "subject.reveal",
     RESTRICTED, "legal_claim", JUSTIFICATION, False, "purpose"),
    ("restricted subject: dpo for a legal claim with a justification (Art. 18(2))", user(Role.DPO),
     "subject.reveal", RESTRICTED, "legal_claim", JUSTIFICATION, True, "role"),
    ("legal_claim needs a justification", user(Role.DPO), "subject.reveal", SUBJECT, "legal_claim", None, False,
     "purpose"),
    ("restricted subject: client may not state legal_claim", client("subjects:reveal"), "subject.reveal",
     RESTRICTED, "legal_claim", None, False, "purpose"),
    ("restricted subject: break-glass may not state legal_claim", user(Role.COMPLIANCE_OFFICER), "subject.reveal",
     RESTRICTED, "legal_claim", JUSTIFICATION, False, "purpose"),
    ("collector: a purpose of another role", user(Role.COLLECTOR), "subject.reveal", SUBJECT, "payment_processing",
     None, False, "purpose"),
    ("collector: masked read for another role's purpose", user(Role.COLLECTOR), "subject.read_masked", SUBJECT,
     "audit", None, False, "purpose"),
    ("field agent: a visit's purpose", user(Role.FIELD_AGENT), "subject.reveal", SUBJECT, "gdpr_request", None,
     False, "purpose"),
    ("two roles: the purposes of either", user(Role.COLLECTOR, Role.FIELD_AGENT), "subject.reveal", SUBJECT,
     "field_visit", None, True, "role"),
    ("break-glass: only the officer's purposes", user(Role.COMPLIANCE_OFFICER), "subject.reveal", SUBJECT,
     "debt_collection", JUSTIFICATION, False, "purpose"),
    ("officer erases fresh", user(Role.COMPLIANCE_OFFICER), "gdpr.erase", SUBJECT, None, None, True, "role"),
    ("officer erases stale", user(Role.COMPLIANCE_OFFICER, at=STALE), "gdpr.erase", SUBJECT, None, None, False,
     "second_factor"),
    ("officer manages stale", user(Role.COMPLIANCE_OFFICER, at=STALE), "gdpr.manage", SUBJECT, None, None, True,
     "role"),
    ("client erases with gdpr:manage", client("gdpr:manage"), "gdpr.erase", SUBJECT, None, None, True, "scope"),
    ("dpo overrides with a justification", user(Role.DPO), "gdpr.erase_override", SUBJECT, None, JUSTIFICATION,
     True, "role"),
    ("dpo override needs a justification", user(Role.DPO), "gdpr.erase_override", SUBJECT, None, "short", False,
     "break_glass"),
    ("dpo override needs a fresh factor", user(Role.DPO, at=STALE), "gdpr.erase_override", SUBJECT, None,
     JUSTIFICATION, False, "second_factor"),
    ("officer never overrides", user(Role.COMPLIANCE_OFFICER), "gdpr.erase_override", SUBJECT, None, JUSTIFICATION,
     False, "role"),
    ("client never overrides", client(*ACTIONS, "gdpr:manage"), "gdpr.erase_override", SUBJECT, None,
     JUSTIFICATION, False, "role"),
    ("a job never overrides", SYSTEM, "gdpr.erase_override", SUBJECT, None, JUSTIFICATION, False, "role"),
    ("restricted subject: break-glass", user(Role.COMPLIANCE_OFFICER), "subject.reveal", RESTRICTED,
     "complaint_handling", JUSTIFICATION, False, "restriction"),
    ("compliance officer without break-glass", user(Role.COMPLIANCE_OFFICER), "subject.reveal", SUBJECT,
     "complaint_handling", None, False, "role"),
    ("break-glass with justification", user(Role.COMPLIANCE_OFFICER), "subject.reveal", OTHER_CASE,
     "complaint_handling", JUSTIFICATION, True, "break_glass"),
    ("break-glass justification too short", user(Role.COMPLIANCE_OFFICER), "subject.reveal", SUBJECT,
     "complaint_handling", "because", False, "break_glass"),
    ("break-glass still needs a fresh factor", user(Role.COMPLIANCE_OFFICER, at=STALE), "subject.reveal", SUBJECT,
     "complaint_handling", JUSTIFICATION, False, "second_factor"),
    ("break-glass still needs a purpose", user(Role.COMPLIANCE_OFFICER), "subject.reveal", SUBJECT, None,
     JUSTIFICATION, False, "purpose"),
    ("admin manages identities fresh", user(Role.ADMIN), "identity.manage", SYSTEM_RESOURCE, None, None, True, "role"),
    ("admin stale cannot manage", user(Role.ADMIN, at=STALE), "identity.manage", SYSTEM_RESOURCE, None, None, False,
     "second_factor"),
    ("admin stale can list", user(Role.ADMIN, at=STALE), "identity.read", SYSTEM_RESOURCE, None, None, True, "role"),
    ("dpo cannot manage identities", user(Role.DPO), "identity.manage", SYSTEM_RESOURCE, None, None, False, "role"),
    ("auditor exports", user(Role.AUDITOR), "audit.export", SYSTEM_RESOURCE, None, None, True, "role"),
    ("collector cannot read the log", user(Role.COLLECTOR), "audit.read", SYSTEM_RESOURCE, None, None, False, "role"),
    ("client with scope reveals", client("subjects:reveal"), "subject.reveal", SUBJECT, "debt_collection", None, True,
     "scope"),
    ("client without scope", client("subjects:read-masked"), "subject.reveal", SUBJECT, "debt_collection", None,
     False, "scope"),
    ("client purpose not allowed", client("subjects:reveal", purposes=frozenset({"payment_processing"})),
     "subject.reveal", SUBJECT, "debt_collection", None, False, "purpose"),
    ("client purpose allowed", client("subjects:reveal", purposes=frozenset({"debt_collection"})), "subject.reveal",
     SUBJECT, "debt_collection", None, True, "scope"),
    ("client cannot manage identities", client(*ACTIONS), "identity.manage", SYSTEM_RESOURCE, None, None, False,
     "scope"),
    ("client cannot use account.self", client("audit:read"), "account.self", SYSTEM_RESOURCE, None, None, False,
     "scope"),
    ("client audit:read reviews break-glass", client("audit:read"), "policies.review", SYSTEM_RESOURCE, None, None,
     True, "scope"),
    ("restricted subject: client", client("subjects:reveal"), "subject.reveal", RESTRICTED, "debt_collection", None,
     False, "restriction"),
    ("system job erases", SYSTEM, "shred", SUBJECT, "erasure", None, True, "role"),
    ("vault alias: reveal", user(Role.DPO), "reveal", SUBJECT, "debt_collection", None, True, "role"),
    ("vault alias: play_recording stale", user(Role.DPO, at=STALE), "play_recording", SUBJECT, "debt_collection",
     None, False, "second_factor"),
    ("unknown action", user(Role.DPO), "subject.delete_everything", SUBJECT, None, None, False, "action"),
    ("action on the wrong resource kind", user(Role.ADMIN), "keys.rotate", SUBJECT, None, None, False, "error"),
]


class TestDecisionTable:
    @pytest.mark.parametrize(("principal", "action", "resource", "purpose", "justification", "allowed", "rule"),
                             [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
    def test_decision(self, authorizer: CedarAuthorizer, principal: Principal, action: str, resource: Resource,
                      purpose: str | None, justification: str | None, allowed: bool, rule: str) -> None:
        """Each row of the table decides as documented, naming the kind of rule."""
        decision = authorizer.decide(principal, action, resource, purpose=purpose, now=NOW,
                                     justification=justification)
        assert (decision.allowed, decision.rule) == (allowed, rule), decision.reason

    def test_break_glass_is_flagged(self, authorizer: CedarAuthorizer) -> None:
        """Only a break-glass permit sets decision.break_glass."""
        bg = authorizer.decide(user(Role.COMPLIANCE_OFFICER), "subject.reveal", SUBJECT, purpose="complaint_handling",
                               now=NOW, justification=JUSTIFICATION)
        normal = authorizer.decide(user(Role.DPO), "subject.reveal", SUBJECT, purpose="debt_collection", now=NOW,
                                   justification=JUSTIFICATION)
        assert bg.break_glass
        assert not normal.break_glass
        assert bg.review
        assert not normal.review

    def test_a_reviewed_purpose_is_flagged_for_review(self, authorizer: CedarAuthorizer) -> None:
        """A legal_claim reveal is flagged for review (not as break-glass); the purposes per role come from
        authorisation.yaml."""
        claim = authorizer.decide(user(Role.DPO), "subject.reveal", RESTRICTED, purpose="legal_claim", now=NOW,
                                  justification=JUSTIFICATION)
        assert (claim.allowed, claim.review, claim.break_glass) == (True, True, False)
        assert authorizer.reviewed_purposes == {"legal_claim"}
        assert authorizer.purposes_for(user(Role.COLLECTOR)) == {"debt_collection", "complaint_handling"}
        assert "legal_claim" not in authorizer.purposes_for(client("subjects:reveal"))

    def test_role_purposes_must_name_known_roles_and_purposes(self, tmp_path: Path) -> None:
        """A role_purposes entry naming an unknown purpose or role keeps the server from starting."""
        for number, bad in enumerate(("role_purposes:\n  collector: [gossip]\n",
                                      "role_purposes:\n  janitor: [audit]\n", "reviewed_purposes: [gossip]\n")):
            (tmp_path / str(number)).mkdir()
            directory = _copy_policies(tmp_path / str(number))
            text = (directory / "authorisation.yaml").read_text(encoding="utf-8")
            text = text.split("\nrole_purposes:", 1)[0] + "\n" + bad
            (directory / "authorisation.yaml").write_text(text, encoding="utf-8")
            with pytest.raises(ConfigurationError, match=r"authorisation\.yaml is invalid"):
                load_policy_bundle(directory)

    def test_denials_carry_no_data(self, authorizer: CedarAuthorizer) -> None:
        """A denial's reason names the policy, never the subject, the case, the purpose or the principal."""
        decision = authorizer.decide(user(Role.FIELD_AGENT), "subject.reveal", OTHER_CASE, purpose="field_visit",
                                     now=NOW)
        assert decision.reason.startswith("assignment.field_agent:")
        for value in ("subj_9876543210", "SPR-2", "SPR-1", "field_visit", "u-field_agent"):
            assert value not in decision.reason

    def test_freshness_limit_comes_from_the_parameters(self, authorizer: CedarAuthorizer) -> None:
        """The 10-minute limit is authorisation.yaml's second_factor_max_age_minutes."""
        assert authorizer.parameters.second_factor_max_age == timedelta(minutes=10)
        edge = user(Role.DPO, at=NOW - timedelta(minutes=10))
        assert authorizer.decide(edge, "subject.reveal", SUBJECT, purpose="gdpr_request", now=NOW).allowed

    def test_implements_the_authorizer_protocol(self, authorizer: CedarAuthorizer) -> None:
        """CedarAuthorizer is what services depend on."""
        chosen: Authorizer = authorizer
        assert chosen.decide(user(Role.DPO), "account.self", SYSTEM_RESOURCE, purpose=None, now=NOW).allowed

    @pytest.mark.parametrize("action", sorted(ACTIONS) + sorted(ALIASES))
    def test_every_action_is_known_to_the_schema(self, authorizer: CedarAuthorizer, action: str) -> None:
        """Each action of the catalogue (and each vault alias) evaluates without a Cedar error for some resource."""
        rules = {authorizer.decide(SYSTEM, action, resource, purpose="audit", now=NOW).rule
                 for resource in (SUBJECT, SYSTEM_RESOURCE)}
        assert rules != {"error"}


def _copy_policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    target.mkdir()
    for name in ("authorisation.cedar", "schema.cedarschema", "authorisation.yaml"):
        shutil.copy(POLICY_DIR / name, target / name)
    return target


class TestLoading:
    def test_fingerprint_is_the_sha256_of_the_manifest(self) -> None:
        """The set's SHA-256 is that of `sha256sum`-style lines for its files, sorted by name."""
        bundle = load_policy_bundle()
        names = sorted(["authorisation.cedar", "authorisation.yaml", "schema.cedarschema"])
        manifest = "".join(f"{hashlib.sha256((POLICY_DIR / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
        assert bundle.sha256 == hashlib.sha256(manifest.encode()).hexdigest()

    @pytest.mark.parametrize(("mutation", "message"), [
        (lambda d: (d / "authorisation.cedar").write_text("permit (principal, action, resource"), "do not parse"),
        (lambda d: (d / "authorisation.cedar").write_text(
            (d / "authorisation.cedar").read_text() + '\n@id("role.typo") @reason("x")\n'
            'permit (principal is Tarcza::User, action, resource) when { principal.rolez == "dpo" };\n'),
         "validation error"),
        (lambda d: (d / "extra.cedar").write_text('permit (principal, action, resource);\n'), "needs @id"),
        (lambda d: (d / "extra.cedar").write_text('@id("magic.allow") @reason("x")\npermit (principal, action, '
                                                  'resource);\n'), "kind one of"),
        (lambda d: (d / "extra.cedar").write_text('@id("role.no_reason")\npermit (principal, action, resource);\n'),
         "needs a @reason"),
        (lambda d: (d / "extra.cedar").write_text('@id("role.reveal") @reason("dup")\npermit (principal, action, '
                                                  'resource);\n'), "used twice"),
        (lambda d: (d / "schema.cedarschema").write_text("namespace {"), "does not parse"),
        (lambda d: (d / "authorisation.yaml").write_text("version: 1\nsecond_factor_max_age_minutes: -3\n"),
         "authorisation.yaml is invalid"),
        (lambda d: (d / "authorisation.yaml").unlink(), "authorisation.yaml is missing"),
    ], ids=["syntax", "schema", "no-id", "unknown-kind", "no-reason", "duplicate-id", "bad-schema", "bad-params",
            "no-params"])
    def test_invalid_policy_set_refuses_to_start(self, tmp_path: Path, mutation, message: str) -> None:  # type: ignore[no-untyped-def]
        """A set that does not parse or validate, or lacks explanations, raises ConfigurationError."""
        directory = _copy_policies(tmp_path)
        mutation(directory)
        with pytest.raises(ConfigurationError, match=message) as info:
            CedarAuthorizer.load(directory)
        assert "refusing to start" in info.value.detail

    def test_loading_is_audited(self, initialised_runtime) -> None:  # type: ignore[no-untyped-def]
        """The runtime's authorizer records policy.loaded with the set's SHA-256 and size."""
        from audit.repository import EntryFilter

        authorizer = initialised_runtime.authorizer
        entries = initialised_runtime.audit.query(EntryFilter(event_type="policy.loaded")).items
        assert len(entries) == 1
        payload = entries[0].event["payload"]
        assert payload == {"policy_set": "authorisation", "sha256": authorizer.bundle.sha256,
                           "policies": len(authorizer.bundle.policies)}

    def test_server_refuses_to_start_on_invalid_policies(self, initialised_runtime, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
        """The app's start-up loads the policies; an invalid set stops it with ConfigurationError."""
        from fastapi.testclient import TestClient

        from api.app import create_app
        from policies import engine

        directory = _copy_policies(tmp_path)
        (directory / "authorisation.cedar").write_text("forbid (principal, action, resource) when { nonsense };")
        monkeypatch.setattr(engine, "POLICY_DIR", directory)
        with pytest.raises(ConfigurationError), TestClient(create_app(runtime=initialised_runtime)):
            pass


class TestDecideMany:
    """CedarAuthorizer.decide_many (one Cedar batch) gives exactly what deciding each resource alone gives."""

    RESOURCES: ClassVar[list[Resource]] = [
        Resource("subject", "sub_A", case_ids=frozenset({"SPR-1"})),
        Resource("subject", "sub_B", case_ids=frozenset({"SPR-2"})),
        Resource("subject", "sub_C", case_ids=frozenset({"SPR-1"}), restricted=True),
        Resource("subject", "sub_D", objection=True),
        Resource("subject", "sub_A", case_ids=frozenset({"SPR-1"})),  # the same subject twice
    ]

    @pytest.mark.parametrize("principal", [
        user(Role.COLLECTOR), user(Role.COLLECTOR, at=None), user(Role.DPO), user(Role.FIELD_AGENT),
        user(Role.AUDITOR), user(Role.COMPLIANCE_OFFICER), client("subjects:reveal"), client("subjects:write"),
        SYSTEM,
    ], ids=lambda p: f"{p.kind.value}:{'+'.join(sorted(r.value for r in p.roles)) or '-'}")
    @pytest.mark.parametrize("action", ["reveal", "read_masked", "shred", "no-such-action"])
    @pytest.mark.parametrize(("purpose", "justification"), [
        ("debt_collection", None), (None, None), ("emergency", "x" * 40)])
    def test_same_as_one_by_one(self, authorizer: CedarAuthorizer, principal: Principal, action: str,
                                purpose: str | None, justification: str | None) -> None:
        one_by_one = [authorizer.decide(principal, action, r, purpose=purpose, now=NOW, justification=justification)
                      for r in self.RESOURCES]
        assert authorizer.decide_many(principal, action, self.RESOURCES, purpose=purpose, now=NOW,
                                      justification=justification) == one_by_one
        assert authorizer.decide_many(principal, action, [], purpose=purpose, now=NOW) == []

    def test_shipped_policies_name_no_subject(self, authorizer: CedarAuthorizer) -> None:
        """The shipped set never names a subject, so subjects alike in their attributes are decided once."""
        assert authorizer.bundle.subject_ids_matter is False

    def test_a_policy_naming_a_subject_is_honoured(self, tmp_path: Path) -> None:
        """Add a rule that names one subject: decide_many then decides each subject on its own."""
        directory = _copy_policies(tmp_path)
        with (directory / "authorisation.cedar").open("a", encoding="utf-8") as policies:
            policies.write('\n@id("restriction.court_order")\n@reason("a court order stops every reveal of '
                           'this subject")\nforbid (principal, action == Tarcza::Action::"subject.reveal", '
                           'resource == Tarcza::Subject::"sub_B");\n')
        named = CedarAuthorizer.load(directory)
        assert named.bundle.subject_ids_matter is True
        alike = [Resource("subject", token) for token in ("sub_A", "sub_B", "sub_C")]
        decisions = named.decide_many(user(Role.DPO), "reveal", alike, purpose="debt_collection", now=NOW)
        assert [d.allowed for d in decisions] == [True, False, True]
        assert decisions[1].rule == "restriction"
