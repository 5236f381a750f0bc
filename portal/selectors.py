"""Reads of the shared core. Every list is scoped to one organization and joins what it shows."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from portal.models import ApiToken, Event, Invitation, Membership, Organization


def membership_list(*, organization: Organization) -> QuerySet[Membership]:
    return (
        Membership.objects.for_organization(organization)
        .select_related("user")
        .order_by("-role", "user__first_name", "user__email")
    )


def invitation_list_open(*, organization: Organization) -> QuerySet[Invitation]:
    return (
        Invitation.objects.for_organization(organization)
        .filter(accepted_at__isnull=True, expires_at__gt=timezone.now())
        .select_related("invited_by")
        .order_by("-created_at")
    )


def api_token_list(*, membership: Membership) -> QuerySet[ApiToken]:
    return (
        ApiToken.objects.for_organization(membership.organization)
        .filter(membership=membership, revoked_at__isnull=True)
        .order_by("-created_at")
    )


def event_list(*, organization: Organization, types: list[str] | None = None) -> QuerySet[Event]:
    queryset = Event.objects.for_organization(organization).select_related("actor").order_by("-created_at", "-id")
    if types:
        queryset = queryset.filter(type__in=types)
    return queryset
