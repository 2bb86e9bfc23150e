"""Risk assessment on a small hand-built catalog: every factor, the policy, determinism.

The platform is `tests.catalog_builders.platform()` (tiers gold ×3 and bronze ×1; staging and
prod; pg-1 critical, redis-1 high, traefik-1 critical, objects and monitoring high; tenant
acme, gold, on shared-1) plus eleven bronze tenants b01..b11 whose databases live on pg-1,
so a bronze selector is platform-wide. alice and carol are in team platform; lotte has none.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from changegate.domain import catalog, changes, impact, risk, validation
from changegate.domain.changes import Category, CloseCode
from changegate.domain.risk import (
    CalendarConflict,
    FindingSeverity,
    HistoryRecord,
    PolicyFinding,
    RiskClass,
    TeamHistory,
)
from changegate.errors import InvalidInput
from tests import catalog_builders as b

DIGEST = "sha256:" + "1" * 64
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
BRONZE = [f"b{n:02d}" for n in range(1, 12)]
FACTORS = [
    "blast-radius",
    "component-criticality",
    "category",
    "environment",
    "rollback",
    "evidence",
    "policy-findings",
    "calendar-conflicts",
    "history",
]


def world() -> b.Platform:
    files = b.platform()
    files["tenants.yaml"] += [
        b.doc(
            "Tenant",
            ident,
            b.tenant_spec(
                display_name=ident.upper(),
                tier="bronze",
                database={"service": "pg-1", "name": ident},
                services=[],
                contacts=[],
                approvers=[],
            ),
        )
        for ident in BRONZE
    ]
    return files


def build(files: b.Platform) -> catalog.Catalog:
    return catalog.build(b.documents(files), digest=DIGEST, commit=None, root="r")


CATALOG = build(world())
POLICY = risk.RiskPolicy.of(CATALOG)


def policy_spec(data: dict[str, Any]) -> catalog.RiskPolicySpec:
    return validation.validate_plain(catalog.RiskPolicySpec, data, source=None)


def spec_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "Raise the worker count of acme",
        "category": "tenant-config",
        "environment": "prod",
        "targets": {"tenants": ["acme"]},
        "test_plan": "Smoke test the login and one invoice.",
        "test_evidence": ["https://ci.example.com/runs/1"],
        "rollback_plan": {"steps": "Set the old worker count back.", "tested": True},
    }
    data.update(overrides)
    return data


def change(requester: str = "alice", **overrides: Any) -> changes.ChangeRequest:
    spec = changes.validate_spec(spec_data(**overrides), source=None)
    return changes.new_change(7, spec, requester, NOW)


def run(
    chg: changes.ChangeRequest,
    *,
    policy: risk.RiskPolicy = POLICY,
    history: TeamHistory | None = None,
    cat: catalog.Catalog = CATALOG,
    **kwargs: Any,
) -> risk.Assessment:
    found = impact.analyze(cat, chg.spec)
    if history is None:
        history = TeamHistory.empty(chg.spec.category, risk.team_of(cat, chg.requester))
    return risk.assess(chg, found, policy, history, **kwargs)


def points(result: risk.Assessment) -> dict[str, int]:
    return {f.name: f.points for f in result.factors}


def reason(result: risk.Assessment, name: str) -> str:
    return result.factor(name).reason


def assert_sound(result: risk.Assessment) -> None:
    assert sum(f.points for f in result.factors) == result.score
    assert 0 <= result.score <= 100
    assert all(f.reason for f in result.factors)
    assert [f.name for f in result.factors][: len(FACTORS)] == FACTORS


# ------------------------------------------------------------------ the whole breakdown


def test_a_small_tenant_change_has_every_factor_with_a_reason_summing_to_the_score() -> None:
    result = run(change())
    assert_sound(result)
    assert points(result) == {
        "blast-radius": 3,
        "component-criticality": 3,
        "category": 2,
        "environment": 10,
        "rollback": 0,
        "evidence": 0,
        "policy-findings": 0,
        "calendar-conflicts": 0,
        "history": 0,
    }
    assert result.score == 18
    assert result.risk_class is RiskClass.LOW
    assert result.class_reason == "score 18 is below 25 (low)"
    assert reason(result, "blast-radius") == "1 tenant (1 gold ×3) weigh 3"
    assert reason(result, "category") == "tenant-config changes carry inherent risk 2"
    assert reason(result, "environment") == "prod is production"
    assert reason(result, "rollback") == "rollback plan present and tested"
    assert reason(result, "evidence") == (
        "test plan present; 1 test evidence item attached; "
        "same artifacts verified in staging: unknown +0"
    )
    assert reason(result, "history") == (
        "no closed tenant-config change by team platform in the last 90 days"
    )
    assert result.change_id == "CHG-7"
    assert result.content_hash == change().content_hash
    assert result.catalog_digest == DIGEST
    assert result.policy_digest == POLICY.digest
    assert result.rule_version == f"v{risk.RULES_VERSION}-{POLICY.digest[7:19]}"


def test_the_same_inputs_give_an_equal_assessment_and_json() -> None:
    history = TeamHistory(
        "platform",
        Category.TENANT_CONFIG,
        NOW,
        (HistoryRecord("CHG-1", CloseCode.UNSUCCESSFUL, ("INC-1:P2",)),),
    )
    first = run(change(), history=history, staging_verified=False)
    second = run(change(), history=history, staging_verified=False)
    assert first == second
    assert json.dumps(first.as_dict(), sort_keys=True) == json.dumps(
        second.as_dict(), sort_keys=True
    )
    data = first.as_dict()
    assert data["factors"][0] == {
        "name": "blast-radius",
        "points": 3,
        "reason": "1 tenant (1 gold ×3) weigh 3",
    }
    assert data["inputs"]["history"]["changes"] == [
        {
            "change_id": "CHG-1",
            "close_code": "unsuccessful",
            "incidents": ["INC-1:P2"],
            "score": -10,
        }
    ]
    assert data["inputs"]["policy"] == {"source": "built-in defaults", "digest": POLICY.digest}
    assert data["impact"]["scope"] == "customer-specific"
    assert data["impact"]["counts"]["tenants"] == 1
    assert data["id"] is None
    assert data["created_at"] is None


# ------------------------------------------------------------------ blast radius


def test_blast_radius_weighs_tenants_by_tier_and_adds_for_platform_wide_scope() -> None:
    gold_and_bronze = run(change(targets={"tenants": ["acme", "b01", "b02"]}))
    assert gold_and_bronze.factor("blast-radius") == risk.Factor(
        "blast-radius", 5, "3 tenants (1 gold ×3, 2 bronze ×1) weigh 5"
    )
    wide = run(change(targets={"services": ["pg-1"]}, category="database-config"))
    # 1 gold + 11 bronze weigh 14; pg-1 is shared and reaches all twelve.
    assert wide.factor("blast-radius").points == 14 + 10
    assert reason(wide, "blast-radius") == (
        "12 tenants (1 gold ×3, 11 bronze ×1) weigh 14; platform-wide +10 "
        "(shared service pg-1 reaches 12 tenants)"
    )


def test_blast_radius_is_capped_and_the_cap_is_named() -> None:
    policy = risk.RiskPolicy.build(
        policy_spec({"blast_radius": {"per_tier_weight": 2.5}}),
        tier_weights=POLICY.tier_weights,
        production=POLICY.production,
    )
    result = run(change(targets={"selectors": [{"tier": "bronze"}]}), policy=policy)
    assert result.factor("blast-radius").points == 20 + 10
    assert reason(result, "blast-radius").startswith(
        "11 tenants (11 bronze ×1) weigh 11 × 2.5 per weight → 28, capped at 20; platform-wide +10"
    )


def test_no_affected_tenant_means_no_blast_radius() -> None:
    result = run(change(environment="staging", targets={"selectors": [{"tier": "gold"}]}))
    assert result.factor("blast-radius") == risk.Factor("blast-radius", 0, "no tenant is affected")


# ------------------------------------------------------------------ component criticality


@pytest.mark.parametrize(
    ("category", "targets", "expected", "why"),
    [
        (
            "database-config",
            {"services": ["pg-1"]},
            20,
            "database pg-1 (postgresql, critical): database 15 + critical 5",
        ),
        (
            "ingress-config",
            {"services": ["traefik-1"]},
            15,
            "ingress traefik-1 (traefik, critical): ingress 10 + critical 5",
        ),
        (
            "redis-config",
            {"services": ["redis-1"]},
            9,
            "cache redis-1 (redis, high): cache 6 + high 3",
        ),
        (
            "tenant-config",
            {"tenants": ["acme"]},
            3,
            "no shared service is affected; a tenant-config change touches the application "
            "(application 3)",
        ),
        (
            "database-migration",
            {"tenants": ["acme"]},
            15,
            "no shared service is affected; a database-migration change touches the database "
            "(database 15)",
        ),
    ],
)
def test_component_criticality_ranks_database_over_ingress_over_cache_over_application(
    category: str, targets: dict[str, Any], expected: int, why: str
) -> None:
    result = run(change(category=category, targets=targets))
    assert result.factor("component-criticality").points == expected
    assert reason(result, "component-criticality").startswith(why)


def test_the_most_critical_service_wins_and_the_category_counts_too() -> None:
    both = run(change(category="redis-config", targets={"services": ["redis-1", "pg-1"]}))
    assert both.factor("component-criticality").points == 20
    assert reason(both, "component-criticality") == (
        "database pg-1 (postgresql, critical): database 15 + critical 5; "
        "the highest of 2 affected services and the category"
    )
    # A database migration through a low-criticality Redis still counts as the database.
    low = run(change(category="database-migration", targets={"services": ["redis-1"]}))
    assert low.factor("component-criticality").points == 15


# ------------------------------------------------------------------ category, environment


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("database-upgrade", 15),
        ("database-migration", 15),
        ("odoo-upgrade", 15),
        ("kubernetes", 10),
        ("module-update", 6),
        ("monitoring", 3),
        ("tenant-config", 2),
    ],
)
def test_category_inherent_risk_defaults(category: str, expected: int) -> None:
    result = run(change(category=category))
    assert result.factor("category") == risk.Factor(
        "category", expected, f"{category} changes carry inherent risk {expected}"
    )


def test_every_category_has_a_default() -> None:
    assert set(catalog.DEFAULT_CATEGORY_POINTS) == set(Category)


def test_environment_production_and_not_and_unknown() -> None:
    prod = run(change())
    staging = run(change(environment="staging", targets={"tenants": ["acme"]}))
    unknown = run(change(environment="qa"))
    assert (prod.factor("environment").points, reason(prod, "environment")) == (
        10,
        "prod is production",
    )
    assert staging.factor("environment") == risk.Factor(
        "environment", 2, "staging is not production"
    )
    assert unknown.factor("environment") == risk.Factor(
        "environment", 10, "qa is not in the catalog: counted as production"
    )


# ------------------------------------------------------------------ rollback, evidence


@pytest.mark.parametrize(
    ("plan", "expected", "why"),
    [
        ({"steps": ""}, 10, "no rollback plan +10"),
        ({"steps": "   "}, 10, "no rollback plan +10"),
        ({"steps": "Revert.", "tested": False}, 5, "rollback plan not tested +5"),
        ({"steps": "Revert.", "tested": True}, 0, "rollback plan present and tested"),
        (
            {"steps": "Restore.", "tested": True, "irreversible": True},
            10,
            "rollback plan present and tested; irreversible, only a restore undoes it +10",
        ),
        (
            {"steps": "", "irreversible": True},
            20,
            "no rollback plan +10; irreversible, only a restore undoes it +10",
        ),
    ],
)
def test_rollback_readiness(plan: dict[str, Any], expected: int, why: str) -> None:
    result = run(change(rollback_plan=plan))
    assert result.factor("rollback") == risk.Factor("rollback", expected, why)


def test_evidence_missing_test_plan_and_results_and_staging_verification() -> None:
    bare = run(change(test_plan="", test_evidence=[]), staging_verified=False)
    assert bare.factor("evidence") == risk.Factor(
        "evidence",
        4 + 3 + 5,
        "no test plan +4; no test evidence +3; same artifacts not verified in staging +5",
    )
    verified = run(change(), staging_verified=True)
    assert verified.factor("evidence") == risk.Factor(
        "evidence",
        0,
        "test plan present; 1 test evidence item attached; same artifacts verified in staging",
    )
    unknown = run(change())
    assert "verified in staging: unknown" in reason(unknown, "evidence")
    staging = run(change(environment="staging", test_evidence=["a", "b"]), staging_verified=False)
    assert staging.factor("evidence") == risk.Factor(
        "evidence",
        0,
        "test plan present; 2 test evidence items attached; "
        "staging verification not applicable outside production",
    )


# ------------------------------------------------------------------ hooks


def test_policy_findings_count_per_severity_and_are_capped() -> None:
    error = PolicyFinding(FindingSeverity.ERROR, "image not signed", "signed-images")
    warning = PolicyFinding(FindingSeverity.WARNING, "no SBOM")
    one = run(change(), policy_findings=[error, warning])
    assert one.factor("policy-findings") == risk.Factor(
        "policy-findings",
        13,
        "1 error ×10, 1 warning ×3: 13 (signed-images: image not signed; no SBOM)",
    )
    many = run(change(), policy_findings=[error] * 4 + [warning])
    assert many.factor("policy-findings").points == 20
    assert reason(many, "policy-findings").startswith(
        "4 errors ×10, 1 warning ×3: 43, capped at 20 ("
    )
    assert reason(many, "policy-findings").endswith("; and 2 more)")
    assert run(change()).factor("policy-findings") == risk.Factor(
        "policy-findings", 0, "no policy findings"
    )


def test_calendar_conflicts_count_blocking_and_warnings_and_are_capped() -> None:
    freeze = CalendarConflict(True, "year-end freeze until 2027-01-04")
    overlap = CalendarConflict(False, "CHG-3 touches pg-1 at the same time")
    result = run(change(), calendar_conflicts=[overlap, freeze])
    assert result.factor("calendar-conflicts") == risk.Factor(
        "calendar-conflicts",
        13,
        "1 blocking ×10, 1 warning ×3: 13 "
        "(year-end freeze until 2027-01-04; CHG-3 touches pg-1 at the same time)",
    )
    capped = run(change(), calendar_conflicts=[freeze, freeze])
    assert capped.factor("calendar-conflicts").points == 15


# ------------------------------------------------------------------ history


def record(code: CloseCode, *incidents: str, ident: str = "CHG-1") -> HistoryRecord:
    return HistoryRecord(ident, code, tuple(incidents))


@pytest.mark.parametrize(
    ("rec", "expected"),
    [
        (record(CloseCode.SUCCESSFUL), 3),
        (record(CloseCode.SUCCESSFUL_WITH_ISSUES), -2),
        (record(CloseCode.UNSUCCESSFUL), -5),
        (record(CloseCode.SUCCESSFUL, "INC-1:P1"), 3 - 10),
        (record(CloseCode.SUCCESSFUL, "INC-1:P2"), 3 - 5),
        (record(CloseCode.SUCCESSFUL, "INC-1:P3"), 3 - 2),
        (record(CloseCode.SUCCESSFUL, "INC-1:P4"), 3),
        (record(CloseCode.UNSUCCESSFUL, "INC-1:p1", "INC-2:P2", "INC-3:P3"), -5 - 10 - 5 - 2),
        (record(CloseCode.UNSUCCESSFUL, "INC-9"), -5),
    ],
)
def test_history_scores_exactly_as_the_issue_lists(rec: HistoryRecord, expected: int) -> None:
    assert risk.record_score(rec, POLICY)[0] == expected


def test_incident_severity_is_read_from_the_reference() -> None:
    assert risk.incident_severity("INC-2041:P1") is risk.IncidentSeverity.P1
    assert risk.incident_severity("ops:INC-7:p3") is risk.IncidentSeverity.P3
    assert risk.incident_severity("INC-2041") is None
    assert risk.incident_severity("INC-2041:P9") is None
    assert risk.record_score(record(CloseCode.SUCCESSFUL, "INC-2041"), POLICY) == (
        3,
        ("INC-2041",),
    )


def history(*records: HistoryRecord, team: str | None = "platform") -> TeamHistory:
    return TeamHistory(team, Category.TENANT_CONFIG, NOW, tuple(records))


def test_a_poor_history_adds_risk() -> None:
    result = run(
        change(),
        history=history(
            record(CloseCode.SUCCESSFUL, ident="CHG-1"),
            record(CloseCode.UNSUCCESSFUL, "INC-4:P2", "INC-5", ident="CHG-2"),
        ),
    )
    assert result.factor("history") == risk.Factor(
        "history",
        7,
        "team platform, tenant-config, the last 90 days: 2 closed changes, 1 successful (+3), "
        "1 unsuccessful (-5), 1 P2 incident (-5); success score -7 → +7; "
        "1 incident without a severity not scored (INC-5)",
    )


def test_a_very_poor_history_is_capped_and_a_good_one_subtracts_a_little() -> None:
    poor = run(change(), history=history(record(CloseCode.UNSUCCESSFUL, "INC-1:P1", "INC-2:P1")))
    assert poor.factor("history").points == 15
    assert reason(poor, "history").endswith("success score -25 → +25, capped at +15")
    good = run(
        change(),
        history=history(*(record(CloseCode.SUCCESSFUL, ident=f"CHG-{n}") for n in range(1, 5))),
    )
    assert good.factor("history").points == -5
    assert reason(good, "history").endswith("success score +12 → -12, a bonus of at most 5")
    one = run(change(), history=history(record(CloseCode.SUCCESSFUL)))
    assert one.factor("history").points == -3
    assert one.score == 18 - 3


def test_no_team_means_no_history() -> None:
    result = run(change(requester="lotte"))
    assert result.factor("history") == risk.Factor(
        "history", 0, "requester lotte has no team in the catalog"
    )


def test_the_team_is_the_requesters_first_team() -> None:
    files = world()
    files["teams.yaml"].append(b.doc("Team", "dba", {"display_name": "DBA"}))
    b.find(files, "Person", "carol")["spec"]["teams"] = ["dba", "platform"]
    cat = build(files)
    assert risk.team_of(cat, "alice") == "platform"
    assert risk.team_of(cat, "carol") == "dba"
    assert risk.team_of(cat, "lotte") is None
    assert risk.team_of(cat, "nobody") is None
    assert risk.team_members(cat, "platform") == ["alice"]
    assert risk.team_members(cat, "dba") == ["carol"]


# ------------------------------------------------------------------ bounds and classes


def test_factors_above_100_get_an_explicit_cap_factor() -> None:
    worst = change(
        category="database-upgrade",
        targets={"services": ["pg-1"]},
        test_plan="",
        test_evidence=[],
        rollback_plan={"steps": "", "irreversible": True},
    )
    result = run(
        worst,
        staging_verified=False,
        policy_findings=[PolicyFinding(FindingSeverity.ERROR, "x")] * 2,
        calendar_conflicts=[CalendarConflict(True, "freeze")] * 2,
        history=TeamHistory(
            "platform",
            Category.DATABASE_UPGRADE,
            NOW,
            (record(CloseCode.UNSUCCESSFUL, "INC-1:P1"),),
        ),
    )
    assert_sound(result)
    raw = 24 + 20 + 15 + 10 + 20 + 12 + 20 + 15 + 15
    assert result.factors[-1] == risk.Factor(
        "cap", 100 - raw, f"the factors add up to {raw}; a score is at most 100"
    )
    assert result.score == 100
    assert result.risk_class is RiskClass.CRITICAL


def test_factors_below_0_get_an_explicit_floor_factor() -> None:
    quiet = policy_spec(
        {
            "environment": {"production": 0},
            "categories": {"tenant-config": 0},
            "components": {"application": 0},
            "blast_radius": {"per_tier_weight": 0},
        }
    )
    policy = risk.RiskPolicy.build(
        quiet, tier_weights=POLICY.tier_weights, production=POLICY.production
    )
    result = run(change(), policy=policy, history=history(record(CloseCode.SUCCESSFUL)))
    assert_sound(result)
    assert result.factors[-1] == risk.Factor(
        "floor", 3, "the factors add up to -3; a score is at least 0"
    )
    assert result.score == 0


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0, RiskClass.LOW),
        (24, RiskClass.LOW),
        (25, RiskClass.MEDIUM),
        (49, RiskClass.MEDIUM),
        (50, RiskClass.HIGH),
        (74, RiskClass.HIGH),
        (75, RiskClass.CRITICAL),
        (100, RiskClass.CRITICAL),
    ],
)
def test_class_thresholds(score: int, expected: RiskClass) -> None:
    assert risk.classify(score, POLICY)[0] is expected


def test_class_reasons_name_the_range() -> None:
    assert risk.classify(30, POLICY)[1] == "score 30 is in 25-49 (medium)"
    assert risk.classify(60, POLICY)[1] == "score 60 is in 50-74 (high)"
    assert risk.classify(80, POLICY)[1] == "score 80 is at least 75 (critical)"


# ------------------------------------------------------------------ the RiskPolicy kind


POLICY_DOC = {
    "description": "Stricter than the defaults for databases and staging.",
    "thresholds": {"medium": 15, "high": 40, "critical": 70},
    "categories": {"tenant-config": 5},
    "environment": {"non_production": 4, "overrides": {"staging": 6}},
    "history": {"period_days": 30, "successful": 1, "incidents": {"p1": -20}},
}


def with_policy(spec: dict[str, Any], name: str = "default") -> b.Platform:
    files = world()
    files["risk.yaml"] = [b.doc("RiskPolicy", name, spec)]
    return files


def test_a_risk_policy_document_overrides_weights_and_thresholds() -> None:
    cat = build(with_policy(POLICY_DOC))
    policy = risk.RiskPolicy.of(cat)
    assert policy.source == "RiskPolicy default (risk.yaml:1)"
    assert policy.digest != POLICY.digest
    assert policy.rule_version != POLICY.rule_version
    assert policy.period.days == 30
    spec = policy.spec
    assert spec.categories[Category.TENANT_CONFIG] == 5
    assert spec.categories[Category.DATABASE_UPGRADE] == 15  # not named: the default
    assert spec.history.incidents.p1 == -20
    assert spec.history.incidents.p2 == -5
    result = run(change(), policy=policy, cat=cat)
    assert result.factor("category").points == 5
    assert result.score == 21
    assert result.risk_class is RiskClass.MEDIUM  # 21 >= 15
    assert result.inputs["policy"]["source"] == "RiskPolicy default (risk.yaml:1)"
    staging = run(change(environment="staging"), policy=policy, cat=cat)
    assert staging.factor("environment") == risk.Factor(
        "environment", 6, "staging: 6 set by the policy"
    )
    assert risk.record_score(record(CloseCode.SUCCESSFUL, "INC-1:P1"), policy)[0] == 1 - 20


def test_a_policy_listing_every_default_is_the_default_policy() -> None:
    explicit = catalog.RiskPolicySpec().model_dump(mode="json")
    cat = build(with_policy(explicit))
    assert risk.RiskPolicy.of(cat).digest == POLICY.digest


def test_tier_weights_and_production_flags_are_part_of_the_policy_digest() -> None:
    files = world()
    b.find(files, "Tier", "gold")["spec"]["risk_weight"] = 4
    assert risk.RiskPolicy.of(build(files)).digest != POLICY.digest
    files = world()
    b.find(files, "Environment", "staging")["spec"]["production"] = True
    assert risk.RiskPolicy.of(build(files)).digest != POLICY.digest


def problems(files: b.Platform) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        build(files)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"thresholds": {"medium": 60}},
            "spec.thresholds: thresholds must rise: medium < high < critical (got 60, 50, 75)",
        ),
        ({"rollback": {"no_plan": -1}}, "spec.rollback.no_plan: Input should be greater than"),
        ({"rollback": {"no_plan": 101}}, "spec.rollback.no_plan: Input should be less than"),
        ({"rollback": {"no_plan": "10"}}, "spec.rollback.no_plan: Input should be a valid integer"),
        ({"history": {"unsuccessful": 5}}, "spec.history.unsuccessful: Input should be less than"),
        ({"history": {"successful": -3}}, "spec.history.successful: Input should be greater"),
        ({"history": {"period_days": 0}}, "spec.history.period_days: Input should be greater"),
        ({"categories": {"gizmo": 3}}, "spec.categories.gizmo.[key]: Input should be"),
        ({"blast_radius": {"per_tier_weight": -1}}, "spec.blast_radius.per_tier_weight"),
        ({"weights": {}}, "spec.weights: unknown field"),
        (
            {"environment": {"overrides": {"qa": 3}}},
            "spec.environment.overrides.qa: unknown Environment 'qa'",
        ),
    ],
)
def test_every_weight_is_validated(spec: dict[str, Any], message: str) -> None:
    found = problems(with_policy(spec))
    assert len(found) == 1, found
    assert message in found[0], found


def test_a_catalog_holds_at_most_one_risk_policy() -> None:
    files = with_policy({})
    files["risk.yaml"].append(b.doc("RiskPolicy", "other", {}))
    assert problems(files) == [
        "risk.yaml:11: metadata.name: a catalog holds at most one RiskPolicy; 'default' is "
        "defined at risk.yaml:1"
    ]


def test_the_risk_policy_kind_is_registered() -> None:
    assert catalog.normalize_kind("riskpolicies") == "RiskPolicy"
    assert catalog.normalize_kind("risk-policy") == "RiskPolicy"
    cat = build(with_policy({}))
    assert cat.risk_policy is cat.get("RiskPolicy", "default")
    assert cat.as_dict()["counts"]["riskpolicies"] == 1
    assert CATALOG.risk_policy is None


def test_the_risk_policy_example_in_docs_risk_md_is_valid() -> None:
    text = (Path(__file__).parents[2] / "docs" / "risk.md").read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```yaml\n")[1:]]
    (example,) = [block for block in blocks if "kind: RiskPolicy" in block]
    import yaml

    document = yaml.safe_load(example)
    files = world()
    files["risk.yaml"] = [document]
    policy = risk.RiskPolicy.of(build(files))
    assert policy.source.startswith("RiskPolicy default")


# ------------------------------------------------------------------ calibration


def test_calibration_counts_failures_per_class_with_issues_apart() -> None:
    sample = risk.CalibrationSample
    rows = risk.calibrate(
        [
            sample("CHG-1", CloseCode.SUCCESSFUL, RiskClass.LOW),
            sample("CHG-2", CloseCode.SUCCESSFUL, RiskClass.LOW),
            sample("CHG-3", CloseCode.SUCCESSFUL_WITH_ISSUES, RiskClass.LOW),
            sample("CHG-4", CloseCode.UNSUCCESSFUL, RiskClass.HIGH),
            sample("CHG-5", CloseCode.SUCCESSFUL, RiskClass.HIGH),
            sample("CHG-6", CloseCode.UNSUCCESSFUL, None),
        ]
    )
    assert [row.as_dict() for row in rows] == [
        {
            "risk_class": "low",
            "changes": 3,
            "successful": 2,
            "with_issues": 1,
            "failed": 0,
            "failure_rate": 0.0,
            "with_issues_rate": 0.3333,
        },
        {
            "risk_class": "medium",
            "changes": 0,
            "successful": 0,
            "with_issues": 0,
            "failed": 0,
            "failure_rate": None,
            "with_issues_rate": None,
        },
        {
            "risk_class": "high",
            "changes": 2,
            "successful": 1,
            "with_issues": 0,
            "failed": 1,
            "failure_rate": 0.5,
            "with_issues_rate": 0.0,
        },
        {
            "risk_class": "critical",
            "changes": 0,
            "successful": 0,
            "with_issues": 0,
            "failed": 0,
            "failure_rate": None,
            "with_issues_rate": None,
        },
        {
            "risk_class": "unassessed",
            "changes": 1,
            "successful": 0,
            "with_issues": 0,
            "failed": 1,
            "failure_rate": 1.0,
            "with_issues_rate": 0.0,
        },
    ]
    assert rows[2].change_ids == ("CHG-4", "CHG-5")


# ------------------------------------------------------------------ properties

TENANTS = ["acme", *BRONZE]
SERVICES = ["pg-1", "redis-1", "traefik-1", "objects", "monitoring"]
INCIDENTS = ["INC-1", "INC-2:P1", "INC-3:p2", "INC-4:P3", "INC-5:P5"]
texts = st.sampled_from(["", "  ", "Revert the image.", "Run the suite."])


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    targets: dict[str, Any] = {
        "tenants": draw(st.lists(st.sampled_from(TENANTS), max_size=4)),
        "services": draw(st.lists(st.sampled_from(SERVICES), max_size=3)),
        "clusters": draw(st.lists(st.sampled_from(["shared-1", "dedicated-1"]), max_size=1)),
    }
    if draw(st.booleans()):
        targets["selectors"] = [{"tier": draw(st.sampled_from(["gold", "bronze"]))}]
    return spec_data(
        category=draw(st.sampled_from([c.value for c in Category])),
        environment=draw(st.sampled_from(["prod", "staging", "qa"])),
        targets=targets,
        test_plan=draw(texts),
        test_evidence=draw(st.lists(st.sampled_from(["junit.xml", "e2e.html"]), max_size=2)),
        rollback_plan={
            "steps": draw(texts),
            "tested": draw(st.booleans()),
            "irreversible": draw(st.booleans()),
        },
    )


@st.composite
def policies(draw: st.DrawFn) -> risk.RiskPolicy:
    low, mid, high = sorted(draw(st.sets(st.integers(1, 100), min_size=3, max_size=3)))
    weight = st.integers(0, 100)
    spec = policy_spec(
        {
            "thresholds": {"medium": low, "high": mid, "critical": high},
            "blast_radius": {
                "per_tier_weight": draw(st.floats(0, 100, allow_nan=False)),
                "max": draw(weight),
                "platform_wide": draw(weight),
            },
            "components": {"database": draw(weight), "application": draw(weight)},
            "categories": {draw(st.sampled_from([c.value for c in Category])): draw(weight)},
            "environment": {"production": draw(weight), "non_production": draw(weight)},
            "rollback": {"no_plan": draw(weight), "irreversible": draw(weight)},
            "evidence": {"staging_unknown": draw(weight)},
            "policy_findings": {"error": draw(weight), "max": draw(weight)},
            "calendar_conflicts": {"blocking": draw(weight), "max": draw(weight)},
            "history": {
                "successful": draw(weight),
                "unsuccessful": -draw(weight),
                "risk_per_score": draw(st.floats(0, 100, allow_nan=False)),
                "max_penalty": draw(weight),
                "max_bonus": draw(weight),
            },
        }
    )
    return risk.RiskPolicy.build(
        spec, tier_weights=POLICY.tier_weights, production=POLICY.production
    )


records = st.builds(
    HistoryRecord,
    change_id=st.sampled_from(["CHG-1", "CHG-2", "CHG-3"]),
    close_code=st.sampled_from(list(CloseCode)),
    incidents=st.lists(st.sampled_from(INCIDENTS), max_size=3).map(tuple),
)
findings = st.lists(
    st.builds(PolicyFinding, st.sampled_from(list(FindingSeverity)), st.just("finding")),
    max_size=5,
)
conflicts = st.lists(st.builds(CalendarConflict, st.booleans(), st.just("conflict")), max_size=5)


@settings(max_examples=300, deadline=None)
@given(
    data=specs(),
    requester=st.sampled_from(["alice", "carol", "lotte"]),
    policy=st.one_of(st.just(POLICY), policies()),
    past=st.lists(records, max_size=6),
    staging_verified=st.sampled_from([None, True, False]),
    found=findings,
    clashes=conflicts,
)
def test_any_input_gives_a_sound_reproducible_breakdown(
    data: dict[str, Any],
    requester: str,
    policy: risk.RiskPolicy,
    past: list[HistoryRecord],
    staging_verified: bool | None,
    found: list[PolicyFinding],
    clashes: list[CalendarConflict],
) -> None:
    spec = changes.validate_spec(data, source=None)
    chg = changes.new_change(3, spec, requester, NOW)
    team = risk.team_of(CATALOG, requester)
    past_history = TeamHistory(team, spec.category, NOW, tuple(past) if team else ())

    def once() -> risk.Assessment:
        return risk.assess(
            chg,
            impact.analyze(CATALOG, spec),
            policy,
            past_history,
            staging_verified=staging_verified,
            policy_findings=found,
            calendar_conflicts=clashes,
        )

    first, second = once(), once()
    assert_sound(first)
    assert first == second
    assert first.as_dict() == second.as_dict()
    json.dumps(first.as_dict())
    assert first.risk_class is risk.classify(first.score, policy)[0]
    extra = [f.name for f in first.factors[len(FACTORS) :]]
    assert extra in ([], ["cap"], ["floor"])


def test_the_worked_examples_in_docs_risk_md() -> None:
    module_update = run(change(category="module-update"))
    assert (module_update.score, module_update.risk_class) == (22, RiskClass.LOW)
    unprepared = run(change(test_plan="", test_evidence=[], rollback_plan={"steps": ""}))
    assert (unprepared.score, unprepared.risk_class) == (35, RiskClass.MEDIUM)
    files = world()
    for ident in BRONZE[:6]:
        b.find(files, "Tenant", ident)["spec"]["tier"] = "gold"
    cat = build(files)
    upgrade = run(
        change(category="database-upgrade", targets={"services": ["pg-1"]}),
        cat=cat,
        policy=risk.RiskPolicy.of(cat),
        staging_verified=True,
    )
    # 7 gold and 5 bronze weigh 26: blast radius 30, database 20, category 15, production 10.
    assert (upgrade.score, upgrade.risk_class) == (75, RiskClass.CRITICAL)


def test_an_escalating_finding_raises_the_class_to_high_not_the_score() -> None:
    calm = run(change())
    assert calm.risk_class in (risk.RiskClass.LOW, risk.RiskClass.MEDIUM)
    finding = PolicyFinding(
        FindingSeverity.ERROR, "plan deletes aws_db_instance.main", "tf.stateful-delete", True
    )
    raised = run(change(), policy_findings=[finding])
    plain = run(
        change(),
        policy_findings=[PolicyFinding(FindingSeverity.ERROR, "x", "tf.stateful-delete")],
    )
    assert raised.score == plain.score
    assert plain.risk_class is not risk.RiskClass.HIGH
    assert raised.risk_class is risk.RiskClass.HIGH
    assert "raised to high: tf.stateful-delete requires a high-risk approval" in (
        raised.class_reason
    )
    assert raised.inputs["policy_findings"][0]["escalates"] is True
