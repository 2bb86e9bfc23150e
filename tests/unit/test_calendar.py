"""The calendar engine: occurrences in local time across DST, ERP generators, scope, the
decision and the allowed intervals. No wall clock: every instant is written out."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil import rrule as rrules
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from changegate.domain import calendar, catalog
from changegate.domain.changes import Category, ChangeType
from changegate.errors import InvalidInput, NotFound
from tests import catalog_builders as b

Doc = dict[str, Any]


def build(
    *windows: Doc, calendars: tuple[Doc, ...] = (), tenants: tuple[Doc, ...] = ()
) -> catalog.Catalog:
    files = b.platform()
    files["windows.yaml"] = list(windows)
    if calendars:
        files["holidays.yaml"] = list(calendars)
    files["tenants.yaml"] = files["tenants.yaml"] + list(tenants)
    return catalog.build(b.documents(files), digest="sha256:" + "0" * 64, commit=None, root="r")


def utc(text: str) -> datetime:
    """'2026-03-29T01:00' (UTC) to an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def spans(found: list[calendar.Occurrence]) -> list[tuple[datetime, datetime]]:
    return [(o.start, o.end) for o in found]


def occurrences(cat: catalog.Catalog, window: str, start: str, end: str) -> list[tuple[Any, Any]]:
    entity = cat.windows[window]
    found = calendar.occurrences(entity, utc(start), utc(end), holidays=cat.holiday_calendars)
    assert all(o.window == window for o in found)
    return spans(found)


def local_starts(found: list[tuple[datetime, datetime]], zone: str) -> list[str]:
    return [s.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %z") for s, _ in found]


# ------------------------------------------------------------------ DST


def test_berlin_spring_forward_moves_a_time_in_the_gap_forward_by_the_gap() -> None:
    cat = build(
        b.window(
            "sunday", timezone="Europe/Berlin", rrule="FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", duration="4h"
        ),
        b.window(
            "half-past",
            timezone="Europe/Berlin",
            rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
            duration="1h",
        ),
    )
    found = occurrences(cat, "sunday", "2026-03-20T00:00", "2026-04-06T00:00")
    assert found == [
        (utc("2026-03-22T01:00"), utc("2026-03-22T05:00")),  # 02:00 CET
        (utc("2026-03-29T01:00"), utc("2026-03-29T05:00")),  # 02:00 does not exist: 03:00 CEST
        (utc("2026-04-05T00:00"), utc("2026-04-05T04:00")),  # 02:00 CEST
    ]
    assert local_starts(found, "Europe/Berlin") == [
        "2026-03-22 02:00 +0100",
        "2026-03-29 03:00 +0200",
        "2026-04-05 02:00 +0200",
    ]
    # A duration is elapsed time: four hours, even when the clock jumps inside it.
    assert all(end - start == timedelta(hours=4) for start, end in found)
    gap_day = occurrences(cat, "half-past", "2026-03-29T00:00", "2026-03-29T12:00")
    assert local_starts(gap_day, "Europe/Berlin") == ["2026-03-29 03:30 +0200"]


def test_berlin_fall_back_takes_the_first_of_two_ambiguous_times() -> None:
    cat = build(
        b.window(
            "w",
            timezone="Europe/Berlin",
            rrule="FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=30",
            duration="1h",
        )
    )
    found = occurrences(cat, "w", "2026-10-17T00:00", "2026-11-02T00:00")
    assert found == [
        (utc("2026-10-18T00:30"), utc("2026-10-18T01:30")),
        (utc("2026-10-25T00:30"), utc("2026-10-25T01:30")),  # the first 02:30, still CEST
        (utc("2026-11-01T01:30"), utc("2026-11-01T02:30")),
    ]
    assert local_starts(found, "Europe/Berlin")[1] == "2026-10-25 02:30 +0200"


def test_a_weekly_local_window_keeps_its_wall_time_all_year() -> None:
    cat = build(
        b.window(
            "w", timezone="Europe/Berlin", rrule="FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", duration="2h"
        )
    )
    found = occurrences(cat, "w", "2026-01-01T00:00", "2027-01-01T00:00")
    assert len(found) == 52
    times = {s.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M") for s, _ in found}
    assert times == {"02:00", "03:00"}  # 03:00 only on the spring-forward Sunday
    offsets = {s.strftime("%H:%M") for s, _ in found}
    assert offsets == {"00:00", "01:00"}  # 02:00 local is 01:00Z in winter, 00:00Z in summer


def test_new_york_both_transitions() -> None:
    cat = build(
        b.window(
            "gap",
            timezone="America/New_York",
            rrule="FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=30",
            duration="1h",
        ),
        b.window("fold", timezone="America/New_York", cron="30 1 * * SUN", duration="1h"),
    )
    assert occurrences(cat, "gap", "2026-02-28T00:00", "2026-03-16T00:00") == [
        (utc("2026-03-01T07:30"), utc("2026-03-01T08:30")),  # 02:30 EST
        (utc("2026-03-08T07:30"), utc("2026-03-08T08:30")),  # 02:30 does not exist: 03:30 EDT
        (utc("2026-03-15T06:30"), utc("2026-03-15T07:30")),  # 02:30 EDT
    ]
    assert occurrences(cat, "fold", "2026-10-31T00:00", "2026-11-09T00:00") == [
        (utc("2026-11-01T05:30"), utc("2026-11-01T06:30")),  # the first 01:30, EDT
        (utc("2026-11-08T06:30"), utc("2026-11-08T07:30")),  # 01:30 EST
    ]


# ------------------------------------------------------------------ midnight, edges


def test_a_window_crossing_midnight_is_start_inclusive_and_end_exclusive() -> None:
    cat = build(b.window("night", timezone="Europe/Brussels", cron="0 22 * * *", duration="4h"))
    found = occurrences(cat, "night", "2026-06-10T12:00", "2026-06-11T12:00")
    assert found == [(utc("2026-06-10T20:00"), utc("2026-06-11T00:00"))]  # 22:00 to 02:00 CEST
    decide = lambda at: calendar.decide(cat, "acme", at).allowed  # noqa: E731
    assert decide(utc("2026-06-10T20:00"))
    assert not decide(utc("2026-06-10T20:00") - timedelta(microseconds=1))
    assert decide(utc("2026-06-10T23:30"))  # 01:30 local, the next day
    assert not decide(utc("2026-06-11T00:00"))


def test_occurrences_meeting_the_range_are_returned_whole() -> None:
    cat = build(b.window("night", cron="0 22 * * *", duration="4h"))
    found = occurrences(cat, "night", "2026-06-11T01:00", "2026-06-11T22:00:00.000001")
    assert found == [
        (utc("2026-06-10T22:00"), utc("2026-06-11T02:00")),
        (utc("2026-06-11T22:00"), utc("2026-06-12T02:00")),
    ]
    first = calendar.Occurrence("night", *found[0])
    assert first.contains(first.start)
    assert not first.contains(first.end)
    # An occurrence ending where the range starts does not meet it (half-open).
    assert occurrences(cat, "night", "2026-06-11T02:00", "2026-06-11T22:00") == []


# ------------------------------------------------------------------ ERP generators


def test_month_end_takes_the_last_business_days_as_whole_local_days() -> None:
    cat = build(
        b.window(
            "close",
            type="deny",
            timezone="Europe/Brussels",
            generator={"kind": "month-end", "business_days": 3},
        )
    )
    assert occurrences(cat, "close", "2026-01-01T00:00", "2026-04-01T00:00") == [
        # 31 January is a Saturday: Wednesday 28 to Friday 30, one occurrence.
        (utc("2026-01-27T23:00"), utc("2026-01-30T23:00")),
        (utc("2026-02-24T23:00"), utc("2026-02-27T23:00")),
        # Friday 27, then Monday 30 and Tuesday 31 (CEST by then): the weekend stays open.
        (utc("2026-03-26T23:00"), utc("2026-03-27T23:00")),
        (utc("2026-03-29T22:00"), utc("2026-03-31T22:00")),
    ]


def test_month_end_skips_holidays_of_its_calendar() -> None:
    with_holiday = b.window(
        "close", type="deny", generator={"kind": "month-end", "business_days": 3, "holidays": "x"}
    )
    cat = build(with_holiday, calendars=(b.holiday_calendar("x", "2026-04-30", "2026-12-25"),))
    # Thursday 30 April is a holiday: Monday 27 to Wednesday 29.
    assert occurrences(cat, "close", "2026-04-15T00:00", "2026-05-15T00:00") == [
        (utc("2026-04-27T00:00"), utc("2026-04-30T00:00"))
    ]
    plain = build(
        b.window("close", type="deny", generator={"kind": "month-end", "business_days": 3})
    )
    assert occurrences(plain, "close", "2026-04-15T00:00", "2026-05-15T00:00") == [
        (utc("2026-04-28T00:00"), utc("2026-05-01T00:00"))
    ]
    five = b.window(
        "close", type="deny", generator={"kind": "month-end", "business_days": 5, "holidays": "x"}
    )
    cat = build(five, calendars=(b.holiday_calendar("x", "2026-12-25"),))
    assert occurrences(cat, "close", "2026-12-01T00:00", "2027-01-01T00:00") == [
        (utc("2026-12-24T00:00"), utc("2026-12-25T00:00")),
        (utc("2026-12-28T00:00"), utc("2027-01-01T00:00")),
    ]
    blocked = calendar.decide(cat, "acme", utc("2026-12-24T12:00"))
    assert not blocked.allowed
    assert blocked.next_allowed_at == utc("2026-12-25T00:00")  # the holiday is not frozen
    assert calendar.decide(cat, "acme", utc("2026-12-25T12:00")).allowed


def test_quarter_end_and_year_end() -> None:
    cat = build(
        b.window("quarter", type="deny", generator={"kind": "quarter-end", "business_days": 5}),
        b.window("year", type="deny", generator={"kind": "year-end", "business_days": 10}),
        b.window(
            "year-holidays",
            type="deny",
            generator={"kind": "year-end", "business_days": 10, "holidays": "xmas"},
        ),
        calendars=(b.holiday_calendar("xmas", "2026-12-24", "2026-12-25"),),
    )
    assert occurrences(cat, "quarter", "2026-01-01T00:00", "2026-07-31T00:00") == [
        (utc("2026-03-25T00:00"), utc("2026-03-28T00:00")),
        (utc("2026-03-30T00:00"), utc("2026-04-01T00:00")),
        (utc("2026-06-24T00:00"), utc("2026-06-27T00:00")),
        (utc("2026-06-29T00:00"), utc("2026-07-01T00:00")),
    ]
    assert occurrences(cat, "year", "2026-01-01T00:00", "2027-01-01T00:00") == [
        (utc("2026-12-18T00:00"), utc("2026-12-19T00:00")),
        (utc("2026-12-21T00:00"), utc("2026-12-26T00:00")),
        (utc("2026-12-28T00:00"), utc("2027-01-01T00:00")),
    ]
    assert occurrences(cat, "year-holidays", "2026-01-01T00:00", "2027-01-01T00:00") == [
        (utc("2026-12-16T00:00"), utc("2026-12-19T00:00")),
        (utc("2026-12-21T00:00"), utc("2026-12-24T00:00")),
        (utc("2026-12-28T00:00"), utc("2027-01-01T00:00")),
    ]


def test_holidays_generator_blocks_each_public_holiday_in_local_time() -> None:
    cat = build(
        b.window(
            "public",
            type="deny",
            purpose="blackout",
            timezone="Europe/Brussels",
            generator={"kind": "holidays", "calendar": "be"},
        ),
        calendars=(b.holiday_calendar("be", "2026-12-25", "2026-12-26", "2027-01-01"),),
    )
    assert occurrences(cat, "public", "2026-12-01T00:00", "2027-02-01T00:00") == [
        (utc("2026-12-24T23:00"), utc("2026-12-26T23:00")),  # consecutive days, one occurrence
        (utc("2026-12-31T23:00"), utc("2027-01-01T23:00")),
    ]
    decision = calendar.decide(cat, "acme", utc("2026-12-25T10:00"), change_type="emergency")
    assert not decision.allowed
    assert decision.override_by is None  # a blackout has no override
    assert "blackout 'public'" in decision.reason


def test_a_generator_without_its_calendar_is_not_found() -> None:
    cat = build(
        b.window("public", type="deny", generator={"kind": "holidays", "calendar": "be"}),
        calendars=(b.holiday_calendar("be", "2026-12-25"),),
    )
    with pytest.raises(NotFound, match="holiday calendar 'be'"):
        calendar.occurrences(
            cat.windows["public"], utc("2026-01-01T00:00"), utc("2027-01-01T00:00")
        )


# ------------------------------------------------------------------ the decision


def test_no_applicable_window_allows() -> None:
    cat = build(b.window("other", scope={"tenants": ["nobody-*"]}, cron="0 2 * * *", duration="1h"))
    decision = calendar.decide(cat, "acme", utc("2026-06-10T12:00"))
    assert decision.allowed
    assert decision.deciding == ()
    assert decision.next_allowed_at is None
    assert calendar.allowed_intervals(
        cat, "acme", utc("2026-06-10T00:00"), utc("2026-06-11T00:00")
    ) == [(utc("2026-06-10T00:00"), utc("2026-06-11T00:00"))]


def test_overlapping_allow_and_deny() -> None:
    cat = build(
        b.window("morning", cron="0 0 * * *", duration="12h"),
        b.window("late-morning", cron="0 10 * * *", duration="4h"),
        b.window("db-work", type="deny", start="2026-06-10T06:00:00", end="2026-06-10T08:00:00"),
    )
    day = (utc("2026-06-10T00:00"), utc("2026-06-11T00:00"))
    assert calendar.allowed_intervals(cat, "acme", *day) == [
        (utc("2026-06-10T00:00"), utc("2026-06-10T06:00")),
        (utc("2026-06-10T08:00"), utc("2026-06-10T14:00")),  # two allow windows, merged
    ]
    blocked = calendar.decide(cat, "acme", utc("2026-06-10T07:00"))
    assert not blocked.allowed
    assert [o.window for o in blocked.deciding] == ["db-work"]
    assert blocked.next_allowed_at == utc("2026-06-10T08:00")
    assert blocked.override_by == "cab"
    assert not calendar.decide(cat, "acme", utc("2026-06-10T06:00")).allowed
    assert calendar.decide(cat, "acme", utc("2026-06-10T08:00")).allowed
    both = calendar.decide(cat, "acme", utc("2026-06-10T10:30"))
    assert [o.window for o in both.deciding] == ["morning", "late-morning"]
    assert "until 2026-06-10T12:00:00Z" in both.reason


def test_exemptions_let_named_types_and_categories_through_a_freeze() -> None:
    cat = build(
        b.window(
            "june-freeze",
            type="deny",
            reason="Customer's fiscal close.",
            start="2026-06-01",
            end="2026-06-30",
            exempt={"types": ["emergency"], "categories": ["security-patch"]},
        )
    )
    at = utc("2026-06-15T12:00")
    for change_type, category in (
        ("emergency", None),
        (ChangeType.EMERGENCY, None),
        ("normal", "security-patch"),
        (None, Category.SECURITY_PATCH),
    ):
        decision = calendar.decide(cat, "acme", at, change_type=change_type, category=category)
        assert decision.allowed, (change_type, category)
        assert decision.exempted == ("june-freeze",)
        assert "consent" in decision.reason
    blocked = calendar.decide(cat, "acme", at, change_type="normal", category="module-update")
    assert not blocked.allowed
    assert blocked.exempted == ()
    assert blocked.override_by == "cab"
    assert "Customer's fiscal close." in blocked.reason
    assert blocked.next_allowed_at == utc("2026-07-01T00:00")  # the date end is inclusive
    window = cat.windows["june-freeze"]
    assert calendar.exempts(window, "emergency", None)
    assert calendar.exempts(window, None, "security-patch")
    assert not calendar.exempts(window, "standard", "tenant-config")
    assert not calendar.exempts(window, None, None)
    allow = build(b.window("w", cron="0 2 * * *", duration="1h")).windows["w"]
    assert not calendar.exempts(allow, "emergency", None)  # an allow window holds nothing back


def test_customer_windows_in_their_own_timezones() -> None:
    cat = build(
        b.window(
            "sydney-saturday",
            timezone="Australia/Sydney",
            rrule="FREQ=WEEKLY;BYDAY=SA;BYHOUR=22",
            duration="4h",
            scope={"tenants": ["sydney-co"]},
        ),
        b.window(
            "new-york-saturday",
            timezone="America/New_York",
            rrule="FREQ=WEEKLY;BYDAY=SA;BYHOUR=22",
            duration="4h",
            scope={"tenants": ["ny-co"]},
        ),
        tenants=(
            b.extra_tenant("sydney-co", timezone="Australia/Sydney"),
            b.extra_tenant("ny-co", timezone="America/New_York"),
        ),
    )
    assert [w.id for w in calendar.windows_for(cat, "sydney-co")] == ["sydney-saturday"]
    assert [w.id for w in calendar.windows_for(cat, "ny-co")] == ["new-york-saturday"]
    assert calendar.windows_for(cat, "acme") == []
    at = utc("2026-06-13T13:00")  # Saturday 23:00 in Sydney, 09:00 in New York
    assert calendar.decide(cat, "sydney-co", at).allowed
    ny = calendar.decide(cat, "ny-co", at)
    assert not ny.allowed
    assert ny.next_allowed_at == utc("2026-06-14T02:00")  # Saturday 22:00 EDT
    assert ny.override_by == "platform-lead"
    assert [(o.window, o.start) for o in ny.deciding] == [
        ("new-york-saturday", utc("2026-06-14T02:00"))
    ]
    assert calendar.decide(cat, "acme", at).allowed


def test_next_allowed_at_skips_frozen_openings_and_is_none_beyond_the_horizon() -> None:
    cat = build(
        b.window("sunday", rrule="FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", duration="4h"),
        b.window("freeze", type="deny", start="2026-06-01", end="2026-06-14"),
    )
    decision = calendar.decide(cat, "acme", utc("2026-06-07T03:00"))  # in the window, frozen
    assert not decision.allowed
    assert decision.next_allowed_at == utc("2026-06-21T02:00")  # Sunday the 14th is frozen
    gone = build(b.window("once", start="2025-01-01", end="2025-01-02"))
    assert calendar.decide(gone, "acme", utc("2026-06-07T03:00")).next_allowed_at is None
    far = build(b.window("later", start="2028-01-01", end="2028-01-02"))
    assert calendar.decide(far, "acme", utc("2026-06-07T03:00")).next_allowed_at is None
    near = build(b.window("later", start="2027-06-01", end="2027-06-02"))
    assert calendar.decide(near, "acme", utc("2026-06-07T03:00")).next_allowed_at == utc(
        "2027-06-01T00:00"
    )


def test_overrun_only_where_the_window_allows_it_and_never_into_a_freeze() -> None:
    overrun = b.window("nightly", cron="0 2 * * *", duration="2h", allow_overrun=True)
    strict = b.window("nightly", cron="0 2 * * *", duration="2h")
    at, started = utc("2026-06-10T04:30"), utc("2026-06-10T03:30")

    allowed = calendar.decide(build(overrun), "acme", at, started_at=started)
    assert allowed.allowed
    assert spans(list(allowed.deciding)) == [(utc("2026-06-10T02:00"), utc("2026-06-10T04:00"))]
    assert "allows overrun" in allowed.reason

    refused = calendar.decide(build(strict), "acme", at, started_at=started)
    assert not refused.allowed
    assert refused.override_by == "platform-lead"
    assert "does not allow overrun" in refused.reason
    assert refused.next_allowed_at == utc("2026-06-11T02:00")

    # Started outside every window: nothing to overrun.
    outside = calendar.decide(build(overrun), "acme", at, started_at=utc("2026-06-10T01:00"))
    assert not outside.allowed
    # Without started_at the window's end is the end.
    assert not calendar.decide(build(overrun), "acme", at).allowed
    frozen = build(
        overrun,
        b.window("freeze", type="deny", start="2026-06-10T04:15:00", end="2026-06-10T05:00:00"),
    )
    stopped = calendar.decide(frozen, "acme", at, started_at=started)
    assert not stopped.allowed
    assert stopped.override_by == "cab"
    assert calendar.decide(frozen, "acme", utc("2026-06-10T05:00"), started_at=started).allowed


def test_dated_windows_date_end_inclusive_datetime_end_exclusive() -> None:
    cat = build(
        b.window(
            "dates", type="deny", timezone="Europe/Brussels", start="2026-12-20", end="2026-12-22"
        ),
        b.window(
            "one-day", type="deny", timezone="Europe/Brussels", start="2026-12-24", end="2026-12-24"
        ),
        b.window(
            "naive",
            type="deny",
            timezone="Europe/Brussels",
            start="2026-11-26T00:00:00",
            end="2026-12-01T00:00:00",
        ),
        b.window(
            "offset",
            type="deny",
            timezone="Europe/Brussels",
            start="2026-11-26T00:00:00-05:00",
            end="2026-11-27T00:00:00-05:00",
        ),
    )
    year = ("2026-01-01T00:00", "2027-01-01T00:00")
    assert occurrences(cat, "dates", *year) == [(utc("2026-12-19T23:00"), utc("2026-12-22T23:00"))]
    assert occurrences(cat, "one-day", *year) == [
        (utc("2026-12-23T23:00"), utc("2026-12-24T23:00"))
    ]
    assert occurrences(cat, "naive", *year) == [(utc("2026-11-25T23:00"), utc("2026-11-30T23:00"))]
    assert occurrences(cat, "offset", *year) == [(utc("2026-11-26T05:00"), utc("2026-11-27T05:00"))]
    assert not calendar.decide(cat, "acme", utc("2026-12-22T22:59:59")).allowed
    assert calendar.decide(cat, "acme", utc("2026-12-22T23:00")).allowed
    assert calendar.decide(cat, "acme", utc("2026-11-30T23:00")).allowed


def test_naive_dated_times_in_a_dst_gap_move_forward_and_may_hold_no_instant() -> None:
    berlin = {"type": "deny", "timezone": "Europe/Berlin"}
    cat = build(
        b.window("inside", start="2026-03-29T02:10:00", end="2026-03-29T02:50:00", **berlin),
        # 02:30 moves to 03:30 CEST, after the end at 03:00 CEST: nothing is left.
        b.window("crossed", start="2026-03-29T02:30:00", end="2026-03-29T03:00:00", **berlin),
    )
    march = ("2026-03-01T00:00", "2026-04-01T00:00")
    assert occurrences(cat, "inside", *march) == [
        (utc("2026-03-29T01:10"), utc("2026-03-29T01:50"))  # 03:10 to 03:50 CEST
    ]
    assert occurrences(cat, "crossed", *march) == []


def test_cron_day_of_week_names_numbers_and_sunday_as_seven() -> None:
    cat = build(
        b.window("names", cron="0 22 * * MON-FRI", duration="1h"),
        b.window("numbers", cron="0 22 * * 1-5", duration="1h"),
        b.window("list", cron="0 22 * * mon,Tue,WED,thu,fri", duration="1h"),
        b.window("sun", cron="0 9 * * SUN", duration="1h"),
        b.window("zero", cron="0 9 * * 0", duration="1h"),
        b.window("seven", cron="0 9 * * 7", duration="1h"),
    )
    week = ("2026-06-08T00:00", "2026-06-15T00:00")  # Monday to Monday
    weekdays = occurrences(cat, "names", *week)
    assert [s.strftime("%a") for s, _ in weekdays] == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    assert occurrences(cat, "numbers", *week) == weekdays == occurrences(cat, "list", *week)
    sundays = occurrences(cat, "sun", *week)
    assert sundays == [(utc("2026-06-14T09:00"), utc("2026-06-14T10:00"))]
    assert occurrences(cat, "zero", *week) == sundays == occurrences(cat, "seven", *week)


# ------------------------------------------------------------------ rrule details


def test_rrule_without_start_is_anchored_not_relative_to_the_query() -> None:
    cat = build(
        b.window("weekly", rrule="FREQ=WEEKLY", duration="1h"),
        b.window("fortnight", rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=TH;BYHOUR=9", duration="1h"),
    )
    assert occurrences(cat, "weekly", "2026-06-01T00:00", "2026-06-15T00:00") == [
        (utc("2026-06-01T00:00"), utc("2026-06-01T01:00")),  # Mondays at midnight
        (utc("2026-06-08T00:00"), utc("2026-06-08T01:00")),
    ]
    first = occurrences(cat, "fortnight", "2026-06-01T00:00", "2026-08-01T00:00")
    later = occurrences(cat, "fortnight", "2026-06-20T00:00", "2026-08-01T00:00")
    assert later == [span for span in first if span[0] >= utc("2026-06-20T00:00")]
    starts = [s for s, _ in first]
    assert all(b - a == timedelta(weeks=2) for a, b in itertools.pairwise(starts))
    anchor_week = datetime(2001, 1, 1, tzinfo=UTC)
    assert all((s - anchor_week).days // 7 % 2 == 0 for s in starts)


def test_rrule_count_and_until() -> None:
    cat = build(
        b.window("count", rrule="FREQ=DAILY;COUNT=3", start="2026-06-01T09:00:00", duration="1h"),
        b.window("until-date", rrule="FREQ=DAILY;BYHOUR=9;UNTIL=20260603", duration="1h"),
        b.window(
            "until-utc",
            timezone="Europe/Brussels",
            rrule="FREQ=DAILY;BYHOUR=9;UNTIL=20260603T070000Z",
            duration="1h",
        ),
        b.window(
            "until-local",
            timezone="Europe/Brussels",
            rrule="FREQ=DAILY;BYHOUR=9;UNTIL=20260603T085959",
            duration="1h",
        ),
    )
    june = ("2026-06-01T00:00", "2026-06-10T00:00")
    days = lambda name: [s.day for s, _ in occurrences(cat, name, *june)]  # noqa: E731
    assert days("count") == [1, 2, 3]
    later = occurrences(cat, "count", "2026-06-02T00:00", "2026-07-01T00:00")
    assert [s.day for s, _ in later] == [2, 3]
    assert occurrences(cat, "count", "2030-01-01T00:00", "2030-02-01T00:00") == []
    assert days("until-date")[-1] == 3  # a date UNTIL takes in the whole day
    assert days("until-utc")[-1] == 3  # 09:00 CEST is 07:00Z: inclusive
    assert days("until-local")[-1] == 2  # 09:00 local is after 08:59:59 local


RULE_TIMEZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney"]


@st.composite
def rules(draw: st.DrawFn) -> str:
    freq = draw(st.sampled_from(["YEARLY", "MONTHLY", "WEEKLY", "DAILY"]))
    parts = [f"FREQ={freq}"]
    interval = draw(st.integers(1, 4))
    if interval > 1:
        parts.append(f"INTERVAL={interval}")
    days = draw(
        st.lists(
            st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]), unique=True, max_size=3
        )
    )
    if freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
        parts.append(f"BYDAY={draw(st.sampled_from(['-1FR', '2TU', '1MO', '-1SU']))}")
    elif days:
        parts.append("BYDAY=" + ",".join(days))
        if freq == "MONTHLY" and len(days) > 1 and draw(st.booleans()):
            parts.append(f"BYSETPOS={draw(st.sampled_from(['1', '-1']))}")
    elif freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
        parts.append(f"BYMONTHDAY={draw(st.integers(1, 28))}")
    if freq == "YEARLY" and draw(st.booleans()):
        parts.append(f"BYMONTH={draw(st.integers(1, 12))}")
    if draw(st.booleans()):
        parts.append(f"BYHOUR={draw(st.integers(0, 23))}")
    if draw(st.booleans()):
        parts.append(f"BYMINUTE={draw(st.sampled_from([0, 30]))}")
    return ";".join(parts)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rule=rules(),
    zone=st.sampled_from(RULE_TIMEZONES),
    hours=st.integers(1, 30),
    first=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2029, 12, 1)),
    days=st.integers(1, 60),
)
def test_rrule_occurrences_equal_a_plain_dateutil_walk_from_the_anchor(
    rule: str, zone: str, hours: int, first: datetime, days: int
) -> None:
    """The engine starts dateutil a whole number of intervals before the range; the answer
    must be what walking from the anchor gives."""
    cat = build(b.window("w", timezone=zone, rrule=rule, duration=f"{hours}h"))
    start = first.replace(tzinfo=UTC)
    end = start + timedelta(days=days)
    tz, duration = ZoneInfo(zone), timedelta(hours=hours)
    last_local = end.astimezone(tz).replace(tzinfo=None) + timedelta(days=1)
    expected = set()
    for local in rrules.rrulestr(rule, dtstart=calendar.RRULE_ANCHOR):
        if local > last_local:
            break
        begin = local.replace(tzinfo=tz).astimezone(UTC)
        if begin < end and begin + duration > start:
            expected.add((begin, begin + duration))
    found = calendar.occurrences(cat.windows["w"], start, end)
    assert spans(found) == sorted(expected)


# ------------------------------------------------------------------ scope


def test_scope_globs_services_and_match_all() -> None:
    gamma = b.extra_tenant(
        "gamma",
        tier="bronze",
        cluster="dedicated-1",
        deployment_model="dedicated-cluster",
        namespace="gamma",
        services=["objects"],
    )
    beta = b.extra_tenant("beta", tier="bronze")
    cron = {"cron": "0 2 * * *", "duration": "1h"}
    cat = build(
        b.window(
            "shared-and-gold",
            scope={"clusters": ["shared-*"], "tiers": ["gold"]},
            match="all",
            **cron,
        ),
        b.window("shared-or-gold", scope={"clusters": ["shared-*"], "tiers": ["gold"]}, **cron),
        b.window("any-pg", scope={"services": ["pg-?"]}, **cron),
        b.window("redis", scope={"services": ["redis-1"]}, **cron),
        b.window("named", scope={"tenants": ["gam*"]}, **cron),
        b.window(
            "dedicated-bronze",
            scope={"clusters": ["dedicated-1"], "tiers": ["bronze"]},
            match="all",
            **cron,
        ),
        b.window("not-a", scope={"tenants": ["[!a]*"]}, **cron),
        tenants=(beta, gamma),
    )
    ids = lambda tenant: [w.id for w in calendar.windows_for(cat, tenant)]  # noqa: E731
    assert ids("acme") == ["shared-and-gold", "shared-or-gold", "any-pg", "redis"]
    assert ids("beta") == ["shared-or-gold", "any-pg", "redis", "not-a"]
    assert ids("gamma") == ["any-pg", "named", "dedicated-bronze", "not-a"]
    for tenant in ("acme", "beta", "gamma"):
        direct = [w.id for w in cat.windows.values() if calendar.applies_to(w, cat, tenant)]
        assert direct == ids(tenant)
    assert not calendar.applies_to(cat.windows["any-pg"], cat, "nobody")
    with pytest.raises(NotFound, match="no tenant 'nobody'"):
        calendar.windows_for(cat, "nobody")


# ------------------------------------------------------------------ never opens, limits


def test_never_opens() -> None:
    now = utc("2026-06-01T00:00")
    cat = build(
        b.window("feb-30", rrule="FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", duration="1h"),
        b.window("daily-feb-30", rrule="FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", duration="1h"),
        b.window("cron-feb-30", cron="0 0 30 2 *", duration="1h"),
        b.window("empty-set", rrule="FREQ=HOURLY;INTERVAL=6;BYHOUR=1", duration="1h"),
        b.window(
            "empty-set-ok",
            rrule="FREQ=HOURLY;INTERVAL=6;BYHOUR=1",
            start="2026-01-01T01:00:00",
            duration="1h",
        ),
        b.window("long-ago", type="deny", start="2015-01-01", end="2015-01-31"),
        b.window("past-until", rrule="FREQ=WEEKLY;UNTIL=20190101", duration="1h"),
        b.window("leap-day", rrule="FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", duration="1h"),
        b.window("weekly", rrule="FREQ=WEEKLY;BYDAY=SU", duration="1h"),
        b.window("later", type="deny", generator={"kind": "holidays", "calendar": "far"}),
        calendars=(b.holiday_calendar("far", "2040-01-01"),),
    )
    never = {
        ident
        for ident, window in cat.windows.items()
        if calendar.never_opens(window, now, holidays=cat.holiday_calendars)
    }
    assert never == {
        "feb-30",
        "daily-feb-30",
        "cron-feb-30",
        "empty-set",
        "long-ago",
        "past-until",
        "later",
    }
    assert not calendar.never_opens(cat.windows["long-ago"], now, years=20)
    for ident in ("feb-30", "cron-feb-30"):
        assert calendar.occurrences(cat.windows[ident], now, now + timedelta(days=3650)) == []


def test_a_window_opening_too_often_is_refused_naming_window_and_field() -> None:
    cat = build(b.window("every-minute", cron="* * * * *", duration="1m"))
    with pytest.raises(InvalidInput) as caught:
        calendar.decide(cat, "acme", utc("2026-06-01T00:00"))
    problem = caught.value.problems[0]
    assert problem.field == "spec.cron"
    assert "'every-minute'" in problem.message


def test_instants_need_an_offset() -> None:
    cat = build()
    with pytest.raises(InvalidInput) as caught:
        calendar.decide(cat, "acme", datetime(2026, 6, 1))
    assert caught.value.problems[0].field == "at"
    with pytest.raises(InvalidInput):
        calendar.allowed_intervals(cat, "acme", datetime(2026, 6, 1), utc("2026-06-02T00:00"))


def test_decision_as_dict_is_stable_json() -> None:
    cat = build(b.window("sunday", rrule="FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", duration="4h"))
    data = calendar.decide(cat, "acme", utc("2026-06-10T12:00")).as_dict()
    assert list(data) == [
        "tenant",
        "at",
        "allowed",
        "deciding",
        "exempted",
        "next_allowed_at",
        "override_by",
        "reason",
    ]
    assert data["at"] == "2026-06-10T12:00:00.000000Z"
    assert data["allowed"] is False
    assert data["deciding"] == [
        {
            "window": "sunday",
            "type": "allow",
            "purpose": "maintenance",
            "start": "2026-06-14T02:00:00.000000Z",
            "end": "2026-06-14T06:00:00.000000Z",
        }
    ]
    assert data["next_allowed_at"] == "2026-06-14T02:00:00.000000Z"
    assert data["override_by"] == "platform-lead"


def test_calendar_index_agrees_with_the_functions() -> None:
    tenants = tuple(b.extra_tenant(f"t-{n}", tier="bronze" if n % 2 else "gold") for n in range(6))
    cat = build(
        b.window(
            "gold-weekly",
            rrule="FREQ=WEEKLY;BYDAY=SU;BYHOUR=2",
            duration="4h",
            scope={"tiers": ["gold"]},
        ),
        b.window(
            "bronze-daily", cron="0 22 * * MON-FRI", duration="3h", scope={"tiers": ["bronze"]}
        ),
        b.window(
            "close",
            type="deny",
            generator={"kind": "month-end", "business_days": 2},
            exempt={"types": ["emergency"]},
        ),
        tenants=tenants,
    )
    start, end = utc("2026-06-01T00:00"), utc("2026-09-01T00:00")
    index = calendar.CalendarIndex(cat, start, end)
    for tenant in cat.tenants:
        for change_type in (None, "emergency"):
            expected = calendar.allowed_intervals(cat, tenant, start, end, change_type=change_type)
            assert index.allowed(tenant, change_type=change_type) == expected
        assert index.windows(tenant) == calendar.windows_for(cat, tenant)
    at = utc("2026-06-30T23:00")
    assert index.decide("t-1", at) == calendar.decide(cat, "t-1", at)
    assert index.occurrences(cat.windows["close"])[0].start == utc("2026-06-29T00:00")


# ------------------------------------------------------------------ decide <=> intervals


WINDOW_ZONES = ["UTC", "Europe/Berlin", "America/New_York"]
RANGE_START, RANGE_END = utc("2026-03-01T00:00"), utc("2026-04-20T00:00")


@st.composite
def windows(draw: st.DrawFn, index: int) -> Doc:
    name = f"w{index}"
    kind = draw(st.sampled_from(["rrule", "cron", "dated-dates", "dated-times", "month-end"]))
    spec: dict[str, Any] = {
        "type": draw(st.sampled_from(["allow", "deny"])),
        "timezone": draw(st.sampled_from(WINDOW_ZONES)),
        "scope": draw(
            st.sampled_from([{"global": True}, {"tenants": ["acme"]}, {"tiers": ["bronze"]}])
        ),
    }
    if kind == "rrule":
        day = draw(st.sampled_from(["MO", "WE", "SA", "SU"]))
        spec["rrule"] = f"FREQ=WEEKLY;BYDAY={day};BYHOUR={draw(st.integers(0, 23))}"
        spec["duration"] = f"{draw(st.integers(1, 48))}h"
    elif kind == "cron":
        minute, hour = draw(st.integers(0, 59)), draw(st.integers(0, 23))
        spec["cron"] = f"{minute} {hour} * * {draw(st.sampled_from(['*', 'MON-FRI', 'SUN']))}"
        spec["duration"] = f"{draw(st.integers(10, 600))}m"
    elif kind == "dated-dates":
        first = date(2026, 3, 1) + timedelta(days=draw(st.integers(0, 45)))
        spec["start"] = first.isoformat()
        spec["end"] = (first + timedelta(days=draw(st.integers(0, 5)))).isoformat()
    elif kind == "dated-times":
        first = datetime(2026, 3, 1) + timedelta(minutes=30 * draw(st.integers(0, 2400)))
        spec["start"] = first.isoformat()
        spec["end"] = (first + timedelta(minutes=30 * draw(st.integers(1, 200)))).isoformat()
    else:
        spec["generator"] = {"kind": "month-end", "business_days": draw(st.integers(1, 4))}
        spec["type"] = "deny"
    spec["purpose"] = "maintenance" if spec["type"] == "allow" else "freeze"
    if spec["type"] == "deny" and draw(st.booleans()):
        spec["exempt"] = {"types": ["emergency"]}
    return b.doc("Window", name, spec)


@st.composite
def calendars_and_instants(draw: st.DrawFn) -> tuple[list[Doc], list[datetime], str | None]:
    count = draw(st.integers(0, 5))
    docs = [draw(windows(index)) for index in range(count)]
    seconds = int((RANGE_END - RANGE_START).total_seconds())
    instants = [
        RANGE_START + timedelta(seconds=draw(st.integers(0, seconds - 1))) for _ in range(20)
    ]
    change_type = draw(st.sampled_from([None, "normal", "emergency"]))
    return docs, instants, change_type


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calendars_and_instants())
def test_allowed_intervals_agree_with_decide(
    drawn: tuple[list[Doc], list[datetime], str | None],
) -> None:
    docs, instants, change_type = drawn
    cat = build(*docs)
    intervals = calendar.allowed_intervals(
        cat, "acme", RANGE_START, RANGE_END, change_type=change_type
    )
    # Sorted, merged (not even touching), non-empty, inside the range.
    for (s1, e1), (s2, _) in itertools.pairwise(intervals):
        assert e1 < s2
        assert s1 < e1
    assert all(RANGE_START <= s < e <= RANGE_END for s, e in intervals)
    # The edges are where half-open mistakes hide: probe them and their neighbours.
    probes = set(instants)
    tick = timedelta(microseconds=1)
    for window in cat.windows.values():
        for occurrence in calendar.occurrences(window, RANGE_START, RANGE_END):
            probes.update(
                {occurrence.start, occurrence.end, occurrence.start - tick, occurrence.end - tick}
            )
    for s, e in intervals:
        probes.update({s, e, s - tick, e - tick})
    for at in sorted(p for p in probes if RANGE_START <= p < RANGE_END):
        inside = any(s <= at < e for s, e in intervals)
        decision = calendar.decide(cat, "acme", at, change_type=change_type)
        assert decision.allowed == inside, (at, decision.reason)
        if not decision.allowed and decision.next_allowed_at is not None:
            later = [s for s, _ in intervals if s > at]
            if later:
                assert decision.next_allowed_at == later[0]
