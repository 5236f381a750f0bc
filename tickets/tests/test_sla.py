from datetime import UTC, date, datetime, time, timedelta

import pytest

from tickets import sla

# Monday 2026-11-23 … Sunday 2026-11-29; Berlin is UTC+1 in November.
OFFICE = sla.Calendar(
    timezone="Europe/Berlin",
    weekdays=frozenset({0, 1, 2, 3, 4}),
    start=time(9, 0),
    end=time(17, 0),
    holidays=frozenset({date(2026, 11, 26)}),
)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_without_a_calendar_the_clock_always_runs():
    assert sla.add_business_seconds(utc(2026, 11, 28, 23, 30), 3600) == utc(2026, 11, 29, 0, 30)
    assert sla.business_seconds_between(utc(2026, 11, 28), utc(2026, 11, 29)) == 86400


def test_time_inside_business_hours_counts_directly():
    # Monday 10:00 Berlin = 09:00 UTC; 2 h later is 11:00 UTC.
    assert sla.add_business_seconds(utc(2026, 11, 23, 9), 2 * 3600, OFFICE) == utc(2026, 11, 23, 11)


def test_clock_stops_overnight():
    # Monday 16:00 Berlin + 4 h: 1 h on Monday, 3 h on Tuesday from 09:00 → Tuesday 12:00 Berlin.
    assert sla.add_business_seconds(utc(2026, 11, 23, 15), 4 * 3600, OFFICE) == utc(2026, 11, 24, 11)


def test_ticket_opened_at_night_starts_at_opening_time():
    # Tuesday 02:00 Berlin → counts from 09:00 Berlin.
    assert sla.add_business_seconds(utc(2026, 11, 24, 1), 3600, OFFICE) == utc(2026, 11, 24, 9)


def test_weekend_and_holidays_are_skipped():
    # Wednesday 16:00 Berlin + 2 h: 1 h Wednesday, Thursday is a holiday, 1 h Friday → Friday 10:00 Berlin.
    assert sla.add_business_seconds(utc(2026, 11, 25, 15), 2 * 3600, OFFICE) == utc(2026, 11, 27, 9)
    # Friday 16:30 Berlin + 1 h: 30 min Friday, weekend skipped, 30 min Monday → Monday 09:30 Berlin.
    assert sla.add_business_seconds(utc(2026, 11, 27, 15, 30), 3600, OFFICE) == utc(2026, 11, 30, 8, 30)


def test_business_seconds_between_counts_only_working_time():
    # Friday 16:00 Berlin → Monday 10:00 Berlin: 1 h + 1 h.
    assert sla.business_seconds_between(utc(2026, 11, 27, 15), utc(2026, 11, 30, 9), OFFICE) == 2 * 3600
    assert sla.business_seconds_between(utc(2026, 11, 30, 9), utc(2026, 11, 27, 15), OFFICE) == 0


def test_add_and_between_agree():
    start = utc(2026, 11, 20, 13, 17)
    for hours in (1, 7, 8, 9, 30, 100):
        end = sla.add_business_seconds(start, hours * 3600, OFFICE)
        assert sla.business_seconds_between(start, end, OFFICE) == pytest.approx(hours * 3600)


def test_deadlines_warn_at_80_percent_and_add_paused_time():
    start = utc(2026, 11, 23, 9)
    d = sla.deadlines(started_at=start, target_minutes=60, paused_seconds=0)
    assert (d.warn_at, d.due_at) == (start + timedelta(minutes=48), start + timedelta(hours=1))
    paused = sla.deadlines(started_at=start, target_minutes=60, paused_seconds=1800)
    assert paused.due_at == start + timedelta(minutes=90)


def test_calendar_without_working_time_is_an_error_not_a_hang():
    closed = sla.Calendar(weekdays=frozenset())
    with pytest.raises(ValueError, match="no working time"):
        sla.add_business_seconds(utc(2026, 11, 23), 60, closed)
