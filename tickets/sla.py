"""SLA clock arithmetic: pure functions over aware datetimes and an optional business calendar.

A ticket's clock starts when it is opened, runs only inside business hours (or always, without a
calendar), and stops while the ticket waits on the customer. Due times are therefore
``start + target + time spent paused``, all measured in business seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WARNING_FRACTION = 0.8
MAX_DAYS_SCANNED = 3660  # ten years: a calendar with no working time must not loop forever


@dataclass(frozen=True)
class Calendar:
    timezone: str = "UTC"
    weekdays: frozenset[int] = frozenset(range(7))
    start: time = time(0, 0)
    end: time | None = None  # None: until midnight (24 h days)
    holidays: frozenset[date] = frozenset()

    @property
    def always_open(self) -> bool:
        return (
            self.weekdays == frozenset(range(7)) and self.start == time(0, 0) and self.end is None and not self.holidays
        )

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        """The working interval of ``day`` (in UTC), or None on a closed day."""
        if day.weekday() not in self.weekdays or day in self.holidays:
            return None
        zone = ZoneInfo(self.timezone)
        opens = datetime.combine(day, self.start, zone)
        closes = (
            datetime.combine(day, self.end, zone)
            if self.end
            else datetime.combine(day + timedelta(days=1), time(0), zone)
        )
        if closes <= opens:
            return None
        return opens.astimezone(UTC), closes.astimezone(UTC)


ALWAYS = Calendar()


def add_business_seconds(start: datetime, seconds: float, calendar: Calendar = ALWAYS) -> datetime:
    """The moment ``seconds`` of working time after ``start``."""
    if seconds < 0:
        raise ValueError("seconds must not be negative")
    if calendar.always_open:
        return start + timedelta(seconds=seconds)
    remaining = timedelta(seconds=seconds)
    day = start.astimezone(ZoneInfo(calendar.timezone)).date() - timedelta(days=1)
    for _ in range(MAX_DAYS_SCANNED):
        window = calendar._window(day)
        day += timedelta(days=1)
        if window is None:
            continue
        opens, closes = max(window[0], start), window[1]
        if closes <= opens:
            continue
        available = closes - opens
        if remaining <= available:
            return opens + remaining
        remaining -= available
    raise ValueError("the calendar has no working time in the next ten years")


def business_seconds_between(start: datetime, end: datetime, calendar: Calendar = ALWAYS) -> float:
    """Working seconds in [start, end); zero when end is not after start."""
    if end <= start:
        return 0.0
    if calendar.always_open:
        return (end - start).total_seconds()
    total = 0.0
    day = start.astimezone(ZoneInfo(calendar.timezone)).date() - timedelta(days=1)
    last = end.astimezone(ZoneInfo(calendar.timezone)).date() + timedelta(days=1)
    while day <= last:
        window = calendar._window(day)
        day += timedelta(days=1)
        if window is None:
            continue
        opens, closes = max(window[0], start), min(window[1], end)
        if closes > opens:
            total += (closes - opens).total_seconds()
    return total


@dataclass(frozen=True)
class Deadlines:
    due_at: datetime
    warn_at: datetime


def deadlines(
    *, started_at: datetime, target_minutes: int, paused_seconds: float, calendar: Calendar = ALWAYS
) -> Deadlines:
    """Due time and the 80 % warning time of one target."""
    target = target_minutes * 60
    return Deadlines(
        due_at=add_business_seconds(started_at, target + paused_seconds, calendar),
        warn_at=add_business_seconds(started_at, target * WARNING_FRACTION + paused_seconds, calendar),
    )
