"""Calendar conflicts between bookings and with the calendar, and the SchedulingPolicy.

Every booking is built by `booking()`: change CHG-1 from 10:00 to 12:00 UTC on Monday
2026-11-02 touching nothing, unless told otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from changegate.domain import catalog, conflicts, validation
from changegate.domain.conflicts import (
    Booking,
    Conflict,
    ConflictKind,
    ConflictSeverity,
    SchedulingPolicySpec,
)
from changegate.domain.risk import CalendarConflict
from changegate.errors import InvalidInput

DEFAULT = SchedulingPolicySpec()
WARN = ConflictSeverity.WARNING
BLOCK = ConflictSeverity.BLOCKING


def h(hour: float) -> datetime:
    return datetime(2026, 11, 2, tzinfo=UTC) + timedelta(hours=hour)


def booking(
    change_id: str = "CHG-1",
    start: float = 10,
    end: float = 12,
    *,
    state: str = "scheduled",
    tenants: tuple[str, ...] = (),
    services: tuple[str, ...] = (),
    databases: tuple[str, ...] = (),
    clusters: tuple[str, ...] = (),
    uses: dict[str, tuple[str, ...]] | None = None,
    implementer: str | None = None,
) -> Booking:
    return Booking(
        change_id=change_id,
        state=state,
        start=h(start),
        end=h(end),
        tenants=frozenset(tenants),
        services=frozenset(services),
        database_services=frozenset(databases),
        clusters=frozenset(clusters),
        tenant_services={t: frozenset(s) for t, s in (uses or {}).items()},
        implementer=implementer,
    )


def policy(**data: Any) -> SchedulingPolicySpec:
    return validation.validate_plain(SchedulingPolicySpec, data, source="scheduling.yaml")


def kinds(found: list[Conflict]) -> list[tuple[ConflictKind, str | None]]:
    return [(c.kind, c.other_change) for c in found]


# --------------------------------------------------------------------------- each kind


def test_tenant_overlap() -> None:
    change = booking(tenants=("acme", "beta", "core"))
    other = booking("CHG-2", 11, 13, state="implementing", tenants=("core", "acme", "zeta"))
    [found] = conflicts.find_conflicts(change, [other], DEFAULT)
    assert found == Conflict(
        ConflictKind.TENANT_OVERLAP,
        False,
        "CHG-2",
        "change CHG-2 (implementing, 2026-11-02 11:00–13:00 UTC) also touches tenants acme, core",
        ("acme", "core"),
    )


def test_service_overlap() -> None:
    change = booking(services=("redis-1", "traefik-1"))
    other = booking("CHG-2", 9, 10.5, services=("redis-1",))
    [found] = conflicts.find_conflicts(change, [other], DEFAULT)
    assert (found.kind, found.blocking, found.subjects) == (
        ConflictKind.SERVICE_OVERLAP,
        False,
        ("redis-1",),
    )
    assert found.message == (
        "change CHG-2 (scheduled, 2026-11-02 09:00–10:30 UTC) also touches service redis-1"
    )


def test_database_overlap_blocks_by_default_and_is_not_also_a_service_overlap() -> None:
    change = booking(services=("pg-1", "redis-1"), databases=("pg-1",))
    other = booking("CHG-2", services=("pg-1", "redis-1"))  # pg-1 named as a plain service
    found = conflicts.find_conflicts(change, [other], DEFAULT)
    assert [(c.kind, c.blocking, c.subjects) for c in found] == [
        (ConflictKind.SERVICE_OVERLAP, False, ("redis-1",)),
        (ConflictKind.DATABASE_OVERLAP, True, ("pg-1",)),
    ]
    assert found[1].message.endswith("also touches database service pg-1")
    # The same the other way round: either booking may know pg-1 is a database.
    swapped = conflicts.find_conflicts(
        booking("CHG-2", services=("pg-1", "redis-1")), [change], DEFAULT
    )
    assert [(c.kind, c.subjects) for c in swapped] == [
        (ConflictKind.SERVICE_OVERLAP, ("redis-1",)),
        (ConflictKind.DATABASE_OVERLAP, ("pg-1",)),
    ]


def test_database_overlap_through_tenant_databases() -> None:
    # Two module updates on different tenants whose databases share one PostgreSQL service.
    change = booking(tenants=("acme",), databases=("pg-1",))
    other = booking("CHG-2", tenants=("beta",), databases=("pg-1",))
    [found] = conflicts.find_conflicts(change, [other], DEFAULT)
    assert (found.kind, found.blocking) == (ConflictKind.DATABASE_OVERLAP, True)


def test_cluster_overlap() -> None:
    change = booking(clusters=("shared-1", "shared-2"))
    other = booking("CHG-2", clusters=("shared-2",))
    [found] = conflicts.find_conflicts(change, [other], DEFAULT)
    assert (found.kind, found.subjects) == (ConflictKind.CLUSTER_OVERLAP, ("shared-2",))
    assert found.message.endswith("also touches cluster shared-2")


def test_service_tenant_overlap_when_this_change_touches_the_service() -> None:
    change = booking(services=("redis-1",))
    other = booking("CHG-2", tenants=("acme", "beta"), uses={"acme": ("redis-1",), "beta": ()})
    [found] = conflicts.find_conflicts(change, [other], DEFAULT)
    assert (found.kind, found.blocking, found.subjects) == (
        ConflictKind.SERVICE_TENANT_OVERLAP,
        False,
        ("redis-1/acme",),
    )
    assert found.message == (
        "this change touches service redis-1, used by tenant acme of change CHG-2 "
        "(scheduled, 2026-11-02 10:00–12:00 UTC)"
    )


def test_service_tenant_overlap_when_the_other_change_touches_the_service() -> None:
    change = booking(tenants=("acme",), uses={"acme": ("redis-1", "pg-1")})
    other = booking("CHG-2", services=("redis-1",), databases=("pg-1",))
    [found] = conflicts.find_conflicts(change, [other], DEFAULT)
    assert found.kind is ConflictKind.SERVICE_TENANT_OVERLAP
    assert found.subjects == ("pg-1/acme", "redis-1/acme")
    assert found.message == (
        "change CHG-2 (scheduled, 2026-11-02 10:00–12:00 UTC) touches services pg-1 "
        "(tenant acme), redis-1 (tenant acme), used by tenants of this change"
    )


def test_service_tenant_overlap_both_ways_at_once() -> None:
    change = booking(
        end=20, services=("redis-1",), tenants=("acme",), uses={"acme": ("traefik-1", "redis-2")}
    )
    other = booking(
        "CHG-2",
        18,
        30,
        services=("traefik-1",),
        tenants=("beta", "core"),
        uses={"beta": ("redis-1",), "core": ("redis-1",)},
    )
    [found] = conflicts.find_conflicts(change, [other], DEFAULT)
    assert found.subjects == ("redis-1/beta", "redis-1/core", "traefik-1/acme")
    assert found.message == (
        "this change touches service redis-1, used by tenants beta, core of change CHG-2 "
        "(scheduled, 2026-11-02 18:00–2026-11-03 06:00 UTC); change CHG-2 (scheduled, "
        "2026-11-02 18:00–2026-11-03 06:00 UTC) touches service traefik-1, used by tenant "
        "acme of this change"
    )


def test_service_tenant_overlap_leaves_out_services_both_touch() -> None:
    change = booking(services=("redis-1",), tenants=("acme",), uses={"acme": ("redis-1",)})
    other = booking("CHG-2", services=("redis-1",), tenants=("beta",), uses={"beta": ("redis-1",)})
    found = conflicts.find_conflicts(change, [other], DEFAULT)
    assert kinds(found) == [(ConflictKind.SERVICE_OVERLAP, "CHG-2")]


def test_implementer_double_booked() -> None:
    change = booking(implementer="bob")
    others = [booking("CHG-2", implementer="bob"), booking("CHG-3", implementer="dave")]
    [found] = conflicts.find_conflicts(change, others, DEFAULT)
    assert (found.kind, found.other_change, found.subjects) == (
        ConflictKind.IMPLEMENTER_DOUBLE_BOOKED,
        "CHG-2",
        ("bob",),
    )
    assert found.message == (
        "implementer bob is also booked on change CHG-2 (scheduled, 2026-11-02 10:00–12:00 UTC)"
    )


def test_no_implementer_is_never_double_booked() -> None:
    assert conflicts.find_conflicts(booking(), [booking("CHG-2")], DEFAULT) == []


def test_outside_window_and_in_freeze_group_tenants_by_message() -> None:
    change = booking(tenants=("acme", "beta", "core"))
    found = conflicts.find_conflicts(
        change,
        [],
        DEFAULT,
        outside_window={
            "core": "outside window platform-nightly (22:00-02:00 Europe/Brussels)",
            "acme": "outside window platform-nightly (22:00-02:00 Europe/Brussels)",
            "beta": "outside window beta-sunday (Sun 06:00-10:00 Europe/Berlin)",
        },
        in_freeze={"acme": "inside freeze month-end-close (2026-10-28 to 2026-11-03)"},
    )
    assert [(c.kind, c.blocking, c.other_change, c.message) for c in found] == [
        (
            ConflictKind.OUTSIDE_WINDOW,
            False,
            None,
            "tenant beta: outside window beta-sunday (Sun 06:00-10:00 Europe/Berlin)",
        ),
        (
            ConflictKind.OUTSIDE_WINDOW,
            False,
            None,
            "tenants acme, core: outside window platform-nightly (22:00-02:00 Europe/Brussels)",
        ),
        (
            ConflictKind.IN_FREEZE,
            True,
            None,
            "tenant acme: inside freeze month-end-close (2026-10-28 to 2026-11-03)",
        ),
    ]
    assert found[1].subjects == ("acme", "core")


def test_long_lists_are_cut_in_the_message_but_kept_whole_in_subjects() -> None:
    tenants = tuple(f"t{n:02d}" for n in range(13))
    found = conflicts.find_conflicts(
        booking(tenants=tenants), [], DEFAULT, outside_window=dict.fromkeys(tenants, "closed")
    )
    assert found[0].message == (
        "tenants t00, t01, t02, t03, t04, t05, t06, t07, t08, t09 and 3 more: closed"
    )
    assert found[0].subjects == tenants


# --------------------------------------------------------------------------- overlap in time


@pytest.mark.parametrize(("start", "end"), [(8, 10), (12, 14), (6, 9), (13, 15)])
def test_bookings_that_touch_or_are_apart_do_not_conflict(start: float, end: float) -> None:
    change = booking(tenants=("acme",), implementer="bob")
    other = booking("CHG-2", start, end, tenants=("acme",), implementer="bob")
    assert conflicts.find_conflicts(change, [other], DEFAULT) == []


@pytest.mark.parametrize(("start", "end"), [(8, 10.01), (11.99, 14), (10.5, 11), (9, 13)])
def test_bookings_sharing_an_instant_conflict(start: float, end: float) -> None:
    change = booking(tenants=("acme",))
    other = booking("CHG-2", start, end, tenants=("acme",))
    assert kinds(conflicts.find_conflicts(change, [other], DEFAULT)) == [
        (ConflictKind.TENANT_OVERLAP, "CHG-2")
    ]


@settings(max_examples=200, deadline=None)
@given(
    a=st.tuples(st.integers(0, 20), st.integers(1, 6)),
    b=st.tuples(st.integers(0, 20), st.integers(1, 6)),
)
def test_overlap_is_half_open_and_symmetric(a: tuple[int, int], b: tuple[int, int]) -> None:
    one = booking("CHG-1", a[0], a[0] + a[1], tenants=("acme",))
    two = booking("CHG-2", b[0], b[0] + b[1], tenants=("acme",))
    shared = set(range(a[0], a[0] + a[1])) & set(range(b[0], b[0] + b[1]))
    assert one.overlaps(two) == two.overlaps(one) == bool(shared)
    assert bool(conflicts.find_conflicts(one, [two], DEFAULT)) == bool(shared)


def test_the_change_itself_is_skipped() -> None:
    change = booking(tenants=("acme",), implementer="bob")
    assert conflicts.find_conflicts(change, [change], DEFAULT) == []


def test_bookings_refuse_naive_or_empty_intervals() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Booking("CHG-1", "scheduled", datetime(2026, 11, 2), h(1))
    with pytest.raises(ValueError, match="must end after it starts"):
        Booking("CHG-1", "scheduled", h(2), h(2))


# --------------------------------------------------------------------------- order and shape


def test_order_is_by_kind_then_other_change_then_message() -> None:
    change = booking(
        tenants=("acme",),
        services=("redis-1",),
        databases=("pg-1",),
        clusters=("shared-1",),
        implementer="bob",
    )
    others = [
        booking("CHG-9", tenants=("acme",), clusters=("shared-1",)),
        booking("CHG-3", tenants=("acme",), databases=("pg-1",), implementer="bob"),
        booking("CHG-5", services=("redis-1",)),
    ]
    found = conflicts.find_conflicts(
        change, others, DEFAULT, in_freeze={"acme": "freeze"}, outside_window={"acme": "closed"}
    )
    assert kinds(found) == [
        (ConflictKind.TENANT_OVERLAP, "CHG-3"),
        (ConflictKind.TENANT_OVERLAP, "CHG-9"),
        (ConflictKind.SERVICE_OVERLAP, "CHG-5"),
        (ConflictKind.DATABASE_OVERLAP, "CHG-3"),
        (ConflictKind.CLUSTER_OVERLAP, "CHG-9"),
        (ConflictKind.IMPLEMENTER_DOUBLE_BOOKED, "CHG-3"),
        (ConflictKind.OUTSIDE_WINDOW, None),
        (ConflictKind.IN_FREEZE, None),
    ]
    assert (
        conflicts.find_conflicts(
            change,
            list(reversed(others)),
            DEFAULT,
            in_freeze={"acme": "freeze"},
            outside_window={"acme": "closed"},
        )
        == found
    )
    assert [c.kind for c in conflicts.blocking(found)] == [
        ConflictKind.DATABASE_OVERLAP,
        ConflictKind.IN_FREEZE,
    ]


def test_conflict_as_dict_and_for_risk() -> None:
    conflict = Conflict(ConflictKind.IN_FREEZE, True, None, "tenant acme: freeze", ("acme",))
    assert conflict.as_dict() == {
        "kind": "in-freeze",
        "severity": "blocking",
        "blocking": True,
        "other_change": None,
        "message": "tenant acme: freeze",
        "subjects": ["acme"],
    }
    assert CalendarConflict(*conflict.for_risk()) == CalendarConflict(True, "tenant acme: freeze")


# --------------------------------------------------------------------------- the policy


def test_policy_defaults() -> None:
    assert DEFAULT.conflicts == {
        ConflictKind.TENANT_OVERLAP: WARN,
        ConflictKind.SERVICE_OVERLAP: WARN,
        ConflictKind.DATABASE_OVERLAP: BLOCK,
        ConflictKind.CLUSTER_OVERLAP: WARN,
        ConflictKind.SERVICE_TENANT_OVERLAP: WARN,
        ConflictKind.IMPLEMENTER_DOUBLE_BOOKED: WARN,
        ConflictKind.OUTSIDE_WINDOW: WARN,
        ConflictKind.IN_FREEZE: BLOCK,
    }
    assert DEFAULT.max_tenants_per_wave == 50
    assert DEFAULT.wave_gap == timedelta(0)
    assert DEFAULT.horizon == timedelta(days=90)
    assert DEFAULT.canary_label == "changegate.io/canary"
    assert policy() == DEFAULT


def test_a_partial_mapping_keeps_the_defaults_for_the_rest() -> None:
    strict = policy(conflicts={"tenant-overlap": "blocking", "database-overlap": "warning"})
    assert strict.conflicts[ConflictKind.TENANT_OVERLAP] is BLOCK
    assert strict.conflicts[ConflictKind.DATABASE_OVERLAP] is WARN
    assert strict.conflicts[ConflictKind.IN_FREEZE] is BLOCK
    assert strict.conflicts[ConflictKind.CLUSTER_OVERLAP] is WARN
    assert list(strict.conflicts) == list(ConflictKind)


def test_severity_comes_from_the_policy() -> None:
    change = booking(tenants=("acme",), databases=("pg-1",))
    other = booking("CHG-2", tenants=("acme",), databases=("pg-1",))
    strict = policy(conflicts={"tenant-overlap": "blocking", "database-overlap": "warning"})
    lax = policy(conflicts={"in-freeze": "warning"})
    assert [(c.kind, c.blocking) for c in conflicts.find_conflicts(change, [other], strict)] == [
        (ConflictKind.TENANT_OVERLAP, True),
        (ConflictKind.DATABASE_OVERLAP, False),
    ]
    [freeze] = conflicts.find_conflicts(change, [], lax, in_freeze={"acme": "freeze"})
    assert (freeze.blocking, freeze.severity) == (False, WARN)


def test_policy_fields_from_yaml_text() -> None:
    spec = policy(
        description="Cautious rollouts",
        max_tenants_per_wave=25,
        wave_gap="30m",
        horizon="P30D",
        canary_label="example.com/internal",
    )
    assert (spec.max_tenants_per_wave, spec.wave_gap, spec.horizon) == (
        25,
        timedelta(minutes=30),
        timedelta(days=30),
    )
    assert spec.canary_label == "example.com/internal"


@pytest.mark.parametrize("gap", [0, "0", "0m", "PT0S", "0h0m"])
def test_a_wave_gap_may_be_zero(gap: object) -> None:
    assert policy(wave_gap=gap).wave_gap == timedelta(0)


def test_the_policy_survives_a_json_round_trip() -> None:
    spec = policy(wave_gap="1h30m", horizon="14d", conflicts={"cluster-overlap": "blocking"})
    assert policy(**spec.model_dump(mode="json")) == spec
    assert policy(**DEFAULT.model_dump(mode="json")) == DEFAULT


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"conflicts": {"tenant-clash": "blocking"}}, "conflicts.tenant-clash.[key]", "Input"),
        ({"conflicts": {"in-freeze": "fatal"}}, "conflicts.in-freeze", "Input should be"),
        ({"max_tenants_per_wave": 0}, "max_tenants_per_wave", "greater than or equal to 1"),
        ({"max_tenants_per_wave": 10_001}, "max_tenants_per_wave", "less than or equal"),
        ({"wave_gap": "soon"}, "wave_gap", "not a duration: 'soon'"),
        ({"wave_gap": "T0"}, "wave_gap", "not a duration: 'T0'"),
        ({"wave_gap": 15}, "wave_gap", "a duration is text"),
        ({"horizon": "0d"}, "horizon", "longer than zero"),
        ({"horizon": "400d"}, "horizon", "longer than 366 days"),
        ({"canary_label": "not a label"}, "canary_label", "should match pattern"),
        ({"max_wave": 3}, "max_wave", "unknown field"),
    ],
)
def test_policy_errors_name_the_field(data: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        policy(**data)
    [problem] = caught.value.problems
    assert problem.field == field
    assert message in problem.message
    assert problem.file == "scheduling.yaml"


def test_the_canary_label_pattern_is_the_catalogs_label_key() -> None:
    [pattern] = [m.pattern for m in get_args(catalog.LabelKey)[1:] if hasattr(m, "pattern")]
    assert pattern == conflicts.LABEL_KEY_PATTERN


def test_is_canary_reads_the_configured_label() -> None:
    assert conflicts.is_canary({"changegate.io/canary": "true"}, DEFAULT)
    assert not conflicts.is_canary({"changegate.io/canary": "false"}, DEFAULT)
    assert not conflicts.is_canary({}, DEFAULT)
    internal = policy(canary_label="example.com/internal")
    assert conflicts.is_canary({"example.com/internal": "true"}, internal)
    assert not conflicts.is_canary({"changegate.io/canary": "true"}, internal)


def test_the_policy_has_no_references() -> None:
    assert list(DEFAULT.references()) == []
