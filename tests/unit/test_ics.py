"""ICS feeds: parsed by an independent iCalendar parser (vobject) and expanded, they hold
exactly the occurrences `calendar.occurrences` computes, DST changes included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import vobject

from changegate.adapters import catalog_files, ics
from changegate.domain import calendar
from changegate.domain import catalog as catalog_model
from changegate.errors import InvalidInput, NotFound
from tests import catalog_builders as b

STAMP = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

EXTRA_WINDOWS = [
    # 02:30 does not exist in Berlin on 29 March 2026 and happens twice on 25 October.
    b.doc(
        "Window",
        "berlin-nightly",
        {
            "type": "allow",
            "purpose": "maintenance",
            "timezone": "Europe/Berlin",
            "cron": "30 2 * * *",
            "duration": "3h",
            "scope": {"tenants": ["acme"]},
        },
    ),
    b.doc(
        "Window",
        "new-york-saturday",
        {
            "type": "allow",
            "purpose": "release",
            "description": "US release window",
            "timezone": "America/New_York",
            "rrule": "FREQ=WEEKLY;BYDAY=SA;BYHOUR=23;BYMINUTE=30",
            "duration": "2h",
            "allow_overrun": True,
            "scope": {"tiers": ["gold"]},
        },
    ),
    b.doc(
        "Window",
        "month-end-close",
        {
            "type": "deny",
            "purpose": "freeze",
            "reason": "Month-end closing.",
            "timezone": "Europe/Brussels",
            "generator": {"kind": "month-end", "business_days": 2, "holidays": "be"},
            "scope": {"tenants": ["acme"]},
            "exempt": {"types": ["emergency"]},
        },
    ),
    b.doc(
        "Window",
        "others-only",
        {
            "type": "deny",
            "purpose": "blackout",
            "timezone": "Asia/Tokyo",
            "rrule": "FREQ=DAILY;BYHOUR=12",
            "duration": "1h",
            "scope": {"tenants": ["other-*"]},
        },
    ),
]
HOLIDAYS = b.doc(
    "HolidayCalendar",
    "be",
    {
        "display_name": "Belgian public holidays",
        "dates": [
            {"date": "2026-03-31", "name": "not really, but a Tuesday at month end"},
            {"date": "2026-12-25", "name": "Christmas"},
        ],
    },
)


@pytest.fixture(scope="module")
def catalog() -> catalog_model.Catalog:
    files = b.platform()
    files["windows.yaml"] = files["windows.yaml"] + EXTRA_WINDOWS
    files["holidays.yaml"] = [HOLIDAYS]
    return catalog_model.build(
        b.documents(files), digest="sha256:" + "0" * 64, commit=None, root="r"
    )


def parse(feed: bytes) -> Any:
    return vobject.readOne(feed.decode("utf-8"))


def expanded(feed: bytes, start: datetime, end: datetime) -> set[tuple[str, datetime, datetime]]:
    """Every event's occurrences meeting [start, end) as vobject expands them."""
    found: set[tuple[str, datetime, datetime]] = set()
    for event in parse(feed).vevent_list:
        name = event.contents["x-changegate-window"][0].value
        first_start, first_end = event.dtstart.value, event.dtend.value
        length = first_end - first_start
        if "rrule" in event.contents:
            starts = event.getrruleset(addRDate=True).between(start - length, end, inc=True)
        else:
            starts = [first_start]
        for begin in starts:
            if begin < end and begin + length > start:
                found.add((name, begin.astimezone(UTC), (begin + length).astimezone(UTC)))
    return found


def computed(
    catalog: catalog_model.Catalog, tenant: str | None, start: datetime, end: datetime
) -> set[tuple[str, datetime, datetime]]:
    windows = (
        list(catalog.windows.values()) if tenant is None else calendar.windows_for(catalog, tenant)
    )
    return {
        (o.window, o.start, o.end)
        for window in windows
        for o in calendar.occurrences(window, start, end, holidays=catalog.holiday_calendars)
    }


RANGES = [
    # Europe springs forward on 29 March 2026, New York on 8 March.
    (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 6, tzinfo=UTC)),
    # Europe falls back on 25 October 2026, New York on 1 November.
    (datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC)),
    # The year-end freeze, Christmas and a month-end across the new year.
    (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC)),
]


@pytest.mark.parametrize(("start", "end"), RANGES)
@pytest.mark.parametrize("tenant", ["acme", None])
def test_the_feed_expands_to_the_calendars_occurrences(
    catalog: catalog_model.Catalog, tenant: str | None, start: datetime, end: datetime
) -> None:
    feed = ics.window_feed(catalog, tenant=tenant, start=start, end=end, stamp=STAMP)
    expected = computed(catalog, tenant, start, end)
    assert expected  # every range holds some occurrences
    assert expanded(feed, start, end) == expected


def test_dst_gap_and_repeat_are_where_the_calendar_puts_them(
    catalog: catalog_model.Catalog,
) -> None:
    spring = (datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC))
    starts = sorted(
        begin
        for name, begin, _ in expanded(
            ics.window_feed(catalog, tenant="acme", start=spring[0], end=spring[1]), *spring
        )
        if name == "berlin-nightly"
    )
    # 02:30 CET is 01:30Z; on the 29th 02:30 does not exist and moves to 03:30 CEST (01:30Z);
    # on the 30th 02:30 CEST is 00:30Z.
    assert starts == [
        datetime(2026, 3, 28, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),
    ]
    autumn = (datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 25, 12, tzinfo=UTC))
    feed = ics.window_feed(catalog, tenant="acme", start=autumn[0], end=autumn[1])
    events = {e.uid.value: e for e in parse(feed).vevent_list}
    # 02:30 happens twice on 25 October: the first (CEST, 00:30Z) is the one.
    event = events["berlin-nightly-20261025T003000Z@changegate"]
    assert event.dtend.value == datetime(2026, 10, 25, 3, 30, tzinfo=UTC)  # 3 h elapsed
    assert (
        "When: 2026-10-25 02:30 (UTC+0200) to 04:30 (UTC+0100) Europe/Berlin"
        in event.description.value
    )
    before = events["berlin-nightly-20261024T003000Z@changegate"]
    assert "When: 2026-10-24 02:30-05:30 Europe/Berlin (UTC+0200)" in before.description.value


def test_events_say_what_each_window_is(catalog: catalog_model.Catalog) -> None:
    start, end = datetime(2026, 12, 20, tzinfo=UTC), datetime(2027, 1, 2, tzinfo=UTC)
    feed = ics.window_feed(catalog, tenant="acme", start=start, end=end, stamp=STAMP)
    assert feed.startswith(b"BEGIN:VCALENDAR\r\n")
    calendar_ = parse(feed)
    assert calendar_.prodid.value == ics.PRODID
    assert calendar_.version.value == "2.0"
    assert calendar_.contents["x-wr-calname"][0].value == "changegate: acme"
    events = {e.uid.value: e for e in calendar_.vevent_list}
    freeze = events["year-end-20261218T000000Z@changegate"]
    assert freeze.summary.value == "Freeze: year-end"
    assert freeze.transp.value == "OPAQUE"
    assert freeze.categories.value == ["deny", "freeze"]
    assert freeze.dtstamp.value == STAMP
    assert "Exempt: emergency changes, security-patch." in freeze.description.value
    assert "Applies to: everything (global)." in freeze.description.value
    sunday = events["sunday-20261220T010000Z@changegate"]
    assert sunday.summary.value == "Maintenance window: sunday"
    assert sunday.transp.value == "TRANSPARENT"
    assert sunday.categories.value == ["allow", "maintenance"]
    assert "Applies to: clusters shared-*, dedicated-1." in sunday.description.value
    release = next(e for uid, e in events.items() if uid.startswith("new-york-saturday-"))
    assert release.summary.value == "Release window: new-york-saturday"
    assert "US release window" in release.description.value
    assert "may run past its end" in release.description.value


def test_uids_are_stable_and_the_bytes_reproducible(catalog: catalog_model.Catalog) -> None:
    start, end = RANGES[0]
    first = ics.window_feed(catalog, tenant=None, start=start, end=end, stamp=STAMP)
    again = ics.window_feed(catalog, tenant=None, start=start, end=end, stamp=STAMP)
    assert first == again
    later = ics.window_feed(
        catalog, tenant=None, start=start + timedelta(days=7), end=end, stamp=STAMP
    )
    uids = [e.uid.value for e in parse(first).vevent_list]
    assert len(uids) == len(set(uids))
    # A later range repeats the same events under the same UIDs.
    assert {e.uid.value for e in parse(later).vevent_list} <= set(uids)
    for event in parse(first).vevent_list:
        name = event.contents["x-changegate-window"][0].value
        moment = event.dtstart.value.strftime("%Y%m%dT%H%M%SZ")
        assert event.uid.value == f"{name}-{moment}@changegate"


def test_the_tenant_feed_holds_only_its_windows(catalog: catalog_model.Catalog) -> None:
    start, end = RANGES[0]
    tenant_names = {
        e.contents["x-changegate-window"][0].value
        for e in parse(ics.window_feed(catalog, tenant="acme", start=start, end=end)).vevent_list
    }
    platform = parse(ics.window_feed(catalog, tenant=None, start=start, end=end))
    platform_names = {e.contents["x-changegate-window"][0].value for e in platform.vevent_list}
    assert "others-only" in platform_names and "others-only" not in tenant_names
    assert tenant_names == {w.id for w in calendar.windows_for(catalog, "acme")} - {"year-end"}
    assert platform.contents["x-wr-calname"][0].value == "changegate: platform"


def test_the_sample_platform_per_tenant_and_whole(sample_dir: Path) -> None:
    catalog = catalog_files.load_catalog(sample_dir)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    end = datetime(2026, 12, 31, tzinfo=UTC)
    whole = ics.window_feed(catalog, tenant=None, start=start, end=end, stamp=STAMP)
    assert expanded(whole, start, end) == computed(catalog, None, start, end)
    for tenant in list(catalog.tenants)[:8]:
        feed = ics.window_feed(catalog, tenant=tenant, start=start, end=end, stamp=STAMP)
        assert expanded(feed, start, end) == computed(catalog, tenant, start, end)


def test_bookings_show_in_the_feeds_of_their_tenants(catalog: catalog_model.Catalog) -> None:
    start, end = RANGES[0]
    bookings = [
        ics.Booking(
            "CHG-12",
            "Odoo 17 security update",
            1,
            datetime(2026, 3, 8, 1, tzinfo=UTC),
            datetime(2026, 3, 8, 3, tzinfo=UTC),
            ("acme",),
        ),
        ics.Booking(
            "CHG-12",
            "Odoo 17 security update",
            3,
            datetime(2026, 3, 22, 1, tzinfo=UTC),
            datetime(2026, 3, 22, 3, tzinfo=UTC),
            ("other-1", "other-2"),
        ),
        ics.Booking(
            "CHG-13",
            "Outside the range",
            1,
            datetime(2026, 5, 1, tzinfo=UTC),
            datetime(2026, 5, 2, tzinfo=UTC),
            ("acme",),
        ),
    ]
    feed = ics.window_feed(catalog, tenant="acme", start=start, end=end, bookings=bookings)
    changes = [e for e in parse(feed).vevent_list if "x-changegate-change" in e.contents]
    assert [e.summary.value for e in changes] == ["CHG-12 wave 1/3: Odoo 17 security update"]
    (event,) = changes
    assert event.uid.value == "CHG-12-wave-1@changegate"
    assert event.dtstart.value == datetime(2026, 3, 8, 1, tzinfo=UTC)
    assert event.categories.value == ["change"]
    assert "Tenants: acme" in event.description.value
    platform = ics.window_feed(catalog, tenant=None, start=start, end=end, bookings=bookings)
    summaries = {
        e.summary.value for e in parse(platform).vevent_list if "x-changegate-change" in e.contents
    }
    assert summaries == {
        "CHG-12 wave 1/3: Odoo 17 security update",
        "CHG-12 wave 3/3: Odoo 17 security update",
    }


def test_bad_ranges_and_unknown_tenants_are_refused(catalog: catalog_model.Catalog) -> None:
    start, end = RANGES[0]
    with pytest.raises(InvalidInput) as naive:
        ics.window_feed(catalog, tenant=None, start=start.replace(tzinfo=None), end=end)
    assert [p.field for p in naive.value.problems] == ["from"]
    with pytest.raises(InvalidInput) as inverted:
        ics.window_feed(catalog, tenant=None, start=end, end=start)
    assert inverted.value.problems[0].field == "to"
    with pytest.raises(InvalidInput, match="longer than"):
        ics.window_feed(catalog, tenant=None, start=start, end=start + timedelta(days=800))
    with pytest.raises(NotFound, match="nobody"):
        ics.window_feed(catalog, tenant="nobody", start=start, end=end)
