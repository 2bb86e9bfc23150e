"""Approval rules, separation of duties, quorum and standard templates, on hand-built catalogs.

The world is `tests.catalog_builders.platform()` plus:
- tenants globex (dedicated-cluster, invoicing; approver gina), initech (dedicated-namespace,
  payroll; approvers ian and olga) and hooli (dedicated-namespace, no business services),
  every database on pg-1 with acme's (multi-tenant, gold; approver lotte);
- people bob (implementer, cab), dave (cab), ivan (approver, cab), peggy (cab), paul
  (platform-lead), erin (emergency-approver), gina (customer approver of globex), ian
  (initech), olga (globex and initech), frank (auditor).
alice (requester) files every change, bob implements it; carol is approver and platform lead.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from changegate.domain import approvals, catalog, changes, impact, risk, validation
from changegate.domain.approvals import Approval, Ignored, Need, Requirement
from changegate.domain.catalog import Role
from changegate.domain.changes import ChangeState
from changegate.errors import InvalidInput, Refused
from tests import catalog_builders as b
from tests import factories

DIGEST = "sha256:" + "1" * 64
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
OLD_HASH = "sha256:" + "0" * 64


def person(ident: str, *roles: str, tenants: Sequence[str] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "display_name": ident.title(),
        "email": f"{ident}@example.com",
        "roles": list(roles),
    }
    if tenants:
        spec["tenants"] = list(tenants)
    return b.doc("Person", ident, spec)


def tenant(ident: str, model: str, services: list[str], approvers: list[str]) -> dict[str, Any]:
    return b.doc(
        "Tenant",
        ident,
        b.tenant_spec(
            display_name=ident.title(),
            deployment_model=model,
            cluster="dedicated-1" if model == "dedicated-cluster" else "shared-1",
            namespace=ident,
            database={"service": "pg-1", "name": ident},
            services=[],
            business_services=services,
            approvers=approvers,
        ),
    )


def world(*extra: dict[str, Any]) -> b.Platform:
    files = b.platform()
    files["tenants.yaml"] += [
        tenant("globex", "dedicated-cluster", ["invoicing"], ["gina"]),
        tenant("initech", "dedicated-namespace", ["payroll"], ["ian", "olga"]),
        tenant("hooli", "dedicated-namespace", [], []),
    ]
    files["people.yaml"] += [
        person("bob", "implementer", "cab"),
        person("dave", "cab"),
        person("ivan", "approver", "cab"),
        person("peggy", "cab"),
        person("paul", "platform-lead"),
        person("erin", "emergency-approver"),
        person("gina", "customer-approver", tenants=["globex"]),
        person("ian", "customer-approver", tenants=["initech"]),
        person("olga", "customer-approver", tenants=["globex", "initech"]),
        person("frank", "auditor"),
    ]
    files["policies.yaml"] = list(extra)
    return files


def build(files: b.Platform) -> catalog.Catalog:
    return catalog.build(b.documents(files), digest=DIGEST, commit=None, root="r")


CATALOG = build(world())
DEFAULTS = approvals.ApprovalPolicy.of(CATALOG)


def change(
    state: ChangeState = ChangeState.AUTHORIZE, number: int = 1, **overrides: Any
) -> changes.ChangeRequest:
    fields: dict[str, Any] = {"targets": {"tenants": ["acme"]}, "implementer": "bob"}
    fields.update(overrides)
    spec = factories.change_spec(**fields)
    return changes.new_change(number, spec, "alice", NOW).evolve(state=state)


# A production upgrade of pg-1: reaches acme, globex, initech and hooli.
def db_change(**overrides: Any) -> changes.ChangeRequest:
    fields: dict[str, Any] = {"category": "database-upgrade", "targets": {"services": ["pg-1"]}}
    return change(**{**fields, **overrides})


def assessed(
    chg: changes.ChangeRequest, risk_class: str, services: dict[str, Any] | None = None
) -> risk.Assessment:
    return risk.Assessment(
        change_id=chg.id,
        content_hash=chg.content_hash,
        catalog_digest=DIGEST,
        rule_version="v1-test",
        policy_digest="sha256:test",
        score={"low": 10, "medium": 30, "high": 60, "critical": 90}[risk_class],
        risk_class=risk.RiskClass(risk_class),
        class_reason="set by the test",
        factors=(),
        impact={"services": services or {}},
        inputs={},
    )


def requirement(
    chg: changes.ChangeRequest,
    risk_class: str | None,
    policy: approvals.ApprovalPolicy = DEFAULTS,
    cat: catalog.Catalog = CATALOG,
) -> Requirement:
    assessment = assessed(chg, risk_class) if risk_class is not None else None
    return approvals.required_approvals(chg, assessment, impact.analyze(cat, chg.spec), policy, cat)


def needs(req: Requirement) -> dict[str, int]:
    return {need.key: need.count for need in req.needs}


def give(
    chg: changes.ChangeRequest,
    req: Requirement,
    who: str,
    *,
    at: datetime = NOW,
    cat: catalog.Catalog = CATALOG,
    **options: Any,
) -> Approval:
    return approvals.record(who, chg, req, cat, now=at, **options)


def decide(
    req: Requirement,
    given_approvals: Sequence[Approval],
    chg: changes.ChangeRequest,
    at: datetime = NOW,
) -> approvals.Decision:
    return approvals.evaluate(req, given_approvals, change=chg, catalog=CATALOG, now=at)


def policy(spec: dict[str, Any]) -> approvals.ApprovalPolicy:
    return approvals.ApprovalPolicy.build(
        validation.validate_plain(catalog.ApprovalPolicySpec, spec, source=None)
    )


# ------------------------------------------------------------------ rules: the defaults


def test_the_catalog_risk_classes_are_the_risk_modules() -> None:
    assert tuple(c.value for c in risk.RiskClass) == catalog.RISK_CLASSES


def test_low_and_medium_risk_need_one_approver() -> None:
    chg = change()
    for risk_class, rule in (("low", "low-risk"), ("medium", "medium-risk")):
        req = requirement(chg, risk_class)
        assert needs(req) == {"approver": 1}
        assert [r.name for r in req.rules] == [rule]
        assert req.rules[0].reason == f"type normal, risk class {risk_class}"
        assert req.need("approver").reason == f"1 approver (rule {rule})"
        assert req.retrospective is None


def test_high_risk_needs_a_platform_lead_and_a_cab_member() -> None:
    req = requirement(db_change(), "high")
    assert needs(req) == {"platform-lead": 1, "cab": 1}
    assert req.approvals_needed == 2
    assert req.reason == "2 approvals: 1 platform-lead (rule high-risk); 1 cab (rule high-risk)"


def test_critical_needs_cab_quorum_a_lead_and_dedicated_tenants_customer_approvers() -> None:
    req = requirement(db_change(), "critical")
    # acme is multi-tenant and hooli touches no business service: no consent asked of them.
    assert needs(req) == {"cab": 2, "platform-lead": 1, "tenant:globex": 1, "tenant:initech": 1}
    globex = req.need("tenant:globex")
    assert (globex.role, globex.tenant) == ("customer-approver", "globex")
    assert globex.reason == (
        "a customer approver of tenant globex (dedicated-cluster; business services "
        "invoicing) (rule critical-risk)"
    )


def test_emergency_needs_one_emergency_approver_and_a_retrospective() -> None:
    chg = change(type="emergency")
    req = requirement(chg, None)  # an emergency change skips Assess
    assert needs(req) == {"emergency-approver": 1}
    assert req.retrospective == approvals.Retrospective("cab", timedelta(hours=48))
    assert approvals.retrospective_due(req, NOW) == NOW + timedelta(hours=48)
    assert approvals.retrospective_due(requirement(change(), "low"), NOW) is None


def test_a_standard_change_no_template_covers_is_approved_like_a_normal_one() -> None:
    assert needs(requirement(change(type="standard"), "medium")) == {"approver": 1}


def test_without_an_assessment_no_risk_rule_matches_and_nothing_can_authorize() -> None:
    chg = change()
    req = requirement(chg, None)
    assert req.needs == () and req.rules == ()
    assert req.reason.startswith("no approval rule matches type normal, category module-update")
    assert "risk class not assessed" in req.reason
    decision = decide(req, [], chg)
    assert not decision.authorized and decision.reason == req.reason
    with pytest.raises(Refused, match="cannot be approved: no approval rule matches"):
        give(chg, req, "carol")


def test_an_assessment_of_older_content_is_refused() -> None:
    chg = change()
    old = assessed(chg, "low")
    edited = chg.evolve(content_hash=OLD_HASH)
    with pytest.raises(Refused, match="assess it again"):
        approvals.required_approvals(
            edited, old, impact.analyze(CATALOG, chg.spec), DEFAULTS, CATALOG
        )


def test_requirement_as_dict_is_json() -> None:
    data = requirement(db_change(type="normal"), "critical").as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["approvals_needed"] == 5
    assert data["expire_after_seconds"] == 14 * 24 * 3600
    assert data["policy_source"] == "built-in defaults"


# ------------------------------------------------------------------ rules: custom policies

DB_RULE = {
    "name": "prod-database-dedicated",
    "when": {
        "categories": ["database-upgrade", "database-migration"],
        "risk_classes": ["high", "critical"],
        "production": True,
        "deployment_models": ["dedicated-cluster"],
    },
    "require": [
        {"role": "platform-lead", "count": 2},
        {"role": "cab"},
        {"customer_approvers": "dedicated-tenants"},
    ],
}


def test_matching_rules_add_up_and_the_strongest_demand_per_group_wins() -> None:
    custom = policy({"rules": [DB_RULE], "include_default_rules": True})
    req = requirement(db_change(), "high", custom)
    assert [r.name for r in req.rules] == ["high-risk", "prod-database-dedicated"]
    assert req.rules[1].reason == (
        "category database-upgrade, risk class high, production, affects dedicated-cluster tenants"
    )
    assert needs(req) == {"platform-lead": 2, "cab": 1, "tenant:globex": 1, "tenant:initech": 1}
    assert req.need("platform-lead").rules == ("high-risk", "prod-database-dedicated")
    assert req.need("cab").reason == "1 cab (rules high-risk, prod-database-dedicated)"
    assert req.need("tenant:initech").rules == ("prod-database-dedicated",)


def test_each_condition_must_hold() -> None:
    custom = policy({"rules": [DB_RULE], "include_default_rules": True})
    # Only acme (multi-tenant) affected: no dedicated-cluster tenant, the rule does not apply.
    only_acme = change(category="database-upgrade", targets={"tenants": ["acme"]})
    assert [r.name for r in requirement(only_acme, "high", custom).rules] == ["high-risk"]
    # Another category, or a lower risk class: no.
    assert len(requirement(db_change(category="database-config"), "high", custom).rules) == 1
    assert len(requirement(db_change(), "medium", custom).rules) == 1
    # Not production: no.
    staging = db_change(environment="staging")
    assert [r.name for r in requirement(staging, "high", custom).rules] == ["high-risk"]


def test_environment_and_production_conditions() -> None:
    custom = policy(
        {
            "rules": [
                {
                    "name": "staging",
                    "when": {"environments": ["staging"]},
                    "require": [{"role": "approver"}],
                },
                {"name": "prod", "when": {"production": True}, "require": [{"role": "cab"}]},
                {
                    "name": "unknown-env",
                    "when": {"production": True, "types": ["normal"]},
                    "require": [{"role": "platform-lead"}],
                },
            ]
        }
    )
    assert [r.name for r in requirement(change(environment="staging"), "low", custom).rules] == [
        "staging"
    ]
    assert needs(requirement(change(), "low", custom)) == {"cab": 1, "platform-lead": 1}
    # An environment the catalog does not know counts as production.
    assert needs(requirement(change(environment="mars"), "low", custom)) == {
        "cab": 1,
        "platform-lead": 1,
    }


def test_rules_given_replace_the_defaults() -> None:
    custom = policy({"rules": [DB_RULE]})
    assert needs(requirement(db_change(), "high", custom)) == {
        "platform-lead": 2,
        "cab": 1,
        "tenant:globex": 1,
        "tenant:initech": 1,
    }
    unmatched = requirement(change(), "low", custom)
    assert unmatched.needs == () and "no approval rule matches" in unmatched.reason


def test_all_tenants_customer_approval_and_counts_per_tenant() -> None:
    custom = policy(
        {
            "rules": [
                {
                    "name": "consent",
                    "require": [{"customer_approvers": "all-tenants", "count": 2}],
                }
            ]
        }
    )
    req = requirement(db_change(), "low", custom)
    assert needs(req) == {"tenant:acme": 2, "tenant:globex": 2, "tenant:initech": 2}
    assert req.rules[0].reason == "applies to every change"


def test_rules_that_ask_for_nobody_authorize_nothing() -> None:
    custom = policy(
        {"rules": [{"name": "consent", "require": [{"customer_approvers": "dedicated-tenants"}]}]}
    )
    chg = change()  # acme only: multi-tenant
    req = requirement(chg, "low", custom)
    assert req.needs == () and [r.name for r in req.rules] == ["consent"]
    assert "ask for nobody" in req.reason
    assert not decide(req, [], chg).authorized


def test_expiry_and_retrospective_come_from_the_policy() -> None:
    custom = policy(
        {"expire_after": "3d", "retrospective": {"within": "24h", "role": "platform-lead"}}
    )
    req = requirement(change(type="emergency"), None, custom)
    assert req.expire_after == timedelta(days=3)
    assert req.retrospective == approvals.Retrospective("platform-lead", timedelta(hours=24))
    assert custom.digest != DEFAULTS.digest


def test_the_catalogs_approval_policy_is_used() -> None:
    doc = b.doc("ApprovalPolicy", "default", {"rules": [DB_RULE], "include_default_rules": True})
    cat = build(world(doc))
    found = approvals.ApprovalPolicy.of(cat)
    assert found.source == "ApprovalPolicy default (policies.yaml:1)"
    assert [rule.name for rule in found.rules][-1] == "prod-database-dedicated"
    assert approvals.ApprovalPolicy.of(CATALOG).source == "built-in defaults"
    assert approvals.ApprovalPolicy.of(CATALOG).digest == approvals.ApprovalPolicy.build().digest


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"rules": [{"name": "x", "require": [{"role": "requester"}]}]},
            "a requester approves nothing",
        ),
        ({"rules": [{"name": "x", "require": [{"role": "admin"}]}]}, "an? admin approves nothing"),
        (
            {"rules": [{"name": "x", "require": [{"role": "customer-approver"}]}]},
            "use customer_approvers",
        ),
        (
            {
                "rules": [
                    {"name": "x", "require": [{"role": "cab", "customer_approvers": "all-tenants"}]}
                ]
            },
            "exactly one",
        ),
        ({"rules": [{"name": "x", "require": [{}]}]}, "exactly one"),
        (
            {"rules": [{"name": "x", "require": [{"role": "cab"}, {"role": "cab", "count": 2}]}]},
            "listed more than once: cab",
        ),
        ({"rules": [{"name": "x", "require": []}]}, "at least 1 item"),
        (
            {"rules": [{"name": "x", "require": [{"role": "cab", "count": 0}]}]},
            "greater than or equal to 1",
        ),
        (
            {
                "rules": [
                    {
                        "name": "x",
                        "when": {"risk_classes": ["severe"]},
                        "require": [{"role": "cab"}],
                    }
                ]
            },
            "'low', 'medium', 'high' or 'critical'",
        ),
        (
            {
                "rules": [{"name": "low-risk", "require": [{"role": "cab"}]}],
                "include_default_rules": True,
            },
            "'low-risk' is used twice \\(a default rule's name\\)",
        ),
        (
            {
                "rules": [
                    {"name": "a", "require": [{"role": "cab"}]},
                    {"name": "a", "require": [{"role": "cab"}]},
                ]
            },
            "'a' is used twice",
        ),
        ({"include_default_rules": True}, "give rules too"),
        ({"rules": []}, "at least 1 item"),
        ({"retrospective": {"role": "auditor"}}, "an? auditor approves nothing"),
        ({"expire_after": "0s"}, "longer than zero"),
    ],
)
def test_invalid_approval_policies_are_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validation.validate_plain(catalog.ApprovalPolicySpec, spec, source=None)


def test_a_catalog_holds_at_most_one_approval_policy_and_rules_name_known_environments() -> None:
    one = b.doc("ApprovalPolicy", "one", {})
    two = b.doc(
        "ApprovalPolicy",
        "two",
        {
            "rules": [
                {"name": "x", "when": {"environments": ["prdo"]}, "require": [{"role": "cab"}]}
            ]
        },
    )
    with pytest.raises(InvalidInput) as caught:
        build(world(one, two))
    messages = sorted(str(p) for p in caught.value.problems)
    assert messages == [
        "policies.yaml:11: metadata.name: a catalog holds at most one ApprovalPolicy; 'one' "
        "is defined at policies.yaml:1",
        "policies.yaml:11: spec.rules[0].when.environments[0]: unknown Environment 'prdo' "
        "(did you mean 'prod'?)",
    ]
    assert catalog.normalize_kind("approval-policy") == "ApprovalPolicy"
    assert catalog.normalize_kind("templates") == "StandardTemplate"


# ------------------------------------------------------------------ separation of duties


def test_the_requester_never_approves() -> None:
    chg = db_change()
    req = requirement(chg, "high")
    with pytest.raises(Refused) as caught:
        give(chg, req, "alice")
    assert str(caught.value) == (
        "alice is the requester of CHG-1; the requester never approves their own change "
        "(separation of duties). Who can approve: platform-lead: carol, paul; cab: dave, "
        "ivan, peggy"
    )
    assert caught.value.override_by == "platform-lead: carol, paul; cab: dave, ivan, peggy"


def test_the_implementer_never_approves_even_holding_the_role() -> None:
    chg = db_change()  # bob implements it, and bob is a CAB member
    req = requirement(chg, "high")
    with pytest.raises(Refused, match="bob is the implementer of CHG-1"):
        give(chg, req, "bob")
    # Recorded anyway (say, by an older version): it does not count.
    forged = give(chg, req, "dave").evolve(person="bob")
    decision = decide(req, [forged], chg)
    assert decision.counted == {}
    assert [(i.approval.person, i.why) for i in decision.ignored] == [("bob", Ignored.IMPLEMENTER)]


def test_a_requester_who_also_implements_is_excluded_once() -> None:
    chg = change(implementer="alice")
    req = requirement(chg, "low")
    with pytest.raises(Refused, match="alice is the requester"):
        give(chg, req, "alice")


def test_forged_requester_approvals_never_count() -> None:
    chg = change()
    req = requirement(chg, "low")
    forged = give(chg, req, "carol").evolve(person="alice")
    decision = decide(req, [forged], chg)
    assert not decision.authorized
    assert decision.ignored[0].why is Ignored.REQUESTER


def test_a_person_counts_once_even_holding_several_roles() -> None:
    chg = db_change()
    req = requirement(chg, "high")  # a platform lead and a CAB member
    both = policy(
        {"rules": [{"name": "two", "require": [{"role": "approver"}, {"role": "platform-lead"}]}]}
    )
    req2 = requirement(chg, "low", both)
    carol = give(chg, req2, "carol")  # approver and platform lead
    decision = decide(req2, [carol], chg)
    assert not decision.authorized
    assert decision.counted == {"carol": "approver"}
    assert [s.missing for s in decision.needs] == [0, 1]
    assert decision.needs[1].candidates == ("paul",)  # carol already counts
    ivan = give(chg, req, "ivan")  # approver and cab
    lead = give(chg, req, "carol")
    decision = decide(req, [ivan, lead], chg)
    assert decision.authorized
    assert decision.counted == {"carol": "platform-lead", "ivan": "cab"}


def test_the_assignment_finds_a_way_a_first_come_count_would_miss() -> None:
    # carol (approver, platform lead) comes first and is tried first; counted as the
    # platform lead, nobody would be left for `approver`. paul can only be the lead.
    custom = policy(
        {"rules": [{"name": "r", "require": [{"role": "platform-lead"}, {"role": "approver"}]}]}
    )
    chg = change()
    req = requirement(chg, "low", custom)
    decision = decide(req, [give(chg, req, "carol"), give(chg, req, "paul")], chg)
    assert decision.authorized
    assert decision.counted == {"carol": "approver", "paul": "platform-lead"}


def test_a_person_without_a_needed_role_is_refused_with_who_can() -> None:
    chg = db_change()
    req = requirement(chg, "high")
    with pytest.raises(Refused) as caught:
        give(chg, req, "frank")
    assert str(caught.value) == (
        "frank (roles: auditor) cannot approve CHG-1: it needs 1 platform-lead (rule "
        "high-risk); 1 cab (rule high-risk). Who can approve: platform-lead: carol, paul; "
        "cab: dave, ivan, peggy"
    )


def test_an_approval_narrowed_to_a_role_counts_only_for_it() -> None:
    chg = db_change()
    req = requirement(chg, "high")
    with pytest.raises(Refused, match="dave does not hold the role platform-lead"):
        give(chg, req, "dave", role="platform-lead")
    with pytest.raises(
        Refused, match=r"ivan \(roles: approver, cab\) cannot approve CHG-1 as approver"
    ):
        give(chg, req, "ivan", role="approver")
    as_cab = give(chg, req, "ivan", role="cab")
    assert as_cab.role == "cab"
    assert decide(req, [as_cab], chg).counted == {"ivan": "cab"}


def test_the_approver_must_hold_the_role_when_approving() -> None:
    chg = db_change()
    req = requirement(chg, "high")
    dave = give(chg, req, "dave")
    assert dave.roles == ("cab",) and dave.catalog_digest == DIGEST
    # dave leaves the CAB afterwards: his approval, given as a CAB member, still counts.
    files = world()
    b.find(files, "Person", "dave")["spec"]["roles"] = ["requester"]
    later = build(files)
    decision = approvals.evaluate(req, [dave], change=chg, catalog=later, now=NOW)
    assert decision.counted == {"dave": "cab"}
    with pytest.raises(Refused, match="dave \\(roles: requester\\) cannot approve"):
        give(chg, req, "dave", cat=later)
    # An approval recorded without the role does not count, whatever the catalog says now.
    frank = dave.evolve(person="frank", roles=("auditor",))
    ignored = decide(req, [frank], chg).ignored
    assert [(i.why, i.reason) for i in ignored] == [
        (
            Ignored.NOT_ELIGIBLE,
            "frank held auditor when approving; the change needs platform-lead, cab",
        )
    ]


def test_a_refusal_names_at_most_ten_needs() -> None:
    chg = change()
    many = tuple(
        Need(f"tenant:t{i:02d}", "customer-approver", 1, f"t{i:02d}", ("r",), f"tenant t{i:02d}")
        for i in range(12)
    )
    with pytest.raises(Refused) as caught:
        give(chg, make_requirement(chg, many), "carol")
    message = str(caught.value)
    assert "it needs tenant t00; tenant t01;" in message and "t10" not in message
    assert message.endswith("tenant:t09: nobody in the catalog; and 2 more needs")


def test_someone_not_in_the_catalog_is_refused() -> None:
    chg = change()
    with pytest.raises(Refused, match="'mallory' is not a person in the catalog"):
        give(chg, requirement(chg, "low"), "mallory")


def test_approvals_are_given_only_in_authorize() -> None:
    chg = change(state=ChangeState.ASSESS)
    with pytest.raises(Refused, match="CHG-1 is assess; approvals are given while it waits"):
        give(chg, requirement(chg, "low"), "carol")


def test_a_requirement_of_other_content_is_refused_and_authorizes_nothing() -> None:
    chg = change()
    req = requirement(chg, "low")
    carol = give(chg, req, "carol")
    stale = approvals.Requirement(**{**_fields(req), "content_hash": OLD_HASH})
    with pytest.raises(Refused, match="Compute it again"):
        give(chg, stale, "carol")
    decision = decide(stale, [carol], chg)
    assert not decision.authorized and "compute it again" in decision.reason


def _fields(req: Requirement) -> dict[str, Any]:
    return {name: getattr(req, name) for name in Requirement.__dataclass_fields__}


# ------------------------------------------------------------------ customer approvers


def test_customer_approvers_approve_only_for_their_own_tenants() -> None:
    chg = db_change()
    req = requirement(chg, "critical")
    with pytest.raises(Refused, match="gina is not a customer approver of tenant initech"):
        give(chg, req, "gina", tenant="initech")
    with pytest.raises(Refused, match="lotte \\(roles: customer-approver\\) cannot approve"):
        give(chg, req, "lotte")  # acme is multi-tenant: nobody asks for its consent
    gina = give(chg, req, "gina", tenant="globex")
    assert gina.tenants == ("globex",)
    # Forged: gina "for initech" — not a tenant she held when approving.
    forged = gina.evolve(tenant="initech")
    decision = decide(req, [forged], chg)
    assert decision.counted == {}
    assert decision.ignored[0].why is Ignored.NOT_ELIGIBLE


def test_a_customer_approver_of_two_tenants_counts_for_one() -> None:
    chg = db_change()
    req = requirement(chg, "critical")
    cab = [give(chg, req, who) for who in ("dave", "peggy")]
    lead = give(chg, req, "paul")
    olga = give(chg, req, "olga")  # approves for globex and initech
    decision = decide(req, [*cab, lead, olga], chg)
    assert not decision.authorized
    assert decision.counted["olga"] == "tenant:globex"
    missing = decision.missing
    assert [(s.need.key, s.candidates) for s in missing] == [("tenant:initech", ("ian",))]
    # gina comes: olga moves to initech, everyone counts.
    decision = decide(req, [*cab, lead, olga, give(chg, req, "gina")], chg)
    assert decision.authorized
    assert decision.counted == {
        "dave": "cab",
        "gina": "tenant:globex",
        "olga": "tenant:initech",
        "paul": "platform-lead",
        "peggy": "cab",
    }


# ------------------------------------------------------------------ quorum, staleness, expiry


def test_quorum_is_reached_exactly_at_the_count() -> None:
    custom = policy({"rules": [{"name": "cab", "require": [{"role": "cab", "count": 2}]}]})
    chg = change()
    req = requirement(chg, "low", custom)
    dave, ivan, peggy = (give(chg, req, who) for who in ("dave", "ivan", "peggy"))
    one = decide(req, [dave], chg)
    assert not one.authorized and one.needs[0].missing == 1
    assert one.reason == "waiting for cab: 1 more of 2 (who can: ivan, peggy)"
    two = decide(req, [dave, ivan], chg)
    assert two.authorized and two.needs[0].approved_by == ("dave", "ivan")
    assert two.reason == "authorized: cab by dave, ivan"
    three = decide(req, [dave, ivan, peggy], chg)
    assert three.authorized and len(three.counted) == 2
    assert [(i.approval.person, i.why) for i in three.ignored] == [("peggy", Ignored.NOT_NEEDED)]


def test_duplicate_approvals_count_once() -> None:
    custom = policy({"rules": [{"name": "cab", "require": [{"role": "cab", "count": 2}]}]})
    chg = change()
    req = requirement(chg, "low", custom)
    first = give(chg, req, "dave")
    again = give(chg, req, "dave", at=NOW + timedelta(minutes=1))
    decision = decide(req, [again, first, first], chg)
    assert not decision.authorized and decision.counted == {"dave": "cab"}
    assert [i.why for i in decision.ignored] == [Ignored.DUPLICATE, Ignored.DUPLICATE]


def test_stale_approvals_do_not_count() -> None:
    chg = change()
    req = requirement(chg, "low")
    carol = give(chg, req, "carol")
    edited = change(title="Another title")  # a material edit: a new content hash
    assert edited.content_hash != chg.content_hash
    req2 = requirement(edited, "low")
    decision = decide(req2, [carol], edited)
    assert not decision.authorized
    assert decision.ignored[0].why is Ignored.STALE
    assert decision.needs[0].candidates == ("carol", "ivan")  # carol may approve again


def test_expired_approvals_do_not_count() -> None:
    chg = change()
    req = requirement(chg, "low")
    carol = give(chg, req, "carol")
    assert carol.expires_at == NOW + timedelta(days=14)
    just_before = carol.expires_at - timedelta(microseconds=1)
    decision = decide(req, [carol], chg, at=just_before)
    assert decision.authorized and decision.valid_until == carol.expires_at
    expired = decide(req, [carol], chg, at=carol.expires_at)
    assert not expired.authorized
    assert expired.ignored[0].why is Ignored.EXPIRED
    assert expired.ignored[0].reason == "it expired at 2026-11-16T09:00:00.000000Z"
    assert expired.needs[0].candidates == ("carol", "ivan")  # may approve again


def test_approvals_of_another_change_do_not_count() -> None:
    chg = change()
    other = change(number=2)
    req = requirement(chg, "low")
    theirs = give(other, requirement(other, "low"), "carol")
    assert decide(req, [theirs], chg).ignored[0].why is Ignored.OTHER_CHANGE


def test_the_inbox_lists_what_waits_for_a_person() -> None:
    chg = db_change()
    req = requirement(chg, "critical")
    decision = decide(req, [give(chg, req, "dave")], chg)
    assert [s.need.key for s in decision.waiting_for("ivan")] == ["cab"]
    assert [s.need.key for s in decision.waiting_for("olga")] == ["tenant:globex", "tenant:initech"]
    assert decision.waiting_for("dave") == ()  # already counts
    assert decision.waiting_for("alice") == () and decision.waiting_for("bob") == ()
    data = decision.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["needs"][0] == {
        "key": "cab",
        "role": "cab",
        "count": 2,
        "tenant": None,
        "rules": ["critical-risk"],
        "reason": "2 cab (rule critical-risk)",
        "approved_by": ["dave"],
        "missing": 1,
        "satisfied": False,
        "candidates": ["ivan", "peggy"],
    }


def test_emergency_change_authorized_by_one_emergency_approver() -> None:
    chg = change(type="emergency")
    req = requirement(chg, None)
    with pytest.raises(Refused, match="carol \\(roles: approver, platform-lead\\) cannot"):
        give(chg, req, "carol")
    decision = decide(req, [give(chg, req, "erin")], chg)
    assert decision.authorized and decision.counted == {"erin": "emergency-approver"}


def test_a_rejection_needs_a_comment_and_the_right_to_approve() -> None:
    chg = change()
    req = requirement(chg, "low")
    with pytest.raises(InvalidInput, match="a rejection needs a comment"):
        approvals.check_can_reject("carol", chg, req, CATALOG, "  ")
    with pytest.raises(Refused, match="alice is the requester"):
        approvals.check_can_reject("alice", chg, req, CATALOG, "no")
    approvals.check_can_reject("carol", chg, req, CATALOG, "Rollback plan is untested.")


def test_an_approval_as_dict_is_json() -> None:
    chg = change()
    data = give(chg, requirement(chg, "low"), "carol", comment="fine").as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["roles"] == ["approver", "platform-lead"] and data["comment"] == "fine"


# ------------------------------------------------------------------ the assignment


def test_assign_prefers_satisfying_more_needs() -> None:
    # Giving p1 and p2 to the 3-person need satisfies one need; B and C satisfy two.
    result = approvals.assign([3, 1, 1], {"p1": [0, 1], "p2": [0, 2], "p3": [0]})
    assert result == {"p1": 1, "p2": 2, "p3": 0}


def test_assign_beyond_the_exact_limit_still_authorizes_when_possible() -> None:
    needs_count = approvals.EXACT_NEEDS + 3
    counts = [2] * needs_count
    # Person i is eligible for need i // 2 and for the next need: a chain a greedy count
    # can get wrong; a perfect assignment exists (person i to need i // 2).
    eligible = {
        f"p{i:02d}": [i // 2, min(i // 2 + 1, needs_count - 1)] for i in range(2 * needs_count)
    }
    result = approvals.assign(counts, eligible)
    assert len(result) == 2 * needs_count
    assert sorted(result.values()) == sorted(i // 2 for i in range(2 * needs_count))


# ------------------------------------------------------------------ properties

ROLES = ("approver", "cab", "platform-lead", "emergency-approver")
TENANTS = ("t1", "t2")


@dataclass(frozen=True)
class Person:
    ident: str
    roles: tuple[str, ...]
    tenants: tuple[str, ...]


@st.composite
def need_lists(draw: st.DrawFn) -> tuple[Need, ...]:
    roles = draw(st.lists(st.sampled_from(ROLES), unique=True, max_size=3))
    tenants = draw(st.lists(st.sampled_from(TENANTS), unique=True, max_size=2))
    counts = st.sampled_from((1, 1, 1, 2, 2, 3))
    found = [Need(role, role, draw(counts), None, ("r",), role) for role in roles] + [
        Need(f"tenant:{t}", "customer-approver", draw(counts), t, ("r",), t) for t in tenants
    ]
    if not found:
        found = [Need("cab", "cab", draw(counts), None, ("r",), "cab")]
    return tuple(found[:4])


@st.composite
def people(draw: st.DrawFn, found: tuple[Need, ...]) -> list[Person]:
    """3 to 6 people, holding mostly the roles the needs ask for (and sometimes others)."""
    asked = sorted({need.role for need in found})
    pool = st.sampled_from((*asked, *asked, *asked, *ROLES, "customer-approver", "auditor"))
    result = []
    for index in range(draw(st.integers(3, 6))):
        roles = draw(st.sets(pool, min_size=1, max_size=3))
        tenants = (
            draw(st.sets(st.sampled_from(TENANTS), min_size=1))
            if "customer-approver" in roles
            else set()
        )
        result.append(Person(f"p{index}", tuple(sorted(roles)), tuple(sorted(tenants))))
    return result


def duties(idents: Sequence[str]) -> st.SearchStrategy[tuple[str, str]]:
    """Requester and implementer: outsiders (alice, bob) half the time, else people who
    could approve, so separation of duties is tried without blocking most examples."""
    return st.tuples(
        st.one_of(st.just("alice"), st.sampled_from(idents)),
        st.one_of(st.just("bob"), st.sampled_from(idents)),
    )


def mostly(value: Any, *others: Any) -> st.SearchStrategy[Any]:
    """`value` about three times in four, else one of the others."""
    return st.one_of(st.just(value), st.just(value), st.just(value), st.sampled_from(others))


def people_catalog(everyone: Sequence[Person]) -> catalog.Catalog:
    entities: dict[str, dict[str, catalog.Entity[Any]]] = {
        info.kind: {} for info in catalog.REGISTRY
    }
    for someone in everyone:
        spec = catalog.PersonSpec(
            display_name=someone.ident,
            email=f"{someone.ident}@example.com",
            roles=[Role(r) for r in someone.roles],
            tenants=list(someone.tenants),
        )
        entities["Person"][someone.ident] = catalog.Entity(
            "Person", someone.ident, {}, {}, spec, "people.yaml", 1
        )
    return catalog.Catalog(digest=DIGEST, commit=None, root="r", entities=entities)


def make_requirement(chg: changes.ChangeRequest, found: tuple[Need, ...]) -> Requirement:
    return Requirement(
        change_id=chg.id,
        content_hash=chg.content_hash,
        catalog_digest=DIGEST,
        policy_digest="sha256:test",
        policy_source="test",
        risk_class=None,
        rules=(approvals.MatchedRule("r", "test"),),
        needs=found,
        reason="test",
        expire_after=timedelta(hours=1),
    )


def oracle_valid(a: Approval, chg: changes.ChangeRequest, now: datetime) -> bool:
    """The rules, written out plainly: of this change and content, unexpired, by neither."""
    return (
        a.change_id == chg.id
        and a.content_hash == chg.content_hash
        and (a.expires_at is None or now < a.expires_at)
        and a.person not in (chg.requester, chg.spec.implementer)
    )


def oracle_fits(a: Approval, need: Need) -> bool:
    if need.role not in a.roles or (a.role is not None and a.role != need.role):
        return False
    if need.tenant is None:
        return a.tenant is None
    return need.tenant in a.tenants and a.tenant in (None, need.tenant)


def brute_force(
    found: Sequence[Need], given: Sequence[Approval], chg: changes.ChangeRequest, now: datetime
) -> tuple[int, int]:
    """(most needs satisfiable at once, most approvals countable at once), by trying every
    way of giving each person one need or none."""
    valid = [a for a in given if oracle_valid(a, chg, now)]
    persons = sorted({a.person for a in valid})
    options = [
        [
            None,
            *[
                i
                for i, need in enumerate(found)
                if any(oracle_fits(a, need) for a in valid if a.person == p)
            ],
        ]
        for p in persons
    ]
    best = (0, 0)
    for choice in itertools.product(*options):
        tally = [0] * len(found)
        for index in choice:
            if index is not None:
                tally[index] += 1
        if any(tally[i] > need.count for i, need in enumerate(found)):
            continue
        satisfied = sum(1 for i, need in enumerate(found) if tally[i] == need.count)
        best = (max(best[0], satisfied), max(best[1], sum(tally)))
    return best


def check_decision(
    decision: approvals.Decision,
    req: Requirement,
    given: Sequence[Approval],
    chg: changes.ChangeRequest,
    now: datetime,
) -> None:
    forbidden = {chg.requester, chg.spec.implementer}
    # Never the requester or the implementer.
    assert not forbidden & set(decision.counted)
    # Each person once, each need at most its count, each by a valid approval that fits it.
    listed = [p for status in decision.needs for p in status.approved_by]
    assert len(listed) == len(set(listed)) == len(decision.counted)
    for status in decision.needs:
        assert len(status.approved_by) <= status.need.count
        for p in status.approved_by:
            assert any(
                a.person == p and oracle_valid(a, chg, now) and oracle_fits(a, status.need)
                for a in given
            )
        assert not forbidden & set(status.candidates)
    # Never below quorum.
    if decision.authorized:
        assert req.needs and all(len(s.approved_by) == s.need.count for s in decision.needs)
        assert len(decision.counted) == req.approvals_needed
    # Authorized exactly when some assignment satisfies every need; as many needs satisfied
    # and approvals counted as any assignment could.
    most_satisfied, most_counted = brute_force(req.needs, given, chg, now)
    assert decision.authorized == (bool(req.needs) and most_satisfied == len(req.needs))
    assert sum(1 for s in decision.needs if s.satisfied) == most_satisfied
    assert len(decision.counted) == most_counted
    # Every approval is counted once or ignored with a reason.
    assert len(decision.counted) + len(decision.ignored) == len(given)


@settings(max_examples=300, deadline=None)
@given(found=need_lists(), data=st.data())
def test_any_set_of_approvals_is_counted_by_the_rules(
    found: tuple[Need, ...], data: st.DataObject
) -> None:
    everyone = data.draw(people(found))
    idents = [p.ident for p in everyone]
    requester, implementer = data.draw(duties(idents))
    chg = change(implementer=implementer).evolve(requester=requester)
    req = make_requirement(chg, found)
    by_id = {p.ident: p for p in everyone}
    # Approvals as a database might hold them: any person (requester and implementer too),
    # any role or tenant chosen, current or stale content, expired or not, duplicates.
    attempts = data.draw(
        st.lists(
            st.tuples(
                st.sampled_from(idents),
                mostly(None, *ROLES, "customer-approver"),
                mostly(None, *TENANTS),
                mostly(True, False),
                mostly(False, True),
            ),
            min_size=1,
            max_size=10,
        )
    )
    given_approvals = []
    for ident, role, tenant_id, current, expired in attempts:
        who = by_id[ident]
        given_approvals.append(
            Approval(
                change_id=chg.id,
                person=ident,
                content_hash=chg.content_hash if current else OLD_HASH,
                decided_at=NOW - timedelta(hours=2),
                expires_at=NOW - timedelta(hours=1) if expired else NOW + timedelta(hours=1),
                roles=who.roles,
                tenants=who.tenants,
                role=role,
                tenant=tenant_id if role in (None, "customer-approver") else None,
            )
        )
    decision = approvals.evaluate(
        req, given_approvals, change=chg, catalog=people_catalog(everyone), now=NOW
    )
    check_decision(decision, req, given_approvals, chg, NOW)


@settings(max_examples=200, deadline=None)
@given(found=need_lists(), data=st.data())
def test_no_sequence_of_approvals_edits_and_role_changes_breaks_the_rules(
    found: tuple[Need, ...], data: st.DataObject
) -> None:
    """Approvals go through `record` (the service's path); edits change the content hash
    and role changes the catalog, between them; time passes."""
    everyone = data.draw(people(found))
    idents = [p.ident for p in everyone]
    requester, implementer = data.draw(duties(idents))
    chg = change(implementer=implementer).evolve(requester=requester)
    cat = people_catalog(everyone)
    now = NOW
    recorded: list[Approval] = []
    events = data.draw(
        st.lists(
            st.one_of(
                *[st.tuples(st.just("approve"), st.sampled_from(idents), mostly(None, *ROLES))] * 6,
                st.tuples(st.just("edit"), st.integers(1, 10**6), st.none()),
                st.tuples(st.just("regrant"), st.sampled_from(idents), st.sampled_from(ROLES)),
                st.tuples(st.just("wait"), st.integers(1, 30), st.none()),
            ),
            min_size=2,
            max_size=14,
        )
    )
    for kind, subject, extra in events:
        req = make_requirement(chg, found)
        if kind == "approve":
            assert isinstance(subject, str)
            try:
                recorded.append(approvals.record(subject, chg, req, cat, now=now, role=extra))
            except Refused:
                continue
            assert subject not in (requester, implementer)
        elif kind == "edit":
            chg = chg.evolve(content_hash="sha256:" + f"{subject:064x}")
        elif kind == "regrant":
            assert isinstance(subject, str) and isinstance(extra, str)
            everyone = [
                Person(p.ident, (extra,), ()) if p.ident == subject else p for p in everyone
            ]
            cat = people_catalog(everyone)
        else:
            assert isinstance(subject, int)
            now += timedelta(minutes=subject)
    req = make_requirement(chg, found)
    decision = approvals.evaluate(req, recorded, change=chg, catalog=cat, now=now)
    check_decision(decision, req, recorded, chg, now)
    for approval in recorded:
        assert approval.person not in (requester, implementer)


# ------------------------------------------------------------------ standard templates

TLS = {
    "display_name": "Renew one tenant's TLS certificate",
    "version": 3,
    "owner": "platform",
    "categories": ["tenant-config", "ingress-config"],
    "environments": ["prod"],
    "targets": {"tenants": {"min": 1, "max": 1}},
    "max_risk_class": "low",
    "procedure": "cert-manager renew; check expiry.",
}
SCALE = {
    "display_name": "Scale Odoo workers within the tier",
    "version": 1,
    "categories": ["tenant-config"],
    "targets": {"tenants": {"max": 5}, "services": {"max": 1}, "service_types": ["redis"]},
    "max_risk_class": "medium",
}


def templates(*specs: dict[str, Any]) -> list[catalog.Entity[catalog.StandardTemplateSpec]]:
    docs = [b.doc("StandardTemplate", f"t{i}", spec) for i, spec in enumerate(specs)]
    files = world()
    files["templates.yaml"] = docs
    return list(build(files).standard_templates.values())


def standard(**overrides: Any) -> changes.ChangeRequest:
    return change(type="standard", category="tenant-config", **overrides)


def test_a_template_covers_a_fitting_change_at_or_below_its_risk_ceiling() -> None:
    chg = standard()
    result = approvals.match_template(chg, assessed(chg, "low"), templates(TLS))
    assert result.ok and (result.template, result.version) == ("t0", 3)
    assert result.reasons == (
        "t0 v3: the change is standard",
        "t0 v3: category tenant-config is among tenant-config, ingress-config",
        "t0 v3: environment prod is among prod",
        "t0 v3: 1 tenant targeted (within 1)",
        "t0 v3: 0 services targeted (within 0)",
        "t0 v3: 0 clusters targeted (within 0)",
        "t0 v3: risk low (score 10) is at or below the ceiling low",
    )
    assert json.loads(json.dumps(result.as_dict())) == result.as_dict()


def test_a_change_no_template_covers_falls_back_and_says_why() -> None:
    chg = standard(targets={"tenants": ["acme", "globex"]}, environment="staging")
    result = approvals.match_template(chg, assessed(chg, "medium"), templates(TLS))
    assert not result.ok and result.template is None
    assert result.reasons == (
        "t0 v3: environment staging is not among prod",
        "t0 v3: 2 tenants targeted (outside 1)",
        "t0 v3: risk medium (score 30) is above the ceiling low",
    )


def test_templates_are_tried_in_order_and_the_first_fit_wins() -> None:
    chg = standard(targets={"tenants": ["acme"], "services": ["redis-1"]})
    found = templates(TLS, SCALE)
    result = approvals.match_template(
        chg, assessed(chg, "medium", {"redis-1": {"type": "redis"}}), found
    )
    assert result.ok and result.template == "t1"
    wrong_type = standard(targets={"tenants": ["acme"], "services": ["pg-1"]})
    result = approvals.match_template(
        wrong_type, assessed(wrong_type, "low", {"pg-1": {"type": "postgresql"}}), found
    )
    assert not result.ok
    assert "t1 v1: services not of type redis: pg-1 (postgresql)" in result.reasons


def test_a_template_needs_a_standard_change_and_a_current_assessment() -> None:
    normal = change(category="tenant-config")
    result = approvals.match_template(normal, assessed(normal, "low"), templates(TLS))
    assert result.reasons == ("t0 v3: the change is normal; templates cover standard ones",)
    chg = standard()
    assert approvals.match_template(chg, None, templates(TLS)).reasons == (
        "t0 v3: not assessed yet: a template authorizes only a change of known risk",
    )
    old = assessed(chg, "low")
    edited = chg.evolve(content_hash=OLD_HASH)
    assert approvals.match_template(edited, old, templates(TLS)).reasons == (
        "t0 v3: the assessment is of older content: assess the change again",
    )
    assert approvals.match_template(chg, old, []).reasons == (
        "no standard template in the catalog",
    )
    with_selector = standard(targets={"selectors": [{"tier": "gold"}]})
    reasons = approvals.match_template(
        with_selector, assessed(with_selector, "low"), templates(TLS)
    ).reasons
    assert reasons == (
        "t0 v3: 0 tenants targeted (outside 1)",
        "t0 v3: the change uses selectors; the template allows none",
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"targets": {}}, "allows no target"),
        (
            {"targets": {"tenants": {"min": 2, "max": 1}}},
            "max \\(1\\) must be at least min \\(2\\)",
        ),
        ({"categories": []}, "at least 1 item"),
        ({"version": 0}, "greater than or equal to 1"),
        ({"max_risk_class": "severe"}, "'low', 'medium', 'high' or 'critical'"),
    ],
)
def test_invalid_templates_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validation.validate_plain(catalog.StandardTemplateSpec, {**TLS, **overrides}, source=None)


def test_template_references_are_checked() -> None:
    files = world()
    files["templates.yaml"] = [
        b.doc("StandardTemplate", "tls", {**TLS, "owner": "nobody", "environments": ["prdo"]})
    ]
    with pytest.raises(InvalidInput) as caught:
        build(files)
    assert sorted(p.message for p in caught.value.problems) == [
        "unknown Environment 'prdo' (did you mean 'prod'?)",
        "unknown Team 'nobody'",
    ]
