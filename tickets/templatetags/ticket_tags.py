"""Per-row markup of the ticket pages, built in Python.

The list page renders 25 rows, the live push one row at a time: an included template per
row (and per badge) cost about 1.2 ms a row, most of the page's CPU. These tags produce the
same markup with ``format_html`` for a few tens of microseconds (docs/adr/0012).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from uuid import UUID

from django import template
from django.urls import get_script_prefix, reverse
from django.utils import timesince as _timesince
from django.utils import timezone
from django.utils.html import format_html
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
MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ZERO = UUID(int=0)


def iso(value: datetime) -> str:
    """``value|date:'c'``: ISO 8601 in the current time zone."""
    return timezone.localtime(value).isoformat()


def long_date(value: datetime) -> str:
    """``value|date:'j M Y, H:i e'``, e.g. ``25 Nov 2026, 14:05 UTC``."""
    local = timezone.localtime(value)
    return f"{local.day} {MONTHS[local.month]} {local.year}, {local:%H:%M} {local.tzname() or ''}".rstrip()


@lru_cache(maxsize=8)
def _detail_url_parts(prefix: str) -> tuple[str, str]:
    head, _, tail = reverse("tickets:detail", args=[_ZERO]).partition(str(_ZERO))
    return head, tail


def detail_url(public_id: UUID) -> str:
    """``{% url 'tickets:detail' public_id %}`` without resolving the pattern for every row."""
    head, tail = _detail_url_parts(get_script_prefix())
    return f"{head}{public_id}{tail}"


class _English:
    """``ngettext_lazy("%(num)d day", "%(num)d days")`` for English, without a lazy object per use."""

    def __init__(self, singular: str, plural: str) -> None:
        self.singular, self.plural = singular, plural

    def __mod__(self, values: dict) -> str:
        return (self.singular if values["num"] == 1 else self.plural) % values


_ENGLISH_TIME_STRINGS = {key: _English(f"%(num)d {key}", f"%(num)d {key}s") for key in _timesince.TIME_STRINGS_KEYS}


def timesince(value: datetime, now: datetime | None = None, reverse: bool = False) -> str:
    """``django.utils.timesince.timesince`` (same text); in English without lazy translations,
    which were most of its cost (25 rows: 2 calls each)."""
    strings = _ENGLISH_TIME_STRINGS if (get_language() or "en").startswith("en") else None
    return _timesince.timesince(value, now, reversed=reverse, time_strings=strings)


def timeuntil(value: datetime, now: datetime | None = None) -> str:
    return timesince(value, now, reverse=True)


def _name(user) -> str:
    return user.get_full_name() or user.email


@register.simple_tag
def sla_badge(ticket, now=None) -> SafeString:
    status = services.ticket_sla_status(ticket=ticket, now=now)
    target = TARGET_LABELS[status.target]
    due = status.due_at
    live = due is not None and status.state in ("on_track", "at_risk", "breached")
    title = f"{target.capitalize()} due {long_date(due) if due else ''}"
    if not live:
        return format_html(
            '<span class="sla sla-{}" title="{}">\n  <span class="sla-label">{}</span>\n</span>',
            status.state,
            title,
            SLA_LABELS[status.state],
        )
    if status.state == "breached":
        countdown = f"{target} overdue by {timesince(due, now)}"
    else:
        countdown = f"{target} due in {timeuntil(due, now)}"
    return format_html(
        '<span class="sla sla-{}" data-due="{}" title="{}">\n  <span class="sla-label">{}</span>'
        ' · <span class="sla-countdown">{}</span>\n</span>',
        status.state,
        iso(due),
        title,
        SLA_LABELS[status.state],
        countdown,
    )


@register.simple_tag
def ticket_row(ticket, live=False, now=None) -> SafeString:
    """One ``<tr>`` of the list (also pushed live, swapped out of band by its id)."""
    replies = ticket.comment_count
    assignee = ticket.assignee
    return format_html(
        '<tr id="ticket-row-{}"{}>\n'
        '          <td data-label="Ticket"><a href="{}"><span class="ticket-number">{}</span> {}</a>\n'
        '            <div class="muted small">{} · by {}{}</div></td>\n'
        '          <td data-label="Status"><span class="status status-{}">{}</span></td>\n'
        '          <td data-label="Priority"><span class="priority priority-{}">{}</span></td>\n'
        '          <td data-label="SLA">{}</td>\n'
        '          <td data-label="Assignee">{}</td>\n'
        '          <td data-label="Updated"><time datetime="{}" title="{}">{} ago</time></td>\n'
        "        </tr>",
        ticket.public_id,
        mark_safe(' hx-swap-oob="true"') if live else "",
        detail_url(ticket.public_id),
        ticket.reference,
        ticket.subject,
        CATEGORY_LABELS.get(ticket.category, ticket.category),
        _name(ticket.requester),
        f" · {replies} repl{'y' if replies == 1 else 'ies'}" if replies else "",
        ticket.status,
        STATUS_LABELS.get(ticket.status, ticket.status),
        ticket.priority,
        PRIORITY_LABELS.get(ticket.priority, ticket.priority),
        sla_badge(ticket, now),
        (assignee.get_full_name() or assignee.get_username())
        if assignee
        else mark_safe('<span class="muted">Unassigned</span>'),
        iso(ticket.updated_at),
        long_date(ticket.updated_at),
        timesince(ticket.updated_at, now),
    )
