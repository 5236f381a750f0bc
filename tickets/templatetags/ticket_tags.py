"""Per-row markup of the ticket pages, built in Python.

The list page renders 25 rows, the live push one row at a time: an included template per
row (and per badge) cost about 1.2 ms a row, most of the page's CPU. These tags produce the
same markup with ``format_html`` for a few tens of microseconds (docs/adr/0012).
"""

from __future__ import annotations

import html
from datetime import datetime
from functools import lru_cache
from uuid import UUID

from django import template
from django.urls import get_script_prefix, reverse
from django.utils import timesince as _timesince
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from tickets import services
from tickets.models import Category, Priority, Status

register = template.Library()

SLA_LABELS = {
    "met": "SLA met",
    "paused": "SLA paused",
    "on_track": "On track",
    "at_risk": "At risk",
    "breached": "SLA breached",
}
TARGET_LABELS = {"first_response": "first response", "resolution": "resolution"}
STATUS_LABELS = dict(Status.choices)
PRIORITY_LABELS = dict(Priority.choices)
CATEGORY_LABELS = dict(Category.choices)
# The labels as HTML, escaped once.
_STATUS_HTML = {value: html.escape(str(label)) for value, label in STATUS_LABELS.items()}
_PRIORITY_HTML = {value: html.escape(str(label)) for value, label in PRIORITY_LABELS.items()}
_CATEGORY_HTML = {value: html.escape(str(label)) for value, label in CATEGORY_LABELS.items()}
MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ZERO = UUID(int=0)


def iso(value: datetime, tz=None) -> str:
    """``value|date:'c'``: ISO 8601 in the current time zone (or ``tz``, the current one looked up once)."""
    return timezone.localtime(value, tz).isoformat()


def long_date(value: datetime, tz=None) -> str:
    """``value|date:'j M Y, H:i e'``, e.g. ``25 Nov 2026, 14:05 UTC``."""
    local = timezone.localtime(value, tz)
    return f"{local.day} {MONTHS[local.month]} {local.year}, {local:%H:%M} {local.tzname() or ''}".rstrip()


@lru_cache(maxsize=8)
def _detail_url_parts(prefix: str) -> tuple[str, str]:
    head, _, tail = reverse("tickets:detail", args=[_ZERO]).partition(str(_ZERO))
    return head, tail


def detail_url(public_id: UUID) -> str:
    """``{% url 'tickets:detail' public_id %}`` without resolving the pattern for every row."""
    head, tail = _detail_url_parts(get_script_prefix())
    return f"{head}{public_id}{tail}"


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


def _english() -> bool:
    return (get_language() or "en").startswith("en")


def timesince(value: datetime, now: datetime | None = None, reverse: bool = False, english: bool | None = None) -> str:
    """``django.utils.timesince.timesince`` (same text). ``english``: the active language, looked up once
    by callers that format several dates."""
    if english if english is not None else _english():
        return _timesince_english(value, now, reverse)
    return _timesince.timesince(value, now, reversed=reverse)


def timeuntil(value: datetime, now: datetime | None = None, english: bool | None = None) -> str:
    return timesince(value, now, reverse=True, english=english)


def _name(user) -> str:
    return user.get_full_name() or user.email


def _e(value) -> str:
    """``conditional_escape`` without its lazy-string wrapper (called ~20 times per row)."""
    return value.__html__() if hasattr(value, "__html__") else html.escape(str(value))


def _sla_badge_html(ticket, now=None, tz=None, english=None) -> str:
    now = now or timezone.now()
    tz = tz or timezone.get_current_timezone()
    english = _english() if english is None else english
    status = services.ticket_sla_status(ticket=ticket, now=now)
    target = TARGET_LABELS[status.target]
    due = status.due_at
    title = _e(f"{target.capitalize()} due {long_date(due, tz) if due else ''}")
    state, label = status.state, SLA_LABELS[status.state]
    if due is None or state not in ("on_track", "at_risk", "breached"):
        return f'<span class="sla sla-{state}" title="{title}">\n  <span class="sla-label">{label}</span>\n</span>'
    if state == "breached":
        countdown = f"{target} overdue by {timesince(due, now, english=english)}"
    else:
        countdown = f"{target} due in {timeuntil(due, now, english=english)}"
    return (
        f'<span class="sla sla-{state}" data-due="{iso(due, tz)}" title="{title}">\n  <span class="sla-label">{label}</span>'
        f' · <span class="sla-countdown">{_e(countdown)}</span>\n</span>'
    )


@register.simple_tag
def sla_badge(ticket, now=None) -> SafeString:
    """The SLA state of the target that matters now, with a countdown that static/js/sla.js keeps live."""
    return mark_safe(_sla_badge_html(ticket, now))  # noqa: S308 - every interpolated text is escaped


@register.simple_tag
def ticket_row(ticket, live=False, now=None) -> SafeString:
    """One ``<tr>`` of the list (also pushed live, swapped out of band by its id)."""
    now = now or timezone.now()
    tz = timezone.get_current_timezone()  # looked up once per row, not per date
    english = _english()
    replies = ticket.comment_count
    assignee = ticket.assignee
    public_id = ticket.public_id
    updated = ticket.updated_at
    oob = ' hx-swap-oob="true"' if live else ""
    shown_replies = (f" · {replies} reply" if replies == 1 else f" · {replies} replies") if replies else ""
    category = _CATEGORY_HTML.get(ticket.category) or _e(ticket.category)
    status, priority = _e(ticket.status), _e(ticket.priority)
    status_label = _STATUS_HTML.get(ticket.status) or status
    priority_label = _PRIORITY_HTML.get(ticket.priority) or priority
    assigned = (
        _e(assignee.get_full_name() or assignee.get_username()) if assignee else '<span class="muted">Unassigned</span>'
    )
    return mark_safe(  # noqa: S308 - every interpolated text is escaped or one of our constants
        f'<tr id="ticket-row-{public_id}"{oob}>\n'
        f'          <td data-label="Ticket"><a href="{_e(detail_url(public_id))}"><span class="ticket-number">'
        f"{ticket.reference}</span> {_e(ticket.subject)}</a>\n"
        f'            <div class="muted small">{category} · by {_e(_name(ticket.requester))}{shown_replies}</div></td>\n'
        f'          <td data-label="Status"><span class="status status-{status}">{status_label}</span></td>\n'
        f'          <td data-label="Priority"><span class="priority priority-{priority}">{priority_label}</span></td>\n'
        f'          <td data-label="SLA">{_sla_badge_html(ticket, now, tz, english)}</td>\n'
        f'          <td data-label="Assignee">{assigned}</td>\n'
        f'          <td data-label="Updated"><time datetime="{iso(updated, tz)}" title="{_e(long_date(updated, tz))}">'
        f"{_e(timesince(updated, now, english=english))} ago</time></td>\n"
        "        </tr>"
    )


# Filters for the detail page's per-comment and per-change dates: the same text as the ``date`` and
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
