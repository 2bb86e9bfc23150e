"""Approvals: who must approve a change, who may, and whether the approvals given authorize it.

Three questions, three functions, all pure (no I/O, no clock: `now` is an argument):

    required_approvals(change, assessment, impact, policy, catalog) -> Requirement
        Every rule of the approval policy whose `when` holds applies; their groups add up,
        the strongest demand per group winning. Each need says which rules asked for it.
    check_can_approve(person, change, requirement, catalog) -> None, or Refused
        Separation of duties before an approval is recorded: the requester and the
        implementer never approve; the approver holds, now, a role some need asks for (a
        customer approver: for one of their own tenants). `record` checks and builds the
        Approval, with the roles the person held at that moment.
    evaluate(requirement, approvals, change=, catalog=, now=) -> Decision
        Which approvals count: not stale (same content hash), not expired, not by the
        requester or implementer, eligible by the roles recorded on them. Each person counts
        at most once, for one need: the assignment is a bipartite matching that satisfies as
        many needs as possible, so the change is authorized exactly when some assignment
        satisfies them all.

Standard changes: `match_template` says whether a pre-approved template covers a change and
why (not). Emergency changes: `retrospective_due` is when their after-the-fact review is due.
docs/approvals.md describes the rules, the defaults and the JSON shapes.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

from changegate.domain import canonical
from changegate.domain.catalog import (
    RISK_CLASSES,
    ApprovalGroup,
    ApprovalPolicySpec,
    ApprovalRule,
    Catalog,
    CustomerApprovers,
    DeploymentModel,
    Entity,
    PersonSpec,
    Role,
    StandardTemplateSpec,
)
from changegate.domain.changes import ChangeRequest, ChangeState, ChangeType
from changegate.domain.impact import Impact, TenantImpact
from changegate.domain.risk import Assessment
from changegate.errors import InvalidInput, Problem, Refused

# Bump when the rules of matching, combining or counting change (not the policy: that is in
# the policy digest), so a requirement says which rules produced it.
RULES_VERSION = 1

# With at most this many needs asking for more than one approval, the assignment is the best
# possible (every combination of them is tried: 2**8 small matchings); above it, needs are
# satisfied greedily in requirement order. Authorization is exact either way.
EXACT_NEEDS = 8

# How many names, and how many needs, a message lists before "and N more".
_NAMED = 5
_NEEDS_NAMED = 10

CUSTOMER_APPROVER = Role.CUSTOMER_APPROVER.value


# --------------------------------------------------------------------------- the policy


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    """The effective approval policy: its rules in order, where they come from, a digest.

    `spec` is the catalog's ApprovalPolicy (or the defaults); `rules` its effective rules.
    Two requirements with the same policy digest were computed by the same rules.
    """

    spec: ApprovalPolicySpec
    rules: tuple[ApprovalRule, ...]
    source: str
    digest: str

    @classmethod
    def build(
        cls, spec: ApprovalPolicySpec | None = None, *, source: str = "built-in defaults"
    ) -> ApprovalPolicy:
        """A policy from its spec (tests build one without a catalog)."""
        spec = spec if spec is not None else ApprovalPolicySpec()
        rules = spec.effective_rules()
        digest = "sha256:" + canonical.sha256_hex(
            {
                "rules_version": RULES_VERSION,
                "rules": [rule.model_dump(mode="json") for rule in rules],
                "expire_after": spec.expire_after.total_seconds(),
                "retrospective": spec.retrospective.model_dump(mode="json"),
            }
        )
        return cls(spec=spec, rules=rules, source=source, digest=digest)

    @classmethod
    def of(cls, catalog: Catalog) -> ApprovalPolicy:
        """The catalog's policy: its ApprovalPolicy document, or the defaults without one."""
        entity = catalog.approval_policy
        if entity is None:
            return cls.build()
        return cls.build(
            entity.spec, source=f"ApprovalPolicy {entity.id} ({entity.file}:{entity.line})"
        )

    @property
    def expire_after(self) -> timedelta:
        """How long an unused approval holds."""
        return self.spec.expire_after


# --------------------------------------------------------------------------- requirement


@dataclass(frozen=True, slots=True)
class MatchedRule:
    """A rule that applies to the change, and why: the conditions that held."""

    name: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {"name": self.name, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Need:
    """One thing a change needs: `count` approvals by distinct people holding `role`; for a
    customer approval, by customer approvers of `tenant`.

    `key` is stable and unique in a requirement: the role (`cab`), or `tenant:<id>`.
    `rules` are the rules that asked for it; `reason` says it in words.
    """

    key: str
    role: str
    count: int
    tenant: str | None
    rules: tuple[str, ...]
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {
            "key": self.key,
            "role": self.role,
            "count": self.count,
            "tenant": self.tenant,
            "rules": list(self.rules),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Retrospective:
    """The review an emergency change gets after the fact: by whom, within how long."""

    role: str
    within: timedelta

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape (`within` in seconds)."""
        return {"role": self.role, "within_seconds": int(self.within.total_seconds())}


@dataclass(frozen=True, slots=True)
class Requirement:
    """Who must approve one content of one change, and why.

    Computed for the change's content hash, assessment and catalog: any of them changing
    means computing it again. A requirement with no needs authorizes nothing: either no
    rule matched or the rules that matched asked for nobody; `reason` says which.
    """

    change_id: str
    content_hash: str
    catalog_digest: str
    policy_digest: str
    policy_source: str
    risk_class: str | None
    rules: tuple[MatchedRule, ...]
    needs: tuple[Need, ...]
    reason: str
    expire_after: timedelta
    retrospective: Retrospective | None = None

    @property
    def approvals_needed(self) -> int:
        """How many approvals, by distinct people, the change needs in all."""
        return sum(need.count for need in self.needs)

    def need(self, key: str) -> Need:
        """The need of that key (KeyError when there is none)."""
        for item in self.needs:
            if item.key == key:
                return item
        raise KeyError(key)

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape shared by the API, the CLI's --json and the audit trail."""
        return {
            "change_id": self.change_id,
            "content_hash": self.content_hash,
            "catalog_digest": self.catalog_digest,
            "policy_digest": self.policy_digest,
            "policy_source": self.policy_source,
            "risk_class": self.risk_class,
            "rules": [rule.as_dict() for rule in self.rules],
            "needs": [need.as_dict() for need in self.needs],
            "approvals_needed": self.approvals_needed,
            "reason": self.reason,
            "expire_after_seconds": int(self.expire_after.total_seconds()),
            "retrospective": self.retrospective.as_dict() if self.retrospective else None,
        }


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _names(items: Sequence[str], limit: int = _NAMED) -> str:
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown += f" and {len(items) - limit} more"
    return shown


def _is_production(catalog: Catalog, environment: str) -> bool:
    env = catalog.environments.get(environment)
    return True if env is None else env.spec.production


@dataclass(frozen=True, slots=True)
class _Facts:
    """What rules are matched against, each with the words a reason uses."""

    type: ChangeType
    category: str
    risk_class: str | None
    environment: str
    production: bool
    deployment_models: frozenset[DeploymentModel]

    def describe(self) -> str:
        models = ", ".join(sorted(m.value for m in self.deployment_models)) or "none"
        return (
            f"type {self.type.value}, category {self.category}, risk class "
            f"{self.risk_class or 'not assessed'}, environment {self.environment} "
            f"({'production' if self.production else 'not production'}), affected "
            f"deployment models: {models}"
        )


def _matches(rule: ApprovalRule, facts: _Facts) -> str | None:
    """Why the rule applies (the conditions that held), or None when it does not."""
    when = rule.when
    held: list[str] = []
    if when.types:
        if facts.type not in when.types:
            return None
        held.append(f"type {facts.type.value}")
    if when.categories:
        if facts.category not in when.categories:
            return None
        held.append(f"category {facts.category}")
    if when.risk_classes:
        if facts.risk_class is None or facts.risk_class not in when.risk_classes:
            return None
        held.append(f"risk class {facts.risk_class}")
    if when.environments:
        if facts.environment not in when.environments:
            return None
        held.append(f"environment {facts.environment}")
    if when.production is not None:
        if facts.production is not when.production:
            return None
        held.append("production" if facts.production else "not production")
    if when.deployment_models:
        found = sorted(m.value for m in facts.deployment_models if m in when.deployment_models)
        if not found:
            return None
        held.append(f"affects {', '.join(found)} tenants")
    return ", ".join(held) if held else "applies to every change"


def _consenting_tenants(impact: Impact, which: CustomerApprovers) -> list[TenantImpact]:
    """The affected tenants a customer-approvers group selects: those whose business
    services are touched (they list any), dedicated ones only unless `all-tenants`."""
    return [
        tenant
        for tenant in impact.tenants.values()
        if tenant.business_services
        and (
            which is CustomerApprovers.ALL_TENANTS
            or tenant.deployment_model is not DeploymentModel.MULTI_TENANT
        )
    ]


@dataclass
class _Draft:
    """A need being assembled from the rules that ask for it."""

    role: str
    tenant: TenantImpact | None
    count: int
    rules: list[str] = field(default_factory=list)

    def need(self, key: str) -> Need:
        rules = ", ".join(self.rules)
        by = f"rule {rules}" if len(self.rules) == 1 else f"rules {rules}"
        if self.tenant is None:
            what = f"{self.count} {self.role}"
        else:
            people = (
                "a customer approver" if self.count == 1 else f"{self.count} customer approvers"
            )
            services = ", ".join(self.tenant.business_services)
            what = (
                f"{people} of tenant {self.tenant.id} ({self.tenant.deployment_model.value}; "
                f"business services {services})"
            )
        tenant = self.tenant.id if self.tenant is not None else None
        return Need(key, self.role, self.count, tenant, tuple(self.rules), f"{what} ({by})")


def _add_group(drafts: dict[str, _Draft], group: ApprovalGroup, rule: str, impact: Impact) -> None:
    if group.role is not None:
        targets: list[tuple[str, str, TenantImpact | None]] = [
            (group.role.value, group.role.value, None)
        ]
    else:
        assert group.customer_approvers is not None
        targets = [
            (f"tenant:{tenant.id}", CUSTOMER_APPROVER, tenant)
            for tenant in _consenting_tenants(impact, group.customer_approvers)
        ]
    for key, role, tenant in targets:
        draft = drafts.setdefault(key, _Draft(role, tenant, group.count))
        # Rules add up; for one group the strongest demand wins (2 cab and 1 cab: 2 cab).
        draft.count = max(draft.count, group.count)
        if rule not in draft.rules:
            draft.rules.append(rule)


def required_approvals(
    change: ChangeRequest,
    assessment: Assessment | None,
    impact: Impact,
    policy: ApprovalPolicy,
    catalog: Catalog,
) -> Requirement:
    """Who must approve the change's current content, and which rules say so.

    `assessment` is the change's latest assessment (None for a change that skipped Assess,
    such as an emergency change: rules on risk classes then do not hold); it must be of the
    change's current content. `impact` is `impact.analyze(catalog, change.spec)`.
    Every rule whose `when` holds applies, in policy order; their groups add up and the
    strongest demand per group wins. Needs are listed in the order the rules first ask for
    them; customer approvals one per tenant, by tenant id.
    """
    if assessment is not None and assessment.content_hash != change.content_hash:
        raise Refused(
            f"{change.id}'s assessment is of content {assessment.content_hash}, the change is "
            f"now {change.content_hash}; assess it again first"
        )
    spec = change.spec
    facts = _Facts(
        type=spec.type,
        category=spec.category.value,
        risk_class=assessment.risk_class.value if assessment is not None else None,
        environment=spec.environment,
        production=_is_production(catalog, spec.environment),
        deployment_models=frozenset(t.deployment_model for t in impact.tenants.values()),
    )
    matched: list[MatchedRule] = []
    drafts: dict[str, _Draft] = {}
    for rule in policy.rules:
        why = _matches(rule, facts)
        if why is None:
            continue
        matched.append(MatchedRule(rule.name, why))
        for group in rule.require:
            _add_group(drafts, group, rule.name, impact)
    # Customer approvals follow the role groups, tenants by id: a stable order.
    ordered = sorted(
        drafts.items(),
        key=lambda item: (item[1].tenant is not None, item[0] if item[1].tenant else ""),
    )
    needs = tuple(draft.need(key) for key, draft in ordered)
    if not matched:
        reason = (
            f"no approval rule matches {facts.describe()}; nobody can authorize it until "
            "the ApprovalPolicy has a rule for it"
        )
    elif not needs:
        reason = (
            f"the matching rules ({', '.join(r.name for r in matched)}) ask for nobody for "
            "this change (no affected tenant selected for customer approval); nobody can "
            "authorize it until a rule asks for someone"
        )
    else:
        total = sum(need.count for need in needs)
        reason = f"{_plural(total, 'approval')}: " + "; ".join(need.reason for need in needs)
    retrospective = None
    if spec.type is ChangeType.EMERGENCY:
        review = policy.spec.retrospective
        retrospective = Retrospective(review.role.value, review.within)
    return Requirement(
        change_id=change.id,
        content_hash=change.content_hash,
        catalog_digest=catalog.digest,
        policy_digest=policy.digest,
        policy_source=policy.source,
        risk_class=facts.risk_class,
        rules=tuple(matched),
        needs=needs,
        reason=reason,
        expire_after=policy.expire_after,
        retrospective=retrospective,
    )


def retrospective_due(requirement: Requirement, authorized_at: datetime) -> datetime | None:
    """When an emergency change's retrospective review is due; None for other changes."""
    if requirement.retrospective is None:
        return None
    return authorized_at + requirement.retrospective.within


# --------------------------------------------------------------------------- approvals


@dataclass(frozen=True, slots=True)
class Approval:
    """One person's approval of one content of a change, as recorded.

    `roles` and `tenants` are what the person held in the catalog at `decided_at` (its
    digest is `catalog_digest`): an approval counts by the roles its author held when
    approving, not by later catalog edits. `role` and `tenant`, when given, restrict what
    it counts for (an approval "as CAB member", "for tenant acme"); an approval naming a
    tenant counts only as that tenant's customer approval.
    """

    change_id: str
    person: str
    content_hash: str
    decided_at: datetime
    expires_at: datetime | None
    roles: tuple[str, ...]
    tenants: tuple[str, ...] = ()
    role: str | None = None
    tenant: str | None = None
    catalog_digest: str = ""
    comment: str = ""
    id: int | None = None

    def evolve(self, **changes: Any) -> Approval:
        return replace(self, **changes)

    def is_expired(self, now: datetime) -> bool:
        """Expired from `expires_at` on (half-open: valid in [decided_at, expires_at))."""
        return self.expires_at is not None and now >= self.expires_at

    def counts_for(self, need: Need) -> bool:
        """Whether, by what its author held and chose, the approval can count for the need."""
        if need.role not in self.roles or self.role not in (None, need.role):
            return False
        if need.tenant is None:
            return self.tenant is None
        return need.tenant in self.tenants and self.tenant in (None, need.tenant)

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {
            "id": self.id,
            "change_id": self.change_id,
            "person": self.person,
            "content_hash": self.content_hash,
            "decided_at": canonical.to_utc_text(self.decided_at),
            "expires_at": canonical.to_utc_text(self.expires_at) if self.expires_at else None,
            "roles": list(self.roles),
            "tenants": list(self.tenants),
            "role": self.role,
            "tenant": self.tenant,
            "catalog_digest": self.catalog_digest,
            "comment": self.comment,
        }


@dataclass(frozen=True, slots=True)
class _People:
    """Who holds each role, and who approves for each tenant, in catalog order."""

    by_role: Mapping[str, tuple[str, ...]]
    by_tenant: Mapping[str, tuple[str, ...]]


@lru_cache(maxsize=1)
def _people(catalog: Catalog) -> _People:
    # One catalog is current at a time; keeping one table saves a scan of every person
    # (thousands of customer approvers) per change in an inbox listing.
    by_role: dict[str, list[str]] = {}
    by_tenant: dict[str, list[str]] = {}
    for person in catalog.people.values():
        for role in person.spec.roles:
            by_role.setdefault(role.value, []).append(person.id)
        if Role.CUSTOMER_APPROVER in person.spec.roles:
            for tenant in person.spec.tenants:
                by_tenant.setdefault(tenant, []).append(person.id)
    return _People(
        by_role={key: tuple(value) for key, value in by_role.items()},
        by_tenant={key: tuple(value) for key, value in by_tenant.items()},
    )


def _holders(catalog: Catalog, need: Need) -> tuple[str, ...]:
    """Everyone who, by the catalog now, may approve for the need (separation of duties
    aside)."""
    people = _people(catalog)
    if need.tenant is not None:
        return people.by_tenant.get(need.tenant, ())
    return people.by_role.get(need.role, ())


def _excluded(change: ChangeRequest) -> dict[str, str]:
    """The people separation of duties keeps from approving the change, and why."""
    excluded = {change.requester: "requester"}
    if change.spec.implementer is not None:
        excluded.setdefault(change.spec.implementer, "implementer")
    return excluded


def _candidates(
    catalog: Catalog, need: Need, change: ChangeRequest, also: Iterable[str] = ()
) -> tuple[str, ...]:
    skip = set(_excluded(change)) | set(also)
    return tuple(person for person in _holders(catalog, need) if person not in skip)


def _held_needs(
    spec: PersonSpec, person: str, needs: Iterable[Need], role: str | None, tenant: str | None
) -> list[Need]:
    """The needs the person could approve for by the catalog now, within role and tenant."""
    roles = {r.value for r in spec.roles}
    tenants = set(spec.tenants) if CUSTOMER_APPROVER in roles else set()
    probe = Approval("", person, "", datetime.min, None, tuple(roles), tuple(tenants), role, tenant)
    return [need for need in needs if probe.counts_for(need)]


def _who_can(catalog: Catalog, change: ChangeRequest, needs: Sequence[Need], but: str) -> str:
    parts = []
    for need in needs[:_NEEDS_NAMED]:
        names = _candidates(catalog, need, change, also=(but,))
        who = _names(names) if names else "nobody in the catalog"
        parts.append(f"{need.key}: {who}")
    return "; ".join(parts) + _more(needs, "need")


def _more(items: Sequence[Any], word: str) -> str:
    extra = len(items) - _NEEDS_NAMED
    return f"; and {extra} more {word}{'s' if extra > 1 else ''}" if extra > 0 else ""


def check_can_approve(
    person: str,
    change: ChangeRequest,
    requirement: Requirement,
    catalog: Catalog,
    *,
    role: str | None = None,
    tenant: str | None = None,
) -> None:
    """Refuse, saying why and who could approve instead, unless the person may approve now.

    The change must wait in Authorize; the requirement must be of its current content; the
    person must be in the catalog, be neither its requester nor its implementer, and hold
    now a role some need asks for (a customer approver: approve for a tenant of their own).
    `role` and `tenant` narrow what the approval is for; the person must hold them. Whether
    they already approved, and whether their approval is still needed, is `evaluate`'s.
    Rejections are checked the same way (`check_can_reject`).
    """
    if change.state is not ChangeState.AUTHORIZE:
        raise Refused(
            f"{change.id} is {change.state.value}; approvals are given while it waits in authorize"
        )
    if (requirement.change_id, requirement.content_hash) != (change.id, change.content_hash):
        raise Refused(
            f"the approval requirement was computed for {requirement.change_id} at content "
            f"{requirement.content_hash}; {change.id} is at {change.content_hash}. Compute it "
            "again"
        )
    if not requirement.needs:
        raise Refused(f"{change.id} cannot be approved: {requirement.reason}")
    entity = catalog.person(person)
    if entity is None:
        raise Refused(f"{person!r} is not a person in the catalog; only catalog people approve")

    def refuse(message: str) -> Refused:
        who_can = _who_can(catalog, change, requirement.needs, person)
        return Refused(f"{message}. Who can approve: {who_can}", override_by=who_can)

    duty = _excluded(change).get(person)
    if duty is not None:
        raise refuse(
            f"{person} is the {duty} of {change.id}; the {duty} never approves their own "
            "change (separation of duties)"
        )
    held = sorted(r.value for r in entity.spec.roles)
    if role is not None and role not in held:
        raise refuse(f"{person} does not hold the role {role} (roles: {', '.join(held)})")
    if tenant is not None and (CUSTOMER_APPROVER not in held or tenant not in entity.spec.tenants):
        raise refuse(
            f"{person} is not a customer approver of tenant {tenant}; customer approvers "
            "approve only for their own tenants"
        )
    if not _held_needs(entity.spec, person, requirement.needs, role, tenant):
        needs = requirement.needs
        asked = "; ".join(need.reason for need in needs[:_NEEDS_NAMED]) + _more(needs, "need")
        narrowed = "".join(
            f" {name} {value}" for name, value in (("as", role), ("for tenant", tenant)) if value
        )
        raise refuse(
            f"{person} (roles: {', '.join(held)}) cannot approve {change.id}{narrowed}: it "
            f"needs {asked}"
        )


def check_can_reject(
    person: str,
    change: ChangeRequest,
    requirement: Requirement,
    catalog: Catalog,
    comment: str,
) -> None:
    """A rejection needs a comment, and may be given by whoever may approve."""
    if not comment.strip():
        raise InvalidInput([Problem("a rejection needs a comment saying why", field="comment")])
    check_can_approve(person, change, requirement, catalog)


def record(
    person: str,
    change: ChangeRequest,
    requirement: Requirement,
    catalog: Catalog,
    *,
    now: datetime,
    role: str | None = None,
    tenant: str | None = None,
    comment: str = "",
) -> Approval:
    """Check that the person may approve (`check_can_approve`) and build the approval,
    recording the roles and tenants they hold now and when it expires."""
    check_can_approve(person, change, requirement, catalog, role=role, tenant=tenant)
    entity = catalog.person(person)
    assert entity is not None
    roles = tuple(r.value for r in entity.spec.roles)
    return Approval(
        change_id=change.id,
        person=person,
        content_hash=change.content_hash,
        decided_at=now,
        expires_at=now + requirement.expire_after,
        roles=roles,
        tenants=tuple(entity.spec.tenants) if CUSTOMER_APPROVER in roles else (),
        role=role,
        tenant=tenant,
        catalog_digest=catalog.digest,
        comment=comment,
    )


# --------------------------------------------------------------------------- assignment


def _augment(
    start: int,
    slot_need: Sequence[int],
    takers: Sequence[Sequence[str]],
    by_slot: dict[int, str],
    by_person: dict[str, int],
) -> bool:
    """Fill the free slot `start` along an augmenting path (breadth first, people in
    order); filled slots stay filled. False, and nothing changed, when there is none."""
    came_from: dict[str, int] = {}
    queue = deque([start])
    while queue:
        slot = queue.popleft()
        for person in takers[slot_need[slot]]:
            if person in came_from:
                continue
            came_from[person] = slot
            taken = by_person.get(person)
            if taken is None:
                _shift(person, start, came_from, by_slot, by_person)
                return True
            queue.append(taken)
    return False


def _shift(
    free: str,
    start: int,
    came_from: Mapping[str, int],
    by_slot: dict[int, str],
    by_person: dict[str, int],
) -> None:
    """Walk the augmenting path back from the free person to `start`, giving each slot on
    it to the person after it."""
    person: str | None = free
    while person is not None:
        slot = came_from[person]
        previous = by_slot.get(slot)
        by_slot[slot] = person
        by_person[person] = slot
        person = None if slot == start else previous


def _fill(slots: Iterable[int], *args: Any) -> bool:
    """Fill every slot, stopping at the first that cannot be (the caller then drops them)."""
    return all(_augment(slot, *args) for slot in slots)


def assign(counts: Sequence[int], eligible: Mapping[str, Iterable[int]]) -> dict[str, int]:
    """Assign people to needs: each person to at most one need they are eligible for, each
    need at most its count of people. Returns person -> need index.

    The assignment fills as many slots as possible (a maximum bipartite matching), and among
    those satisfies as many needs as possible: exactly when at most `EXACT_NEEDS` needs ask
    for more than one person, greedily in need order otherwise. Every need is satisfied
    whenever some assignment satisfies them all. Deterministic: people are tried in sorted
    order, needs in their order, and ties go to the earlier needs.
    """
    slot_need = [index for index, count in enumerate(counts) for _ in range(count)]
    slots_of: list[list[int]] = [[] for _ in counts]
    for slot, index in enumerate(slot_need):
        slots_of[index].append(slot)
    takers: list[list[str]] = [[] for _ in counts]
    for person in sorted(eligible):
        for index in sorted(set(eligible[person])):
            takers[index].append(person)
    multi = [index for index, count in enumerate(counts) if count > 1]
    single = [index for index, count in enumerate(counts) if count == 1]

    def complete(chosen: Sequence[int]) -> tuple[int, dict[int, str], dict[str, int]] | None:
        by_slot: dict[int, str] = {}
        by_person: dict[str, int] = {}
        args = (slot_need, takers, by_slot, by_person)
        for index in chosen:
            if not _fill(slots_of[index], *args):
                return None
        for index in single:
            _augment(slots_of[index][0], *args)
        for slot in range(len(slot_need)):
            if slot not in by_slot:
                _augment(slot, *args)
        filled = [0] * len(counts)
        for slot in by_slot:
            filled[slot_need[slot]] += 1
        satisfied = sum(1 for index, count in enumerate(counts) if filled[index] == count)
        return satisfied, by_slot, by_person

    if len(multi) <= EXACT_NEEDS:
        # Every subset of the multi-person needs to satisfy in full, earlier needs first.
        options: Iterable[list[int]] = (
            [index for index, keep in zip(multi, keeps, strict=True) if keep]
            for keeps in itertools.product((True, False), repeat=len(multi))
        )
    else:
        options = [_greedy(multi, slots_of, slot_need, takers)]
    best: tuple[int, dict[int, str], dict[str, int]] | None = None
    for chosen in options:
        result = complete(chosen)
        if result is not None and (best is None or result[0] > best[0]):
            best = result
    assert best is not None  # the empty choice always completes
    return {person: slot_need[slot] for person, slot in best[2].items()}


def _greedy(
    multi: Sequence[int],
    slots_of: Sequence[Sequence[int]],
    slot_need: Sequence[int],
    takers: Sequence[Sequence[str]],
) -> list[int]:
    """The multi-person needs satisfiable together, taken greedily in order."""
    by_slot: dict[int, str] = {}
    by_person: dict[str, int] = {}
    chosen = []
    for index in multi:
        saved = (dict(by_slot), dict(by_person))
        if _fill(slots_of[index], slot_need, takers, by_slot, by_person):
            chosen.append(index)
        else:
            by_slot, by_person = saved
    return chosen


# --------------------------------------------------------------------------- decision


class Ignored(StrEnum):
    """Why an approval does not count."""

    OTHER_CHANGE = "other-change"  # recorded for another change
    STALE = "stale"  # of other content: a material edit came after it
    EXPIRED = "expired"
    REQUESTER = "requester"
    IMPLEMENTER = "implementer"
    NOT_ELIGIBLE = "not-eligible"  # held no role (or tenant) any need asks for
    DUPLICATE = "duplicate"  # the same person already counts through another approval
    NOT_NEEDED = "not-needed"  # valid, but the needs it could fill are filled by others


@dataclass(frozen=True, slots=True)
class IgnoredApproval:
    """An approval that does not count, and why."""

    approval: Approval
    why: Ignored
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {
            "person": self.approval.person,
            "approval_id": self.approval.id,
            "why": self.why.value,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class NeedStatus:
    """How far one need is: who counts for it, how many are missing, who could still
    approve (by the catalog now; not the requester, the implementer, or anyone whose
    approval of this content already stands)."""

    need: Need
    approved_by: tuple[str, ...]
    candidates: tuple[str, ...]

    @property
    def missing(self) -> int:
        return self.need.count - len(self.approved_by)

    @property
    def satisfied(self) -> bool:
        return self.missing == 0

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {
            **self.need.as_dict(),
            "approved_by": list(self.approved_by),
            "missing": self.missing,
            "satisfied": self.satisfied,
            "candidates": list(self.candidates),
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a change's approvals authorize it, need by need, and what did not count.

    `counted` maps each person who counts to the key of the need they count for; each of
    them counts once. `valid_until` is when the first counted approval expires: an
    authorization not used by then lapses.
    """

    change_id: str
    content_hash: str
    authorized: bool
    reason: str
    needs: tuple[NeedStatus, ...]
    counted: Mapping[str, str]
    ignored: tuple[IgnoredApproval, ...]
    valid_until: datetime | None

    @property
    def missing(self) -> tuple[NeedStatus, ...]:
        """The needs not yet satisfied."""
        return tuple(status for status in self.needs if not status.satisfied)

    def waiting_for(self, person: str) -> tuple[NeedStatus, ...]:
        """The unsatisfied needs this person could approve for: their inbox for the change."""
        return tuple(status for status in self.missing if person in status.candidates)

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape shared by the API, the CLI's --json and the audit trail."""
        return {
            "change_id": self.change_id,
            "content_hash": self.content_hash,
            "authorized": self.authorized,
            "reason": self.reason,
            "needs": [status.as_dict() for status in self.needs],
            "counted": dict(self.counted),
            "ignored": [item.as_dict() for item in self.ignored],
            "valid_until": canonical.to_utc_text(self.valid_until) if self.valid_until else None,
        }


def _not_counting(
    approval: Approval, change: ChangeRequest, now: datetime
) -> IgnoredApproval | None:
    if approval.change_id != change.id:
        return IgnoredApproval(
            approval, Ignored.OTHER_CHANGE, f"it approves {approval.change_id}, not {change.id}"
        )
    duty = _excluded(change).get(approval.person)
    if duty is not None:
        return IgnoredApproval(
            approval, Ignored(duty), f"{approval.person} is the {duty}; the {duty} never approves"
        )
    if approval.content_hash != change.content_hash:
        return IgnoredApproval(
            approval,
            Ignored.STALE,
            f"it approved content {approval.content_hash}; the change is now {change.content_hash}",
        )
    if approval.is_expired(now):
        assert approval.expires_at is not None
        return IgnoredApproval(
            approval, Ignored.EXPIRED, f"it expired at {canonical.to_utc_text(approval.expires_at)}"
        )
    return None


def evaluate(
    requirement: Requirement,
    approvals: Iterable[Approval],
    *,
    change: ChangeRequest,
    catalog: Catalog,
    now: datetime,
) -> Decision:
    """Whether the approvals authorize the change now, need by need.

    An approval counts when it is of this change and its current content, has not expired,
    is by neither the requester nor the implementer, and its author held (when approving) a
    role a need asks for. Each person counts at most once, for one need (`assign`). The
    change is authorized when every need has its count; never with no needs, nor when the
    requirement is of other content than the change. `catalog` (the current one) only
    names who could still approve.
    """
    needs = requirement.needs
    ignored: list[IgnoredApproval] = []
    valid: dict[str, list[Approval]] = {}
    for approval in approvals:
        problem = _not_counting(approval, change, now)
        if problem is not None:
            ignored.append(problem)
        else:
            valid.setdefault(approval.person, []).append(approval)
    eligible: dict[str, list[int]] = {}
    for person, given in valid.items():
        fits = [i for i, need in enumerate(needs) if any(a.counts_for(need) for a in given)]
        if fits:
            eligible[person] = fits
        else:
            asked = ", ".join(need.key for need in needs) or "nobody"
            ignored += [
                IgnoredApproval(
                    a,
                    Ignored.NOT_ELIGIBLE,
                    f"{person} held {', '.join(a.roles) or 'no role'} when approving"
                    f"{f' as {a.role}' if a.role else ''}"
                    f"{f' for tenant {a.tenant}' if a.tenant else ''}; the change needs {asked}",
                )
                for a in given
            ]
    assigned = assign([need.count for need in needs], eligible)
    counted: dict[str, str] = {}
    used: list[Approval] = []
    for person in sorted(eligible):
        given = sorted(valid[person], key=lambda a: (a.decided_at, a.id or 0))
        index = assigned.get(person)
        if index is None:
            ignored += [
                IgnoredApproval(
                    a,
                    Ignored.NOT_NEEDED,
                    f"the needs {person} could fill are filled by others",
                )
                for a in given
            ]
            continue
        # The earliest approval that fits counts; the person's others are duplicates.
        first = next(i for i, a in enumerate(given) if a.counts_for(needs[index]))
        counted[person] = needs[index].key
        used.append(given[first])
        ignored += [
            IgnoredApproval(a, Ignored.DUPLICATE, f"{person} already counts once")
            for i, a in enumerate(given)
            if i != first
        ]
    standing = set(valid)
    statuses = tuple(
        NeedStatus(
            need,
            tuple(p for p in sorted(counted) if counted[p] == need.key),
            _candidates(catalog, need, change, also=standing),
        )
        for need in needs
    )
    current = (requirement.change_id, requirement.content_hash) == (
        change.id,
        change.content_hash,
    )
    authorized = current and bool(needs) and all(s.satisfied for s in statuses)
    reason = _decision_reason(requirement, statuses, current, change)
    expiries = [a.expires_at for a in used if a.expires_at is not None]
    return Decision(
        change_id=change.id,
        content_hash=change.content_hash,
        authorized=authorized,
        reason=reason,
        needs=statuses,
        counted=counted,
        ignored=tuple(ignored),
        valid_until=min(expiries) if authorized and expiries else None,
    )


def _decision_reason(
    requirement: Requirement,
    statuses: Sequence[NeedStatus],
    current: bool,
    change: ChangeRequest,
) -> str:
    if not current:
        return (
            f"the approval requirement is of content {requirement.content_hash}; "
            f"{change.id} is now {change.content_hash}: compute it again"
        )
    if not statuses:
        return requirement.reason
    if all(status.satisfied for status in statuses):
        return "authorized: " + "; ".join(
            f"{status.need.key} by {', '.join(status.approved_by)}" for status in statuses
        )
    waiting = []
    for status in statuses:
        if status.satisfied:
            continue
        who = _names(status.candidates) if status.candidates else "nobody in the catalog"
        waiting.append(
            f"{status.need.key}: {status.missing} more of {status.need.count} (who can: {who})"
        )
    return "waiting for " + "; ".join(waiting)


# --------------------------------------------------------------------------- standard changes


@dataclass(frozen=True, slots=True)
class TemplateMatch:
    """Whether a standard template covers the change, which one, and every reason.

    When none does, `template` is None and `reasons` say, per template, what did not fit:
    the change then follows the normal approval rules.
    """

    ok: bool
    template: str | None
    version: int | None
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {
            "ok": self.ok,
            "template": self.template,
            "version": self.version,
            "reasons": list(self.reasons),
        }


def _count_check(what: str, count: int, low: int, high: int) -> tuple[bool, str]:
    ok = low <= count <= high
    allowed = f"{low}" if low == high else f"{low}-{high}"
    return ok, f"{_plural(count, what)} targeted ({'within' if ok else 'outside'} {allowed})"


def _template_checks(
    change: ChangeRequest, assessment: Assessment | None, spec: StandardTemplateSpec
) -> list[tuple[bool, str]]:
    targets = change.spec.targets
    shape = spec.targets
    checks: list[tuple[bool, str]] = [
        (
            change.spec.type is ChangeType.STANDARD,
            f"the change is {change.spec.type.value}"
            + (
                "" if change.spec.type is ChangeType.STANDARD else "; templates cover standard ones"
            ),
        ),
        (
            change.spec.category in spec.categories,
            f"category {change.spec.category.value} "
            + ("is" if change.spec.category in spec.categories else "is not")
            + f" among {', '.join(c.value for c in spec.categories)}",
        ),
    ]
    if spec.environments:
        inside = change.spec.environment in spec.environments
        checks.append(
            (
                inside,
                f"environment {change.spec.environment} {'is' if inside else 'is not'} among "
                f"{', '.join(spec.environments)}",
            )
        )
    checks += [
        _count_check("tenant", len(targets.tenants), shape.tenants.min, shape.tenants.max),
        _count_check("service", len(targets.services), shape.services.min, shape.services.max),
        _count_check("cluster", len(targets.clusters), shape.clusters.min, shape.clusters.max),
    ]
    if targets.selectors and not shape.selectors:
        checks.append((False, "the change uses selectors; the template allows none"))
    if targets.services and shape.service_types:
        allowed = {t.value for t in shape.service_types}
        known = assessment.impact.get("services", {}) if assessment is not None else {}
        types = {ident: known.get(ident, {}).get("type") for ident in targets.services}
        wrong = sorted(
            f"{ident} ({kind or 'unknown'})" for ident, kind in types.items() if kind not in allowed
        )
        kinds = ", ".join(sorted(allowed))
        if wrong:
            checks.append((False, f"services not of type {kinds}: {', '.join(wrong)}"))
        else:
            checks.append((True, f"the targeted services are {kinds}"))
    checks.append(_risk_check(change, assessment, spec.max_risk_class))
    return checks


def _risk_check(
    change: ChangeRequest, assessment: Assessment | None, ceiling: str
) -> tuple[bool, str]:
    if assessment is None:
        return False, "not assessed yet: a template authorizes only a change of known risk"
    if assessment.content_hash != change.content_hash:
        return False, "the assessment is of older content: assess the change again"
    risk = assessment.risk_class.value
    ok = RISK_CLASSES.index(risk) <= RISK_CLASSES.index(ceiling)
    where = "at or below" if ok else "above"
    return ok, f"risk {risk} (score {assessment.score}) is {where} the ceiling {ceiling}"


def match_template(
    change: ChangeRequest,
    assessment: Assessment | None,
    templates: Iterable[Entity[StandardTemplateSpec]],
) -> TemplateMatch:
    """The first template (in the given order) that covers the change, with its reasons.

    A template covers a standard change whose category (and environment, when it lists
    some) it names, whose targets fit its shape, and whose current assessment is at or
    below its `max_risk_class`. Pass the template the change names, or all of them.
    """
    failures: list[str] = []
    for template in templates:
        checks = _template_checks(change, assessment, template.spec)
        label = f"{template.id} v{template.spec.version}"
        if all(ok for ok, _ in checks):
            return TemplateMatch(
                True,
                template.id,
                template.spec.version,
                tuple(f"{label}: {why}" for _, why in checks),
            )
        failures += [f"{label}: {why}" for ok, why in checks if not ok]
    if not failures:
        failures = ["no standard template in the catalog"]
    return TemplateMatch(False, None, None, tuple(failures))
