"""Property: no sequence of approvals, rejections and edits lets the requester or the
implementer approve, counts a person twice, or authorizes below quorum. Through the change,
assessment and approval services on the real store, on SQLite and PostgreSQL.

Hypothesis draws, per example, one new change (one of three shapes, see SHAPES: high risk,
1 platform-lead + 1 cab; critical, 2 cab + 1 platform-lead + a customer approval of each of
two dedicated tenants; staging, where POLICY asks for 2 approvers + 1 platform-lead + 1 cab
and carol, ivan and peggy each fit two of those needs), its requester (anyone who may file
one) and implementer (anyone holding the role), then up to 12 steps:

- approve as anyone in the catalog (the requester, the implementer, staff without an
  approving role, customer approvers of the change's tenants and of others), sometimes
  narrowed to a role or tenant they hold, sometimes to one they do not;
- reject (with a comment, or with a blank or missing one);
- a material edit (title, implementation plan, implementer; or back to the original content),
  after which the change is re-assessed and moved to Authorize again, as the lifecycle
  requires;
- a non-material edit (test evidence);
- resubmit a rejected draft (submit, assess, move to Authorize);
- try to schedule it (the example ends once it is scheduled);
- let time pass (service layer only: the context's clock), so approvals expire.

After every step the invariants are checked against what is stored (the `approvals` and
`audit_events` tables) and what the services answer, with an oracle written here from the
rules in docs/approvals.md, not from the code that implements them:

1. `counted` never names the requester or the implementer, and no stored approval is by the
   requester or by the implementer of the content it approves. (Catches: dropping either
   check in `check_can_approve`, or in `evaluate`'s `_excluded`.)
2. Nobody counts twice: `approved_by` lists hold each person once in all, `counted` agrees with
   them, no need has more than its count, and the store holds one approval per person and
   content. (Catches: counting per approval instead of per person; a missing duplicate check.)
3. Each counted person holds, per the catalog, the role (or tenant) of the need they count for,
   and has a standing (unexpired) approval of the current content that fits it, narrowing
   included. (Catches: an approval narrowed `role=cab` counting as platform-lead; customer
   approvers counting for another tenant; stale or expired approvals counting.)
4. Quorum: `authorized` holds exactly when the approvals of the current content by eligible
   people other than the requester and implementer can fill every need (brute force over
   assignments here); never below the count of distinct eligible approvers; an authorized
   decision has every need at its count and at least one need; as many approvals count as any
   assignment allows. (Catches: a first-come count that misses a valid assignment, a need
   satisfied with one person too few, authorizing with no needs, counting other changes' rows
   of the same content: every example starts from the same content as earlier ones.)
5. Every approve call has the outcome the rules give, decided here: refused for the requester,
   the implementer, someone holding no needed role (or the role or tenant they narrow to), or
   outside Authorize; a conflict for a second approval of the same content while the first
   stands; otherwise one row (the expired one replaced) and `change.approved` (plus
   `change.authorized` exactly when it completes the requirement). A refused or conflicting
   call writes nothing: the approvals and audit tables keep their row counts. Rejections
   likewise (a blank comment is invalid input; an allowed rejection moves to Draft).
6. A material edit changes the content hash; in Assess or Authorize it sends the change back
   to Assess and the `change.edited` event lists the approvals it voided; until the change is
   assessed again nothing is authorized and scheduling is refused; back in Authorize with new
   content nothing counts and scheduling is refused by the gate. A non-material edit changes
   neither the hash nor the decision.
7. Scheduling succeeds exactly when `authorization(...)` says authorized (equal to the oracle of
   4), and the move records the authorization it passed with; a refused attempt writes
   nothing. (An authorized change may still be refused by the calendar, no slot or a clash,
   never with "not authorized".)
8. The requirement is the one the shape and its latest assessment ask for (test evidence
   lowers the risk found), `decision()` and `authorization()` agree, and the audit chain
   verifies at the end of every example.

Each invariant was seen to fail, by patching changegate in memory (not in this file) with:
no requester exclusion; the implementer let through `check_can_approve`; stale approvals
counting; a first-come count instead of the matching; authorized at the number of
approvals; the Authorize -> Scheduled gate open; role narrowing ignored; customer approvers
counting for any tenant.

`Run` drives one example through a `Door`; tests/api/test_approvals_properties.py runs the
same steps through the HTTP API with a door of its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
import sqlalchemy as sa
from hypothesis import event, given, settings
from hypothesis import strategies as st

from changegate import bootstrap
from changegate.adapters import sample_platform
from changegate.domain import canonical, changes, permissions
from changegate.domain import catalog as catalog_model
from changegate.domain.permissions import Permission
from changegate.errors import Conflict, InvalidInput, InvalidTransition, Refused
from changegate.services import approvals as approval_service
from changegate.services import assessments as assessment_service
from changegate.services import audit as audit_service
from changegate.services import changes as change_service
from changegate.services.context import Context, actor_for
from changegate.store.schema import approvals as approvals_table
from changegate.store.schema import audit_events
from tests.factories import change_data

Json = dict[str, Any]

CUSTOMER = "customer-approver"
ROLES = tuple(role.value for role in catalog_model.Role)
AUDITOR = "frank"  # reads decisions and verifies the chain; holds no approving role
SAFE = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.,"
MAX_STEPS = 12


# --------------------------------------------------------------------------- shapes


Needs = tuple[tuple[str, int], ...]
HIGH: Needs = (("platform-lead", 1), ("cab", 1))
PEER: Needs = (("approver", 1),)
STAGING: Needs = (("approver", 2), ("platform-lead", 1), ("cab", 1))

# The sample platform's people, tenants and services, with the default approval rules and one
# more for staging, where people holding two asked-for roles make the counting a matching.
POLICY = """\
apiVersion: changegate.io/v1
kind: ApprovalPolicy
metadata: {name: default}
spec:
  description: Staging changes need two peers, a platform lead and a CAB member.
  include_default_rules: true
  rules:
    - name: staging-quorum
      when: {environments: [staging]}
      require:
        - {role: approver, count: 2}
        - {role: platform-lead}
        - {role: cab}
"""


def policy_platform(factory: pytest.TempPathFactory) -> Path:
    """The sample platform from `changegate init` plus POLICY, in a new folder."""
    directory = factory.mktemp("policy-platform")
    sample_platform.write_sample(directory, force=True)
    (directory / "approval-policy.yaml").write_text(POLICY)
    return directory


@dataclass(frozen=True, slots=True)
class Shape:
    """A change of the sample platform and the needs the rules (the defaults and POLICY) ask
    of it: without test evidence, with some (evidence lowers the risk the assessment finds),
    and before any assessment."""

    name: str
    overrides: Mapping[str, Any]
    needs: Needs
    with_evidence: Needs
    unassessed: Needs = ()  # no risk class yet: only rules without a risk condition hold

    @property
    def tenants(self) -> tuple[str, ...]:
        return tuple(key.split(":", 1)[1] for key, _ in self.needs if key.startswith("tenant:"))


SHAPES = (
    # Gold tenants in prod: high risk; medium with test evidence.
    Shape("high", {}, HIGH, PEER),
    # Two dedicated tenants with business services, a database upgrade without tests or a
    # rollback: critical, so the CAB quorum and each tenant's customer approval; high with
    # test evidence.
    Shape(
        "critical",
        {
            "category": "database-upgrade",
            "targets": {"tenants": ["polar-consulting", "orchid-printing"]},
            "rollback_plan": {"steps": "", "irreversible": True},
            "test_plan": "",
        },
        (
            ("cab", 2),
            ("platform-lead", 1),
            ("tenant:orchid-printing", 1),
            ("tenant:polar-consulting", 1),
        ),
        HIGH,
    ),
    # One staging tenant: low risk, one peer approver by the defaults; POLICY adds 2
    # approvers, a platform lead and a CAB member. carol (approver and the only platform
    # lead), ivan and peggy (approver and cab) each fit two needs, so who counts for what
    # is a matching: a first-come count fails it.
    Shape(
        "staging",
        {"environment": "staging", "targets": {"tenants": ["duff-electronics-staging"]}},
        STAGING,
        STAGING,
        STAGING,
    ),
)


def need_kinds(needs: Needs) -> list[tuple[str, str | None]]:
    """The (role, tenant) each need asks for."""
    return [
        (CUSTOMER, key.split(":", 1)[1]) if key.startswith("tenant:") else (key, None)
        for key, _ in needs
    ]


# The material fields a step edits, and the value each shape starts with.
EDITED = ("title", "implementation_plan", "implementer")


# --------------------------------------------------------------------------- the doors


class Door(Protocol):
    """One way into changegate: the services, or the HTTP API. Failures raise the
    `changegate.errors` exception the service raises (the API door maps problems back)."""

    def create(self, person: str, data: Json) -> Json: ...
    def get(self, change_id: str) -> Json: ...
    def submit(self, person: str, change_id: str) -> Json: ...
    def assess(self, person: str, change_id: str) -> Json: ...
    def transition(self, person: str, change_id: str, to: str) -> Json: ...
    def edit(self, person: str, change_id: str, patch: Json) -> Json: ...
    def approve(self, person: str, change_id: str, role: str | None, tenant: str | None) -> Json:
        """The decision after the approval."""
        ...

    def reject(self, person: str, change_id: str, comment: str | None) -> Json: ...
    def approvals(self, change_id: str) -> Json | None:
        """`{requirement, decision, authorization}`; None when the requirement cannot be
        computed (the latest assessment is of older content), after checking that the
        change is then not authorized."""
        ...

    def audit_ok(self) -> bool: ...
    def now(self) -> datetime: ...


@dataclass
class Clock:
    """A clock that only moves forward, shared by every example of one test."""

    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


@dataclass
class ServiceDoor:
    """The services, acting as catalog people with a shared, controllable clock."""

    engine: sa.Engine
    catalog: catalog_model.Catalog
    clock: Clock

    def _ctx(self, person: str) -> Context:
        return Context(actor=actor_for(self.catalog, person), clock=self.clock.now)

    def create(self, person: str, data: Json) -> Json:
        spec = changes.validate_spec(data, source=None)
        return change_service.create(self.engine, self.catalog, self._ctx(person), spec).as_dict()

    def get(self, change_id: str) -> Json:
        return change_service.get(self.engine, self._ctx(AUDITOR), change_id).as_dict()

    def submit(self, person: str, change_id: str) -> Json:
        ctx = self._ctx(person)
        return change_service.submit(self.engine, self.catalog, ctx, change_id).as_dict()

    def assess(self, person: str, change_id: str) -> Json:
        ctx = self._ctx(person)
        return assessment_service.assess(self.engine, self.catalog, ctx, change_id).as_dict()

    def transition(self, person: str, change_id: str, to: str) -> Json:
        ctx = self._ctx(person)
        return change_service.transition(self.engine, self.catalog, ctx, change_id, to).as_dict()

    def edit(self, person: str, change_id: str, patch: Json) -> Json:
        ctx = self._ctx(person)
        return change_service.edit(self.engine, self.catalog, ctx, change_id, patch).as_dict()

    def approve(self, person: str, change_id: str, role: str | None, tenant: str | None) -> Json:
        decision = approval_service.approve(
            self.engine, self.catalog, self._ctx(person), change_id, role=role, tenant=tenant
        )
        return decision.as_dict()

    def reject(self, person: str, change_id: str, comment: str | None) -> Json:
        ctx = self._ctx(person)
        return approval_service.reject(
            self.engine, self.catalog, ctx, change_id, comment or ""
        ).as_dict()

    def approvals(self, change_id: str) -> Json | None:
        ctx = self._ctx(AUDITOR)
        found = approval_service.authorization(self.engine, self.catalog, ctx, change_id)
        if found.requirement is None or found.decision is None:
            assert not found.authorized, found.reason
            with pytest.raises(Refused):
                approval_service.decision(self.engine, self.catalog, ctx, change_id)
            return None
        # The two reads agree (the clock stands still between them).
        read = approval_service.decision(self.engine, self.catalog, ctx, change_id)
        assert read.as_dict() == found.decision.as_dict()
        return {
            "requirement": found.requirement.as_dict(),
            "decision": found.decision.as_dict(),
            "authorization": found.as_dict(),
        }

    def audit_ok(self) -> bool:
        return audit_service.verify(self.engine, self._ctx(AUDITOR)).ok

    def now(self) -> datetime:
        return self.clock.now()


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True, slots=True)
class Row:
    """One stored approval, as the `approvals` table holds it."""

    person: str
    role: str | None
    tenant: str | None
    content_hash: str
    roles: frozenset[str]
    tenants: frozenset[str]
    expires_at: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def stored_approvals(engine: sa.Engine, change_id: str) -> list[Row]:
    """Every approval row of the change, oldest first."""
    table = approvals_table
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(table)
            .where(table.c.change_id == changes.parse_id(change_id))
            .order_by(table.c.id)
        ).all()
    return [
        Row(
            person=row.person,
            role=row.role,
            tenant=row.tenant,
            content_hash=row.content_hash,
            roles=frozenset(row.roles),
            tenants=frozenset(row.tenants),
            expires_at=canonical.as_utc(row.expires_at) if row.expires_at else None,
        )
        for row in rows
    ]


def totals(engine: sa.Engine) -> tuple[int, int]:
    """How many approval rows and audit events the database holds (all changes)."""
    with engine.connect() as conn:
        approvals = conn.execute(sa.select(sa.func.count()).select_from(approvals_table))
        rows = int(approvals.scalar_one())
        events = conn.execute(sa.select(sa.func.count()).select_from(audit_events))
        return rows, int(events.scalar_one())


def actions(engine: sa.Engine, change_id: str) -> list[str]:
    """The audit actions on the change, in chain order."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_events.c.action)
            .where(audit_events.c.object_id == change_id)
            .order_by(audit_events.c.seq)
        ).all()
    return [row.action for row in rows]


def events(engine: sa.Engine, change_id: str) -> list[tuple[str, Any]]:
    """The audit events on the change, in chain order: (action, after)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_events.c.action, audit_events.c.after)
            .where(audit_events.c.object_id == change_id)
            .order_by(audit_events.c.seq)
        ).all()
    return [(row.action, row.after) for row in rows]


# --------------------------------------------------------------------------- the oracle


def held(catalog: catalog_model.Catalog, person: str) -> tuple[frozenset[str], frozenset[str]]:
    """The roles a person holds in the catalog, and the tenants they approve for."""
    entity = catalog.person(person)
    assert entity is not None, person
    roles = frozenset(role.value for role in entity.spec.roles)
    tenants = frozenset(entity.spec.tenants) if CUSTOMER in roles else frozenset()
    return roles, tenants


def fits(
    roles: Iterable[str],
    tenants: Iterable[str],
    role: str | None,
    tenant: str | None,
    need: Mapping[str, Any],
) -> bool:
    """Whether an approval by someone holding `roles`/`tenants`, narrowed to `role`/`tenant`,
    may count for the need (docs/approvals.md: roles do not imply each other; a narrowed
    approval counts only as that role, or only as that tenant's customer approval)."""
    if need["role"] not in set(roles) or role not in (None, need["role"]):
        return False
    if need["tenant"] is None:
        return tenant is None
    return need["tenant"] in set(tenants) and tenant in (None, need["tenant"])


def most_counted(counts: Sequence[int], eligible: Mapping[str, Iterable[int]]) -> int:
    """The most people that can count at once, each once, for a need they fit, no need over
    its count: every assignment tried (each person to one of their needs, or to none)."""
    people = sorted(eligible)
    options = [sorted(set(eligible[person])) for person in people]

    @functools.cache
    def best(index: int, left: tuple[int, ...]) -> int:
        if index == len(people):
            return 0
        result = best(index + 1, left)
        for need in options[index]:
            if left[need]:
                rest = (*left[:need], left[need] - 1, *left[need + 1 :])
                result = max(result, 1 + best(index + 1, rest))
        return result

    return best(0, tuple(counts))


# --------------------------------------------------------------------------- one example


def weighted(*options: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, picked with the given weights (shrinking to the first).
    `st.one_of` would not do: it draws a repeated strategy as often as a single one."""
    slots = [index for index, (weight, _) in enumerate(options) for _ in range(weight)]
    return st.sampled_from(slots).flatmap(lambda index: options[index][1])


@dataclass
class Model:
    """What the test knows of its change; checked against the store after every step."""

    change_id: str
    requester: str
    implementer: str
    state: str
    content_hash: str
    original: dict[str, Any]
    assessed_hash: str | None = None
    needs: Needs = ()  # what the latest assessment asks for
    asked: set[tuple[str, str | None]] = field(default_factory=set)  # what any asked for
    evidence: int = 0
    implementer_of: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    @property
    def forbidden(self) -> set[str]:
        return {self.requester, self.implementer}


Failure = type[Refused] | type[Conflict] | type[InvalidInput]


class Run:
    """One example: a new change, then the steps Hypothesis draws, checking after each."""

    shape: Shape
    model: Model

    def __init__(
        self,
        door: Door,
        engine: sa.Engine,
        catalog: catalog_model.Catalog,
        data: st.DataObject,
        clock: Clock | None = None,
    ) -> None:
        self.door = door
        self.engine = engine
        self.catalog = catalog
        self.data = data
        self.clock = clock
        everyone = sorted(catalog.people)
        roles = {person: held(catalog, person)[0] for person in everyone}
        self.everyone = everyone
        self.staff = [p for p in everyone if CUSTOMER not in roles[p]]
        self.requesters = [
            p for p in self.staff if Permission.CHANGES_CREATE in permissions.granted(roles[p])
        ]
        self.implementers = [p for p in everyone if "implementer" in roles[p]]
        self.decision: Json | None = None
        self.authorized = False
        self.step = 0

    # ------------------------------------------------------------------ drawing

    def draw(self, strategy: st.SearchStrategy[Any], label: str) -> Any:
        return self.data.draw(strategy, label=f"step {self.step}: {label}")

    def people(self) -> st.SearchStrategy[str]:
        """Anyone: most often someone holding a role (or tenant) the change needs who has not
        approved this content yet, or who approved it before; often the requester or the
        implementer; else staff without such a role, other customer approvers, anyone."""
        kinds = need_kinds(self.model.needs or self.shape.needs)
        holders = [
            person
            for person in self.everyone
            if any(
                fits(*held(self.catalog, person), None, None, {"role": r, "tenant": t})
                for r, t in kinds
            )
        ]
        holding = st.sampled_from(holders)
        # Those who approved the change at some content: conflicts, and after expiry again.
        rows = stored_approvals(self.engine, self.model.change_id)
        approved = sorted({row.person for row in rows})
        # Who holds a needed role and has not approved this content: quorum gets reached,
        # and with people fitting two needs, who counts for what has to be worked out.
        now = self.door.now()
        standing = {
            row.person
            for row in rows
            if row.content_hash == self.model.content_hash and not row.expired(now)
        }
        wanted = [p for p in holders if p not in standing | self.model.forbidden]
        return weighted(
            (5, st.sampled_from(wanted or holders)),
            (1, holding),
            (1, st.sampled_from(approved or holders)),
            (2, st.sampled_from(sorted(self.model.forbidden))),
            (1, st.sampled_from(self.staff)),
            (1, st.sampled_from(self.everyone)),
        )

    def narrowing(self, person: str) -> tuple[str | None, str | None]:
        """Mostly none; else a role they hold or any role; a tenant of theirs, or one of the
        change's or another (rarely, for people who approve for no tenant)."""
        roles, tenants = held(self.catalog, person)
        none = st.none()
        role = self.draw(
            weighted((6, none), (2, st.sampled_from(sorted(roles))), (1, st.sampled_from(ROLES))),
            "role",
        )
        others = st.sampled_from(sorted({*self.shape.tenants, "nakatomi-plastics"}))
        if tenants:
            tenant = weighted((2, none), (1, st.sampled_from(sorted(tenants))), (1, others))
        else:
            tenant = weighted((8, none), (1, others))
        return role, self.draw(tenant, "tenant")

    def text(self, label: str) -> str:
        drawn = self.draw(st.text(SAFE, min_size=1, max_size=24), label).strip() or "x"
        return f"{drawn} [{self.step}]"  # unique in the example: the content is new

    # ------------------------------------------------------------------ the example

    def run(self) -> None:
        self.shape = shape = self.draw(st.sampled_from(SHAPES), "shape")
        requester = self.draw(st.one_of(st.just("alice"), st.sampled_from(self.requesters)), "by")
        implementer = self.draw(
            st.one_of(st.just("bob"), st.sampled_from(self.implementers)), "implementer"
        )
        data = change_data(**shape.overrides, implementer=implementer)
        created = self.door.create(requester, data)
        assert (created["state"], created["requester"]) == ("draft", requester)
        self.model = Model(
            change_id=created["id"],
            requester=requester,
            implementer=implementer,
            state="draft",
            content_hash=created["content_hash"],
            original={name: data[name] for name in EDITED},
        )
        self.model.implementer_of[created["content_hash"]] = implementer
        self.check()
        self.resubmit()
        # What to try next, weighted by where the change is (each is tried anywhere).
        waiting = ["approve"] * 10 + ["reject", "material", "evidence", "schedule", "resubmit"]
        drafted = ["resubmit"] * 3 + ["material", "evidence", "approve", "reject", "schedule"]
        if self.clock is not None:
            waiting.append("wait")
            drafted.append("wait")
        steps = self.draw(st.integers(1, MAX_STEPS), "steps")
        for self.step in range(1, steps + 1):
            kinds = drafted if self.model.state == "draft" else waiting
            if self.authorized:
                kinds = [*kinds, "schedule", "schedule"]
            kind = self.draw(st.sampled_from(kinds), "kind")
            getattr(self, kind)()
            if self.model.state == "scheduled":
                break
        else:
            if self.model.state == "authorize":
                self.schedule()
        assert self.door.audit_ok()

    # ------------------------------------------------------------------ checks

    def check(self) -> None:
        """Every invariant on the stored state of the change."""
        model = self.model
        change = self.door.get(model.change_id)
        assert change["state"] == model.state
        assert change["content_hash"] == model.content_hash
        assert (change["requester"], change["implementer"]) == (model.requester, model.implementer)
        rows = stored_approvals(self.engine, model.change_id)
        keys = [(row.person, row.content_hash) for row in rows]
        assert len(keys) == len(set(keys)), f"one approval per person and content: {keys}"
        for row in rows:
            assert row.person != model.requester, f"the requester {row.person} approved"
            assert row.person != model.implementer_of[row.content_hash], (
                f"{row.person} approved content {row.content_hash} they implement"
            )
            # Recorded with what they held, which allowed it (the catalog does not change).
            assert (row.roles, row.tenants) == held(self.catalog, row.person)
            assert any(
                fits(row.roles, row.tenants, row.role, row.tenant, {"role": r, "tenant": t})
                for r, t in model.asked
            ), f"{row.person} approved, eligible for no need: {row}"
        body = self.door.approvals(model.change_id)
        # The requirement is computed unless the latest assessment is of older content; not
        # assessed at all, only rules without a risk condition apply (by default none: no
        # need, nothing can authorize it).
        assessed = model.assessed_hash == model.content_hash
        assert (body is not None) == (assessed or model.assessed_hash is None), body
        if body is None:
            self.decision, self.authorized = None, False
            return
        requirement = body["requirement"]
        assert requirement["content_hash"] == model.content_hash
        needs = [(need["key"], need["count"]) for need in requirement["needs"]]
        assert needs == list(model.needs if assessed else self.shape.unassessed)
        decision = body["decision"]
        self.check_decision(decision, rows)
        authorization = body["authorization"]
        assert authorization["authorized"] is decision["authorized"]
        assert authorization["via"] == ("approvals" if decision["authorized"] else None)
        self.decision, self.authorized = decision, decision["authorized"]

    def check_decision(self, decision: Json, rows: Sequence[Row]) -> None:
        """Separation of duties, each person once, eligibility and quorum, on one decision."""
        model = self.model
        now = self.door.now()
        forbidden = model.forbidden
        needs = decision["needs"]
        counted = decision["counted"]
        assert decision["content_hash"] == model.content_hash
        assert not forbidden & set(counted), f"counted {counted}; excluded {forbidden}"
        listed = [person for need in needs for person in need["approved_by"]]
        assert len(listed) == len(set(listed)) == len(counted), f"counted twice: {needs}"
        current = {
            row.person: row
            for row in rows
            if row.content_hash == model.content_hash and not row.expired(now)
        }
        for need in needs:
            assert len(need["approved_by"]) <= need["count"]
            assert need["missing"] == need["count"] - len(need["approved_by"])
            assert need["satisfied"] is (need["missing"] == 0)
            assert not forbidden & set(need["candidates"])
            for person in need["approved_by"]:
                assert counted[person] == need["key"]
                assert fits(*held(self.catalog, person), None, None, need), (person, need)
                row = current.get(person)
                assert row is not None, f"{person} counts without a standing approval of it"
                assert fits(row.roles, row.tenants, row.role, row.tenant, need), (row, need)
        # Quorum, from the rows: valid approvals of this content by eligible people.
        eligible = {
            person: [
                index
                for index, need in enumerate(needs)
                if fits(row.roles, row.tenants, row.role, row.tenant, need)
            ]
            for person, row in current.items()
            if person not in forbidden
        }
        eligible = {person: fit for person, fit in eligible.items() if fit}
        counts = [need["count"] for need in needs]
        best = most_counted(counts, eligible)
        assert len(counted) == best, f"{counted} counts fewer than possible ({best}): {eligible}"
        expected = bool(needs) and best == sum(counts)
        assert decision["authorized"] is expected, f"{decision['reason']}; eligible {eligible}"
        if len(eligible) < sum(counts):
            assert not decision["authorized"], "authorized below quorum"
        if decision["authorized"]:
            assert needs and all(len(n["approved_by"]) == n["count"] for n in needs)
        assert len(counted) + len(decision["ignored"]) == len(rows)

    # ------------------------------------------------------------------ outcomes

    def may_act(self, person: str, role: str | None, tenant: str | None) -> bool:
        """Whether the rules let the person approve (or reject) the change in Authorize."""
        if person in self.model.forbidden:
            return False
        roles, tenants = held(self.catalog, person)
        if role is not None and role not in roles:
            return False
        if tenant is not None and tenant not in tenants:
            return False
        return any(
            fits(roles, tenants, role, tenant, {"role": r, "tenant": t})
            for r, t in need_kinds(self.model.needs)
        )

    def expect_unchanged(
        self,
        what: str,
        failure: Failure | tuple[Failure, ...],
        call: Callable[[], Json],
        *,
        gate: bool,
    ) -> None:
        """The call fails with `failure` and writes nothing; `gate`: not an illegal move
        but a rule (the lifecycle gate, separation of duties)."""
        event(what)
        before = totals(self.engine)
        with pytest.raises(failure) as caught:
            call()
        if gate:
            assert not isinstance(caught.value, InvalidTransition), caught.value
        assert totals(self.engine) == before, f"{caught.value} but something was written"

    # ------------------------------------------------------------------ steps

    def approve(self, person: str | None = None) -> None:
        model = self.model
        if person is None:
            person = self.draw(self.people(), "approver")
        role, tenant = self.narrowing(person)
        call = functools.partial(self.door.approve, person, model.change_id, role, tenant)
        if model.state != "authorize" or not self.may_act(person, role, tenant):
            if model.state != "authorize":
                what = f"approve: refused in {model.state}"
            elif person in model.forbidden:
                what = "approve: refused, requester or implementer"
            else:
                what = "approve: refused, not eligible"
            self.expect_unchanged(what, Refused, call, gate=True)
            self.check()
            return
        now = self.door.now()
        rows = stored_approvals(self.engine, model.change_id)
        mine = [r for r in rows if (r.person, r.content_hash) == (person, model.content_hash)]
        if mine and not mine[0].expired(now):
            self.expect_unchanged("approve: conflict", Conflict, call, gate=False)
            self.check()
            return
        before_rows, before_events = totals(self.engine)
        before_actions = actions(self.engine, model.change_id)
        was_authorized = self.authorized
        decision = call()
        event("approve: replaced an expired one" if mine else "approve: recorded")
        after_rows, after_events = totals(self.engine)
        assert after_rows == before_rows + (0 if mine else 1)  # an expired row is replaced
        stored = [
            r
            for r in stored_approvals(self.engine, model.change_id)
            if (r.person, r.content_hash) == (person, model.content_hash)
        ]
        assert len(stored) == 1 and (stored[0].role, stored[0].tenant) == (role, tenant)
        assert not stored[0].expired(now)
        authorizing = decision["authorized"] and not was_authorized
        expected = ["change.approved"] + (["change.authorized"] if authorizing else [])
        assert actions(self.engine, model.change_id)[len(before_actions) :] == expected
        assert after_events == before_events + len(expected)
        self.check_decision(decision, stored_approvals(self.engine, model.change_id))
        self.check()
        assert self.decision is not None
        assert decision["counted"] == self.decision["counted"]

    def reject(self) -> None:
        model = self.model
        person = self.draw(self.people(), "rejecter")
        comment = self.draw(
            weighted(
                (3, st.text(SAFE, max_size=40).map("not yet: {}".format)),
                (1, st.sampled_from([None, "", "  "])),
            ),
            "comment",
        )
        call = functools.partial(self.door.reject, person, model.change_id, comment)
        blank = not (comment or "").strip()
        if model.state != "authorize":
            what = f"reject: refused in {model.state}"
            self.expect_unchanged(what, (Refused, InvalidInput), call, gate=False)
        elif blank:
            self.expect_unchanged("reject: no comment", InvalidInput, call, gate=False)
        elif not self.may_act(person, None, None):
            self.expect_unchanged("reject: refused", Refused, call, gate=True)
        else:
            rows = stored_approvals(self.engine, model.change_id)
            moved = call()
            event("reject: back to draft")
            assert moved["state"] == "draft"
            model.state = "draft"
            assert actions(self.engine, model.change_id)[-1] == "change.rejected"
            assert stored_approvals(self.engine, model.change_id) == rows  # they stay
        self.check()

    def material(self) -> None:
        """A material edit by the requester; back in Assess, assess and authorize again."""
        model = self.model
        current = self.door.get(model.change_id)
        what = self.draw(st.sampled_from([*EDITED, "revert"]), "material edit")
        if what == "revert":
            patch = dict(model.original)
        elif what == "implementer":
            others = [p for p in self.implementers if p != current["implementer"]]
            patch = {"implementer": self.draw(st.sampled_from(others), "new implementer")}
        else:
            patch = {what: self.text(what)}
        changed = any(current[name] != value for name, value in patch.items())
        before_actions = actions(self.engine, model.change_id)
        now = self.door.now()
        standing = {
            row.person
            for row in stored_approvals(self.engine, model.change_id)
            if row.content_hash == model.content_hash and not row.expired(now)
        }
        edited = self.door.edit(model.requester, model.change_id, patch)
        if not changed:
            event("material edit: nothing differs")
            assert edited["content_hash"] == model.content_hash
            assert actions(self.engine, model.change_id) == before_actions
            self.check()
            return
        assert edited["content_hash"] != model.content_hash
        assert actions(self.engine, model.change_id)[len(before_actions) :] == ["change.edited"]
        reopened = model.state in ("assess", "authorize")
        fresh = edited["content_hash"] not in model.seen
        event(f"material edit in {model.state}{'' if fresh else ', back to approved content'}")
        if reopened:
            voided = events(self.engine, model.change_id)[-1][1]["approvals_invalidated"]
            assert set(voided) == standing
        model.content_hash = edited["content_hash"]
        model.implementer = edited["implementer"]
        model.implementer_of.setdefault(model.content_hash, model.implementer)
        assert model.implementer_of[model.content_hash] == model.implementer
        model.state = "assess" if reopened else model.state
        assert edited["state"] == model.state
        self.check()
        if not reopened:
            return
        # Not assessed: nothing can be approved, nothing authorizes, nothing is scheduled.
        assert self.decision is None and not self.authorized
        self.approve(self.draw(self.people(), "approver in assess"))
        self.schedule()
        self.assessed(self.door.assess(model.requester, model.change_id))
        self.door.transition(model.requester, model.change_id, "authorize")
        model.state = "authorize"
        model.seen.add(model.content_hash)
        self.check()
        if fresh:
            # New content: no approval of it yet, so nothing counts and the gate is shut.
            assert self.decision is not None
            assert self.decision["counted"] == {} and not self.authorized
            self.schedule()

    def evidence(self) -> None:
        """A non-material edit: neither the content hash nor the decision changes."""
        model = self.model
        current = self.door.get(model.change_id)
        patch = {"test_evidence": [*current["test_evidence"], self.text("evidence")]}
        before = self.decision
        edited = self.door.edit(model.requester, model.change_id, patch)
        model.evidence += 1
        assert (edited["state"], edited["content_hash"]) == (model.state, model.content_hash)
        assert actions(self.engine, model.change_id)[-1] == "change.edited"
        self.check()
        if before is not None and self.decision is not None:
            assert (self.decision["counted"], self.decision["authorized"]) == (
                before["counted"],
                before["authorized"],
            )

    def resubmit(self) -> None:
        """Submit a draft, assess it and move it to Authorize; elsewhere an illegal move."""
        model = self.model
        if model.state != "draft":
            call = functools.partial(self.door.submit, model.requester, model.change_id)
            what = f"resubmit: refused in {model.state}"
            self.expect_unchanged(what, InvalidTransition, call, gate=False)
            self.check()
            return
        moved = self.door.submit(model.requester, model.change_id)
        assert moved["state"] == "assess"
        model.state = "assess"
        self.check()
        self.assessed(self.door.assess(model.requester, model.change_id))
        self.door.transition(model.requester, model.change_id, "authorize")
        model.state = "authorize"
        model.seen.add(model.content_hash)
        self.check()

    def assessed(self, assessment: Json) -> None:
        """The change was assessed: what its approval rules now ask for."""
        model = self.model
        assert assessment["content_hash"] == model.content_hash
        model.assessed_hash = model.content_hash
        model.needs = self.shape.with_evidence if model.evidence else self.shape.needs
        model.asked |= set(need_kinds(model.needs))
        self.check()

    def schedule(self) -> None:
        """Scheduling succeeds exactly when the change is authorized now (or, authorized, is
        refused by the calendar, if it finds no slot: never for want of approvals)."""
        model = self.model
        call = functools.partial(
            self.door.transition, model.requester, model.change_id, "scheduled"
        )
        if model.state != "authorize":
            what = f"schedule: refused in {model.state}"
            self.expect_unchanged(what, InvalidTransition, call, gate=False)
        elif not self.authorized:
            self.expect_unchanged("schedule: not authorized", Refused, call, gate=True)
        else:
            before, written = len(actions(self.engine, model.change_id)), totals(self.engine)
            try:
                moved = call()
            except Refused as refused:
                # Authorized: only the calendar (no slot, a clash) may still say no, never
                # the approvals; and a refusal writes nothing.
                event("schedule: refused by the calendar")
                assert not isinstance(refused, InvalidTransition), refused
                assert "not authorized" not in str(refused), refused
                assert totals(self.engine) == written, f"{refused} but something was written"
            else:
                event("schedule: scheduled")
                assert moved["state"] == "scheduled"
                model.state = "scheduled"
                # The move records the authorization it passed the gate with.
                gates = [
                    after["authorization"]
                    for _, after in events(self.engine, model.change_id)[before:]
                    if isinstance(after, dict) and "authorization" in after
                ]
                assert gates and all(gate["authorized"] for gate in gates), gates
        self.check()

    def wait(self) -> None:
        """Time passes: hours, or about two weeks (approvals expire after 14 days)."""
        assert self.clock is not None
        hours = self.draw(weighted((1, st.integers(1, 48)), (1, st.integers(300, 400))), "hours")
        self.clock.advance(timedelta(hours=hours))
        self.check()


# --------------------------------------------------------------------------- the test


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's platform: the sample with POLICY (`app` and `catalog` load it)."""
    return policy_platform(tmp_path_factory)


def examples(database_url: str, sqlite: int, postgresql: int) -> int:
    return sqlite if database_url.startswith("sqlite") else postgresql


def test_no_sequence_breaks_separation_of_duties_or_quorum(
    app: bootstrap.App, catalog: catalog_model.Catalog, database_url: str
) -> None:
    """Approvals, rejections, edits, resubmissions, scheduling attempts and time passing,
    through the services: after every step the invariants of the module docstring hold.
    Each example files a new change in the same database, so the invariants are per change
    (and approvals of earlier changes with the same content must not count)."""
    clock = Clock()
    door = ServiceDoor(app.engine, catalog, clock)

    @settings(max_examples=examples(database_url, sqlite=120, postgresql=50), deadline=None)
    @given(data=st.data())
    def sequences(data: st.DataObject) -> None:
        Run(door, app.engine, catalog, data, clock).run()

    sequences()
