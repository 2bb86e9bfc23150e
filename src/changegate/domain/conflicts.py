"""Calendar conflicts of a change, and the SchedulingPolicy that says which of them block.

Pure: a change's time on the calendar and what it touches arrive as a `Booking`; the services
layer builds one per scheduled or implementing change, and computes from the calendar which
tenants the change would touch outside their windows or inside a freeze. This module turns all
of it into `Conflict`s whose severity comes from one place, the policy (docs/scheduling.md).

Two bookings overlap when their half-open intervals share an instant: a change ending at 10:00
and one starting at 10:00 do not. Between two overlapping bookings there is at most one
conflict of each kind, naming everything the two share:

- tenant-overlap: both touch a tenant;
- database-overlap: both touch a database service (PostgreSQL): a service in either booking's
  `database_services` that both touch (in `services` or `database_services`);
- service-overlap: both touch another shared service;
- cluster-overlap: both touch a cluster;
- service-tenant-overlap: one touches a service that a tenant of the other uses (either way
  round), leaving out services both touch (already an overlap above);
- implementer-double-booked: the same implementer on both.

Outside-window and in-freeze conflicts concern the change alone: tenants with the same deciding
message make one conflict, so a platform window shared by 500 tenants is one line, not 500.

This module imports nothing of the catalog at import time: the catalog registers
`SchedulingPolicySpec` as a kind, so it must be able to import this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError


class ConflictKind(StrEnum):
    """What two changes, or a change and the calendar, clash over; the order is the report's."""

    TENANT_OVERLAP = "tenant-overlap"
    SERVICE_OVERLAP = "service-overlap"
    DATABASE_OVERLAP = "database-overlap"
    CLUSTER_OVERLAP = "cluster-overlap"
    SERVICE_TENANT_OVERLAP = "service-tenant-overlap"
    IMPLEMENTER_DOUBLE_BOOKED = "implementer-double-booked"
    OUTSIDE_WINDOW = "outside-window"
    IN_FREEZE = "in-freeze"


_KIND_ORDER = {kind: index for index, kind in enumerate(ConflictKind)}


class ConflictSeverity(StrEnum):
    """Whether a conflict stops scheduling (blocking) or is shown and scored (warning)."""

    BLOCKING = "blocking"
    WARNING = "warning"


DEFAULT_SEVERITIES: Mapping[ConflictKind, ConflictSeverity] = {
    kind: (
        ConflictSeverity.BLOCKING
        if kind in (ConflictKind.IN_FREEZE, ConflictKind.DATABASE_OVERLAP)
        else ConflictSeverity.WARNING
    )
    for kind in ConflictKind
}
"""A freeze and two changes on the same database service block; the rest warn."""


# --------------------------------------------------------------------------- the policy

# The same pattern as catalog.LabelKey (which this module cannot import: see the module
# docstring); a unit test keeps the two in step.
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$"
)
MAX_HORIZON = timedelta(days=366)
_ZERO = re.compile(r"[0PTWDHMSdhms]*0[0PTWDHMSdhms]*")


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("scheduling_policy", message)


def _duration(value: Any, *, zero: bool) -> Any:
    # Parsed by the catalog's own duration grammar, imported here and not at the top: the
    # catalog imports this module to register the kind, and by the time a document is
    # validated both modules are loaded.
    from changegate.domain import catalog

    if isinstance(value, timedelta):
        return value
    if zero and isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return timedelta(0)
    if not isinstance(value, str):
        raise _invalid("a duration is text, e.g. 30m, 4h, 90d or PT4H")
    if zero and value == "0":
        return timedelta(0)
    if zero and _ZERO.fullmatch(value):
        # The grammar refuses zero ("must be longer than zero"); a gap may be none, also as
        # written back by model_dump ("PT0S"). Any non-zero digit keeps the same shape.
        try:
            catalog.parse_duration(value.replace("0", "1"))
        except PydanticCustomError:
            raise _invalid(f"not a duration: {value!r} (e.g. 0, 30m, 4h or PT30M)") from None
        return timedelta(0)
    return catalog.parse_duration(value)


def _gap(value: Any) -> Any:
    return _duration(value, zero=True)


def _span(value: Any) -> Any:
    return _duration(value, zero=False)


def _gap_bounds(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise _invalid("wave_gap must not be negative")
    if value > MAX_HORIZON:
        raise _invalid(f"wave_gap must be at most {MAX_HORIZON.days} days")
    return value


def _horizon_bounds(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise _invalid("horizon must be longer than zero")
    if value > MAX_HORIZON:
        raise _invalid(f"horizon must be at most {MAX_HORIZON.days} days")
    return value


def _merge_severities(
    value: dict[ConflictKind, ConflictSeverity],
) -> dict[ConflictKind, ConflictSeverity]:
    # A policy names only the kinds it changes; the rest keep their defaults.
    merged = dict(DEFAULT_SEVERITIES) | value
    return {kind: merged[kind] for kind in ConflictKind}


WaveGap = Annotated[timedelta, BeforeValidator(_gap), AfterValidator(_gap_bounds)]
Horizon = Annotated[timedelta, BeforeValidator(_span), AfterValidator(_horizon_bounds)]


class SchedulingPolicySpec(BaseModel):
    """How scheduling treats conflicts and splits a change into waves; every field defaults.

    A catalog holds at most one SchedulingPolicy; without one the defaults apply
    (docs/scheduling.md). `conflicts` names only the kinds whose severity it changes.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    conflicts: Annotated[
        dict[ConflictKind, ConflictSeverity], AfterValidator(_merge_severities)
    ] = Field(default_factory=lambda: dict(DEFAULT_SEVERITIES))
    max_tenants_per_wave: int = Field(default=50, ge=1, le=10_000)
    wave_gap: WaveGap = timedelta(0)
    horizon: Horizon = timedelta(days=90)
    canary_label: Annotated[str, StringConstraints(pattern=LABEL_KEY_PATTERN)] = (
        "changegate.io/canary"
    )

    def severity(self, kind: ConflictKind) -> ConflictSeverity:
        """The configured severity of a conflict kind."""
        return self.conflicts.get(kind, DEFAULT_SEVERITIES[kind])

    def blocks(self, kind: ConflictKind) -> bool:
        """Whether a conflict of this kind blocks scheduling."""
        return self.severity(kind) is ConflictSeverity.BLOCKING

    def references(self) -> Iterator[Any]:
        """No ids to resolve (the catalog asks every spec for its references)."""
        return iter(())


# --------------------------------------------------------------------------- bookings


def _aware(instant: datetime, name: str) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), not naive {instant}")


@dataclass(frozen=True, slots=True)
class Booking:
    """A change's time on the calendar, `[start, end)`, and what it touches then.

    `database_services` holds the PostgreSQL services whose data or configuration the change
    touches (directly or through its tenants' databases); `tenant_services` maps each of its
    tenants to the services that tenant uses, for service-tenant overlaps.
    """

    change_id: str
    state: str
    start: datetime
    end: datetime
    tenants: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()
    database_services: frozenset[str] = frozenset()
    clusters: frozenset[str] = frozenset()
    tenant_services: Mapping[str, frozenset[str]] = field(default_factory=dict)
    implementer: str | None = None

    def __post_init__(self) -> None:
        _aware(self.start, "start")
        _aware(self.end, "end")
        if self.start >= self.end:
            raise ValueError(f"booking of {self.change_id} must end after it starts")

    def overlaps(self, other: Booking) -> bool:
        """Whether the two half-open intervals share an instant (touching ones do not)."""
        return self.start < other.end and other.start < self.end

    @property
    def touched_services(self) -> frozenset[str]:
        """Every service the change touches, database services included."""
        return self.services | self.database_services


@dataclass(frozen=True, slots=True)
class Conflict:
    """One clash, whether it blocks, the other change if any, and what it is about."""

    kind: ConflictKind
    blocking: bool
    other_change: str | None
    message: str
    subjects: tuple[str, ...] = ()
    """The tenants, services, clusters or implementer the conflict is about, sorted."""

    @property
    def severity(self) -> ConflictSeverity:
        """Blocking or warning, as the policy said when the conflict was found."""
        return ConflictSeverity.BLOCKING if self.blocking else ConflictSeverity.WARNING

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return {
            "kind": self.kind.value,
            "severity": self.severity.value,
            "blocking": self.blocking,
            "other_change": self.other_change,
            "message": self.message,
            "subjects": list(self.subjects),
        }

    def for_risk(self) -> tuple[bool, str]:
        """(blocking, message): the fields of risk.CalendarConflict.

        A tuple and not the risk type itself: risk imports the catalog, which imports this
        module to register the SchedulingPolicy kind.
        """
        return (self.blocking, self.message)


# --------------------------------------------------------------------------- finding them

_LISTED = 10


def _names(items: Sequence[str], noun: str, plural: str | None = None) -> str:
    """`tenant acme`, `tenants acme, beta`, `tenants a, b, ... and 3 more`."""
    word = noun if len(items) == 1 else (plural or f"{noun}s")
    shown = ", ".join(items[:_LISTED])
    more = f" and {len(items) - _LISTED} more" if len(items) > _LISTED else ""
    return f"{word} {shown}{more}"


def _at(instant: datetime) -> str:
    instant = instant.astimezone(UTC)
    return instant.strftime("%Y-%m-%d %H:%M" if instant.second == 0 else "%Y-%m-%d %H:%M:%S")


def _describe(booking: Booking) -> str:
    start, end = _at(booking.start), _at(booking.end)
    if end[:10] == start[:10]:
        end = end[11:]  # the same day: `2026-11-02 10:00–12:00 UTC`
    return f"change {booking.change_id} ({booking.state}, {start}–{end} UTC)"


def _between(change: Booking, other: Booking, policy: SchedulingPolicySpec) -> Iterator[Conflict]:
    """The conflicts of change with one overlapping booking, at most one per kind."""
    them = _describe(other)

    def conflict(kind: ConflictKind, subjects: Sequence[str], message: str) -> Conflict:
        return Conflict(kind, policy.blocks(kind), other.change_id, message, tuple(subjects))

    if shared := sorted(change.tenants & other.tenants):
        yield conflict(
            ConflictKind.TENANT_OVERLAP, shared, f"{them} also touches {_names(shared, 'tenant')}"
        )
    both = change.touched_services & other.touched_services
    databases = both & (change.database_services | other.database_services)
    if shared := sorted(databases):
        yield conflict(
            ConflictKind.DATABASE_OVERLAP,
            shared,
            f"{them} also touches database {_names(shared, 'service')}",
        )
    if shared := sorted(both - databases):
        yield conflict(
            ConflictKind.SERVICE_OVERLAP,
            shared,
            f"{them} also touches {_names(shared, 'service')}",
        )
    if shared := sorted(change.clusters & other.clusters):
        yield conflict(
            ConflictKind.CLUSTER_OVERLAP, shared, f"{them} also touches {_names(shared, 'cluster')}"
        )
    if pairs := _service_tenant_pairs(change, other, both):
        parts = []
        for mine, whose, toucher in ((True, them, "this change"), (False, "this change", them)):
            by_service: dict[str, list[str]] = {}
            for side, service, tenant in pairs:
                if side is mine:
                    by_service.setdefault(service, []).append(tenant)
            if by_service:
                parts.append(f"{toucher} touches {_uses(by_service, whose)}")
        subjects = [f"{service}/{tenant}" for _, service, tenant in pairs]
        yield conflict(ConflictKind.SERVICE_TENANT_OVERLAP, sorted(subjects), "; ".join(parts))
    if change.implementer is not None and change.implementer == other.implementer:
        yield conflict(
            ConflictKind.IMPLEMENTER_DOUBLE_BOOKED,
            [change.implementer],
            f"implementer {change.implementer} is also booked on {them}",
        )


def _service_tenant_pairs(
    change: Booking, other: Booking, both: frozenset[str]
) -> list[tuple[bool, str, str]]:
    """(this change touches the service, service, tenant) for each service-tenant overlap."""
    pairs: list[tuple[bool, str, str]] = []
    for mine, services, tenants, uses in (
        (True, change.touched_services, other.tenants, other.tenant_services),
        (False, other.touched_services, change.tenants, change.tenant_services),
    ):
        for tenant in tenants:
            for service in uses.get(tenant, frozenset()) & (services - both):
                pairs.append((mine, service, tenant))
    pairs.sort(key=lambda pair: (not pair[0], pair[1], pair[2]))
    return pairs


def _uses(by_service: Mapping[str, list[str]], whose: str) -> str:
    """`service redis-1, used by tenant acme of X` or `services a (tenant b), c (...) ...`."""
    if len(by_service) == 1:
        [(service, tenants)] = by_service.items()
        return f"service {service}, used by {_names(tenants, 'tenant')} of {whose}"
    items = [f"{service} ({_names(tenants, 'tenant')})" for service, tenants in by_service.items()]
    more = f" and {len(items) - _LISTED} more" if len(items) > _LISTED else ""
    return f"services {', '.join(items[:_LISTED])}{more}, used by tenants of {whose}"


def _calendar(
    kind: ConflictKind, decided: Mapping[str, str], policy: SchedulingPolicySpec
) -> Iterator[Conflict]:
    """One conflict per distinct deciding message, naming the tenants it holds for."""
    by_message: dict[str, list[str]] = {}
    for tenant, message in decided.items():
        by_message.setdefault(message, []).append(tenant)
    for message, tenants in by_message.items():
        tenants.sort()
        yield Conflict(
            kind,
            policy.blocks(kind),
            None,
            f"{_names(tenants, 'tenant')}: {message}",
            tuple(tenants),
        )


def find_conflicts(
    change: Booking,
    others: Sequence[Booking],
    policy: SchedulingPolicySpec,
    *,
    outside_window: Mapping[str, str] | None = None,
    in_freeze: Mapping[str, str] | None = None,
) -> list[Conflict]:
    """Every conflict of the change, ordered by kind, then other change, then message.

    `others` are the scheduled or implementing changes (the change itself and bookings that
    do not overlap it are skipped). `outside_window` and `in_freeze` map each tenant the
    calendar refuses to the message naming the deciding window(s).
    """
    found: list[Conflict] = []
    for other in others:
        if other.change_id == change.change_id or not change.overlaps(other):
            continue
        found.extend(_between(change, other, policy))
    found.extend(_calendar(ConflictKind.OUTSIDE_WINDOW, outside_window or {}, policy))
    found.extend(_calendar(ConflictKind.IN_FREEZE, in_freeze or {}, policy))
    found.sort(key=lambda c: (_KIND_ORDER[c.kind], c.other_change or "", c.message))
    return found


def blocking(conflicts: Sequence[Conflict]) -> list[Conflict]:
    """The conflicts that stop scheduling."""
    return [conflict for conflict in conflicts if conflict.blocking]


def is_canary(labels: Mapping[str, str], policy: SchedulingPolicySpec) -> bool:
    """Whether a tenant's labels mark it canary or internal (`<canary_label>: "true"`)."""
    return labels.get(policy.canary_label, "").lower() == "true"
