"""iCalendar (RFC 5545) feeds of the change calendar, for customers to subscribe to.

A feed holds one VEVENT per window occurrence in the range asked for, as
`domain.calendar.occurrences` computes it, plus the scheduled changes' waves. Every
occurrence is written out whole, with DTSTART and DTEND in UTC, rather than as a recurring
event with an RRULE: the feed is then the calendar's own answer, not a second
implementation of it. Cron windows, ERP generators (month-end business days, holidays) and
dated windows have no RRULE at all; and for the windows that have one, calendar
applications disagree on the local times a DST change skips or repeats. A subscribed
calendar fetches the feed again regularly (REFRESH-INTERVAL), so a rolling range serves
well. The local times in the window's own timezone are in each event's description.

UIDs are stable (`<window>-<start UTC>@changegate`, `<change>-wave-<n>@changegate`), so a
calendar application updates an event in place when the feed is fetched again; DTSTAMP is
an argument, so the same inputs give the same bytes.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import icalendar

from changegate.domain import calendar
from changegate.domain import catalog as catalog_model
from changegate.errors import InvalidInput, NotFound, Problem

PRODID = "-//changegate//change calendar//EN"
# The longest range one feed covers, and the most events it holds.
MAX_RANGE = timedelta(days=732)
MAX_EVENTS = 50_000
REFRESH = timedelta(hours=1)

_SUMMARY = {
    catalog_model.WindowPurpose.MAINTENANCE: "Maintenance window",
    catalog_model.WindowPurpose.RELEASE: "Release window",
    catalog_model.WindowPurpose.FREEZE: "Freeze",
    catalog_model.WindowPurpose.BLACKOUT: "Blackout",
}


@dataclass(frozen=True, slots=True)
class Booking:
    """One scheduled wave of a change, shown in the feeds of the tenants it touches.

    `waves` is how many waves the change has; when not given it is the highest wave number
    among the bookings of the change passed to `window_feed`.
    """

    change_id: str
    title: str
    wave: int
    start: datetime
    end: datetime
    tenants: tuple[str, ...]
    waves: int | None = None


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _stamp_text(value: datetime) -> str:
    return _utc(value).strftime("%Y%m%dT%H%M%SZ")


def _check_range(start: datetime, end: datetime) -> None:
    problems = [
        Problem("needs a timezone offset, e.g. 2026-12-01T00:00:00Z", field=name)
        for name, value in (("from", start), ("to", end))
        if value.tzinfo is None
    ]
    if problems:
        raise InvalidInput(problems)
    if end <= start:
        raise InvalidInput([Problem("must be after from", field="to")])
    if end - start > MAX_RANGE:
        raise InvalidInput(
            [Problem(f"the range is longer than {MAX_RANGE.days} days; ask for less", field="to")]
        )


def _local_span(occurrence: calendar.Occurrence, timezone: str) -> str:
    zone = zoneinfo.ZoneInfo(timezone)
    first = occurrence.start.astimezone(zone)
    last = occurrence.end.astimezone(zone)
    same_day = first.date() == last.date()
    if first.utcoffset() == last.utcoffset():
        until = f"{last:%H:%M}" if same_day else f" to {last:%Y-%m-%d %H:%M}"
        joiner = "-" if same_day else ""
        return f"{first:%Y-%m-%d %H:%M}{joiner}{until} {timezone} (UTC{first:%z})"
    # A DST change inside the occurrence: each end with its own offset.
    until = f"{last:%H:%M}" if same_day else f"{last:%Y-%m-%d %H:%M}"
    return f"{first:%Y-%m-%d %H:%M} (UTC{first:%z}) to {until} (UTC{last:%z}) {timezone}"


def _scope_text(scope: catalog_model.WindowScope, match: str) -> str:
    if scope.global_:
        return "everything (global)"
    parts = [
        f"{name} {', '.join(values)}"
        for name, values in (
            ("clusters", scope.clusters),
            ("services", scope.services),
            ("tiers", scope.tiers),
            ("tenants", scope.tenants),
        )
        if values
    ]
    joiner = " and " if match == "all" else " or "
    return joiner.join(parts)


def _window_description(
    window: catalog_model.Entity[catalog_model.WindowSpec], occurrence: calendar.Occurrence
) -> str:
    spec = window.spec
    lines = [text for text in dict.fromkeys((spec.reason, spec.description)) if text]
    lines.append(f"When: {_local_span(occurrence, spec.timezone)}")
    if spec.type is catalog_model.WindowType.ALLOW:
        lines.append("Changes may run in this window.")
        if spec.allow_overrun:
            lines.append("A change started in it may run past its end.")
    else:
        lines.append("No change may start or run in this window unless exempt.")
        exempt = [*(f"{t.value} changes" for t in spec.exempt.types)]
        exempt += [category.value for category in spec.exempt.categories]
        if exempt:
            lines.append(f"Exempt: {', '.join(exempt)}.")
    lines.append(f"Applies to: {_scope_text(spec.scope, spec.match)}.")
    lines.append(f"changegate window {window.id}")
    return "\n".join(lines)


def _window_event(
    window: catalog_model.Entity[catalog_model.WindowSpec],
    occurrence: calendar.Occurrence,
    stamp: datetime,
) -> icalendar.Event:
    spec = window.spec
    event = icalendar.Event()
    event.add("uid", f"{window.id}-{_stamp_text(occurrence.start)}@changegate")
    event.add("dtstamp", stamp)
    event.add("dtstart", _utc(occurrence.start))
    event.add("dtend", _utc(occurrence.end))
    event.add("summary", f"{_SUMMARY[spec.purpose]}: {window.id}")
    event.add("description", _window_description(window, occurrence))
    event.add("categories", [spec.type.value, spec.purpose.value])
    allow = spec.type is catalog_model.WindowType.ALLOW
    event.add("transp", "TRANSPARENT" if allow else "OPAQUE")
    event.add("x-changegate-window", window.id)
    return event


def _booking_event(booking: Booking, waves: int, stamp: datetime) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", f"{booking.change_id}-wave-{booking.wave}@changegate")
    event.add("dtstamp", stamp)
    event.add("dtstart", _utc(booking.start))
    event.add("dtend", _utc(booking.end))
    event.add("summary", f"{booking.change_id} wave {booking.wave}/{waves}: {booking.title}")
    tenants = ", ".join(booking.tenants) or "-"
    event.add(
        "description",
        f"Scheduled change {booking.change_id}, wave {booking.wave} of {waves}.\n"
        f"Tenants: {tenants}",
    )
    event.add("categories", ["change"])
    event.add("transp", "OPAQUE")
    event.add("x-changegate-change", booking.change_id)
    return event


def _windows(
    catalog: catalog_model.Catalog, tenant: str | None
) -> Iterable[catalog_model.Entity[catalog_model.WindowSpec]]:
    if tenant is None:
        return catalog.windows.values()
    if tenant not in catalog.tenants:
        raise NotFound(f"no tenant {tenant!r} in the catalog")
    return calendar.windows_for(catalog, tenant)


def _wave_counts(bookings: Sequence[Booking]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for booking in bookings:
        counts[booking.change_id] = max(counts.get(booking.change_id, 0), booking.wave)
    return counts


def window_feed(
    catalog: catalog_model.Catalog,
    *,
    tenant: str | None,
    start: datetime,
    end: datetime,
    bookings: Sequence[Booking] = (),
    stamp: datetime | None = None,
) -> bytes:
    """The iCalendar feed of the windows that apply to `tenant` (every window when None: the
    platform feed) and of the bookings that touch it, for occurrences meeting [start, end).

    An occurrence that began before `start` or ends after `end` is included whole, as
    `calendar.occurrences` gives it. `stamp` is every event's DTSTAMP (default: now).
    Raises InvalidInput for a range without offsets, inverted, longer than MAX_RANGE or
    holding more than MAX_EVENTS events, and NotFound for a tenant the catalog lacks.
    """
    _check_range(start, end)
    dtstamp = _utc(stamp if stamp is not None else datetime.now(tz=UTC)).replace(microsecond=0)
    events: list[tuple[datetime, str, icalendar.Event]] = []
    for window in _windows(catalog, tenant):
        found = calendar.occurrences(window, start, end, holidays=catalog.holiday_calendars)
        for occurrence in found:
            event = _window_event(window, occurrence, dtstamp)
            events.append((occurrence.start, str(event["uid"]), event))
            if len(events) > MAX_EVENTS:
                raise InvalidInput(
                    [Problem(f"more than {MAX_EVENTS} events; ask for a shorter range", field="to")]
                )
    waves = _wave_counts(bookings)
    for booking in bookings:
        if booking.end <= start or booking.start >= end:
            continue
        if tenant is not None and tenant not in booking.tenants:
            continue
        count = booking.waves or waves[booking.change_id]
        event = _booking_event(booking, count, dtstamp)
        events.append((_utc(booking.start), str(event["uid"]), event))
    events.sort(key=lambda item: (item[0], item[1]))
    feed = icalendar.Calendar()
    feed.add("prodid", PRODID)
    feed.add("version", "2.0")
    feed.add("calscale", "GREGORIAN")
    feed.add("method", "PUBLISH")
    name = f"changegate: {tenant}" if tenant else "changegate: platform"
    feed.add("x-wr-calname", name)
    feed.add(
        "x-wr-caldesc",
        f"Maintenance windows, freezes and scheduled changes for {tenant}"
        if tenant
        else "Every maintenance window, freeze and scheduled change of the platform",
    )
    feed.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    feed.add("x-published-ttl", f"PT{REFRESH // timedelta(minutes=1)}M")
    for _, _, event in events:
        feed.add_component(event)
    return bytes(feed.to_ical())
