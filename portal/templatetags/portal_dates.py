"""Date helpers for pages and live fragments: the text of Django's ``date`` and ``timesince`` filters,
without a format parser or translation lookups per value (most of a list row's cost, docs/adr/0012)."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timesince as _timesince
from django.utils import timezone
from django.utils.translation import get_language

register = template.Library()

MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def iso(value: datetime, tz=None) -> str:
    """``value|date:'c'``: ISO 8601 in the current time zone (or ``tz``, the current one looked up once)."""
    return timezone.localtime(value, tz).isoformat()


def long_date(value: datetime, tz=None) -> str:
    """``value|date:'j M Y, H:i e'``, e.g. ``25 Nov 2026, 14:05 UTC``."""
    local = timezone.localtime(value, tz)
    return f"{local.day} {MONTHS[local.month]} {local.year}, {local:%H:%M} {local.tzname() or ''}".rstrip()


_UNITS = ("year", "month", "week", "day", "hour", "minute")
_CHUNKS = (60 * 60 * 24 * 7, 60 * 60 * 24, 60 * 60, 60)


def _english_unit(name: str, num: int) -> str:
    # avoid_wrapping(): a non-breaking space between the number and the unit.
    return f"{num}\xa0{name}" if num == 1 else f"{num}\xa0{name}s"


def _timesince_english(d: datetime, now: datetime | None, reverse: bool) -> str:
    """``django.utils.timesince.timesince`` with depth 2 for English: the same algorithm and text
    (``tickets/tests/test_views.py`` compares them over random intervals), without the translation
    lookups and lazy wrappers that were most of its cost (25 rows: 2 calls each)."""
    if now is None:
        now = datetime.now(d.tzinfo if d.utcoffset() is not None else None)
    elif now.utcoffset() is not None and d.utcoffset() is not None:
        now = now.astimezone(d.tzinfo)
    if reverse:
        d, now = now, d
    delta = now - d
    if delta.days * 86400 + delta.seconds <= 0:
        return "0\xa0minutes"
    total_months = (now.year - d.year) * 12 + (now.month - d.month)
    if d.day > now.day or (d.day == now.day and d.time() > now.time()):
        total_months -= 1
    years, months = divmod(total_months, 12)
    if years or months:
        pivot_year, pivot_month = d.year + years, d.month + months
        if pivot_month > 12:
            pivot_month -= 12
            pivot_year += 1
        pivot = datetime(
            pivot_year,
            pivot_month,
            min(_timesince.MONTHS_DAYS[pivot_month - 1], d.day),
            d.hour,
            d.minute,
            d.second,
            tzinfo=d.tzinfo,
        )
    else:
        pivot = d
    remaining = (now - pivot).total_seconds()
    partials = [years, months]
    for chunk in _CHUNKS:
        count = int(remaining // chunk)
        partials.append(count)
        remaining -= chunk * count
    first = next((i for i, value in enumerate(partials) if value), None)
    if first is None:
        return "0\xa0minutes"
    parts = [_english_unit(_UNITS[first], partials[first])]
    if first + 1 < len(partials) and partials[first + 1]:
        parts.append(_english_unit(_UNITS[first + 1], partials[first + 1]))
    return ", ".join(parts)


def is_english() -> bool:
    """Whether the active language is English (callers formatting several dates ask once)."""
    return (get_language() or "en").startswith("en")


def timesince(value: datetime, now: datetime | None = None, reverse: bool = False, english: bool | None = None) -> str:
    """``django.utils.timesince.timesince`` (same text). ``english``: the active language, looked up once
    by callers that format several dates."""
    if english is None:
        english = is_english()
    if english:
        return _timesince_english(value, now, reverse)
    return _timesince.timesince(value, now, reversed=reverse)


def timeuntil(value: datetime, now: datetime | None = None, english: bool | None = None) -> str:
    return timesince(value, now, reverse=True, english=english)


# Filters for per-comment, per-change and per-notification dates: the same text as the ``date`` and
# ``timesince`` filters they replace, without a format parser per value.


@register.filter
def isodate(value) -> str:
    """``|date:'c'``."""
    return iso(value) if value else ""


@register.filter
def longdate(value) -> str:
    """``|date:'j M Y, H:i e'``."""
    return long_date(value) if value else ""


@register.filter
def ago(value) -> str:
    """``|timesince``."""
    return timesince(value) if value else ""


@register.filter
def shortdate(value) -> str:
    """``|date:'j M, H:i'``."""
    if not value:
        return ""
    local = timezone.localtime(value)
    return f"{local.day} {MONTHS[local.month]}, {local:%H:%M}"
