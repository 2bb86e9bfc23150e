"""The change calendar: when each window is open, which windows apply to a tenant, and whether
a change may touch a tenant at an instant (with who may override, and until when it waits).

Pure: no clock and no I/O. Every instant is an argument, must carry an offset, and every
result is UTC-aware. docs/calendar.md states the rules; in short:

- A window's occurrences are computed in the window's own timezone with zoneinfo and are
  half-open, `[start, end)`. A local time that does not exist (the spring-forward gap) is
  moved forward by the length of the gap; an ambiguous one (fall-back) is the first of the
  two. That is RFC 5545 §3.3.5, and exactly what zoneinfo does with `fold=0`. A duration is
  elapsed time; whole-day schedules (dated ranges of dates, generators) run from local
  midnight to local midnight.
- No applicable window: allowed. An active deny window that does not exempt the change:
  blocked. Otherwise, when any allow window applies, only an active one allows.

Expanding schedules is the costly part, so it is cached twice: each distinct schedule keeps
its occurrences per UTC month (`_Schedule`), and each catalog keeps which windows apply to
which tenant and the allowed intervals of each combination of windows (`_CatalogCalendar`).
Ten thousand tenants sharing a few dozen windows cost a few dozen expansions.
"""

from __future__ import annotations

import bisect
import fnmatch
import itertools
import math
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import cronsim
from dateutil import rrule as rrules

from changegate.domain import canonical, scheduling
from changegate.domain.catalog import (
    Catalog,
    Entity,
    GeneratorKind,
    HolidayCalendarSpec,
    Role,
    WindowGenerator,
    WindowPurpose,
    WindowSpec,
    WindowType,
    rrule_parts,
)
from changegate.domain.changes import Category, ChangeType
from changegate.errors import InvalidInput, NotFound, Problem

RRULE_ANCHOR = datetime(2001, 1, 1)
"""The DTSTART of an rrule without `start`: local midnight on Monday 1 January 2001.

Fixed, so occurrences never depend on the range asked for. It makes `FREQ=WEEKLY` alone mean
Mondays, `FREQ=MONTHLY` alone the 1st, `FREQ=YEARLY` alone 1 January, a missing BYHOUR,
BYMINUTE or BYSECOND zero, and counts `INTERVAL` from that date."""

HORIZON = timedelta(days=400)
"""How far ahead `decide` looks for `next_allowed_at`."""

MAX_OCCURRENCES_PER_MONTH = 5_000
"""More openings a month than this (about one every nine minutes) is refused as a mistake."""

# The span of time the calendar covers; an instant outside it sees no occurrence.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)

Interval = scheduling.Interval
"""A half-open `[start, end)` stretch of time with UTC-aware ends (the scheduler's)."""

_TICK = timedelta(microseconds=1)
_DAY = timedelta(days=1)
_GLOB_CHARS = frozenset("*?[")


# --------------------------------------------------------------------------- public records


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One opening of a window: UTC-aware, half-open `[start, end)`."""

    window: str
    start: datetime
    end: datetime

    def contains(self, at: datetime) -> bool:
        """Whether the instant falls inside: the start does, the end does not."""
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class CalendarDecision:
    """Whether a change may touch a tenant at an instant, and why.

    `deciding` holds the occurrences that decided it: the active allow window(s) when
    allowed inside a window, the blocking deny window(s), the window that closed under a
    running implementation, or, when outside every allow window, each allow window's next
    opening. `exempted` names the deny windows active at `at` that let this change through
    by their exemptions; each needs the consent of the tenant's customer approver recorded.
    """

    tenant: str
    at: datetime
    allowed: bool
    deciding: tuple[Occurrence, ...]
    exempted: tuple[str, ...]
    next_allowed_at: datetime | None
    override_by: str | None
    reason: str
    # window id -> (type, purpose), for as_dict; not part of the decision's identity.
    kinds: Mapping[str, tuple[str, str]] = field(default_factory=dict, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape of the API and of `windows check --json`."""
        deciding = []
        for occurrence in self.deciding:
            kind, purpose = self.kinds.get(occurrence.window, (None, None))
            deciding.append(
                {
                    "window": occurrence.window,
                    "type": kind,
                    "purpose": purpose,
                    "start": canonical.to_utc_text(occurrence.start),
                    "end": canonical.to_utc_text(occurrence.end),
                }
            )
        return {
            "tenant": self.tenant,
            "at": canonical.to_utc_text(self.at),
            "allowed": self.allowed,
            "deciding": deciding,
            "exempted": list(self.exempted),
            "next_allowed_at": (
                canonical.to_utc_text(self.next_allowed_at) if self.next_allowed_at else None
            ),
            "override_by": self.override_by,
            "reason": self.reason,
        }


# --------------------------------------------------------------------------- time helpers


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            [Problem(f"{name} needs a timezone offset, e.g. 2026-12-01T22:00:00Z", field=name)]
        )
    return value.astimezone(UTC)


def _instant(local: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
    """A naive local time in tz as a UTC instant. fold=0 is RFC 5545 §3.3.5: a time in the
    spring-forward gap takes the offset from before the gap (so it moves forward by the gap),
    an ambiguous time the first of its two instants."""
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _local(instant: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
    """A UTC instant as naive local wall time in tz."""
    return instant.astimezone(tz).replace(tzinfo=None)


def _midnight(day: date, tz: zoneinfo.ZoneInfo) -> datetime:
    return _instant(datetime.combine(day, time()), tz)


def _years_from(instant: datetime, years: int) -> datetime:
    try:
        return instant.replace(year=instant.year + years)
    except ValueError:  # 29 February, to a year without one
        return instant.replace(year=instant.year + years, day=28)


# --------------------------------------------------------------------------- interval algebra


def _clip(intervals: Iterable[Interval], start: datetime, end: datetime) -> list[Interval]:
    return [(max(s, start), min(e, end)) for s, e in intervals if s < end and e > start]


# --------------------------------------------------------------------------- schedules


class _TooMany(Exception):
    """A schedule opens more than MAX_OCCURRENCES_PER_MONTH times in a month."""


def _month(instant: datetime) -> int:
    """A running month number: the key of a month's cached occurrences."""
    return instant.year * 12 + instant.month - 1


def _month_start(month: int) -> datetime:
    return datetime(month // 12, month % 12 + 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Month:
    """The occurrences meeting one UTC month, sorted; their starts and ends apart, to bisect."""

    first: datetime
    spans: tuple[Interval, ...]
    starts: list[datetime]
    ends: list[datetime]


class _Schedule:
    """Where one schedule's occurrences fall, computed one UTC month at a time and kept.

    Within a month the spans are sorted by start, and their ends are sorted too (a recurring
    schedule has one duration; whole-day runs never overlap), so a range costs two bisections
    per month. Months keep a 90-day question from expanding whole years.
    """

    def __init__(self) -> None:
        self._cache: dict[int, _Month] = {}

    def spans(self, start: datetime, end: datetime) -> list[Interval]:
        """Every occurrence meeting `[start, end)`, whole, sorted."""
        start, end = max(start, EARLIEST), min(end, LATEST)
        found: list[Interval] = []
        if start >= end:
            return found
        first = _month(start)
        for month in range(first, _month(end - _TICK) + 1):
            cached = self._month(month)
            # An occurrence is taken from the month it starts in, except those that started
            # before the range's first month: no duplicates, and the order holds.
            if month == first:
                low = bisect.bisect_right(cached.ends, start)
            else:
                low = bisect.bisect_left(cached.starts, cached.first)
            high = bisect.bisect_left(cached.starts, end)
            found.extend(cached.spans[low:high])
        return found

    def any_in(self, start: datetime, end: datetime) -> bool:
        """Whether any occurrence meets `[start, end)`."""
        start, end = max(start, EARLIEST), min(end, LATEST)
        for month in range(_month(start), _month(end - _TICK) + 1) if start < end else ():
            cached = self._month(month)
            low = bisect.bisect_right(cached.ends, start)
            if low < bisect.bisect_left(cached.starts, end):
                return True
        return False

    def _month(self, month: int) -> _Month:
        cached = self._cache.get(month)
        if cached is None:
            first, last = _month_start(month), _month_start(month + 1)
            # The expansion has margins on both sides; allow for them before giving up.
            expanded = itertools.islice(self._expand(first, last), MAX_OCCURRENCES_PER_MONTH * 2)
            spans = tuple(sorted({span for span in expanded if span[0] < last and span[1] > first}))
            if len(spans) > MAX_OCCURRENCES_PER_MONTH:
                raise _TooMany
            cached = _Month(first, spans, [s for s, _ in spans], [e for _, e in spans])
            self._cache[month] = cached
        return cached

    def _expand(self, start: datetime, end: datetime) -> Iterable[Interval]:
        """Occurrences meeting `[start, end)`, perhaps with some more around it."""
        raise NotImplementedError


class _Dated(_Schedule):
    """A one-off range."""

    def __init__(self, span: Interval) -> None:
        super().__init__()
        # Naive local ends in a DST gap can meet or cross: such a range holds no instant.
        self._spans = (span,) if span[0] < span[1] else ()

    def _expand(self, start: datetime, end: datetime) -> Iterable[Interval]:
        return self._spans


class _Recurring(_Schedule):
    """Starts given as local wall times (by an rrule or a cron expression), each lasting
    `duration` of elapsed time."""

    def __init__(self, tz: zoneinfo.ZoneInfo, duration: timedelta) -> None:
        super().__init__()
        self._tz = tz
        self._duration = duration

    def _expand(self, start: datetime, end: datetime) -> Iterator[Interval]:
        # A day of margin on each side covers any UTC offset.
        local_from = _local(start - self._duration, self._tz) - _DAY
        local_to = _local(end, self._tz) + _DAY
        for local in self._starts(local_from, local_to):
            begin = _instant(local, self._tz)
            yield begin, begin + self._duration

    def _starts(self, local_from: datetime, local_to: datetime) -> Iterator[datetime]:
        """Local start times from local_from to local_to, both included, in order."""
        raise NotImplementedError


class _Cron(_Recurring):
    """A five-field cron expression, run by cronsim on naive local times (so the DST rule is
    ours, not cron's)."""

    def __init__(self, tz: zoneinfo.ZoneInfo, duration: timedelta, expression: str) -> None:
        super().__init__(tz, duration)
        self._expression = expression
        try:
            cronsim.CronSim(expression, RRULE_ANCHOR)
            self._never = False
        except cronsim.CronSimError:
            # cronsim refuses a day that never comes, such as 30 February: never open.
            self._never = True

    def _starts(self, local_from: datetime, local_to: datetime) -> Iterator[datetime]:
        if self._never:
            return
        # CronSim yields the times strictly after the one it is given.
        for local in cronsim.CronSim(self._expression, local_from - timedelta(seconds=1)):
            if local > local_to:
                return
            yield local


_FIXED_STEPS = {
    "SECONDLY": timedelta(seconds=1),
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": _DAY,
    "WEEKLY": timedelta(weeks=1),
}
_MONTH_STEPS = {"MONTHLY": 1, "YEARLY": 12}
# Periods of each frequency in 400 Gregorian years, after which dates and weekdays repeat.
_PER_400_YEARS = {
    "YEARLY": 400,
    "MONTHLY": 4_800,
    "WEEKLY": 20_871,
    "DAILY": 146_097,
    "HOURLY": 146_097 * 24,
    "MINUTELY": 146_097 * 1_440,
    "SECONDLY": 146_097 * 86_400,
}


def _shifted(dtstart: datetime, freq: str, interval: int, before: datetime) -> datetime:
    """The latest `dtstart + k * interval periods` (k >= 0) not after `before`.

    dateutil walks every period from DTSTART; starting a whole number of intervals later
    gives the same occurrences from there on (a period's candidates depend on the period,
    the BYxxx parts and what DTSTART's time, weekday, day and month default them to, which
    the shift keeps), and spares decades of walking.
    """
    if before <= dtstart:
        return dtstart
    step = _FIXED_STEPS.get(freq)
    if step is not None:
        return dtstart + ((before - dtstart) // (step * interval)) * step * interval
    if dtstart.day > 28:
        return dtstart  # not every month has that day: no shortcut
    months = _MONTH_STEPS[freq] * interval
    elapsed = (before.year - dtstart.year) * 12 + before.month - dtstart.month
    count = elapsed // months
    while count > 0:
        index = dtstart.month - 1 + count * months
        candidate = dtstart.replace(year=dtstart.year + index // 12, month=index % 12 + 1)
        if candidate <= before:
            return candidate
        count -= 1
    return dtstart


# Parts that cannot leave a daily or coarser rule without occurrences: every week has every
# weekday, every day every time (BYDAY with an ordinal, like -1FR, is not among them).
_ALWAYS_MATCHING = frozenset({"FREQ", "INTERVAL", "WKST", "BYHOUR", "BYMINUTE", "BYSECOND"})


@lru_cache(maxsize=4096)
def _ever_opens(body: str, freq: str, interval: int, dtstart: datetime) -> bool:
    """Whether the rule (without COUNT and UNTIL) has any occurrence from dtstart on.

    dateutil looks for the next occurrence until year 9999, which for a rule that never
    matches (30 February) takes seconds. The pattern repeats every 400 years times whatever
    the interval adds, so asking from the last such repetition that still fits before 9999
    answers the same question in a few hundred years of walking at most.
    """
    parts = rrule_parts(body)
    plain_days = all(day.isalpha() for day in parts.get("BYDAY", "MO").split(","))
    coarse = freq in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
    if coarse and plain_days and _ALWAYS_MATCHING.issuperset(set(parts) - {"BYDAY"}):
        return True
    cycles = interval // math.gcd(interval, _PER_400_YEARS[freq])
    repeat = 400 * cycles
    shifts = (9999 - dtstart.year) // repeat - 1
    start = dtstart.replace(year=dtstart.year + shifts * repeat) if shifts > 0 else dtstart
    try:
        return rrules.rrulestr(body, dtstart=start).after(start, inc=True) is not None
    except ValueError:  # dateutil finds the rule empty for this DTSTART
        return False


def _dtstart(start: datetime | date | None, tz: zoneinfo.ZoneInfo) -> datetime:
    if start is None:
        return RRULE_ANCHOR
    if isinstance(start, datetime):
        local = _local(start, tz) if start.tzinfo is not None else start
        return local.replace(microsecond=0)
    return datetime.combine(start, time())


class _Rrule(_Recurring):
    """An RFC 5545 recurrence rule, expanded by dateutil on naive local times.

    UNTIL is applied here, not by dateutil (which wants a UTC UNTIL with an aware DTSTART):
    `...Z` is an instant, a local date-time is local wall time, and a date takes in the whole
    of that day. Every bound is inclusive, as in RFC 5545.
    """

    def __init__(
        self,
        tz: zoneinfo.ZoneInfo,
        duration: timedelta,
        text: str,
        start: datetime | date | None,
    ) -> None:
        super().__init__(tz, duration)
        parts = rrule_parts(text)
        until = parts.pop("UNTIL", None)
        self._freq = parts["FREQ"]
        self._interval = int(parts.get("INTERVAL", "1"))
        self._counted = "COUNT" in parts
        self._body = ";".join(f"{name}={value}" for name, value in parts.items())
        self._dtstart = _dtstart(start, tz)
        self._until_local: datetime | None = None
        self._until_utc: datetime | None = None
        if until is not None:
            if len(until) == 8:  # a date: the whole day
                day = date(int(until[:4]), int(until[4:6]), int(until[6:]))
                self._until_local = datetime.combine(day, time(23, 59, 59, 999_999))
            else:
                moment = datetime.strptime(until[:15], "%Y%m%dT%H%M%S")
                if until.endswith("Z"):
                    self._until_utc = moment.replace(tzinfo=UTC)
                else:
                    self._until_local = moment
        uncounted = ";".join(f"{n}={v}" for n, v in parts.items() if n != "COUNT")
        self._rule: rrules.rrule | None = None
        self._counted_starts: list[datetime] | None = None
        if _ever_opens(uncounted, self._freq, self._interval, self._dtstart):
            # Parsed once; each month's expansion only moves its DTSTART.
            rule = rrules.rrulestr(self._body, dtstart=self._dtstart)
            assert isinstance(rule, rrules.rrule)
            self._rule = rule

    def _within_until(self, local: datetime) -> bool:
        if self._until_local is not None:
            return local <= self._until_local
        if self._until_utc is not None:
            return _instant(local, self._tz) <= self._until_utc
        return True

    def _starts(self, local_from: datetime, local_to: datetime) -> Iterator[datetime]:
        rule = self._rule
        if rule is None:
            return
        if self._counted:
            # COUNT counts from the true DTSTART: list them all once (at most 10,000).
            if self._counted_starts is None:
                self._counted_starts = list(_walk(rule))
            found = self._counted_starts
            low = bisect.bisect_left(found, local_from)
            yield from found[low : bisect.bisect_right(found, local_to)]
            return
        dtstart = _shifted(self._dtstart, self._freq, self._interval, local_from)
        if dtstart != self._dtstart:
            rule = rule.replace(dtstart=dtstart)
        for local in _walk(rule):
            if local > local_to or not self._within_until(local):
                return
            if local >= local_from:
                yield local


def _walk(rule: rrules.rrule) -> Iterator[datetime]:
    """The rule's local starts; none once dateutil finds it empty (some MINUTELY and
    SECONDLY combinations of INTERVAL and BYHOUR say so only while iterating)."""
    try:
        yield from rule
    except ValueError:
        return


class _Days(_Schedule):
    """Whole local days; consecutive days make one occurrence."""

    def __init__(self, tz: zoneinfo.ZoneInfo) -> None:
        super().__init__()
        self._tz = tz

    def _runs(self, days: Sequence[date]) -> Iterator[Interval]:
        """Sorted, distinct days as spans from the first's local midnight to the local
        midnight after the last of each run."""
        run_start: date | None = None
        previous: date | None = None
        for day in days:
            if previous is not None and day != previous + _DAY:
                assert run_start is not None
                yield _midnight(run_start, self._tz), _midnight(previous + _DAY, self._tz)
                run_start = None
            if run_start is None:
                run_start = day
            previous = day
        if run_start is not None and previous is not None:
            yield _midnight(run_start, self._tz), _midnight(previous + _DAY, self._tz)


_CLOSING_MONTHS = {
    GeneratorKind.MONTH_END: frozenset(range(1, 13)),
    GeneratorKind.QUARTER_END: frozenset({3, 6, 9, 12}),
    GeneratorKind.YEAR_END: frozenset({12}),
}


class _ClosingDays(_Days):
    """The last N business days (Monday to Friday, not a holiday) of the chosen months."""

    def __init__(
        self,
        tz: zoneinfo.ZoneInfo,
        months: frozenset[int],
        business_days: int,
        holidays: frozenset[date],
    ) -> None:
        super().__init__(tz)
        self._months = months
        self._count = business_days
        self._holidays = holidays

    def closing_days(self, year: int, month: int) -> list[date]:
        """The month's last business days, in date order (fewer if the month has fewer)."""
        day = date(year + month // 12, month % 12 + 1, 1) - _DAY
        found: list[date] = []
        while day.month == month and len(found) < self._count:
            if day.weekday() < 5 and day not in self._holidays:
                found.append(day)
            day -= _DAY
        return found[::-1]

    def _expand(self, start: datetime, end: datetime) -> Iterator[Interval]:
        first = (start - _DAY).date()
        last = (end + _DAY).date()
        year, month = first.year, first.month
        while (year, month) <= (last.year, last.month):
            if month in self._months:
                yield from self._runs(self.closing_days(year, month))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)


class _HolidayDays(_Days):
    """Every day of a holiday calendar."""

    def __init__(self, tz: zoneinfo.ZoneInfo, days: frozenset[date]) -> None:
        super().__init__(tz)
        self._spans = tuple(self._runs(sorted(days)))

    def _expand(self, start: datetime, end: datetime) -> Iterable[Interval]:
        return self._spans


def _dated_span(start: datetime | date, end: datetime | date, tz: zoneinfo.ZoneInfo) -> Interval:
    if isinstance(start, datetime) and isinstance(end, datetime):
        if start.tzinfo is None:
            return _instant(start, tz), _instant(end, tz)
        return start.astimezone(UTC), end.astimezone(UTC)
    assert not isinstance(start, datetime)
    assert not isinstance(end, datetime)
    return _midnight(start, tz), _midnight(end + _DAY, tz)  # a date end is inclusive


@lru_cache(maxsize=16_384)
def _compile(
    timezone: str,
    rrule: str | None,
    cron: str | None,
    generator: WindowGenerator | None,
    start: datetime | date | None,
    end: datetime | date | None,
    duration: timedelta | None,
    calendar: Entity[HolidayCalendarSpec] | None,
) -> _Schedule:
    """One schedule per distinct definition: windows defined alike share their occurrences."""
    tz = zoneinfo.ZoneInfo(timezone)
    if rrule is not None and duration is not None:
        return _Rrule(tz, duration, rrule, start)
    if cron is not None and duration is not None:
        return _Cron(tz, duration, cron)
    if generator is not None:
        days = calendar.spec.days() if calendar is not None else frozenset()
        if generator.kind is GeneratorKind.HOLIDAYS:
            return _HolidayDays(tz, days)
        assert generator.business_days is not None
        return _ClosingDays(tz, _CLOSING_MONTHS[generator.kind], generator.business_days, days)
    assert start is not None
    assert end is not None
    return _Dated(_dated_span(start, end, tz))


def _schedule(
    window: Entity[WindowSpec],
    holidays: Mapping[str, Entity[HolidayCalendarSpec]] | None,
) -> _Schedule:
    spec = window.spec
    calendar = None
    wanted = spec.generator.calendar_id() if spec.generator is not None else None
    if wanted is not None:
        calendar = (holidays or {}).get(wanted)
        if calendar is None:
            raise NotFound(f"window {window.id!r} reads holiday calendar {wanted!r}, not given")
    return _compile(
        spec.timezone,
        spec.rrule,
        spec.cron,
        spec.generator,
        spec.start,
        spec.end,
        spec.duration,
        calendar,
    )


def _too_many(window: Entity[WindowSpec]) -> InvalidInput:
    name = "rrule" if window.spec.rrule is not None else "cron"
    return InvalidInput(
        [
            Problem(
                f"window {window.id!r} opens more than {MAX_OCCURRENCES_PER_MONTH:,} times a "
                "month; use a coarser schedule",
                file=window.file,
                line=window.line,
                field=f"spec.{name}",
            )
        ]
    )


def _spans(
    window: Entity[WindowSpec],
    schedule: _Schedule,
    start: datetime,
    end: datetime,
) -> list[Interval]:
    try:
        return schedule.spans(start, end)
    except _TooMany:
        raise _too_many(window) from None


def occurrences(
    window: Entity[WindowSpec],
    start: datetime,
    end: datetime,
    *,
    holidays: Mapping[str, Entity[HolidayCalendarSpec]] | None = None,
) -> list[Occurrence]:
    """Every occurrence of the window meeting `[start, end)`, whole (not clipped), sorted.

    `holidays` is the catalog's holiday calendars (`catalog.holiday_calendars`); a generator
    naming a calendar not in it is NotFound.
    """
    start, end = _utc(start, "start"), _utc(end, "end")
    spans = _spans(window, _schedule(window, holidays), start, end)
    return [Occurrence(window.id, s, e) for s, e in spans]


def never_opens(
    window: Entity[WindowSpec],
    now: datetime,
    *,
    years: int = 5,
    holidays: Mapping[str, Entity[HolidayCalendarSpec]] | None = None,
) -> bool:
    """True when the window has no occurrence in `[now - years, now + years)`: a schedule that
    cannot happen (30 February), or one wholly in the past or far future; `catalog validate`
    warns about it."""
    now = _utc(now, "now")
    try:
        schedule = _schedule(window, holidays)
        return not schedule.any_in(_years_from(now, -years), _years_from(now, years))
    except _TooMany:
        return False


# --------------------------------------------------------------------------- scope


def _matches(patterns: Sequence[str], values: Sequence[str]) -> bool:
    for pattern in patterns:
        if _GLOB_CHARS.isdisjoint(pattern):
            if pattern in values:
                return True
        elif any(fnmatch.fnmatchcase(value, pattern) for value in values):
            return True
    return False


def applies_to(window: Entity[WindowSpec], catalog: Catalog, tenant: str) -> bool:
    """Whether the window's scope selects the tenant.

    `global` selects every tenant; otherwise the lists select by the tenant's cluster, the
    services it uses (its database service and `services`), its tier and its id, each by
    id or glob. A tenant is selected when any non-empty list matches, or with `match: all`
    when every non-empty list does. An unknown tenant is selected by nothing.
    """
    found = catalog.tenants.get(tenant)
    if found is None:
        return False
    scope, spec = window.spec.scope, found.spec
    if scope.global_:
        return True
    checks = [
        _matches(patterns, values)
        for patterns, values in (
            (scope.clusters, (spec.cluster,)),
            (scope.services, (spec.database.service, *spec.services)),
            (scope.tiers, (spec.tier,)),
            (scope.tenants, (tenant,)),
        )
        if patterns
    ]
    if not checks:
        return False
    return all(checks) if window.spec.match == "all" else any(checks)


def exempts(
    window: Entity[WindowSpec],
    change_type: ChangeType | str | None,
    category: Category | str | None,
) -> bool:
    """Whether a deny window lets a change of this type or category through (an allow window
    exempts nothing: it holds nothing back)."""
    if window.spec.type is not WindowType.DENY:
        return False
    exempt = window.spec.exempt
    return (change_type is not None and change_type in exempt.types) or (
        category is not None and category in exempt.categories
    )


# --------------------------------------------------------------------------- one catalog


class _CatalogCalendar:
    """What the calendar keeps about one catalog: an index of window scopes, the windows of
    each tenant asked about, each window's schedule, and allowed intervals by the
    combination of windows that produced them."""

    _MAX_INTERVALS = 8192

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._windows = list(catalog.windows.values())
        # Windows whose scope is global or has a glob are checked for every tenant; the
        # others only for tenants having one of their ids.
        self._always: list[int] = []
        self._by_id: dict[tuple[str, str], list[int]] = {}
        for position, window in enumerate(self._windows):
            scope = window.spec.scope
            lists = {
                "clusters": scope.clusters,
                "services": scope.services,
                "tiers": scope.tiers,
                "tenants": scope.tenants,
            }
            globbed = any(not _GLOB_CHARS.isdisjoint(p) for ids in lists.values() for p in ids)
            if scope.global_ or globbed:
                self._always.append(position)
                continue
            for name, ids in lists.items():
                for ident in ids:
                    self._by_id.setdefault((name, ident), []).append(position)
        self._applicable: dict[str, tuple[Entity[WindowSpec], ...]] = {}
        self._schedules: dict[str, _Schedule] = {}
        self._intervals: dict[tuple[Any, ...], list[Interval]] = {}

    def windows_for(self, tenant: str) -> tuple[Entity[WindowSpec], ...]:
        found = self._applicable.get(tenant)
        if found is not None:
            return found
        entity = self.catalog.tenants.get(tenant)
        if entity is None:
            raise NotFound(f"no tenant {tenant!r} in the catalog")
        spec = entity.spec
        keys = [("clusters", spec.cluster), ("tiers", spec.tier), ("tenants", tenant)]
        keys += [("services", s) for s in (spec.database.service, *spec.services)]
        positions = set(self._always)
        for key in keys:
            positions.update(self._by_id.get(key, ()))
        found = tuple(
            self._windows[p]
            for p in sorted(positions)
            if applies_to(self._windows[p], self.catalog, tenant)
        )
        self._applicable[tenant] = found
        return found

    def schedule(self, window: Entity[WindowSpec]) -> _Schedule:
        found = self._schedules.get(window.id)
        if found is None:
            found = _schedule(window, self.catalog.holiday_calendars)
            self._schedules[window.id] = found
        return found

    def occurrences(
        self, window: Entity[WindowSpec], start: datetime, end: datetime
    ) -> list[Occurrence]:
        spans = _spans(window, self.schedule(window), start, end)
        return [Occurrence(window.id, s, e) for s, e in spans]

    # Looking ahead a week first, then a month, then the whole horizon: most answers are
    # near, and a far look expands every window's schedule over more than a year.
    _LOOKS = (timedelta(days=7), timedelta(days=35), HORIZON)

    def next_allowed(
        self,
        tenant: str,
        at: datetime,
        change_type: ChangeType | str | None,
        category: Category | str | None,
    ) -> datetime | None:
        """The first allowed instant in `[at, at + HORIZON)`, or None."""
        for ahead in self._LOOKS:
            found = self.allowed(tenant, at, at + ahead, change_type, category)
            if found:
                return found[0][0]
        return None

    def next_occurrence(self, window: Entity[WindowSpec], at: datetime) -> Occurrence | None:
        """The window's first occurrence meeting `[at, at + HORIZON)`, or None."""
        for ahead in self._LOOKS:
            found = self.occurrences(window, at, at + ahead)
            if found:
                return found[0]
        return None

    def allowed(
        self,
        tenant: str,
        start: datetime,
        end: datetime,
        change_type: ChangeType | str | None,
        category: Category | str | None,
    ) -> list[Interval]:
        if start >= end:
            return []
        windows = self.windows_for(tenant)
        allow = [w for w in windows if w.spec.type is WindowType.ALLOW]
        deny = [
            w
            for w in windows
            if w.spec.type is WindowType.DENY and not exempts(w, change_type, category)
        ]
        key = (
            frozenset(self.schedule(w) for w in allow),
            frozenset(self.schedule(w) for w in deny),
            start,
            end,
        )
        found = self._intervals.get(key)
        if found is None:
            if allow:
                kept = scheduling.normalize(
                    s for w in allow for s in _spans(w, self.schedule(w), start, end)
                )
            else:
                kept = [(start, end)]
            removed = scheduling.normalize(
                s for w in deny for s in _spans(w, self.schedule(w), start, end)
            )
            found = _clip(scheduling.subtract(kept, removed), start, end)
            if len(self._intervals) >= self._MAX_INTERVALS:
                self._intervals.clear()
            self._intervals[key] = found
        return list(found)


@lru_cache(maxsize=4)
def _calendar_of(catalog: Catalog) -> _CatalogCalendar:
    # A catalog is read-only once built and compares by identity, so it keys its own cache.
    return _CatalogCalendar(catalog)


def windows_for(catalog: Catalog, tenant: str) -> list[Entity[WindowSpec]]:
    """The windows whose scope selects the tenant, in catalog order; NotFound for a tenant
    the catalog lacks."""
    return list(_calendar_of(catalog).windows_for(tenant))


def allowed_intervals(
    catalog: Catalog,
    tenant: str,
    start: datetime,
    end: datetime,
    *,
    change_type: ChangeType | str | None = None,
    category: Category | str | None = None,
) -> list[Interval]:
    """When a change of this type and category may touch the tenant within `[start, end)`.

    UTC, sorted, merged, half-open and clipped to the range: the whole range when no allow
    window applies, else the union of the allow windows' occurrences, minus the union of the
    deny windows' occurrences that do not exempt the change. An instant is inside one of
    these intervals exactly when `decide` (without `started_at`) allows it.
    """
    start, end = _utc(start, "start"), _utc(end, "end")
    return _calendar_of(catalog).allowed(tenant, start, end, change_type, category)


# --------------------------------------------------------------------------- the decision


def _text(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _deny_reason(window: Entity[WindowSpec], occurrence: Occurrence) -> str:
    text = f"{window.spec.purpose.value} {window.id!r} until {_text(occurrence.end)}"
    return f"{text} ({window.spec.reason})" if window.spec.reason else text


def decide(
    catalog: Catalog,
    tenant: str,
    at: datetime,
    *,
    change_type: ChangeType | str | None = None,
    category: Category | str | None = None,
    started_at: datetime | None = None,
) -> CalendarDecision:
    """May a change of this type and category touch the tenant at `at`?

    No applicable window: allowed. An active deny window that does not exempt the change
    blocks it (override: the CAB for a freeze, nobody for a blackout). Otherwise, when any
    allow window applies, only an active one allows it (override: a platform lead). An
    implementation that started at `started_at` inside an allow window may go on after the
    window closes only if that window says `allow_overrun`; a deny window stops it all the
    same. A blocked decision says when the change would next be allowed (within HORIZON).
    """
    at = _utc(at, "at")
    started = _utc(started_at, "started_at") if started_at is not None else None
    calendar = _calendar_of(catalog)
    windows = calendar.windows_for(tenant)
    kinds = {w.id: (w.spec.type.value, w.spec.purpose.value) for w in windows}

    def result(
        allowed: bool,
        deciding: Iterable[Occurrence],
        override_by: str | None,
        reason: str,
    ) -> CalendarDecision:
        next_allowed = None
        if not allowed:
            next_allowed = calendar.next_allowed(tenant, at, change_type, category)
        if exempted:
            names = ", ".join(repr(ident) for ident in exempted)
            reason += f"; exempted from {names} (record the customer approver's consent)"
        return CalendarDecision(
            tenant,
            at,
            allowed,
            tuple(deciding),
            tuple(exempted),
            next_allowed,
            override_by,
            reason,
            kinds,
        )

    blocking: list[tuple[Entity[WindowSpec], Occurrence]] = []
    exempted: list[str] = []
    allow_windows: list[Entity[WindowSpec]] = []
    active_allow: list[tuple[Entity[WindowSpec], Occurrence]] = []
    for window in windows:
        active = calendar.occurrences(window, at, at + _TICK)
        if window.spec.type is WindowType.ALLOW:
            allow_windows.append(window)
            active_allow += [(window, occurrence) for occurrence in active]
        elif active and exempts(window, change_type, category):
            exempted.append(window.id)
        else:
            blocking += [(window, occurrence) for occurrence in active]

    if not windows:
        return result(True, (), None, f"no window applies to tenant {tenant!r}")
    if blocking:
        blackout = any(w.spec.purpose is WindowPurpose.BLACKOUT for w, _ in blocking)
        override = None if blackout else Role.CAB.value
        reason = "; ".join(_deny_reason(w, o) for w, o in blocking)
        if blackout:
            reason += "; a blackout has no override"
        return result(False, (o for _, o in blocking), override, reason)
    if not allow_windows:
        return result(True, (), None, f"no allow window applies to tenant {tenant!r}")
    if active_allow:
        window, occurrence = active_allow[0]
        reason = (
            f"inside {window.spec.purpose.value} window {window.id!r} until {_text(occurrence.end)}"
        )
        return result(True, (o for _, o in active_allow), None, reason)

    platform_lead = Role.PLATFORM_LEAD.value
    if started is not None and started <= at:
        closed = [
            (window, occurrence)
            for window in allow_windows
            for occurrence in calendar.occurrences(window, started, started + _TICK)
        ]
        for window, occurrence in closed:
            if window.spec.allow_overrun:
                reason = (
                    f"started at {_text(started)} inside {window.id!r}, which closed at "
                    f"{_text(occurrence.end)} and allows overrun"
                )
                return result(True, (occurrence,), None, reason)
        if closed:
            names = ", ".join(repr(w.id) for w, _ in closed)
            last = max(o.end for _, o in closed)
            reason = f"{names} closed at {_text(last)} and does not allow overrun"
            return result(False, (o for _, o in closed), platform_lead, reason)

    upcoming = [
        found for window in allow_windows if (found := calendar.next_occurrence(window, at))
    ]
    names = ", ".join(repr(w.id) for w in allow_windows)
    reason = f"outside every allow window of tenant {tenant!r} ({names})"
    return result(False, upcoming, platform_lead, reason)


class CalendarIndex:
    """The calendar of one catalog over one range, for callers asking about many tenants.

    Each window's occurrences in the range are computed once, and the allowed intervals
    once per combination of windows: tenants with the same windows share them. Built in
    microseconds; the work happens on first use and is kept with the catalog.
    """

    def __init__(self, catalog: Catalog, start: datetime, end: datetime) -> None:
        self.catalog = catalog
        self.start = _utc(start, "start")
        self.end = _utc(end, "end")
        self._calendar = _calendar_of(catalog)

    def windows(self, tenant: str) -> list[Entity[WindowSpec]]:
        """The windows that apply to the tenant, in catalog order."""
        return list(self._calendar.windows_for(tenant))

    def occurrences(self, window: Entity[WindowSpec]) -> list[Occurrence]:
        """The window's occurrences meeting the range, whole."""
        return self._calendar.occurrences(window, self.start, self.end)

    def allowed(
        self,
        tenant: str,
        *,
        change_type: ChangeType | str | None = None,
        category: Category | str | None = None,
    ) -> list[Interval]:
        """`allowed_intervals` for the tenant over the range."""
        return self._calendar.allowed(tenant, self.start, self.end, change_type, category)

    def decide(
        self,
        tenant: str,
        at: datetime,
        *,
        change_type: ChangeType | str | None = None,
        category: Category | str | None = None,
        started_at: datetime | None = None,
    ) -> CalendarDecision:
        """`decide` for the tenant (any instant, inside the range or not)."""
        return decide(
            self.catalog,
            tenant,
            at,
            change_type=change_type,
            category=category,
            started_at=started_at,
        )
