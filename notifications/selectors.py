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
    *, user_id: int, organization: Organization, last_id: int, limit: int = 500, since: datetime | None = None
) -> Missed:
    from notifications.services import PUSH_RETENTION

    floor = timezone.now() - PUSH_RETENTION
    base = Push.objects.for_organization(organization).filter(
        Q(user_id=user_id) | Q(user__isnull=True), created_at__gte=floor
    )
    anchor = base.filter(id__lte=last_id).order_by("-id").values_list("created_at", flat=True).first()
    condition = Q(id__gt=last_id)
    if anchor is not None:
        condition |= Q(created_at__gte=anchor - timedelta(seconds=REORDER_WINDOW_SECONDS), id__lt=last_id)
    rows = list(base.filter(condition).order_by("id")[: limit + 1])
    return Missed(pushes=rows[:limit], truncated=len(rows) > limit)


def preferences_for(*, user: Any) -> dict[str, Preference]:
    from notifications.services import DEFAULT_CHANNEL

    stored = {p.kind: p for p in Preference.objects.filter(user=user)}
    return {
        kind: stored.get(kind) or Preference(user=user, kind=kind, channel=DEFAULT_CHANNEL[kind])
        for kind in Kind.values
    }
