"""Interval algebra, the earliest common slot and tenant waves (domain/scheduling.py).

Times are on a grid of minutes from T0 (Monday 2026-11-02 00:00 UTC); `at(minutes)` and
`hours(a, b)` build instants and intervals. The earliest slot is checked against a brute-force
minute-by-minute search on random small calendars, as issue 4 asks, and wave plans against
their invariants on random tenants.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from changegate.domain import scheduling
from changegate.domain.scheduling import Interval, Plan, TenantSlotInfo

T0 = datetime(2026, 11, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAYS = 3
GRID = DAYS * 24 * 60  # minutes in the random calendars


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def h(hour: float) -> datetime:
    return T0 + timedelta(hours=hour)


def hours(start: float, end: float) -> Interval:
    return (h(start), h(end))


def tenant(
    ident: str,
    tier: str = "bronze",
    rank: int = 1,
    model: str = "multi-tenant",
    *,
    canary: bool = False,
) -> TenantSlotInfo:
    return TenantSlotInfo(ident, tier, rank, model, canary=canary)


# --------------------------------------------------------------------------- interval algebra


def test_normalize_sorts_merges_overlapping_and_touching_and_drops_empty() -> None:
    given_ = [hours(5, 6), hours(1, 2), hours(2, 3), hours(1.5, 2.5), hours(4, 4), hours(7, 9)]
    assert scheduling.normalize(given_) == [hours(1, 3), hours(5, 6), hours(7, 9)]


def test_normalize_keeps_a_contained_interval_inside_its_container() -> None:
    assert scheduling.normalize([hours(1, 10), hours(2, 3)]) == [hours(1, 10)]


def test_intersect() -> None:
    a = [hours(0, 4), hours(6, 10)]
    b = [hours(2, 7), hours(9, 12)]
    assert scheduling.intersect(a, b) == [hours(2, 4), hours(6, 7), hours(9, 10)]


def test_intersect_of_touching_intervals_is_empty() -> None:
    assert scheduling.intersect([hours(0, 2)], [hours(2, 4)]) == []


def test_intersect_normalizes_unsorted_input() -> None:
    a = [hours(6, 10), hours(0, 4), hours(3, 5)]
    assert scheduling.intersect(a, [hours(4, 7)]) == [hours(4, 5), hours(6, 7)]


def test_subtract() -> None:
    a = [hours(0, 10), hours(12, 14)]
    b = [hours(2, 3), hours(5, 6), hours(9, 13)]
    assert scheduling.subtract(a, b) == [hours(0, 2), hours(3, 5), hours(6, 9), hours(13, 14)]


def test_subtract_edges_are_half_open() -> None:
    assert scheduling.subtract([hours(0, 4)], [hours(4, 6)]) == [hours(0, 4)]
    assert scheduling.subtract([hours(2, 4)], [hours(0, 2)]) == [hours(2, 4)]
    assert scheduling.subtract([hours(2, 4)], [hours(0, 5)]) == []
    assert scheduling.subtract([hours(2, 4)], []) == [hours(2, 4)]
    assert scheduling.subtract([], [hours(2, 4)]) == []


def test_subtract_one_freeze_from_several_windows() -> None:
    windows = [hours(0, 2), hours(3, 5), hours(6, 8)]
    assert scheduling.subtract(windows, [hours(1, 7)]) == [hours(0, 1), hours(7, 8)]


def test_usable_clips_to_the_horizon_and_drops_short_pieces() -> None:
    windows = [hours(0, 3), hours(5, 6), hours(8, 12)]
    got = scheduling.usable(windows, 2 * HOUR, h(1), h(11))
    assert got == [hours(1, 3), hours(8, 11)]


minute_intervals = st.lists(
    st.tuples(st.integers(0, 600), st.integers(0, 120)).map(lambda p: (p[0], p[0] + p[1])),
    max_size=5,
)


def minutes_of(intervals: Sequence[tuple[int, int]]) -> set[int]:
    return {minute for start, end in intervals for minute in range(start, end)}


def as_intervals(intervals: Sequence[tuple[int, int]]) -> list[Interval]:
    return [(at(start), at(end)) for start, end in intervals]


def as_minutes(intervals: Sequence[Interval]) -> set[int]:
    return minutes_of(
        [
            ((start - T0) // timedelta(minutes=1), (end - T0) // timedelta(minutes=1))
            for start, end in intervals
        ]
    )


@settings(max_examples=200, deadline=None)
@given(a=minute_intervals, b=minute_intervals)
def test_intersect_and_subtract_agree_with_sets_of_minutes(
    a: list[tuple[int, int]], b: list[tuple[int, int]]
) -> None:
    ia, ib = as_intervals(a), as_intervals(b)
    both = scheduling.intersect(ia, ib)
    rest = scheduling.subtract(ia, ib)
    assert as_minutes(both) == minutes_of(a) & minutes_of(b)
    assert as_minutes(rest) == minutes_of(a) - minutes_of(b)
    for result in (both, rest):
        assert result == scheduling.normalize(result)


# --------------------------------------------------------------------------- earliest slot


def test_earliest_slot_spans_touching_intervals_of_one_list() -> None:
    free = [[hours(9, 10), hours(10, 11)]]
    assert scheduling.earliest_slot(free, 2 * HOUR, T0, h(24)) == h(9)


def test_earliest_slot_duration_exactly_fitting() -> None:
    free = [[hours(9, 11)]]
    assert scheduling.earliest_slot(free, 2 * HOUR, T0, h(24)) == h(9)
    longer = 2 * HOUR + timedelta(minutes=1)
    assert scheduling.earliest_slot(free, longer, T0, h(24)) is None


def test_earliest_slot_skips_an_interval_too_short() -> None:
    free = [[hours(1, 2), hours(5, 8)]]
    assert scheduling.earliest_slot(free, 2 * HOUR, T0, h(24)) == h(5)


def test_earliest_slot_not_before_inside_an_interval() -> None:
    free = [[hours(9, 12)]]
    assert scheduling.earliest_slot(free, HOUR, h(10.5), h(24)) == h(10.5)
    assert scheduling.earliest_slot(free, 2 * HOUR, h(10.5), h(24)) is None


def test_earliest_slot_until_cutoff_is_inclusive_of_the_end() -> None:
    free = [[hours(9, 12)]]
    assert scheduling.earliest_slot(free, 2 * HOUR, T0, h(11)) == h(9)
    assert scheduling.earliest_slot(free, 2 * HOUR, T0, h(10.9)) is None


def test_earliest_slot_needs_every_list() -> None:
    free = [
        [hours(0, 4), hours(20, 30)],
        [hours(3, 6), hours(22, 26)],
        [hours(1, 5), hours(23, 40)],
    ]
    assert scheduling.earliest_slot(free, HOUR, T0, h(48)) == h(3)
    assert scheduling.earliest_slot(free, 2 * HOUR, T0, h(48)) == h(23)
    assert scheduling.earliest_slot(free, 4 * HOUR, T0, h(48)) is None


def test_earliest_slot_without_lists_is_not_before() -> None:
    assert scheduling.earliest_slot([], HOUR, h(3), h(5)) == h(3)
    assert scheduling.earliest_slot([], 3 * HOUR, h(3), h(5)) is None


def test_earliest_slot_with_an_empty_list_is_none() -> None:
    assert scheduling.earliest_slot([[hours(0, 10)], []], HOUR, T0, h(24)) is None


def test_earliest_slot_accepts_other_offsets_for_the_same_instant() -> None:
    plus_two = timezone(timedelta(hours=2))
    free = [[(h(9).astimezone(plus_two), h(12).astimezone(plus_two))]]
    assert scheduling.earliest_slot(free, HOUR, T0, h(24)) == h(9)


def test_earliest_slot_refuses_naive_instants_and_empty_durations() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        scheduling.earliest_slot([], HOUR, datetime(2026, 11, 2), h(5))
    with pytest.raises(ValueError, match="positive duration"):
        scheduling.earliest_slot([], timedelta(0), T0, h(5))


def test_earliest_slot_over_many_weekly_calendars() -> None:
    # 2,000 tenants, each a weekly 6-hour window over 13 weeks, plus one common Sunday.
    rng = random.Random(4)
    sunday = hours(24 * 6 + 8, 24 * 6 + 12)
    free = []
    for _ in range(2000):
        day, start = rng.randrange(6), rng.randrange(18)
        weekly = [
            hours(24 * (day + 7 * w) + start, 24 * (day + 7 * w) + start + 6) for w in range(13)
        ]
        free.append(scheduling.normalize([*weekly, sunday]))
    assert scheduling.earliest_slot(free, 2 * HOUR, T0, h(24 * 90)) == sunday[0]


def brute_force(
    lists: Sequence[Sequence[tuple[int, int]]], duration: int, not_before: int, until: int
) -> int | None:
    """The first minute t >= not_before whose next `duration` minutes are free in every list."""
    free = set(range(min(not_before, until), until))
    for intervals in lists:
        free &= minutes_of(intervals)
    run = [0] * (until + 2)  # run[m]: free minutes in a row from m
    for minute in range(until - 1, -1, -1):
        run[minute] = run[minute + 1] + 1 if minute in free else 0
    for start in range(not_before, until - duration + 1):
        if run[start] >= duration:
            return start
    return None


calendar_interval = st.tuples(st.integers(0, GRID - 1), st.integers(1, 12 * 60)).map(
    lambda p: (p[0], min(p[0] + p[1], GRID))
)


@settings(max_examples=300, deadline=None)
@given(
    lists=st.lists(st.lists(calendar_interval, max_size=5), min_size=1, max_size=4),
    duration=st.integers(1, 6 * 60),
    not_before=st.integers(0, GRID - 1),
    span=st.integers(0, GRID),
)
def test_earliest_slot_equals_a_minute_by_minute_search(
    lists: list[list[tuple[int, int]]], duration: int, not_before: int, span: int
) -> None:
    until = min(not_before + span, GRID)
    expected = brute_force(lists, duration, not_before, until)
    got = scheduling.earliest_slot(
        [as_intervals(intervals) for intervals in lists],
        timedelta(minutes=duration),
        at(not_before),
        at(until),
    )
    assert got == (None if expected is None else at(expected))


# --------------------------------------------------------------------------- waves


def weekly(day: int, start: float, length: float, weeks: int = 4) -> list[Interval]:
    return [
        hours(24 * (day + 7 * w) + start, 24 * (day + 7 * w) + start + length) for w in range(weeks)
    ]


HORIZON = h(24 * 28)


def make_plan(
    tenants: Sequence[TenantSlotInfo],
    free: dict[str, list[Interval]],
    duration: timedelta = HOUR,
    *,
    max_per_wave: int = 50,
    wave_gap: timedelta = timedelta(0),
    not_before: datetime = T0,
    until: datetime = HORIZON,
) -> Plan:
    return scheduling.plan(
        tenants,
        free,
        duration,
        not_before,
        until,
        max_per_wave=max_per_wave,
        wave_gap=wave_gap,
    )


def test_one_slot_for_all_when_one_fits() -> None:
    tenants = [tenant("acme"), tenant("beta", "gold", 3), tenant("core", canary=True)]
    free = {
        "acme": weekly(0, 20, 4),  # Mondays 20:00-24:00
        "beta": weekly(0, 22, 4),  # Mondays 22:00-02:00
        "core": [hours(0, 24 * 28)],
    }
    result = make_plan(tenants, free)
    assert result.single_slot
    assert result.unscheduled == {}
    [wave] = result.waves
    assert (wave.index, wave.start, wave.end) == (1, h(22), h(23))
    assert wave.tenants == ("core", "acme", "beta")  # risk order
    assert wave.reasons["beta"] == "tier gold (rank 3); one slot fits the windows of all 3 tenants"
    assert wave.reasons["core"].startswith("canary tenant (tier bronze)")
    assert (result.start, result.end) == (h(22), h(23))


def test_a_single_tenant_gets_its_earliest_slot() -> None:
    free = {"acme": weekly(2, 1, 3)}  # Wednesdays 01:00-04:00
    result = make_plan([tenant("acme")], free, 2 * HOUR, not_before=h(50))
    assert result.single_slot
    assert result.waves[0].start == h(50)  # inside this Wednesday's window
    result = make_plan([tenant("acme")], free, 2 * HOUR, not_before=h(50.5))
    assert result.waves[0].start == h(24 * 9 + 1)  # too late this week: next Wednesday's
    assert "the earliest slot inside its windows" in result.waves[0].reasons["acme"]


def test_more_tenants_than_a_wave_holds_split_into_sequential_waves() -> None:
    tenants = [tenant(f"t{n}") for n in range(5)]
    free = {t.id: weekly(0, 20, 3) for t in tenants}  # Mondays 20:00-23:00
    result = make_plan(tenants, free, max_per_wave=2, wave_gap=timedelta(minutes=30))
    assert not result.single_slot
    assert [w.tenants for w in result.waves] == [("t0", "t1"), ("t2", "t3"), ("t4",)]
    assert [w.start for w in result.waves] == [h(20), h(21.5), h(24 * 7 + 20)]
    assert result.waves[0].reasons["t0"] == (
        "tier bronze (rank 1); shares its windows with 4 other tenants; wave 1 of 3"
    )


def test_waves_go_canary_first_then_tiers_from_lowest() -> None:
    tenants = [
        tenant("p1", "platinum", 4),
        tenant("g1", "gold", 3),
        tenant("b1", "bronze", 1),
        tenant("b2", "bronze", 1),
        tenant("internal", "platinum", 4, canary=True),
        tenant("s1", "silver", 2),
    ]
    free = {t.id: [hours(0, 24 * 28)] for t in tenants}
    result = make_plan(tenants, free, max_per_wave=2)
    assert [w.tenants for w in result.waves] == [
        ("internal",),
        ("b1", "b2"),
        ("s1",),
        ("g1",),
        ("p1",),
    ]
    assert [w.start for w in result.waves] == [h(0), h(1), h(2), h(3), h(4)]
    assert result.waves[0].reasons["internal"] == (
        "canary tenant (tier platinum), goes first; shares its windows with 5 other tenants; "
        "wave 1 of 5"
    )
    assert result.waves[4].reasons["p1"].startswith("tier platinum (rank 4);")


def test_a_later_stage_waits_for_the_earlier_one_even_with_an_earlier_window() -> None:
    tenants = [tenant("gold", "gold", 3), tenant("bronze", "bronze", 1)]
    free = {"gold": weekly(0, 1, 2), "bronze": weekly(2, 1, 2)}
    result = make_plan(tenants, free)
    assert [(w.tenants, w.start) for w in result.waves] == [
        (("bronze",), h(49)),
        (("gold",), h(24 * 7 + 1)),
    ]


def test_dedicated_tenants_get_waves_of_their_own() -> None:
    tenants = [
        tenant("m1"),
        tenant("m2"),
        tenant("m3"),
        tenant("dc", model="dedicated-cluster"),
        tenant("dn", model="dedicated-namespace"),
    ]
    free = {t.id: [hours(0, 24 * 28)] for t in tenants}
    result = make_plan(tenants, free, max_per_wave=4)
    assert [w.tenants for w in result.waves] == [("dc",), ("dn",), ("m1", "m2", "m3")]
    assert result.waves[0].reasons["dc"] == (
        "tier bronze (rank 1); dedicated-cluster: scheduled in its own windows; wave 1 of 3"
    )


def test_dedicated_tenants_are_scheduled_in_their_own_windows() -> None:
    tenants = [tenant(f"m{n}") for n in range(3)] + [
        tenant("dc", model="dedicated-cluster"),
        tenant("dc2", model="dedicated-cluster"),
    ]
    shared = weekly(1, 22, 2)
    free = {f"m{n}": shared for n in range(3)}
    free["dc"] = weekly(5, 6, 2)  # Saturday morning: the customer's own window
    free["dc2"] = weekly(5, 6, 2)
    result = make_plan(tenants, free, max_per_wave=2)
    by_tenant = {t: w for w in result.waves for t in w.tenants}
    assert by_tenant["dc"] is by_tenant["dc2"]
    assert by_tenant["dc"].tenants == ("dc", "dc2")
    assert by_tenant["dc"].start.weekday() == 5
    assert (
        by_tenant["dc"]
        .reasons["dc"]
        .startswith(
            "tier bronze (rank 1); dedicated-cluster: shares its windows with 1 other "
            "dedicated-cluster tenant;"
        )
    )
    assert {w.start.weekday() for w in result.waves if "m0" in w.tenants} == {1}


def test_max_per_wave_is_respected() -> None:
    tenants = [tenant(f"t{n:02d}", rank=n % 3) for n in range(23)]
    free = {t.id: [hours(0, 24 * 28)] for t in tenants}
    result = make_plan(tenants, free, max_per_wave=4)
    assert all(len(w.tenants) <= 4 for w in result.waves)
    assert sorted(t for w in result.waves for t in w.tenants) == sorted(free)


def test_other_groups_fill_a_wave_when_their_windows_hold_its_slot() -> None:
    tenants = [tenant("x1"), tenant("x2"), tenant("y1"), tenant("z1")]
    free = {
        "x1": [hours(10, 14)],
        "x2": [hours(10, 14)],
        "y1": [hours(10, 12), hours(20, 22)],  # other windows, but they hold 10:00-11:00
        "z1": [hours(10.5, 13)],  # does not hold 10:00-11:00
    }
    result = make_plan(tenants, free, max_per_wave=3)
    assert [(w.tenants, w.start) for w in result.waves] == [
        (("x1", "x2", "y1"), h(10)),
        (("z1",), h(11)),
    ]
    assert result.waves[0].reasons["y1"] == (
        "tier bronze (rank 1); no other tenant has its windows; its windows also hold "
        "this wave's slot; wave 1 of 2"
    )
    assert result.waves[0].reasons["x1"] == (
        "tier bronze (rank 1); shares its windows with 1 other tenant; wave 1 of 2"
    )


def test_a_full_wave_takes_no_one_else() -> None:
    tenants = [tenant("x1"), tenant("x2"), tenant("y1")]
    free = {"x1": [hours(10, 14)], "x2": [hours(10, 14)], "y1": [hours(10, 12), hours(20, 22)]}
    result = make_plan(tenants, free, max_per_wave=2)
    assert [(w.tenants, w.start) for w in result.waves] == [(("x1", "x2"), h(10)), (("y1",), h(11))]


def test_within_a_stage_the_group_whose_window_comes_first_goes_first() -> None:
    tenants = [tenant("a"), tenant("b"), tenant("c")]
    free = {"a": weekly(3, 2, 2), "b": weekly(1, 2, 2), "c": weekly(2, 2, 2)}
    result = make_plan(tenants, free, max_per_wave=1)
    assert [w.tenants for w in result.waves] == [("b",), ("c",), ("a",)]


def test_tenant_without_a_slot_is_unscheduled_and_the_rest_share_one() -> None:
    tenants = [tenant("acme"), tenant("beta"), tenant("none", "gold", 3)]
    free = {
        "acme": [hours(20, 24)],
        "beta": [hours(20, 24)],
        "none": [hours(1, 1.5), (HORIZON, HORIZON + HOUR * 5)],
    }
    result = make_plan(tenants, free)
    assert result.single_slot
    assert result.waves[0].tenants == ("acme", "beta")
    assert result.unscheduled == {
        "none": "tier gold (rank 3); no 1h slot inside its windows between "
        "2026-11-02 00:00 UTC and 2026-11-30 00:00 UTC"
    }
    assert not result.complete


def test_tenant_squeezed_out_by_earlier_waves_is_unscheduled_with_the_wave() -> None:
    tenants = [tenant(f"t{n}") for n in range(3)]
    free = {t.id: [hours(0, 2.5)] for t in tenants}
    result = make_plan(tenants, free, max_per_wave=1, wave_gap=timedelta(minutes=15))
    assert [w.tenants for w in result.waves] == [("t0",), ("t1",)]
    assert result.unscheduled == {
        "t2": "tier bronze (rank 1); no 1h slot left inside its windows after wave 2 ends at "
        "2026-11-02 02:15 UTC plus the 15m gap and before the horizon ends at "
        "2026-11-30 00:00 UTC"
    }
    assert result.wave_of("t1") is result.waves[1]
    assert result.wave_of("t2") is None


def test_no_tenant_at_all_gives_an_empty_plan() -> None:
    result = make_plan([], {})
    assert result == Plan((), {}, single_slot=False)
    assert result.start is None
    assert result.as_dict() == {
        "single_slot": False,
        "start": None,
        "end": None,
        "waves": [],
        "unscheduled": {},
    }


def test_plan_as_dict() -> None:
    tenants = [tenant("a"), tenant("b")]
    result = make_plan(tenants, {"a": [hours(1, 3)], "b": [hours(1, 3)]}, max_per_wave=1)
    data = result.as_dict()
    assert data["single_slot"] is False
    assert data["start"] == "2026-11-02T01:00:00.000000Z"
    assert data["end"] == "2026-11-02T03:00:00.000000Z"
    assert data["waves"][1] == {
        "index": 2,
        "start": "2026-11-02T02:00:00.000000Z",
        "end": "2026-11-02T03:00:00.000000Z",
        "tenants": ["b"],
        "reasons": {
            "b": "tier bronze (rank 1); shares its windows with 1 other tenant; wave 2 of 2"
        },
    }


@pytest.mark.parametrize(
    ("duration", "max_per_wave", "wave_gap", "message"),
    [
        (HOUR, 0, timedelta(0), "max_per_wave must be at least 1"),
        (HOUR, 5, -HOUR, "wave_gap must not be negative"),
        (timedelta(0), 5, timedelta(0), "positive duration"),
    ],
)
def test_plan_refuses_bad_arguments(
    duration: timedelta, max_per_wave: int, wave_gap: timedelta, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_plan(
            [tenant("a")],
            {"a": [hours(0, 5)]},
            duration,
            max_per_wave=max_per_wave,
            wave_gap=wave_gap,
        )


def test_plan_refuses_a_tenant_twice_or_without_free_intervals() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        make_plan([tenant("a"), tenant("a")], {"a": []})
    with pytest.raises(ValueError, match="no free intervals given for tenant 'b'"):
        make_plan([tenant("a"), tenant("b")], {"a": []})


def random_world(seed: int, count: int) -> tuple[list[TenantSlotInfo], dict[str, list[Interval]]]:
    rng = random.Random(seed)
    groups = [weekly(rng.randrange(7), rng.randrange(20), rng.choice([2, 3, 4])) for _ in range(5)]
    models = ["multi-tenant"] * 4 + ["dedicated-namespace", "dedicated-cluster"]
    tenants, free = [], {}
    for n in range(count):
        ident = f"t{n:03d}"
        tenants.append(
            TenantSlotInfo(
                ident,
                f"tier{n % 4}",
                rng.randrange(4),
                rng.choice(models),
                canary=rng.random() < 0.1,
            )
        )
        free[ident] = rng.choice([*groups, []])
    return tenants, free


def test_plans_are_deterministic_whatever_the_input_order() -> None:
    tenants, free = random_world(7, 120)
    first = make_plan(tenants, free, max_per_wave=7, wave_gap=timedelta(minutes=20))
    shuffled = list(tenants)
    random.Random(1).shuffle(shuffled)
    again = make_plan(
        shuffled, dict(reversed(free.items())), max_per_wave=7, wave_gap=timedelta(minutes=20)
    )
    assert again.as_dict() == first.as_dict()
    assert list(again.unscheduled) == list(first.unscheduled)


def stage(info: TenantSlotInfo) -> tuple[int, int]:
    return (0, 0) if info.canary else (1, info.tier_rank)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    count=st.integers(1, 60),
    max_per_wave=st.integers(1, 12),
    gap_minutes=st.sampled_from([0, 15, 120]),
    duration_minutes=st.sampled_from([30, 60, 150]),
)
def test_wave_plan_invariants(
    seed: int, count: int, max_per_wave: int, gap_minutes: int, duration_minutes: int
) -> None:
    tenants, free = random_world(seed, count)
    duration, gap = timedelta(minutes=duration_minutes), timedelta(minutes=gap_minutes)
    result = make_plan(tenants, free, duration, max_per_wave=max_per_wave, wave_gap=gap)
    info = {t.id: t for t in tenants}

    placed = [t for w in result.waves for t in w.tenants]
    assert len(placed) == len(set(placed))
    assert set(placed) | set(result.unscheduled) == set(info)
    assert not set(placed) & set(result.unscheduled)
    for index, wave in enumerate(result.waves, start=1):
        assert wave.index == index
        assert wave.end - wave.start == duration
        assert wave.start >= T0 and wave.end <= HORIZON
        assert set(wave.reasons) == set(wave.tenants)
        for ident in wave.tenants:  # the slot lies inside every member's windows
            assert scheduling.earliest_slot([free[ident]], duration, wave.start, wave.end) == (
                wave.start
            )
        if not result.single_slot:
            assert len(wave.tenants) <= max_per_wave
            assert len({info[t].deployment_model for t in wave.tenants}) == 1
            assert len({stage(info[t]) for t in wave.tenants}) == 1
    for earlier, later in zip(result.waves, result.waves[1:], strict=False):
        assert later.start >= earlier.end + gap
        if not result.single_slot:
            assert stage(info[earlier.tenants[0]]) <= stage(info[later.tenants[0]])
    if result.single_slot:
        assert len(result.waves) == 1
    for ident in result.unscheduled:  # no slot alone, or none left after the waves
        alone = scheduling.earliest_slot([free[ident]], duration, T0, HORIZON)
        assert alone is None or result.waves
