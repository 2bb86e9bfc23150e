"""Use cases on the change calendar: may a change touch a tenant now, what the calendar holds.

The rules are `changegate.domain.calendar` (pure); this module checks permissions, validates
the doors' inputs and reads the store for what is booked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from changegate.adapters import ics
from changegate.domain import (
    calendar,
    canonical,
    changes,
    conflicts,
    impact,
    scheduling,
    validation,
)
from changegate.domain import catalog as catalog_model
from changegate.domain.changes import Category, ChangeRequest, ChangeState, ChangeType
from changegate.domain.permissions import Permission
from changegate.errors import (
    InvalidInput,
    InvalidTransition,
    NotFound,
    Problem,
    Refused,
    StaleWrite,
)
from changegate.services import audit as audit_service
from changegate.services import lifecycle
from changegate.services.context import Context
from changegate.store import approvals as approval_store
from changegate.store import changes as change_store
from changegate.store import db
from changegate.store import schedules as schedule_store


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None:
        raise InvalidInput(
            [Problem("needs a timezone offset, e.g. 2026-12-01T22:00:00Z", field=name)]
        )
    return value


def _enum_or_none(kind: type[ChangeType] | type[Category], value: str | None, field: str) -> None:
    if value is None:
        return
    try:
        kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidInput([Problem(f"{value!r} is not one of: {allowed}", field=field)]) from None


def check(
    catalog: catalog_model.Catalog,
    ctx: Context,
    tenant: str,
    at: datetime,
    *,
    change_type: str | None = None,
    category: str | None = None,
) -> calendar.CalendarDecision:
    """May a change of this type and category touch `tenant` at `at`? With the windows that
    decided it, the next instant it would be allowed and who may override."""
    ctx.actor.require(Permission.CATALOG_READ)
    _aware("at", at)
    _enum_or_none(ChangeType, change_type, "type")
    _enum_or_none(Category, category, "category")
    if tenant not in catalog.tenants:
        raise NotFound(f"no tenant {tenant!r} in the catalog")
    return calendar.decide(catalog, tenant, at, change_type=change_type, category=category)


# --------------------------------------------------------------------------- scheduling

DEFAULT_DURATION = timedelta(hours=1)
"""How long a change without planned start and end is booked for."""

BOOKED_STATES = (ChangeState.SCHEDULED, ChangeState.IMPLEMENTING)

MAX_HORIZON = timedelta(days=366)
"""The farthest a scheduler looks (the SchedulingPolicy's `horizon` has the same bound)."""


def scheduling_policy(catalog: catalog_model.Catalog) -> conflicts.SchedulingPolicySpec:
    """The catalog's SchedulingPolicy, or the defaults without one."""
    entity = catalog.scheduling_policy
    return entity.spec if entity is not None else conflicts.SchedulingPolicySpec()


def change_duration(change: ChangeRequest, given: timedelta | None = None) -> timedelta:
    """How long each wave of the change is booked: as given, else its planned end minus its
    planned start, else DEFAULT_DURATION."""
    if given is not None:
        if given <= timedelta(0):
            raise InvalidInput([Problem("the duration must be above zero", field="duration")])
        return given
    spec = change.spec
    if spec.planned_start is not None and spec.planned_end is not None:
        return spec.planned_end - spec.planned_start
    return DEFAULT_DURATION


def _booking(
    catalog: catalog_model.Catalog,
    change: ChangeRequest,
    analysed: impact.Impact,
    span: tuple[datetime, datetime],
    tenants: Iterable[str],
) -> conflicts.Booking:
    """What the change touches during `span`: the given tenants (a wave's, or all), and the
    services and clusters its impact names. Its database services are the PostgreSQL
    services the change itself reaches (not the tenants' databases: two changes on two
    tenants of one shared cluster do not clash on the server)."""
    chosen = frozenset(tenants)
    tenant_services: dict[str, frozenset[str]] = {}
    for ident in chosen:
        entity = catalog.tenants.get(ident)
        if entity is not None:
            used = {entity.spec.database.service, *entity.spec.services}
            tenant_services[ident] = frozenset(used)
    databases = frozenset(
        ident for ident, found in analysed.services.items() if found.type.value == "postgresql"
    )
    return conflicts.Booking(
        change_id=change.id,
        state=change.state.value,
        start=span[0],
        end=span[1],
        tenants=chosen,
        services=frozenset(analysed.services) - databases,
        database_services=databases,
        clusters=frozenset(analysed.clusters),
        tenant_services=tenant_services,
        implementer=change.spec.implementer,
    )


def _bookings(
    catalog: catalog_model.Catalog,
    booked: Sequence[tuple[ChangeRequest, list[scheduling.Wave]]],
    skip: str,
) -> list[conflicts.Booking]:
    """One booking per wave of the other booked changes."""
    found = []
    for other, waves in booked:
        if other.id == skip:
            continue
        analysed = impact.analyze(catalog, other.spec)
        for wave in waves:
            found.append(_booking(catalog, other, analysed, (wave.start, wave.end), wave.tenants))
    return found


def _tier_ranks(catalog: catalog_model.Catalog) -> dict[str, int]:
    """Tiers from the lowest risk weight (scheduled first) to the highest."""
    weights = sorted({tier.spec.risk_weight for tier in catalog.tiers.values()})
    return {ident: weights.index(tier.spec.risk_weight) for ident, tier in catalog.tiers.items()}


def _slot_infos(
    catalog: catalog_model.Catalog,
    analysed: impact.Impact,
    policy: conflicts.SchedulingPolicySpec,
) -> list[scheduling.TenantSlotInfo]:
    ranks = _tier_ranks(catalog)
    infos = []
    for ident, found in analysed.tenants.items():
        labels = catalog.tenants[ident].labels
        infos.append(
            scheduling.TenantSlotInfo(
                id=ident,
                tier=found.tier,
                tier_rank=ranks.get(found.tier, 0),
                deployment_model=found.deployment_model.value,
                canary=conflicts.is_canary(labels, policy),
            )
        )
    return infos


def _busy(
    mine: conflicts.Booking,
    others: Sequence[conflicts.Booking],
    policy: conflicts.SchedulingPolicySpec,
) -> tuple[list[scheduling.Interval], dict[str, list[scheduling.Interval]]]:
    """Time the change may not use because of a blocking conflict with a booked change: for
    every tenant (a clash on a service, a cluster, the implementer) or for some tenants only
    (a tenant overlap). `mine` spans the whole horizon, so every booking inside it is tried."""
    everywhere: list[scheduling.Interval] = []
    per_tenant: dict[str, list[scheduling.Interval]] = {}
    for other in others:
        for clash in conflicts.find_conflicts(mine, [other], policy):
            if not clash.blocking:
                continue
            if clash.kind is conflicts.ConflictKind.TENANT_OVERLAP:
                for tenant in mine.tenants & other.tenants:
                    per_tenant.setdefault(tenant, []).append((other.start, other.end))
            else:
                everywhere.append((other.start, other.end))
    return everywhere, per_tenant


@dataclass(frozen=True, slots=True)
class Schedule:
    """A change's schedule: its plan (waves) and the conflicts it still has (warnings)."""

    change: ChangeRequest
    plan: scheduling.Plan
    conflicts: tuple[conflicts.Conflict, ...]
    rescheduled: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {
            "change_id": self.change.id,
            "state": self.change.state.value,
            "rescheduled": self.rescheduled,
            **self.plan.as_dict(),
            "conflicts": [clash.as_dict() for clash in self.conflicts],
        }


def plan_schedule(
    conn: sa.Connection,
    catalog: catalog_model.Catalog,
    change: ChangeRequest,
    *,
    not_before: datetime,
    horizon: timedelta | None = None,
    duration: timedelta | None = None,
) -> tuple[scheduling.Plan, tuple[conflicts.Conflict, ...]]:
    """The earliest waves for the change from `not_before` within the horizon: inside every
    affected tenant's allow windows, outside every freeze, clear of blocking conflicts with
    the changes already booked; and the conflicts (warnings) the plan still has."""
    policy = scheduling_policy(catalog)
    span = horizon if horizon is not None else policy.horizon
    length = change_duration(change, duration)
    until = not_before + span
    analysed = impact.analyze(catalog, change.spec)
    kind, category = change.spec.type.value, change.spec.category.value
    booked = schedule_store.booked(conn, not_before, until, BOOKED_STATES)
    others = _bookings(catalog, booked, change.id)
    mine = _booking(catalog, change, analysed, (not_before, until), analysed.tenants)
    everywhere, per_tenant = _busy(mine, others, policy)
    if analysed.tenants:
        free = {
            tenant: scheduling.subtract(
                calendar.allowed_intervals(
                    catalog, tenant, not_before, until, change_type=kind, category=category
                ),
                scheduling.normalize([*everywhere, *per_tenant.get(tenant, [])]),
            )
            for tenant in analysed.tenants
        }
        found = scheduling.plan(
            _slot_infos(catalog, analysed, policy),
            free,
            length,
            not_before,
            until,
            max_per_wave=policy.max_tenants_per_wave,
            wave_gap=policy.wave_gap,
        )
    else:
        # No tenant: only what blocks the whole platform (booked clashes) decides.
        free_all = scheduling.subtract([(not_before, until)], scheduling.normalize(everywhere))
        start = scheduling.earliest_slot([free_all], length, not_before, until)
        waves = (scheduling.Wave(1, start, start + length, (), {}),) if start is not None else ()
        found = scheduling.Plan(waves=waves, unscheduled={}, single_slot=bool(waves))
    clashes: list[conflicts.Conflict] = []
    for wave in found.waves:
        booking = _booking(catalog, change, analysed, (wave.start, wave.end), wave.tenants)
        clashes += conflicts.find_conflicts(booking, others, policy)
    return found, tuple(clashes)


def _no_slot(change: ChangeRequest, found: scheduling.Plan, span: timedelta) -> Refused:
    if found.unscheduled:
        named = "; ".join(f"{tenant}: {why}" for tenant, why in list(found.unscheduled.items())[:5])
        more = len(found.unscheduled) - 5
        if more > 0:
            named += f"; and {more} more"
        return Refused(
            f"{change.id} cannot be scheduled within {scheduling.format_duration(span)}: "
            f"no slot for {len(found.unscheduled)} tenant(s): {named}"
        )
    return Refused(
        f"{change.id} cannot be scheduled within {scheduling.format_duration(span)}: no free slot"
    )


def schedule(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change_id: str,
    *,
    not_before: datetime | None = None,
    horizon: timedelta | None = None,
    duration: timedelta | None = None,
    expected_version: int | None = None,
    reason: str | None = None,
) -> Schedule:
    """Book the change's waves at the earliest slots and move it Authorize -> Scheduled (the
    lifecycle gate: it must be authorized), or reschedule a Scheduled change.

    One transaction, holding the calendar lock (so two changes are never booked into the
    same slot by concurrent schedulers): plan against the bookings as they are, refuse when
    some tenant has no slot within the horizon (naming them) or a blocking conflict
    remains, store the waves and audit `change.scheduled` or `change.rescheduled` (with the
    waves before and after, and the conflicts left as warnings).
    """
    ctx.actor.require(Permission.CHANGES_TRANSITION)
    validation.check_texts(reason=reason)
    number = changes.parse_id(change_id)
    now = ctx.now()
    start = now if not_before is None else max(_aware("not_before", not_before), now)
    if horizon is not None and not timedelta(0) < horizon <= MAX_HORIZON:
        raise InvalidInput(
            [Problem("the horizon must be above zero and at most 366 days", field="horizon")]
        )
    span = horizon if horizon is not None else scheduling_policy(catalog).horizon
    with db.transaction(engine) as conn:
        schedule_store.lock_calendar(conn)
        change = approval_store.lock_change(conn, number)
        if expected_version is not None and expected_version != change.version:
            raise StaleWrite(change.id, expected_version, change.version)
        if change.state not in (ChangeState.AUTHORIZE, ChangeState.SCHEDULED):
            raise InvalidTransition(
                change.id,
                change.state.value,
                ChangeState.SCHEDULED.value,
                [s.value for s in changes.allowed_next(change)],
            )
        if change.state is ChangeState.AUTHORIZE:
            # Refuse an unauthorized change before planning it (the move re-checks).
            lifecycle.require_authorized(conn, catalog, change, now)
        found, clashes = plan_schedule(
            conn, catalog, change, not_before=start, horizon=span, duration=duration
        )
        if not found.complete or not found.waves:
            raise _no_slot(change, found, span)
        blocking = [clash for clash in clashes if clash.blocking]
        if blocking:
            raise Refused(f"{change.id} would clash: " + "; ".join(c.message for c in blocking[:5]))
        before = [wave.as_dict() for wave in schedule_store.of_change(conn, number)]
        rescheduled = change.state is ChangeState.SCHEDULED
        if rescheduled:
            moved = change.evolve(version=change.version + 1, updated_at=now)
            change_store.update(conn, moved, change.version)
        else:
            moved = lifecycle.apply_transition(
                conn, catalog, ctx, change, ChangeState.SCHEDULED, reason=reason
            )
        schedule_store.replace(
            conn, number, found.waves, scheduled_at=now, scheduled_by=ctx.actor.id
        )
        after: dict[str, Any] = {
            **found.as_dict(),
            "not_before": canonical.to_utc_text(start),
            "horizon_seconds": int(span.total_seconds()),
            "conflicts": [clash.as_dict() for clash in clashes],
            "version": moved.version,
        }
        if reason:
            after["reason"] = reason
        audit_service.record(
            conn,
            ctx,
            "change.rescheduled" if rescheduled else "change.scheduled",
            "change",
            change.id,
            {"waves": before} if rescheduled else None,
            after,
        )
    return Schedule(moved, found, clashes, rescheduled)


def current_conflicts(
    conn: sa.Connection,
    catalog: catalog_model.Catalog,
    change: ChangeRequest,
    waves: Sequence[scheduling.Wave],
    analysed: impact.Impact | None = None,
) -> tuple[conflicts.Conflict, ...]:
    """The conflicts the change's waves have now: with the other booked changes, and with the
    calendar as it is now (a freeze declared after scheduling shows). None without waves.
    `analysed` is the change's impact when the caller has it already."""
    if not waves:
        return ()
    policy = scheduling_policy(catalog)
    start, end = waves[0].start, max(wave.end for wave in waves)
    others = _bookings(catalog, schedule_store.booked(conn, start, end, BOOKED_STATES), change.id)
    if analysed is None:
        analysed = impact.analyze(catalog, change.spec)
    clashes: list[conflicts.Conflict] = []
    for wave in waves:
        booking = _booking(catalog, change, analysed, (wave.start, wave.end), wave.tenants)
        outside, frozen = _calendar_clashes(catalog, change, wave)
        clashes += conflicts.find_conflicts(
            booking, others, policy, outside_window=outside, in_freeze=frozen
        )
    return tuple(clashes)


def schedule_of(
    engine: sa.Engine, catalog: catalog_model.Catalog, ctx: Context, change_id: str
) -> Schedule:
    """The change's stored waves and the conflicts they have now (`current_conflicts`)."""
    ctx.actor.require(Permission.CHANGES_READ)
    number = changes.parse_id(change_id)
    with engine.connect() as conn:
        change = change_store.get(conn, number)
        waves = schedule_store.of_change(conn, number)
        clashes = current_conflicts(conn, catalog, change, waves)
    plan = scheduling.Plan(waves=tuple(waves), single_slot=len(waves) == 1)
    return Schedule(change, plan, clashes)


def _calendar_clashes(
    catalog: catalog_model.Catalog, change: ChangeRequest, wave: scheduling.Wave
) -> tuple[dict[str, str], dict[str, str]]:
    """Tenants of the wave the calendar (as it is now) does not allow at the wave's start:
    inside a freeze, or outside their allow windows. A freeze declared after scheduling
    shows here."""
    outside: dict[str, str] = {}
    frozen: dict[str, str] = {}
    for tenant in wave.tenants:
        if tenant not in catalog.tenants:
            continue
        found = calendar.decide(
            catalog,
            tenant,
            wave.start,
            change_type=change.spec.type.value,
            category=change.spec.category.value,
        )
        if found.allowed:
            continue
        if any(catalog.windows[o.window].spec.type.value == "deny" for o in found.deciding):
            frozen[tenant] = found.reason
        else:
            outside[tenant] = found.reason
    return outside, frozen


def may_start(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change_id: str,
    *,
    wave: int = 1,
    at: datetime | None = None,
) -> lifecycle.StartCheck:
    """Whether the calendar lets wave `wave` of the change start at `at` (default now): the
    check the lifecycle applies when a change starts, and the rollout before each wave."""
    ctx.actor.require(Permission.CHANGES_READ)
    instant = ctx.now() if at is None else _aware("at", at)
    number = changes.parse_id(change_id)
    with engine.connect() as conn:
        change = change_store.get(conn, number)
        return lifecycle.start_check(conn, catalog, change, instant, wave)


def window_warnings(catalog: catalog_model.Catalog, now: datetime) -> list[str]:
    """What `catalog validate` warns about the windows (valid, but surely a mistake): a
    window that can never open, with no occurrence within five years of `now` (30 February,
    or a dated range long past)."""
    found = []
    for window in catalog.windows.values():
        if calendar.never_opens(window, now, holidays=catalog.holiday_calendars):
            found.append(
                f"{window.file}:{window.line}: Window {window.id} can never open: no occurrence "
                "within five years of now"
            )
    return found


def _booked_waves(
    conn: sa.Connection, start: datetime, end: datetime, tenant: str | None
) -> list[tuple[ChangeRequest, scheduling.Wave, int]]:
    """The waves of booked changes meeting [start, end) (touching `tenant` when given), each
    with its change and the change's number of waves."""
    found = []
    for change, waves in schedule_store.booked(conn, start, end, BOOKED_STATES):
        for wave in waves:
            if wave.end <= start or wave.start >= end:
                continue
            if tenant is not None and tenant not in wave.tenants:
                continue
            found.append((change, wave, len(waves)))
    return found


def feed(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    *,
    start: datetime,
    end: datetime,
    tenant: str | None = None,
) -> bytes:
    """The iCalendar feed of the windows that apply to `tenant` (all windows without one) and
    of the booked waves that touch it, for [start, end)."""
    ctx.actor.require(Permission.CATALOG_READ)
    _aware("from", start)
    _aware("to", end)
    with engine.connect() as conn:
        booked = _booked_waves(conn, start, end, tenant)
    bookings = [
        ics.Booking(
            change_id=change.id,
            title=change.spec.title,
            wave=wave.index,
            start=wave.start,
            end=wave.end,
            tenants=wave.tenants,
            waves=count,
        )
        for change, wave, count in booked
    ]
    return ics.window_feed(catalog, tenant=tenant, start=start, end=end, bookings=bookings)


def view(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    *,
    start: datetime,
    end: datetime,
    tenant: str | None = None,
) -> dict[str, Any]:
    """The calendar of [start, end): window occurrences (those applying to `tenant`, or all)
    and booked waves, in time order; the JSON of GET /api/v1/calendar."""
    ctx.actor.require(Permission.CATALOG_READ)
    _aware("from", start)
    _aware("to", end)
    if end <= start:
        raise InvalidInput([Problem("to must be after from", field="to")])
    if end - start > timedelta(days=366):
        raise InvalidInput([Problem("at most 366 days at once", field="to")])
    if tenant is not None and tenant not in catalog.tenants:
        raise NotFound(f"no tenant {tenant!r} in the catalog")
    windows = (
        calendar.windows_for(catalog, tenant) if tenant is not None else catalog.windows.values()
    )
    entries: list[dict[str, Any]] = []
    for window in windows:
        for found in calendar.occurrences(window, start, end, holidays=catalog.holiday_calendars):
            entries.append(
                {
                    "kind": "window",
                    "id": window.id,
                    "type": window.spec.type.value,
                    "purpose": window.spec.purpose.value,
                    "start": canonical.to_utc_text(found.start),
                    "end": canonical.to_utc_text(found.end),
                    "reason": window.spec.reason or window.spec.description,
                }
            )
    with engine.connect() as conn:
        booked = _booked_waves(conn, start, end, tenant)
    for change, wave, count in booked:
        entries.append(
            {
                "kind": "change",
                "id": change.id,
                "title": change.spec.title,
                "state": change.state.value,
                "wave": wave.index,
                "waves": count,
                "start": canonical.to_utc_text(wave.start),
                "end": canonical.to_utc_text(wave.end),
                "tenants": len(wave.tenants),
            }
        )
    entries.sort(key=lambda item: (item["start"], item["kind"], item["id"]))
    return {
        "from": canonical.to_utc_text(start),
        "to": canonical.to_utc_text(end),
        "tenant": tenant,
        "items": entries,
    }


def consent(
    engine: sa.Engine,
    catalog: catalog_model.Catalog,
    ctx: Context,
    change_id: str,
    tenant: str,
    comment: str | None = None,
) -> dict[str, Any]:
    """Record the acting customer approver's consent that this content of the change may
    run on `tenant` during a freeze that lets it through only with consent.

    The consenting person holds, now, the customer-approver role for `tenant`, is neither
    the change's requester nor its implementer, and the tenant is one the change affects.
    Bound to the content hash: a material edit voids it. Audited as `change.consented`.
    """
    ctx.actor.require(Permission.CHANGES_READ)
    validation.check_texts(comment=comment)
    number = changes.parse_id(change_id)
    person = catalog.person(ctx.actor.id)
    with db.transaction(engine) as conn:
        change = approval_store.lock_change(conn, number)
        if change.state in changes.FINAL_STATES:
            raise Refused(f"{change.id} is {change.state.value}; nothing to consent to")
        affected = impact.analyze(catalog, change.spec).tenants
        if tenant not in affected:
            raise InvalidInput(
                [Problem(f"{change.id} does not affect tenant {tenant!r}", field="tenant")]
            )
        approvers = sorted(
            p.id
            for p in catalog.people.values()
            if "customer-approver" in p.spec.roles and tenant in p.spec.tenants
        )
        if ctx.actor.id in (change.requester, change.spec.implementer):
            raise Refused(
                f"{ctx.actor.id} is the requester or implementer of {change.id}; consent comes "
                "from the customer (separation of duties)",
                override_by=", ".join(approvers) or None,
            )
        if (
            person is None
            or "customer-approver" not in person.spec.roles
            or tenant not in person.spec.tenants
        ):
            raise Refused(
                f"{ctx.actor.id} is not a customer approver of tenant {tenant}",
                override_by=", ".join(approvers) or None,
            )
        given = schedule_store.add_consent(
            conn,
            number,
            tenant=tenant,
            person=ctx.actor.id,
            content_hash=change.content_hash,
            given_at=ctx.now(),
            comment=(comment or "").strip(),
        )
        audit_service.record(conn, ctx, "change.consented", "change", change.id, None, given)
    return given
