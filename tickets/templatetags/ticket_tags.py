"""Per-row markup of the ticket pages, built in Python.

The list page renders 25 rows, the live push one row at a time: an included template per
row (and per badge) cost about 1.2 ms a row, most of the page's CPU. These tags produce the
same markup with ``format_html`` for a few tens of microseconds (docs/adr/0012).
"""

from __future__ import annotations

import html
from uuid import UUID

from django import template
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.html import linebreaks
from django.utils.safestring import SafeString, mark_safe

from portal.markup import escape as _e
from portal.markup import uuid_url
from portal.templatetags.portal_dates import is_english, iso, long_date, timesince, timeuntil
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


def detail_url(public_id: UUID) -> str:
    """``{% url 'tickets:detail' public_id %}`` without resolving the pattern for every row."""
    return uuid_url("tickets:detail", public_id)


def _name(user) -> str:
    return user.get_full_name() or user.email


def _sla_badge_html(ticket, now=None, tz=None, english=None) -> str:
    now = now or timezone.now()
    tz = tz or timezone.get_current_timezone()
    english = is_english() if english is None else english
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


@register.filter
def status_label(value: str) -> str:
    """A status value's display label ("in_progress" → "In progress"), from the model's choices."""
    return str(STATUS_LABELS.get(value, value))


@register.simple_tag
def sla_badge(ticket, now=None) -> SafeString:
    """The SLA state of the target that matters now, with a countdown that static/js/sla.js keeps live."""
    return mark_safe(_sla_badge_html(ticket, now))  # noqa: S308 - every interpolated text is escaped


@register.simple_tag
def ticket_row(ticket, live=False, now=None) -> SafeString:
    """One ``<tr>`` of the list (also pushed live, swapped out of band by its id)."""
    html_ = _row_html(ticket, live, now or timezone.now(), timezone.get_current_timezone(), is_english())
    return mark_safe(html_)  # noqa: S308 - escaped in _row_html


@register.simple_tag
def ticket_rows(tickets) -> SafeString:
    """The list page's rows in one call. Through the template, each row cost about twice what
    building it does: the loop, the tag's argument lookups, the time zone and language per row."""
    now, tz, english = timezone.now(), timezone.get_current_timezone(), is_english()
    return mark_safe("\n".join(_row_html(ticket, False, now, tz, english) for ticket in tickets))  # noqa: S308


def _row_html(ticket, live, now, tz, english) -> str:
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
    # Every interpolated text is escaped or one of our constants. A pushed row comes in a <template>:
    # outside a table the HTML parser drops <tr> and <td> tags (htmx's "troublesome tables").
    return (
        ("<template>" if live else "") + f'<tr id="ticket-row-{public_id}"{oob}>\n'
        f'          <td data-label="Ticket"><a href="{_e(detail_url(public_id))}"><span class="ticket-number">'
        f"{ticket.reference}</span> {_e(ticket.subject)}</a>\n"
        f'            <div class="muted small">{category} · by {_e(_name(ticket.requester))}{shown_replies}</div></td>\n'
        f'          <td data-label="Status"><span class="status status-{status}">{status_label}</span></td>\n'
        f'          <td data-label="Priority"><span class="priority priority-{priority}">{priority_label}</span></td>\n'
        f'          <td data-label="SLA">{_sla_badge_html(ticket, now, tz, english)}</td>\n'
        f'          <td data-label="Assignee">{assigned}</td>\n'
        f'          <td data-label="Updated"><time datetime="{iso(updated, tz)}" title="{_e(long_date(updated, tz))}">'
        f"{_e(timesince(updated, now, english=english))} ago</time></td>\n"
        "        </tr>" + ("</template>" if live else "")
    )


def _attachment_link(ticket, attachment) -> str:
    url = reverse("tickets:attachment", args=[ticket.public_id, attachment.public_id])
    return (
        f'<li><a href="{_e(url)}">{_e(attachment.filename)}</a> '
        f'<span class="muted small">({_e(filesizeformat(attachment.size))})</span></li>'
    )


@register.simple_tag
def ticket_comment(comment, ticket) -> SafeString:
    """One ``<li>`` of a ticket's conversation: the reply fragment's one reply."""
    return mark_safe(_comment_html(comment, ticket, timezone.get_current_timezone()))  # noqa: S308


@register.simple_tag
def ticket_comments(comments, ticket) -> SafeString:
    """A ticket's conversation, one ``<li>`` a comment (the detail page and the live push), in one
    call; ~0.4 ms a comment through a template."""
    tz = timezone.get_current_timezone()
    return mark_safe("\n".join(_comment_html(comment, ticket, tz) for comment in comments))  # noqa: S308


def _comment_html(comment, ticket, tz) -> str:
    """Every interpolated text is escaped or one of our constants."""
    author = comment.author
    agent, internal = comment.by_agent, comment.internal
    created = comment.created_at
    classes = "comment" + (" comment-agent" if agent else "") + (" comment-internal" if internal else "")
    badges = (' <span class="badge">Support</span>' if agent else "") + (
        ' <span class="badge badge-warn">Internal note</span>' if internal else ""
    )
    files = getattr(comment, "files", None)
    attachments = f'<ul class="attachments">{"".join(_attachment_link(ticket, a) for a in files)}</ul>' if files else ""
    return (
        f'<li id="comment-{comment.public_id}" class="{classes}">\n'
        '  <div class="comment-head">\n'
        f"    <strong>{_e(author.get_full_name() or author.email)}</strong>{badges}\n"
        # Relative and absolute, both on screen: a title shows only to a mouse.
        f'    <time datetime="{iso(created, tz)}">{_e(timesince(created))} ago'
        f' <span class="muted">· {_e(long_date(created, tz))}</span></time>\n'
        "  </div>\n"
        f'  <div class="prose">{linebreaks(comment.body, autoescape=True)}</div>\n'
        f"  {attachments}\n"
        "</li>"
    )
