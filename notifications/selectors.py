"""Reads of notifications and of the push stream, scoped to one user in one organization."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.utils import timezone

from notifications.models import Kind, Notification, Preference, Push
from portal.models import Organization

DROPDOWN_SIZE = 10
SORTS = {
    "newest": ("-updated_at", "-id"),
    "oldest": ("updated_at", "id"),
    "unread": (ExpressionWrapper(Q(read_at__isnull=True), output_field=BooleanField()).desc(), "-updated_at", "-id"),
}
SORT_LABELS = {"newest": "Newest first", "oldest": "Oldest first", "unread": "Unread first"}


def notification_list(
    *, user_id: int, organization: Organization, kind: str = "", state: str = "", sort: str = "newest"
) -> QuerySet[Notification]:
    queryset = Notification.objects.for_organization(organization).filter(recipient_id=user_id)
    if kind:
        queryset = queryset.filter(kind=kind)
    if state == "unread":
        queryset = queryset.filter(read_at__isnull=True)
    elif state == "read":
        queryset = queryset.filter(read_at__isnull=False)
    return queryset.order_by(*SORTS.get(sort, SORTS["newest"]))


def unread_count(*, user_id: int, organization: Organization) -> int:
    return (
        Notification.objects.for_organization(organization).filter(recipient_id=user_id, read_at__isnull=True).count()
    )


def latest_push_id(*, user_id: int, organization: Organization) -> int:
    row = (
        Push.objects.for_organization(organization)
        .filter(Q(user_id=user_id) | Q(user__isnull=True))
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    return row or 0


@dataclass(frozen=True)
class Missed:
    pushes: list[Push]
    truncated: bool


# Pushes are numbered when written but may commit out of order across workers: replay a short
# window before the client's last id as well; clients drop ids they have already seen.
REORDER_WINDOW_SECONDS = 5


def pushes_since(
    *,
    user_id: int,
    organization: Organization,
    last_id: int,
    limit: int = 500,
    since: datetime | None = None,
    newest: bool = False,
) -> Missed:
    """What was pushed after ``last_id``, in id order: the oldest ``limit`` of it, or with
    ``newest`` the newest ``limit`` (browsers: each fragment carries its element's whole state,
    so when too much was missed the newest pushes are the ones that leave the page current)."""
    from notifications.services import PUSH_RETENTION

    floor = timezone.now() - PUSH_RETENTION
    base = Push.objects.for_organization(organization).filter(
        Q(user_id=user_id) | Q(user__isnull=True), created_at__gte=floor
    )
    anchor = base.filter(id__lte=last_id).order_by("-id").values_list("created_at", flat=True).first()
    condition = Q(id__gt=last_id)
    if anchor is not None:
        condition |= Q(created_at__gte=anchor - timedelta(seconds=REORDER_WINDOW_SECONDS), id__lt=last_id)
    if newest:
        rows = list(base.filter(condition).order_by("-id")[: limit + 1])
        return Missed(pushes=rows[:limit][::-1], truncated=len(rows) > limit)
    rows = list(base.filter(condition).order_by("id")[: limit + 1])
    return Missed(pushes=rows[:limit], truncated=len(rows) > limit)


def preferences_for(*, user: Any) -> dict[str, Preference]:
    from notifications.services import DEFAULT_CHANNEL

    stored = {p.kind: p for p in Preference.objects.filter(user=user)}
    return {
        kind: stored.get(kind) or Preference(user=user, kind=kind, channel=DEFAULT_CHANNEL[kind])
        for kind in Kind.values
    }


@dataclass(frozen=True)
class InboxState:
    unread: int
    latest: list[Notification]


def inbox_states(*, organization: Organization, user_ids: list[int]) -> dict[int, InboxState]:
    """Unread count and latest notifications of many users in one query (for fan-out pushes).

    Each user's latest rows come straight from the inbox index (recipient, organization,
    -updated_at): a LIMIT per user, where a window over all of their notifications read every one
    of them; the unread count rides along on each row (a user without rows has none unread).
    """
    if not user_ids:
        return {}
    table = Notification._meta.db_table
    latest: dict[int, list[Notification]] = {uid: [] for uid in user_ids}
    unread: dict[int, int] = {}
    rows = Notification.objects.raw(
        f"""
        SELECT n.*, c.unread FROM unnest(%s::bigint[]) AS recipient(id)
        CROSS JOIN LATERAL (
            SELECT count(*) AS unread FROM {table}
            WHERE recipient_id = recipient.id AND organization_id = %s AND read_at IS NULL
        ) AS c
        CROSS JOIN LATERAL (
            SELECT * FROM {table}
            WHERE recipient_id = recipient.id AND organization_id = %s
            ORDER BY updated_at DESC, id DESC
            LIMIT %s
        ) AS n
        ORDER BY n.recipient_id, n.updated_at DESC, n.id DESC
        """,  # noqa: S608 - only the model's own table name is interpolated
        [list(user_ids), organization.pk, organization.pk, DROPDOWN_SIZE],
    )
    for notification in rows:
        latest[notification.recipient_id].append(notification)
        unread[notification.recipient_id] = notification.unread
    return {uid: InboxState(unread=unread.get(uid, 0), latest=latest[uid]) for uid in user_ids}


def page_live_state(*, user_id: int, organization: Organization) -> tuple[int, int]:
    """(unread count, latest push id) for a page render, in one query.

    The page hands the push id to its live client as the resume cursor, so anything pushed
    between rendering and the socket connecting is replayed, not lost.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT
                (SELECT count(*) FROM notifications_notification
                 WHERE organization_id = %s AND recipient_id = %s AND read_at IS NULL),
                (SELECT coalesce(max(id), 0) FROM notifications_push
                 WHERE organization_id = %s AND (user_id = %s OR user_id IS NULL))
            """,
            [organization.pk, user_id, organization.pk, user_id],
        )
        unread, cursor_id = cursor.fetchone()
    return unread, cursor_id
