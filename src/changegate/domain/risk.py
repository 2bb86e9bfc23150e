"""Risk assessment: a score 0-100 built from named factors, each with its points and reason.

`assess` weighs a change against its impact, the catalog's risk policy and the requesting
team's record. The score is the sum of the factors, in a fixed order:

    blast-radius           affected tenants weighted by tier; more for platform-wide scope
    component-criticality  the most critical component touched (database > ingress > cache
                           > stateless application), plus the service's criticality
    category               the category's inherent risk
    environment            production or not
    rollback               no plan, plan untested, irreversible
    evidence               test plan, test evidence, the same artifacts verified in staging
    policy-findings        errors and warnings of policy gates (filled by a later issue)
    calendar-conflicts     blocking and warning conflicts (filled by a later issue)
    history                the team's change success score in the category (may subtract)

When the factors add up to more than 100 (or, with a good history, less than 0), one more
factor, `cap` (negative) or `floor` (positive), says so and brings the sum into range: the
breakdown always sums exactly to the score.

Pure: no I/O, no clock, no randomness. The same change, impact, policy and history give an
equal Assessment; it records the catalog digest, the rule version and the policy digest, so
it can be reproduced. docs/risk.md describes every factor and the defaults.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from changegate.domain import canonical
from changegate.domain.catalog import (
    Catalog,
    Criticality,
    RiskPolicySpec,
    ServiceType,
)
from changegate.domain.changes import Category, ChangeRequest, CloseCode
from changegate.domain.impact import Impact, Scope

# Bump when the scoring rules change (not the weights: those are in the policy digest), so an
# assessment says which rules produced it.
RULES_VERSION = 2  # 2: policy findings that escalate raise the class to at least high

MAX_SCORE = 100
# How many messages of findings or conflicts a reason quotes before "and N more".
_QUOTED = 3


class RiskClass(StrEnum):
    """The class of a score, by the policy's thresholds; also the order of the classes."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class FindingSeverity(StrEnum):
    """How bad a policy finding is."""

    ERROR = "error"
    WARNING = "warning"


class IncidentSeverity(StrEnum):
    """An incident's priority, P1 the worst."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"
    P5 = "P5"


class Component(StrEnum):
    """The kinds of component, from the riskiest to change down."""

    DATABASE = "database"
    INGRESS = "ingress"
    CACHE = "cache"
    STORAGE = "storage"
    MONITORING = "monitoring"
    APPLICATION = "application"


_SERVICE_COMPONENT: dict[ServiceType, Component] = {
    ServiceType.POSTGRESQL: Component.DATABASE,
    ServiceType.TRAEFIK: Component.INGRESS,
    ServiceType.REDIS: Component.CACHE,
    ServiceType.OBJECT_STORAGE: Component.STORAGE,
    ServiceType.MONITORING: Component.MONITORING,
}

# The component a category changes when no service says otherwise (tenant targets only).
_CATEGORY_COMPONENT: dict[Category, Component] = {
    Category.DATABASE_CONFIG: Component.DATABASE,
    Category.DATABASE_MIGRATION: Component.DATABASE,
    Category.DATABASE_UPGRADE: Component.DATABASE,
    Category.INGRESS_CONFIG: Component.INGRESS,
    Category.REDIS_CONFIG: Component.CACHE,
    Category.BACKUP_POLICY: Component.STORAGE,
    Category.MONITORING: Component.MONITORING,
}

# `INC-2041:P1`: an incident id carrying its severity (docs/risk.md, "History").
_INCIDENT = re.compile(r"^(?P<id>.+):(?P<severity>[Pp][1-5])$")


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class PolicyFinding:
    """What a policy gate found on the change's artifacts (the policy issue fills these)."""

    severity: FindingSeverity
    message: str
    rule: str = ""
    # The finding asks for a high-risk approval: the class is at least high while it stands.
    escalates: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {
            "severity": self.severity.value,
            "message": self.message,
            "rule": self.rule,
            "escalates": self.escalates,
        }


@dataclass(frozen=True, slots=True)
class CalendarConflict:
    """A clash with a window, freeze or other change (the calendar issue fills these)."""

    blocking: bool
    message: str

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {"blocking": self.blocking, "message": self.message}


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """A closed change of the team: its close code and the incidents it caused."""

    change_id: str
    close_code: CloseCode
    incidents: tuple[str, ...] = ()
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TeamHistory:
    """The closed changes of one team in one category since a date (the rolling period).

    `team` is None when the requester has no team in the catalog: there is no history then.
    """

    team: str | None
    category: Category
    since: datetime | None = None
    records: tuple[HistoryRecord, ...] = ()

    @classmethod
    def empty(cls, category: Category, team: str | None = None) -> TeamHistory:
        """No history: a new team, or none."""
        return cls(team=team, category=category)


# --------------------------------------------------------------------------- the policy


@dataclass(frozen=True, slots=True)
class RiskPolicy:
    """The effective scoring policy: weights and thresholds, and the catalog facts they weigh.

    `spec` is the catalog's RiskPolicy (or the defaults); `tier_weights` and `production` are
    the catalog's tier risk weights and which environments are production. `digest` covers
    all of it and the rules version, so two assessments with the same digest were scored by
    the same rules with the same weights.
    """

    spec: RiskPolicySpec
    tier_weights: Mapping[str, float]
    production: Mapping[str, bool]
    source: str
    digest: str

    @classmethod
    def build(
        cls,
        spec: RiskPolicySpec | None = None,
        *,
        tier_weights: Mapping[str, float],
        production: Mapping[str, bool],
        source: str = "built-in defaults",
    ) -> RiskPolicy:
        """A policy from its parts (tests and benchmarks build one without a catalog)."""
        spec = spec if spec is not None else RiskPolicySpec()
        weights = dict(sorted(tier_weights.items()))
        envs = dict(sorted(production.items()))
        digest = "sha256:" + canonical.sha256_hex(
            {
                "rules": RULES_VERSION,
                "spec": spec.model_dump(mode="json"),
                "tier_weights": weights,
                "production": envs,
            }
        )
        return cls(spec=spec, tier_weights=weights, production=envs, source=source, digest=digest)

    @classmethod
    def of(cls, catalog: Catalog) -> RiskPolicy:
        """The catalog's policy: its RiskPolicy document, or the defaults without one."""
        entity = catalog.risk_policy
        spec, source = RiskPolicySpec(), "built-in defaults"
        if entity is not None:
            spec, source = entity.spec, f"RiskPolicy {entity.id} ({entity.file}:{entity.line})"
        return cls.build(
            spec,
            tier_weights={t.id: t.spec.risk_weight for t in catalog.tiers.values()},
            production={e.id: e.spec.production for e in catalog.environments.values()},
            source=source,
        )

    @property
    def rule_version(self) -> str:
        """`v1-3f2a9c0d1e2b`: the rules version and the start of the policy digest."""
        return f"v{RULES_VERSION}-{self.digest.removeprefix('sha256:')[:12]}"

    @property
    def period(self) -> timedelta:
        """The rolling period of the history factor."""
        return timedelta(days=self.spec.history.period_days)


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True, slots=True)
class Factor:
    """One named part of a score: its points (negative for a bonus or the cap) and why."""

    name: str
    points: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {"name": self.name, "points": self.points, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Assessment:
    """A change's risk: score, class and the factors that sum to the score.

    `impact` is a summary of the impact analysis (scope, counts, services), `inputs` what
    else went in (team history, staging verification, findings, conflicts, policy source).
    `id`, `created_at` and `assessed_by` are set once the assessment is stored.
    """

    change_id: str
    content_hash: str
    catalog_digest: str
    rule_version: str
    policy_digest: str
    score: int
    risk_class: RiskClass
    class_reason: str
    factors: tuple[Factor, ...]
    impact: Mapping[str, Any]
    inputs: Mapping[str, Any]
    id: int | None = None
    created_at: datetime | None = None
    assessed_by: str | None = None

    def evolve(self, **changes: Any) -> Assessment:
        return replace(self, **changes)

    def factor(self, name: str) -> Factor:
        """The factor of that name (KeyError when there is none, e.g. no cap)."""
        for item in self.factors:
            if item.name == name:
                return item
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape shared by the API, the CLI's --json and the store."""
        return {
            "id": self.id,
            "change_id": self.change_id,
            "created_at": canonical.to_utc_text(self.created_at) if self.created_at else None,
            "assessed_by": self.assessed_by,
            "score": self.score,
            "risk_class": self.risk_class.value,
            "class_reason": self.class_reason,
            "factors": [item.as_dict() for item in self.factors],
            "content_hash": self.content_hash,
            "catalog_digest": self.catalog_digest,
            "rule_version": self.rule_version,
            "policy_digest": self.policy_digest,
            "impact": dict(self.impact),
            "inputs": dict(self.inputs),
        }


# --------------------------------------------------------------------------- helpers


def _round(value: float) -> int:
    """Half away from zero, the same on every platform (Python's round() is half-even)."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def _num(value: float) -> str:
    return f"{value:g}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _signed(points: int) -> str:
    return f"{points:+d}"


def _quoted(messages: Sequence[str]) -> str:
    shown = "; ".join(messages[:_QUOTED])
    if len(messages) > _QUOTED:
        shown += f"; and {len(messages) - _QUOTED} more"
    return shown


def incident_severity(ref: str) -> IncidentSeverity | None:
    """The severity an incident reference carries (`INC-2041:P1`), or None (`INC-2041`)."""
    match = _INCIDENT.match(ref)
    return IncidentSeverity(match.group("severity").upper()) if match else None


def team_of(catalog: Catalog, person_id: str) -> str | None:
    """The team a person's changes count for: their first team in the catalog, if any."""
    person = catalog.person(person_id)
    if person is None or not person.spec.teams:
        return None
    return person.spec.teams[0]


def team_members(catalog: Catalog, team: str) -> list[str]:
    """Everyone whose changes count for the team (whose first team it is), sorted."""
    return sorted(
        person.id
        for person in catalog.people.values()
        if person.spec.teams and person.spec.teams[0] == team
    )


def classify(score: int, policy: RiskPolicy) -> tuple[RiskClass, str]:
    """The class of a score by the policy's thresholds, and the range that explains it."""
    limits = policy.spec.thresholds
    if score >= limits.critical:
        return RiskClass.CRITICAL, f"score {score} is at least {limits.critical} (critical)"
    if score >= limits.high:
        return RiskClass.HIGH, f"score {score} is in {limits.high}-{limits.critical - 1} (high)"
    if score >= limits.medium:
        return (
            RiskClass.MEDIUM,
            f"score {score} is in {limits.medium}-{limits.high - 1} (medium)",
        )
    return RiskClass.LOW, f"score {score} is below {limits.medium} (low)"


# --------------------------------------------------------------------------- factors


def _blast_radius(impact: Impact, policy: RiskPolicy) -> Factor:
    rules = policy.spec.blast_radius
    count = len(impact.tenants)
    if count == 0:
        return Factor("blast-radius", 0, "no tenant is affected")
    weighed = 0.0
    parts = []
    for tier, tenants in impact.by_tier.items():
        if not tenants:
            continue
        weight = policy.tier_weights.get(tier, 1.0)
        weighed += tenants * weight
        parts.append(f"{tenants} {tier} ×{_num(weight)}")
    raw = _round(weighed * rules.per_tier_weight)
    tenant_points = min(raw, rules.max)
    reason = f"{_plural(count, 'tenant')} ({', '.join(parts)}) weigh {_num(weighed)}"
    if rules.per_tier_weight != 1:
        reason += f" × {_num(rules.per_tier_weight)} per weight → {raw}"
    if raw > rules.max:
        reason += f", capped at {rules.max}"
    points = tenant_points
    if impact.scope is Scope.PLATFORM_WIDE:
        points += rules.platform_wide
        reason += f"; platform-wide {_signed(rules.platform_wide)} ({impact.scope_reason})"
    return Factor("blast-radius", points, reason)


def _component(impact: Impact, policy: RiskPolicy) -> Factor:
    rules = policy.spec.components
    bonus = rules.criticality
    criticality_points = {
        Criticality.LOW: bonus.low,
        Criticality.MEDIUM: bonus.medium,
        Criticality.HIGH: bonus.high,
        Criticality.CRITICAL: bonus.critical,
    }
    component = _CATEGORY_COMPONENT.get(impact.category, Component.APPLICATION)
    best = getattr(rules, component.value)
    reason = (
        f"a {impact.category.value} change touches the {component.value} ({component.value} {best})"
    )
    if not impact.services:
        return Factor("component-criticality", best, "no shared service is affected; " + reason)
    # Services in id order; the first of the highest wins, so ties are stable.
    for service in impact.services.values():
        kind = _SERVICE_COMPONENT[service.type]
        base = getattr(rules, kind.value)
        extra = criticality_points[service.criticality]
        if base + extra > best:
            best = base + extra
            reason = (
                f"{kind.value} {service.id} ({service.type.value}, {service.criticality.value}): "
                f"{kind.value} {base} + {service.criticality.value} {extra}"
            )
    others = len(impact.services)
    return Factor(
        "component-criticality",
        best,
        f"{reason}; the highest of {_plural(others, 'affected service')} and the category",
    )


def _category(change: ChangeRequest, policy: RiskPolicy) -> Factor:
    category = change.spec.category
    points = policy.spec.categories[category]
    return Factor("category", points, f"{category.value} changes carry inherent risk {points}")


def _environment(change: ChangeRequest, policy: RiskPolicy) -> tuple[Factor, bool]:
    """The factor, and whether the environment counts as production."""
    rules = policy.spec.environment
    name = change.spec.environment
    known = policy.production.get(name)
    # An environment the catalog does not know is treated as production: the cautious side.
    production = known is None or known
    if name in rules.overrides:
        points, reason = rules.overrides[name], f"{name}: {rules.overrides[name]} set by the policy"
    elif known is None:
        points, reason = rules.production, f"{name} is not in the catalog: counted as production"
    elif production:
        points, reason = rules.production, f"{name} is production"
    else:
        points, reason = rules.non_production, f"{name} is not production"
    return Factor("environment", points, reason), production


def _rollback(change: ChangeRequest, policy: RiskPolicy) -> Factor:
    rules = policy.spec.rollback
    plan = change.spec.rollback_plan
    if not plan.steps.strip():
        points, reasons = rules.no_plan, [f"no rollback plan {_signed(rules.no_plan)}"]
    elif not plan.tested:
        points, reasons = rules.untested, [f"rollback plan not tested {_signed(rules.untested)}"]
    else:
        points, reasons = 0, ["rollback plan present and tested"]
    if plan.irreversible:
        points += rules.irreversible
        reasons.append(f"irreversible, only a restore undoes it {_signed(rules.irreversible)}")
    return Factor("rollback", points, "; ".join(reasons))


def _evidence(
    change: ChangeRequest, policy: RiskPolicy, staging_verified: bool | None, production: bool
) -> Factor:
    rules = policy.spec.evidence
    spec = change.spec
    points, reasons = 0, []
    if spec.test_plan.strip():
        reasons.append("test plan present")
    else:
        points += rules.no_test_plan
        reasons.append(f"no test plan {_signed(rules.no_test_plan)}")
    if spec.test_evidence:
        reasons.append(f"{_plural(len(spec.test_evidence), 'test evidence item')} attached")
    else:
        points += rules.no_test_evidence
        reasons.append(f"no test evidence {_signed(rules.no_test_evidence)}")
    if not production:
        reasons.append("staging verification not applicable outside production")
    elif staging_verified is None:
        points += rules.staging_unknown
        reasons.append(
            f"same artifacts verified in staging: unknown {_signed(rules.staging_unknown)}"
        )
    elif staging_verified:
        reasons.append("same artifacts verified in staging")
    else:
        points += rules.staging_unverified
        reasons.append(
            f"same artifacts not verified in staging {_signed(rules.staging_unverified)}"
        )
    return Factor("evidence", points, "; ".join(reasons))


def _policy_findings(findings: Sequence[PolicyFinding], policy: RiskPolicy) -> Factor:
    rules = policy.spec.policy_findings
    if not findings:
        return Factor("policy-findings", 0, "no policy findings")
    errors = [f for f in findings if f.severity is FindingSeverity.ERROR]
    warnings = [f for f in findings if f.severity is FindingSeverity.WARNING]
    raw = len(errors) * rules.error + len(warnings) * rules.warning
    points = min(raw, rules.max)
    reason = (
        f"{_plural(len(errors), 'error')} ×{rules.error}, "
        f"{_plural(len(warnings), 'warning')} ×{rules.warning}: {raw}"
    )
    if raw > rules.max:
        reason += f", capped at {rules.max}"
    quoted = [f"{f.rule}: {f.message}" if f.rule else f.message for f in [*errors, *warnings]]
    return Factor("policy-findings", points, f"{reason} ({_quoted(quoted)})")


def _calendar_conflicts(conflicts: Sequence[CalendarConflict], policy: RiskPolicy) -> Factor:
    rules = policy.spec.calendar_conflicts
    if not conflicts:
        return Factor("calendar-conflicts", 0, "no calendar conflicts")
    blocking = [c for c in conflicts if c.blocking]
    warning = [c for c in conflicts if not c.blocking]
    raw = len(blocking) * rules.blocking + len(warning) * rules.warning
    points = min(raw, rules.max)
    reason = (
        f"{len(blocking)} blocking ×{rules.blocking}, {len(warning)} warning "
        f"×{rules.warning}: {raw}"
    )
    if raw > rules.max:
        reason += f", capped at {rules.max}"
    quoted = [c.message for c in [*blocking, *warning]]
    return Factor("calendar-conflicts", points, f"{reason} ({_quoted(quoted)})")


def _close_points(policy: RiskPolicy) -> dict[CloseCode, int]:
    rules = policy.spec.history
    return {
        CloseCode.SUCCESSFUL: rules.successful,
        CloseCode.SUCCESSFUL_WITH_ISSUES: rules.successful_with_issues,
        CloseCode.UNSUCCESSFUL: rules.unsuccessful,
    }


def record_score(record: HistoryRecord, policy: RiskPolicy) -> tuple[int, tuple[str, ...]]:
    """What one closed change adds to its team's success score, and its unscored incidents.

    The close code scores successful +3, successful-with-issues -2, unsuccessful -5; each
    incident it caused adds P1 -10, P2 -5, P3 -2 (defaults). An incident without a severity
    is not scored and is returned so the reason can name it.
    """
    rules = policy.spec.history
    score = _close_points(policy)[record.close_code]
    unscored = []
    for ref in record.incidents:
        severity = incident_severity(ref)
        if severity is None:
            unscored.append(ref)
        else:
            score += getattr(rules.incidents, severity.value.lower())
    return score, tuple(unscored)


def _history(history: TeamHistory, policy: RiskPolicy, requester: str) -> Factor:
    rules = policy.spec.history
    period = f"the last {_plural(rules.period_days, 'day')}"
    if history.team is None:
        return Factor("history", 0, f"requester {requester} has no team in the catalog")
    if not history.records:
        return Factor(
            "history",
            0,
            f"no closed {history.category.value} change by team {history.team} in {period}",
        )
    codes = dict.fromkeys(CloseCode, 0)
    severities = dict.fromkeys(IncidentSeverity, 0)
    unscored: list[str] = []
    score = 0
    for record in history.records:
        points, missing = record_score(record, policy)
        score += points
        codes[record.close_code] += 1
        unscored += missing
        for ref in record.incidents:
            severity = incident_severity(ref)
            if severity is not None:
                severities[severity] += 1
    by_code = _close_points(policy)
    parts = [
        f"{count} {code.value} ({_signed(count * by_code[code])})"
        for code, count in codes.items()
        if count
    ]
    parts += [
        f"{count} {severity.value} incident{'s' if count > 1 else ''} "
        f"({_signed(count * getattr(rules.incidents, severity.value.lower()))})"
        for severity, count in severities.items()
        if count
    ]
    raw = _round(-score * rules.risk_per_score)
    points = max(-rules.max_bonus, min(rules.max_penalty, raw))
    reason = (
        f"team {history.team}, {history.category.value}, {period}: "
        f"{_plural(len(history.records), 'closed change')}, {', '.join(parts)}; "
        f"success score {_signed(score)}"
    )
    if rules.risk_per_score != 1:
        reason += f" × {_num(rules.risk_per_score)}"
    reason += f" → {_signed(raw)}"
    if raw > rules.max_penalty:
        reason += f", capped at {_signed(rules.max_penalty)}"
    elif raw < -rules.max_bonus:
        reason += f", a bonus of at most {rules.max_bonus}"
    if unscored:
        reason += (
            f"; {_plural(len(unscored), 'incident')} without a severity not scored "
            f"({', '.join(unscored[:_QUOTED])}{', ...' if len(unscored) > _QUOTED else ''})"
        )
    return Factor("history", points, reason)


def _bounded(factors: list[Factor]) -> list[Factor]:
    """Add the `cap` or `floor` factor that brings the sum into 0-100, when needed."""
    total = sum(item.points for item in factors)
    if total > MAX_SCORE:
        return [
            *factors,
            Factor(
                "cap",
                MAX_SCORE - total,
                f"the factors add up to {total}; a score is at most {MAX_SCORE}",
            ),
        ]
    if total < 0:
        return [
            *factors,
            Factor("floor", -total, f"the factors add up to {total}; a score is at least 0"),
        ]
    return factors


# --------------------------------------------------------------------------- assess


def _impact_summary(impact: Impact) -> dict[str, Any]:
    return {
        "scope": impact.scope.value,
        "scope_reason": impact.scope_reason,
        "summary": impact.summary,
        "environment": impact.environment,
        "counts": {
            "tenants": len(impact.tenants),
            "by_tier": dict(impact.by_tier),
            "by_deployment_model": dict(impact.by_deployment_model),
            "business_services": len(impact.business_services),
            "services": len(impact.services),
            "clusters": len(impact.clusters),
        },
        "services": {
            ident: {"type": service.type.value, "criticality": service.criticality.value}
            for ident, service in impact.services.items()
        },
        "warnings": list(impact.warnings),
    }


def _inputs(
    history: TeamHistory,
    policy: RiskPolicy,
    staging_verified: bool | None,
    findings: Sequence[PolicyFinding],
    conflicts: Sequence[CalendarConflict],
) -> dict[str, Any]:
    return {
        "policy": {"source": policy.source, "digest": policy.digest},
        "history": {
            "team": history.team,
            "category": history.category.value,
            "period_days": policy.spec.history.period_days,
            "since": canonical.to_utc_text(history.since) if history.since else None,
            "changes": [
                {
                    "change_id": record.change_id,
                    "close_code": record.close_code.value,
                    "incidents": list(record.incidents),
                    "score": record_score(record, policy)[0],
                }
                for record in history.records
            ],
        },
        "staging_verified": staging_verified,
        "policy_findings": [finding.as_dict() for finding in findings],
        "calendar_conflicts": [conflict.as_dict() for conflict in conflicts],
    }


def assess(
    change: ChangeRequest,
    impact: Impact,
    policy: RiskPolicy,
    history: TeamHistory,
    *,
    staging_verified: bool | None = None,
    policy_findings: Sequence[PolicyFinding] = (),
    calendar_conflicts: Sequence[CalendarConflict] = (),
) -> Assessment:
    """Score a change: every factor with its points and reason, summing to the score.

    `impact` is `impact.analyze(catalog, change.spec)` over the catalog `policy` came from.
    `staging_verified` is whether the very same artifacts were verified in staging (None:
    not known yet). The history is the requesting team's closed changes in the change's
    category over the policy's period, gathered by the caller.
    """
    environment, production = _environment(change, policy)
    factors = [
        _blast_radius(impact, policy),
        _component(impact, policy),
        _category(change, policy),
        environment,
        _rollback(change, policy),
        _evidence(change, policy, staging_verified, production),
        _policy_findings(policy_findings, policy),
        _calendar_conflicts(calendar_conflicts, policy),
        _history(history, policy, change.requester),
    ]
    factors = _bounded(factors)
    score = sum(item.points for item in factors)
    risk_class, class_reason = classify(score, policy)
    escalating = sorted({f.rule or f.message for f in policy_findings if f.escalates})
    classes = list(RiskClass)
    if escalating and classes.index(risk_class) < classes.index(RiskClass.HIGH):
        risk_class = RiskClass.HIGH
        class_reason += f"; raised to high: {_quoted(escalating)} requires a high-risk approval"
    return Assessment(
        change_id=change.id,
        content_hash=change.content_hash,
        catalog_digest=impact.catalog_digest,
        rule_version=policy.rule_version,
        policy_digest=policy.digest,
        score=score,
        risk_class=risk_class,
        class_reason=class_reason,
        factors=tuple(factors),
        impact=_impact_summary(impact),
        inputs=_inputs(history, policy, staging_verified, policy_findings, calendar_conflicts),
    )


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True, slots=True)
class CalibrationSample:
    """A closed change, how it ended, and the class of its latest assessment (None: none)."""

    change_id: str
    close_code: CloseCode
    risk_class: RiskClass | None


@dataclass(frozen=True, slots=True)
class ClassCalibration:
    """How the closed changes of one risk class ended.

    `failed` counts unsuccessful changes; successful-with-issues ones are counted apart in
    `with_issues`, not as failures. Rates are None when the class has no change.
    """

    risk_class: str
    changes: int = 0
    successful: int = 0
    with_issues: int = 0
    failed: int = 0
    change_ids: tuple[str, ...] = field(default=(), repr=False)

    @property
    def failure_rate(self) -> float | None:
        return round(self.failed / self.changes, 4) if self.changes else None

    @property
    def with_issues_rate(self) -> float | None:
        return round(self.with_issues / self.changes, 4) if self.changes else None

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape of one row of the calibration report."""
        return {
            "risk_class": self.risk_class,
            "changes": self.changes,
            "successful": self.successful,
            "with_issues": self.with_issues,
            "failed": self.failed,
            "failure_rate": self.failure_rate,
            "with_issues_rate": self.with_issues_rate,
        }


UNASSESSED = "unassessed"


def calibrate(samples: Iterable[CalibrationSample]) -> list[ClassCalibration]:
    """One row per risk class, low to critical, then `unassessed` (closed, never assessed).

    Every class has its row, even with no change, so the report always has the same shape.
    """
    rows: dict[str, list[CalibrationSample]] = {c.value: [] for c in RiskClass}
    rows[UNASSESSED] = []
    for sample in samples:
        key = sample.risk_class.value if sample.risk_class is not None else UNASSESSED
        rows[key].append(sample)
    result = []
    for key, found in rows.items():
        codes = [s.close_code for s in found]
        result.append(
            ClassCalibration(
                risk_class=key,
                changes=len(found),
                successful=codes.count(CloseCode.SUCCESSFUL),
                with_issues=codes.count(CloseCode.SUCCESSFUL_WITH_ISSUES),
                failed=codes.count(CloseCode.UNSUCCESSFUL),
                change_ids=tuple(s.change_id for s in found),
            )
        )
    return result
