"""The markup of one notification, built in Python.

A live push renders the dropdown's latest ten for every recipient and the notifications page a
page of them: through ``notifications/item.html`` each item cost ~0.4 ms (a dozen tags, filters
and URL lookups); this tag produces the same markup for a few tens of microseconds (the pattern
of ``tickets/templatetags/ticket_tags.py``, docs/adr/0012).
"""

from __future__ import annotations

import html

from django import template
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from notifications.models import Kind
from portal.markup import csrf_input, escape, url, uuid_url
from portal.templatetags.portal_dates import is_english, iso, long_date, timesince

register = template.Library()

ICONS = {Kind.TICKET: "✉", Kind.BILLING: "€", Kind.COMPLIANCE: "✔", Kind.ALERT: "⚠"}
BODY_CHARS = 240
_KIND_HTML = {value: html.escape(str(label)) for value, label in Kind.choices}


def _action(name: str, label: str, classes: str, n, title: str, csrf: str, *, button_id: str, focus_after: str) -> str:
    # The button's id and data-focus-after tell static/js/portal.js where the keyboard focus goes
    # after the swap: the same button, else (read, or deleted) the row's Delete button, the next
    # row's first control, the page's heading.
    url = escape(uuid_url(name, n.public_id))
    return (
        f'<form method="post" action="{url}" hx-post="{url}" hx-target="#notification-{n.public_id}" '
        f'hx-swap="outerHTML">{csrf}<button id="{button_id}" data-focus-after="{focus_after}" '
        f'class="button button-small {classes}" type="submit">{label}'
        f'<span class="visually-hidden">: {title}</span></button></form>'
    )


@register.simple_tag(takes_context=True)
def notification_item(context, n, compact=False, oob=False) -> SafeString:
    """One ``<li>`` of the dropdown (``compact``) or of the notifications page, with its actions."""
    unread = not n.read_at
    title = escape(n.title)
    updated = n.updated_at
    tz = timezone.get_current_timezone()
    link = escape(n.link or url("notifications:list"))
    unread_class = " notification-unread" if unread else ""
    swap = ' hx-swap-oob="true"' if oob else ""
    unread_label = '<span class="visually-hidden">Unread: </span>' if unread else ""
    # Following the link marks it read (static/js/portal.js): a POST, never the GET itself.
    mark_read = f' data-mark-read="{escape(uuid_url("notifications:read", n.public_id))}"' if unread else ""
    # The dropdown is on every page, the notifications page too: its items get ids of their own, or the
    # page's "Mark read" (hx-target by id) and live row updates would land on the dropdown's copy.
    item_id = f"notification-dropdown-item-{n.public_id}" if compact else f"notification-{n.public_id}"
    parts = [
        f'<li id="{item_id}" class="notification notification-{escape(n.kind)}{unread_class}"{swap}>\n'
        f'  <span class="notification-icon" aria-hidden="true">{ICONS.get(n.kind, "ℹ")}</span>\n'
        '  <div class="notification-text">\n'
        f'    <a href="{link}"{mark_read}>{unread_label}{title}</a>\n'
    ]
    if n.body and not compact:
        # ``|truncatechars:240``; a body of at most 240 code points is never cut (the common case).
        body = n.body if len(n.body) <= BODY_CHARS else Truncator(n.body).chars(BODY_CHARS)
        parts.append(f'    <p class="muted small">{escape(body)}</p>\n')
    updates = f" · {n.updates} updates" if n.updates > 1 else ""
    parts.append(
        f'    <span class="muted small"><span class="kind-label">{_KIND_HTML.get(n.kind) or escape(n.kind)}</span>'
        f'{updates} · <time datetime="{iso(updated, tz)}" title="{escape(long_date(updated, tz))}">'
        f"{escape(timesince(updated, english=is_english()))} ago</time></span>\n"
        "  </div>\n"
    )
    if not compact:
        csrf = csrf_input(context)
        parts.append('  <div class="notification-actions">\n')
        if unread:
            parts.append(
                "    "
                + _action(
                    "notifications:read",
                    "Mark read",
                    "button-secondary",
                    n,
                    title,
                    csrf,
                    button_id=f"notification-read-{n.public_id}",
                    focus_after=f"notification-delete-{n.public_id}",
                )
                + "\n"
            )
        parts.append(
            "    "
            + _action(
                "notifications:delete",
                "Delete",
                "button-danger",
                n,
                title,
                csrf,
                button_id=f"notification-delete-{n.public_id}",
                focus_after="next-row notifications-heading",
            )
            + "\n"
        )
        parts.append("  </div>\n")
    parts.append("</li>\n")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped or one of our constants


@register.simple_tag
def activity_describe(event):
    """The dashboard's line for an event (label, text, link): the live line matches the page's."""
    from portal.dashboard import activity_describe as describe  # the page's module, loaded on use

    return describe(event)
