"""Scheduling: the earliest common slot of a change, and its tenant waves when none fits all.

Pure: the allowed time of each tenant arrives as intervals (the services layer takes them from
the calendar and subtracts the blocking conflicts); this module only does the arithmetic and
the wave rules, so it is tested alone and explained in docs/scheduling.md.

Time is a set of instants. An interval is half-open `[start, end)` with UTC-aware ends; a list
of them is *normalized* when sorted, without empty intervals, and with overlapping or touching
intervals merged (`[9:00, 10:00)` and `[10:00, 11:00)` are one hour-long stretch of allowed
time, so a two-hour change may run across the seam). Every public function normalizes what it
is given, so callers may pass lists in any order.

**Earliest slot.** `earliest_slot` intersects the lists one after the other, clipped to the
horizon, and drops every piece shorter than the duration (intersecting more lists only shrinks
a piece, so a piece too short now can never hold the slot). The answer is the start of the
first piece left: linear in the number of intervals, whatever their length in minutes.

**Waves.** `plan` follows what a change manager does by hand:

1. Tenants without any slot of the duration inside their windows before the horizon ends are
   *unscheduled* at once, with why; they never force the others into waves.
2. If the rest number at most `max_per_wave` and one slot fits all their windows, that is the
   plan: one wave (`single_slot` is true).
3. Otherwise waves, ordered by risk. Tenants go in *stages*: the canary (or internal) tenants
   first, then each tier from the lowest `tier_rank` up. Stages are sequential: every wave of
   a stage ends (plus `wave_gap`) before the next wave starts, so a gold tenant never changes
   before every bronze one is done. Within a stage tenants are taken canary-first, then by
   tier rank, then by id.
4. Within a stage, tenants whose usable windows are identical (the same intervals inside the
   horizon, long enough for the change) form a *window group*. A wave never mixes deployment
   models, so a dedicated tenant (dedicated-namespace, dedicated-cluster) never shares a slot
   with multi-tenant ones, and is scheduled in its own windows.
5. The next wave is the window group whose next slot (after the previous wave's end plus the
   gap) comes first; ties go to the group whose first waiting tenant is lowest in risk order.
   The wave takes up to `max_per_wave` of that group's tenants in risk order, and fills any room
   left with tenants of the same stage and deployment model from other groups whose windows
   also hold that slot. A group whose windows hold no slot before the horizon ends any more
   leaves its tenants unscheduled, saying which wave used up the time.

A consequence worth knowing: because stages are sequential, a canary tenant whose only window
is late in the horizon holds back every later stage. The plan says so (the later waves start
after it), and the reasons name each tenant's stage.

Every result is deterministic: the same inputs give the same plan, whatever the input order.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from changegate.domain import canonical

Interval = tuple[datetime, datetime]
"""A half-open `[start, end)` stretch of time with UTC-aware ends."""

MULTI_TENANT = "multi-tenant"


# --------------------------------------------------------------------------- interval algebra


def normalize(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, empty intervals dropped, overlapping or touching intervals merged."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _is_normal(intervals: Sequence[Interval]) -> bool:
    previous_end: datetime | None = None
    for start, end in intervals:
        if start >= end or (previous_end is not None and start <= previous_end):
            return False
        previous_end = end
    return True


def _normal(intervals: Sequence[Interval]) -> Sequence[Interval]:
    # The calendar hands over normalized lists; checking is cheaper than sorting again.
    return intervals if _is_normal(intervals) else normalize(intervals)


def _intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """Both normalized; the result is normalized (a gap in either input separates pieces)."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        a_start, a_end = a[i]
        b_start, b_end = b[j]
        start = max(a_start, b_start)
        end = min(a_end, b_end)
        if start < end:
            out.append((start, end))
        if a_end < b_end:
            i += 1
        else:
            j += 1
    return out


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """The instants in both a and b, normalized."""
    return _intersect(_normal(a), _normal(b))


def subtract(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """The instants in a and not in b, normalized (used to cut freezes and conflicts out)."""
    a, b = _normal(a), _normal(b)
    out: list[Interval] = []
    j = 0
    for start, end in a:
        cursor = start
        while j < len(b) and b[j][1] <= cursor:
            j += 1
        k = j
        while k < len(b) and b[k][0] < end:
            if b[k][0] > cursor:
                out.append((cursor, b[k][0]))
            cursor = max(cursor, b[k][1])
            if cursor >= end:
                break
            k += 1
        if cursor < end:
            out.append((cursor, end))
    return out


def _fitting(intervals: Iterable[Interval], duration: timedelta) -> list[Interval]:
    return [(start, end) for start, end in intervals if end - start >= duration]


def _check_instants(duration: timedelta, *instants: datetime) -> None:
    if duration <= timedelta(0):
        raise ValueError(f"a slot needs a positive duration, not {duration}")
    for instant in instants:
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError(f"instants must be timezone-aware (UTC), not naive {instant}")


def usable(
    intervals: Sequence[Interval], duration: timedelta, not_before: datetime, until: datetime
) -> list[Interval]:
    """The pieces of intervals inside `[not_before, until)` long enough to hold the duration."""
    _check_instants(duration, not_before, until)
    if not_before >= until:
        return []
    return _fitting(_intersect(_normal(intervals), [(not_before, until)]), duration)


def earliest_slot(
    free: Sequence[Sequence[Interval]],
    duration: timedelta,
    not_before: datetime,
    until: datetime,
) -> datetime | None:
    """The earliest t >= not_before with `[t, t + duration)` free in every list, ending by until.

    "Free in a list" means inside one of its (normalized) intervals. No lists at all constrain
    nothing: the answer is then not_before, if the duration fits before until. None when no
    slot exists. Linear in the total number of intervals.
    """
    _check_instants(duration, not_before, until)
    if not_before + duration > until:
        return None
    common: list[Interval] = [(not_before, until)]
    for intervals in free:
        common = _fitting(_intersect(common, _normal(intervals)), duration)
        if not common:
            return None
    return common[0][0]


def _next_start(
    starts: Sequence[datetime],
    ends: Sequence[datetime],
    cursor: datetime,
    duration: timedelta,
) -> datetime | None:
    """First slot at or after cursor in usable intervals (each already long enough)."""
    index = bisect.bisect_right(ends, cursor)
    while index < len(starts):
        start = max(starts[index], cursor)
        if ends[index] - start >= duration:
            return start
        index += 1
    return None


def _contains(starts: Sequence[datetime], ends: Sequence[datetime], slot: Interval) -> bool:
    index = bisect.bisect_right(starts, slot[0]) - 1
    return index >= 0 and ends[index] >= slot[1]


# --------------------------------------------------------------------------- waves


@dataclass(frozen=True, slots=True)
class TenantSlotInfo:
    """What wave planning needs to know of a tenant: its risk position and isolation.

    `tier_rank` orders tiers, lower first (the services derive it from the tiers'
    `risk_weight`); `canary` marks canary or internal tenants, which go before everyone.
    """

    id: str
    tier: str
    tier_rank: int
    deployment_model: str
    canary: bool = False

    @property
    def dedicated(self) -> bool:
        """Own namespace or own cluster: never in a wave with multi-tenant tenants."""
        return self.deployment_model != MULTI_TENANT


def _risk_key(tenant: TenantSlotInfo) -> tuple[bool, int, str]:
    return (not tenant.canary, tenant.tier_rank, tenant.id)


def _stage_key(tenant: TenantSlotInfo) -> tuple[int, int]:
    # Canary tenants of every tier form the first stage together.
    return (0, 0) if tenant.canary else (1, tenant.tier_rank)


@dataclass(frozen=True, slots=True)
class Wave:
    """One slot of the change and the tenants it touches then, each with why it is here."""

    index: int
    start: datetime
    end: datetime
    tenants: tuple[str, ...]
    reasons: Mapping[str, str]

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {
            "index": self.index,
            "start": canonical.to_utc_text(self.start),
            "end": canonical.to_utc_text(self.end),
            "tenants": list(self.tenants),
            "reasons": {tenant: self.reasons[tenant] for tenant in self.tenants},
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """The waves of a change in order, and the tenants no slot was found for, with why.

    `single_slot` is true when one slot fits every schedulable tenant (one wave).
    """

    waves: tuple[Wave, ...]
    unscheduled: Mapping[str, str] = field(default_factory=dict)
    single_slot: bool = False

    @property
    def start(self) -> datetime | None:
        """When the first wave starts; None without waves."""
        return self.waves[0].start if self.waves else None

    @property
    def end(self) -> datetime | None:
        """When the last wave ends; None without waves."""
        return self.waves[-1].end if self.waves else None

    @property
    def complete(self) -> bool:
        """Every tenant has a wave."""
        return not self.unscheduled

    def wave_of(self, tenant: str) -> Wave | None:
        """The wave holding the tenant, or None if it is unscheduled or unknown."""
        for wave in self.waves:
            if tenant in wave.reasons:
                return wave
        return None

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {
            "single_slot": self.single_slot,
            "start": canonical.to_utc_text(self.start) if self.start else None,
            "end": canonical.to_utc_text(self.end) if self.end else None,
            "waves": [wave.as_dict() for wave in self.waves],
            "unscheduled": dict(self.unscheduled),
        }


def format_instant(instant: datetime) -> str:
    """`2026-11-02 22:00 UTC` (seconds only when not zero): how messages show an instant."""
    instant = instant.astimezone(UTC)
    pattern = "%Y-%m-%d %H:%M UTC" if instant.second == 0 else "%Y-%m-%d %H:%M:%S UTC"
    return instant.strftime(pattern)


def format_duration(duration: timedelta) -> str:
    """`4h`, `1h30m`, `2d`: the catalog's own way of writing durations."""
    seconds = int(duration.total_seconds())
    if seconds <= 0:
        return "0m"
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _risk_text(tenant: TenantSlotInfo) -> str:
    if tenant.canary:
        return f"canary tenant (tier {tenant.tier}), goes first"
    return f"tier {tenant.tier} (rank {tenant.tier_rank})"


@dataclass(slots=True)
class _Group:
    """Tenants of one stage and deployment model with the same usable windows."""

    model: str
    starts: list[datetime]
    ends: list[datetime]
    size: int  # tenants sharing these windows, every stage counted
    members: list[TenantSlotInfo] = field(default_factory=list)
    taken: int = 0

    @property
    def waiting(self) -> bool:
        return self.taken < len(self.members)

    def first_waiting(self) -> TenantSlotInfo:
        return self.members[self.taken]

    def window_text(self) -> str:
        others = self.size - 1
        if self.model == MULTI_TENANT:
            if others == 0:
                return "no other tenant has its windows"
            return f"shares its windows with {_plural(others, 'other tenant')}"
        if others == 0:
            return f"{self.model}: scheduled in its own windows"
        return (
            f"{self.model}: shares its windows with {_plural(others, f'other {self.model} tenant')}"
        )


def _check_plan_inputs(
    tenants: Sequence[TenantSlotInfo],
    free: Mapping[str, Sequence[Interval]],
    max_per_wave: int,
    wave_gap: timedelta,
) -> None:
    if max_per_wave < 1:
        raise ValueError(f"max_per_wave must be at least 1, not {max_per_wave}")
    if wave_gap < timedelta(0):
        raise ValueError(f"wave_gap must not be negative, not {wave_gap}")
    seen: set[str] = set()
    for tenant in tenants:
        if tenant.id in seen:
            raise ValueError(f"tenant {tenant.id!r} is listed twice")
        seen.add(tenant.id)
        if tenant.id not in free:
            raise ValueError(f"no free intervals given for tenant {tenant.id!r}")


def plan(
    tenants: Sequence[TenantSlotInfo],
    free: Mapping[str, Sequence[Interval]],
    duration: timedelta,
    not_before: datetime,
    until: datetime,
    *,
    max_per_wave: int,
    wave_gap: timedelta = timedelta(0),
) -> Plan:
    """One slot for every tenant if one fits, else waves ordered by risk (module docstring).

    `free` holds each tenant's allowed time (windows minus freezes and blocking conflicts);
    every slot is `[t, t + duration)` with `not_before <= t` and `t + duration <= until`.
    """
    _check_instants(duration, not_before, until)
    _check_plan_inputs(tenants, free, max_per_wave, wave_gap)
    ordered = sorted(tenants, key=_risk_key)

    # Usable windows per tenant, computed once per distinct list (most tenants share a few).
    usable_of: dict[tuple[Interval, ...], tuple[Interval, ...]] = {}
    signature: dict[str, tuple[Interval, ...]] = {}
    for tenant in ordered:
        raw = tuple(free[tenant.id])
        found = usable_of.get(raw)
        if found is None:
            found = tuple(usable(raw, duration, not_before, until))
            usable_of[raw] = found
        signature[tenant.id] = found

    unscheduled: dict[str, str] = {}
    schedulable: list[TenantSlotInfo] = []
    for tenant in ordered:
        if signature[tenant.id]:
            schedulable.append(tenant)
        else:
            unscheduled[tenant.id] = (
                f"{_risk_text(tenant)}; no {format_duration(duration)} slot inside its windows "
                f"between {format_instant(not_before)} and {format_instant(until)}"
            )
    if not schedulable:
        return Plan((), unscheduled, single_slot=False)

    if len(schedulable) <= max_per_wave:
        distinct = list(dict.fromkeys(signature[tenant.id] for tenant in schedulable))
        slot = earliest_slot(distinct, duration, not_before, until)
        if slot is not None:
            if len(schedulable) == 1:
                shared = "the earliest slot inside its windows"
            else:
                shared = f"one slot fits the windows of all {len(schedulable)} tenants"
            reasons = {tenant.id: f"{_risk_text(tenant)}; {shared}" for tenant in schedulable}
            wave = Wave(
                1, slot, slot + duration, tuple(tenant.id for tenant in schedulable), reasons
            )
            return Plan((wave,), unscheduled, single_slot=True)

    waves = _waves(
        schedulable, signature, unscheduled, duration, not_before, until, max_per_wave, wave_gap
    )
    in_order = {tenant.id: unscheduled[tenant.id] for tenant in ordered if tenant.id in unscheduled}
    return Plan(waves, in_order, single_slot=False)


def _waves(
    schedulable: Sequence[TenantSlotInfo],
    signature: Mapping[str, tuple[Interval, ...]],
    unscheduled: dict[str, str],
    duration: timedelta,
    not_before: datetime,
    until: datetime,
    max_per_wave: int,
    wave_gap: timedelta,
) -> tuple[Wave, ...]:
    """The waves of schedulable tenants (steps 3 to 5); the rest are added to unscheduled."""
    sizes: dict[tuple[str, tuple[Interval, ...]], int] = {}
    for tenant in schedulable:
        key = (tenant.deployment_model, signature[tenant.id])
        sizes[key] = sizes.get(key, 0) + 1

    # Stages in risk order; in each, groups by (model, windows) in order of first member.
    stages: dict[tuple[int, int], dict[tuple[str, tuple[Interval, ...]], _Group]] = {}
    for tenant in schedulable:  # already in risk order
        groups = stages.setdefault(_stage_key(tenant), {})
        key = (tenant.deployment_model, signature[tenant.id])
        group = groups.get(key)
        if group is None:
            windows = signature[tenant.id]
            group = _Group(
                model=tenant.deployment_model,
                starts=[start for start, _ in windows],
                ends=[end for _, end in windows],
                size=sizes[key],
            )
            groups[key] = group
        group.members.append(tenant)

    drafts: list[tuple[datetime, list[tuple[TenantSlotInfo, str]]]] = []
    cursor = not_before
    for stage in sorted(stages):
        pending = list(stages[stage].values())
        while pending:
            best: tuple[datetime, tuple[bool, int, str], _Group] | None = None
            still: list[_Group] = []
            for group in pending:
                slot = _next_start(group.starts, group.ends, cursor, duration)
                if slot is None:
                    _give_up(group, unscheduled, drafts, cursor, duration, until, wave_gap)
                    continue
                still.append(group)
                candidate = (slot, _risk_key(group.first_waiting()), group)
                if best is None or candidate[:2] < best[:2]:
                    best = candidate
            pending = still
            if best is None:
                break
            slot, _, chosen = best
            drafts.append((slot, _fill(chosen, pending, slot, duration, max_per_wave)))
            pending = [group for group in pending if group.waiting]
            cursor = slot + duration + wave_gap

    total = len(drafts)
    waves = []
    for index, (slot, members) in enumerate(drafts, start=1):
        reasons = {
            tenant.id: f"{_risk_text(tenant)}; {why}; wave {index} of {total}"
            for tenant, why in members
        }
        tenant_ids = tuple(tenant.id for tenant, _ in members)
        waves.append(Wave(index, slot, slot + duration, tenant_ids, reasons))
    return tuple(waves)


def _fill(
    chosen: _Group,
    pending: Sequence[_Group],
    slot: datetime,
    duration: timedelta,
    max_per_wave: int,
) -> list[tuple[TenantSlotInfo, str]]:
    """Up to max_per_wave tenants: the chosen group's first, then others fitting the slot."""
    members: list[tuple[TenantSlotInfo, str]] = []
    batch = chosen.members[chosen.taken : chosen.taken + max_per_wave]
    chosen.taken += len(batch)
    window = chosen.window_text()
    members += [(tenant, window) for tenant in batch]
    room = max_per_wave - len(members)
    if room <= 0:
        return members
    span = (slot, slot + duration)
    others = sorted(
        (g for g in pending if g is not chosen and g.waiting and g.model == chosen.model),
        key=lambda g: _risk_key(g.first_waiting()),
    )
    for group in others:
        if room <= 0:
            break
        if not _contains(group.starts, group.ends, span):
            continue
        extra = group.members[group.taken : group.taken + room]
        group.taken += len(extra)
        room -= len(extra)
        why = f"{group.window_text()}; its windows also hold this wave's slot"
        members += [(tenant, why) for tenant in extra]
    members.sort(key=lambda item: _risk_key(item[0]))
    return members


def _give_up(
    group: _Group,
    unscheduled: dict[str, str],
    drafts: Sequence[tuple[datetime, Sequence[object]]],
    cursor: datetime,
    duration: timedelta,
    until: datetime,
    wave_gap: timedelta,
) -> None:
    """Every waiting tenant of the group is unscheduled: earlier waves used up its windows."""
    if drafts:
        last_start = drafts[-1][0]
        gap = f" plus the {format_duration(wave_gap)} gap" if wave_gap > timedelta(0) else ""
        after = f"after wave {len(drafts)} ends at {format_instant(last_start + duration)}{gap}"
    else:  # cannot happen: before any wave, usable windows always hold a slot
        after = f"after {format_instant(cursor)}"
    while group.waiting:
        tenant = group.first_waiting()
        group.taken += 1
        unscheduled[tenant.id] = (
            f"{_risk_text(tenant)}; no {format_duration(duration)} slot left inside its "
            f"windows {after} and before the horizon ends at {format_instant(until)}"
        )
