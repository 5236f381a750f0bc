"""Calendar months as first-of-month dates (the unit of forecasts and budgets)."""

from __future__ import annotations

import calendar
from datetime import date


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def months_between(first: date, last: date) -> list[date]:
    """Every month from ``first``'s to ``last``'s, inclusive."""
    start, stop = month_start(first), month_start(last)
    count = (stop.year - start.year) * 12 + stop.month - start.month + 1
    return [add_months(start, i) for i in range(max(count, 0))]


def complete_months(first_date: date | None, last_date: date | None) -> tuple[date, date] | None:
    """The first and last months fully covered by data from ``first_date`` to ``last_date``.

    A month the data starts in after its first day, or ends in before its last day, is partial: its
    total would look like a drop and teach the forecast a fall that did not happen.
    """
    if first_date is None or last_date is None:
        return None
    first = month_start(first_date) if first_date.day == 1 else add_months(month_start(first_date), 1)
    last = month_start(last_date) if last_date == month_end(last_date) else add_months(month_start(last_date), -1)
    return (first, last) if first <= last else None


def label(month: date) -> str:
    return month.strftime("%Y-%m")
