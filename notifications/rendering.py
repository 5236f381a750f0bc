"""HTML fragments for live pushes: rendered once in the worker, swapped out of band by htmx."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from notifications.models import Notification


def cursor_fragment(push_id: int) -> str:
    """The mark before each push's fragments on the socket and in a poll answer: the browser
    applies each push once, in order, and resumes from the last id it saw (static/js/live.js)."""
    return f'<span id="live-cursor" hidden data-live-id="{push_id}" hx-swap-oob="true"></span>'


def inbox_fragments(
    *,
    unread: int,
    latest: list[Notification],
    row: Notification | None = None,
    new: bool = False,
    push_id: int | None = None,
) -> str:
    """Badge (the whole count), dropdown (latest 10) and, for a new/bumped notification, its row.

    ``push_id``: the point of the stream this state is current at, when it is not a push's own.
    """
    return render_to_string(
        "notifications/live.html#inbox",
        {"unread": unread, "latest": latest, "row": row, "new": new, "live": True, "push_id": push_id},
    )


def inbox_state_fragments(*, user_id: int, organization: Any, push_id: int) -> str:
    """The badge and dropdown as they are now, for a client that missed more than is replayed.

    ``push_id``: the newest push the client got with it (the state is at least that recent).
    """
    from notifications import selectors

    unread = selectors.unread_count(user_id=user_id, organization=organization)
    latest = list(selectors.notification_list(user_id=user_id, organization=organization)[: selectors.DROPDOWN_SIZE])
    return inbox_fragments(unread=unread, latest=latest, push_id=push_id)


def ticket_fragments(*, ticket: Any, comments: list[Any]) -> str:
    """The ticket's row on the list page and its status, SLA and thread on the detail page."""
    context = {"ticket": ticket, "comments": comments, "live": True}
    return "".join(
        render_to_string(name, context)
        for name in (
            "tickets/list.html#ticket-row",
            "tickets/detail.html#ticket-status",
            "tickets/detail.html#ticket-sla",
            "tickets/detail.html#ticket-comments",
        )
    )


def activity_fragment(*, event: Any, description: str) -> str:
    """A new line at the top of the dashboard's activity list."""
    return render_to_string("notifications/live.html#activity", {"event": event, "description": description})


def metrics_fragment(*, payload: dict[str, Any]) -> str:
    return render_to_string("portal/dashboard.html#platform-metrics", {"platform_metrics": payload, "live": True})
