"""Reads of webhooks, each scoped to one organization and joined for the page that shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from portal import events
from portal.models import Event, Organization
from portal.tenancy import scoped_get_or_404
from webhooks.models import Attempt, AttemptOutcome, Delivery, DeliveryState, Endpoint, Message

HEALTH_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class EventTypeInfo:
    name: str
    description: str


def event_type_list() -> list[EventTypeInfo]:
    """The event types endpoints may subscribe to (the catalog's public ones)."""
    return [
        EventTypeInfo(name=name, description=t.description)
        for name, t in sorted(events.CATALOG.items())
        if t.public
    ]


def _attempt_count(*, outcome: str | None, since: datetime) -> Coalesce:
    attempts = Attempt.objects.filter(endpoint=OuterRef("pk"), created_at__gte=since).exclude(
        outcome=AttemptOutcome.LOST
    )
    if outcome:
        attempts = attempts.filter(outcome=outcome)
    counted = attempts.order_by().values("endpoint").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def endpoint_list(*, organization: Organization, now: datetime | None = None) -> QuerySet[Endpoint]:
    """Endpoints with their health over the last 24 hours, in one query."""
    since = (now or timezone.now()) - HEALTH_WINDOW
    return (
        Endpoint.objects.for_organization(organization)
        .defer("secret_sealed", "previous_secret_sealed")
        .annotate(
            attempts_24h=_attempt_count(outcome=None, since=since),
            successes_24h=_attempt_count(outcome=AttemptOutcome.SUCCESS, since=since),
        )
        .order_by("created_at", "id")
    )


def endpoint_get(*, organization: Organization, public_id: Any) -> Endpoint:
    return scoped_get_or_404(
        Endpoint.objects.for_organization(organization).select_related("organization"),
        organization=organization,
        public_id=public_id,
    )


def endpoint_health(*, endpoint: Endpoint, now: datetime | None = None) -> dict[str, int]:
    since = (now or timezone.now()) - HEALTH_WINDOW
    counts = (
        Attempt.objects.for_organization(endpoint.organization)
        .filter(endpoint=endpoint, created_at__gte=since)
        .exclude(outcome=AttemptOutcome.LOST)
        .aggregate(attempts=Count("pk"), successes=Count("pk", filter=Q(outcome=AttemptOutcome.SUCCESS)))
    )
    return {"attempts_24h": counts["attempts"], "successes_24h": counts["successes"]}


def success_rate(*, attempts: int, successes: int) -> float | None:
    return round(100 * successes / attempts, 1) if attempts else None


@dataclass(frozen=True)
class DeliveryFilters:
    state: str = ""
    event_type: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def errors(self) -> dict[str, str]:
        problems = {}
        if self.state and self.state not in DeliveryState.values:
            problems["status"] = f"Unknown status {self.state!r}. Choose from: {', '.join(DeliveryState.values)}."
        if self.event_type and self.event_type not in events.CATALOG:
            problems["event_type"] = f"Unknown event type {self.event_type!r}."
        if self.since and self.until and self.since > self.until:
            problems["until"] = "“Until” must be after “since”."
        return problems

    @property
    def active(self) -> bool:
        return bool(self.state or self.event_type or self.since or self.until)


def delivery_list(*, endpoint: Endpoint, filters: DeliveryFilters | None = None) -> QuerySet[Delivery]:
    """An endpoint's delivery log, newest first; message bodies stay out of list pages."""
    filters = filters or DeliveryFilters()
    queryset = (
        Delivery.objects.for_organization(endpoint.organization)
        .filter(endpoint=endpoint)
        .select_related("message", "endpoint")
        .defer("message__body", "endpoint__secret_sealed", "endpoint__previous_secret_sealed")
    )
    if filters.state:
        queryset = queryset.filter(state=filters.state)
    return _newest_first(queryset, event_type=filters.event_type, since=filters.since, until=filters.until)


def _newest_first(queryset: QuerySet, *, event_type: str, since: datetime | None, until: datetime | None) -> QuerySet:
    """Deliveries or messages of one event type within [since, until], newest first."""
    if event_type:
        queryset = queryset.filter(event_type=event_type)
    if since:
        queryset = queryset.filter(created_at__gte=since)
    if until:
        queryset = queryset.filter(created_at__lte=until)
    return queryset.order_by("-created_at", "-id")


def delivery_get(*, endpoint: Endpoint, msg_id: str) -> Delivery:
    return scoped_get_or_404(
        Delivery.objects.for_organization(endpoint.organization)
        .filter(endpoint=endpoint)
        .select_related("message", "endpoint"),
        organization=endpoint.organization,
        message__msg_id=msg_id,
    )


def attempt_list(*, delivery: Delivery) -> QuerySet[Attempt]:
    return Attempt.objects.for_organization(delivery.organization).filter(delivery=delivery).order_by("created_at", "id")


def delivery_for_event(*, endpoint: Endpoint, event_id: Any) -> Delivery | None:
    """The delivery a test event made for ``endpoint`` (None until the fan-out has run)."""
    return (
        Delivery.objects.for_organization(endpoint.organization)
        .filter(endpoint=endpoint, message__event__public_id=event_id)
        .select_related("message", "endpoint")
        .first()
    )


@dataclass(frozen=True)
class MessageFilters:
    event_type: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def errors(self) -> dict[str, str]:
        problems = {}
        if self.event_type and self.event_type not in events.CATALOG:
            problems["event_type"] = f"Unknown event type {self.event_type!r}."
        if self.since and self.until and self.since > self.until:
            problems["until"] = "“Until” must be after “since”."
        return problems


def message_list(*, organization: Organization, filters: MessageFilters | None = None) -> QuerySet[Message]:
    filters = filters or MessageFilters()
    queryset = Message.objects.for_organization(organization)
    return _newest_first(queryset, event_type=filters.event_type, since=filters.since, until=filters.until)


def message_get(*, organization: Organization, msg_id: str) -> Message:
    """One message with its deliveries (and their endpoints), in two queries."""
    deliveries = Delivery.objects.select_related("endpoint").order_by("endpoint__created_at", "endpoint_id")
    return scoped_get_or_404(
        Message.objects.for_organization(organization).prefetch_related(Prefetch("deliveries", queryset=deliveries)),
        organization=organization,
        msg_id=msg_id,
    )


def test_event_get(*, endpoint: Endpoint, event_id: Any) -> Event:
    """A ``webhook.test`` event sent to ``endpoint``; anything else is a 404."""
    return scoped_get_or_404(
        Event.objects.for_organization(endpoint.organization).filter(
            type=events.WEBHOOK_TEST, payload__endpoint=str(endpoint.public_id)
        ),
        organization=endpoint.organization,
        public_id=event_id,
    )
