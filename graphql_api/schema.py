"""The schema: every resolver parses its arguments, calls the apps' selectors or services (the
same ones the pages and the REST API call), and returns their objects. No rule lives here."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Annotated, Any

import strawberry
from channels.db import database_sync_to_async
from django.http import Http404
from django.utils import timezone
from strawberry.extensions import AddValidationRules, MaxAliasesLimiter, MaxTokensLimiter
from strawberry.types import Info
from strawberry.types.graphql import OperationType

from forecasting import periods
from forecasting import selectors as forecast_selectors
from forecasting import services as forecast_services
from forecasting.api import CostForecastRequestInput, forecast_body
from graphql_api import errors, limits
from graphql_api import types as t
from notifications import selectors as notification_selectors
from notifications import services as notification_services
from portal import events
from portal import selectors as portal_selectors
from tickets import selectors as ticket_selectors
from tickets import services as ticket_services
from webhooks import selectors as webhook_selectors


def _ticket_detail(info: Info, public_id: Any) -> Any:
    context = info.context
    page = ticket_selectors.ticket_page(
        organization=context.organization, public_id=public_id, user=context.user, include_internal=context.agent
    )
    return t.ticket_detail(page)


def metrics_for(context: Any) -> t.Metrics:
    organization = context.organization
    counts = ticket_selectors.ticket_counts(organization=organization)
    month = periods.month_start(timezone.now().date())
    spent = forecast_selectors.month_to_date(organization=organization, month=month)[forecast_selectors.TOTAL]
    state = forecast_selectors.forecast_state(organization=organization)
    forecasts = forecast_selectors.month_end_forecasts(
        organization=organization, run=state.ready if state.current else None, month=month
    )
    month_end = forecasts.get(forecast_selectors.TOTAL)
    latest = portal_selectors.event_list(organization=organization, types=[events.METRICS_UPDATED]).first()
    return t.Metrics(
        tickets_by_status=[t.StatusCount(status=t.TicketStatus(s), count=n) for s, n in counts.by_status.items()],
        open_tickets=sum(n for s, n in counts.by_status.items() if s not in ("resolved", "closed")),
        sla_at_risk=counts.sla_at_risk,
        sla_breached=counts.sla_breached,
        unread_notifications=notification_selectors.unread_count(user_id=context.user.pk, organization=organization),
        currency=state.dataset.currency if state.dataset else "",
        month_to_date_spend=spent,
        # As the budgets page: the month-end forecast never reads below what is already spent.
        forecast_month_end=max(month_end, spent) if month_end is not None else None,
        platform=latest.payload if latest else None,
    )


@strawberry.type
class Query:
    @strawberry.field(description="The organization's tickets, most recently updated first (or by relevance).")
    def tickets(
        self,
        info: Info,
        status: list[t.TicketStatus] | None = None,
        priority: list[t.TicketPriority] | None = None,
        search: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> t.Connection[t.Ticket]:
        size = limits.page_size(first)
        filters = ticket_selectors.TicketFilters(
            status=[s.value for s in status or ()],
            priority=[p.value for p in priority or ()],
            q=search or "",
        )
        problems = filters.errors()
        if problems:
            raise errors.ApiError("; ".join(problems.values()), fields={k: [v] for k, v in problems.items()})
        queryset = ticket_selectors.ticket_list(organization=info.context.organization, filters=filters)
        return t.ticket_connection(queryset, first=size, after=after)

    @strawberry.field(description="One ticket with its conversation; null when there is no such ticket for you.")
    def ticket(self, info: Info, id: strawberry.ID) -> t.Ticket | None:
        try:
            return _ticket_detail(info, id)
        except Http404:
            return None

    @strawberry.field(description="Your notifications in this organization, newest first.")
    def notifications(
        self,
        info: Info,
        unread_only: bool = False,
        type: t.NotificationKind | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> t.Connection[t.Notification]:
        size = limits.page_size(first)
        queryset = notification_selectors.notification_list(
            user_id=info.context.user.pk,
            organization=info.context.organization,
            kind=type.value if type else "",
            state="unread" if unread_only else "",
        )
        return t.notification_connection(queryset, first=size, after=after)

    @strawberry.field
    def metrics(self, info: Info) -> t.Metrics:
        return metrics_for(info.context)

    @strawberry.field(
        description="The cost forecast of the total (service empty) or one service; status pending while a "
        "worker computes it (then ask again). level: one interval level (65, 80 or 95); all when omitted."
    )
    def forecast(
        self, info: Info, horizon: int | None = None, level: int | None = None, service: str = ""
    ) -> t.Forecast:
        raw: dict[str, Any] = {"service": service}
        if horizon is not None:
            raw["horizon"] = horizon
        if level is not None:
            raw["levels"] = [level]
        serializer = CostForecastRequestInput(data=raw)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        page = forecast_services.forecast_page_refreshed(
            organization=info.context.organization,
            service=data["service"].strip(),
            horizon=int(data["horizon"]),
            level=max(data["levels"]),
            reason="api",
        )
        return t.Forecast.from_body(forecast_body(page, levels=data["levels"]))

    @strawberry.field(description="The organization's webhook endpoints with their health.")
    def webhook_endpoints(self, info: Info) -> list[t.WebhookEndpoint]:
        return list(webhook_selectors.endpoint_list(organization=info.context.organization))


def _set(value: Any) -> bool:
    return value is not strawberry.UNSET


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Open a ticket (you are the requester).")
    def create_ticket(self, info: Info, input: t.CreateTicketInput) -> t.Ticket:
        context = info.context
        ticket = ticket_services.ticket_create(
            organization=context.organization,
            requester=context.user,
            subject=input.subject,
            description=input.description,
            priority=input.priority.value,
            category=input.category.value,
        )
        return _ticket_detail(info, ticket.public_id)

    @strawberry.mutation(description="Change a ticket: the same rules as PATCH /api/v1/tickets/{id}/.")
    def update_ticket(self, info: Info, id: strawberry.ID, input: t.UpdateTicketInput) -> t.Ticket:
        context = info.context
        ticket = ticket_selectors.ticket_get(organization=context.organization, public_id=id)
        changes: dict[str, Any] = {}
        for name in ("status", "subject", "description", "priority", "category", "queue"):
            value = getattr(input, name)
            if not _set(value):
                continue
            if value is None:
                raise errors.ApiError(f"{name} can't be null.", fields={name: ["This field may not be null."]})
            changes[name] = value.value if hasattr(value, "value") else value
        if _set(input.assignee):
            changes["assignee"] = input.assignee
            if input.assignee is not None:
                changes["assignee"] = ticket_selectors.agent_get(user_id=input.assignee)
                if changes["assignee"] is None:
                    raise errors.ApiError(
                        "No active support agent has this id.",
                        fields={"assignee": ["No active support agent has this id."]},
                    )
        ticket_services.ticket_update(ticket=ticket, actor=context.user, **changes)
        return _ticket_detail(info, id)

    @strawberry.mutation(description="Reply on a ticket (agents may write an internal note).")
    def add_comment(self, info: Info, ticket_id: strawberry.ID, text: str, internal: bool = False) -> t.Comment:
        context = info.context
        ticket = ticket_selectors.ticket_get(organization=context.organization, public_id=ticket_id)
        comment = ticket_services.comment_create(ticket=ticket, author=context.user, body=text, internal=internal)
        comment.files = list(comment.attachments.all())
        return comment

    @strawberry.mutation
    def mark_notification_read(self, info: Info, id: strawberry.ID) -> t.Notification:
        return notification_services.notification_mark_read(
            user=info.context.user, organization=info.context.organization, public_id=id
        )

    @strawberry.mutation
    def mark_all_notifications_read(self, info: Info) -> t.MarkAllReadResult:
        marked = notification_services.notifications_mark_read(
            user=info.context.user, organization=info.context.organization
        )
        return t.MarkAllReadResult(marked=marked)


# --- Subscriptions: the /ws/ push stream, read through the consumer's channel-layer groups ---


SENT_MEMORY = 2000
AFTER_HELP = (
    "A pushId you already have: first replay what came after it (up to 500 pushes from the last 24 h, "
    "and a few seconds before it: skip pushIds you have seen), then live updates."
)


async def _pushes(info: Info, types: set[str], after: int | None) -> AsyncGenerator[dict[str, Any], None]:
    """Push messages for this caller (the same filter as notifications.consumers.LiveConsumer).

    The listener is registered before the replay is read, so nothing falls between them; a
    push seen in both is sent once.
    """
    context = info.context
    organization, user_id = context.organization, context.user.pk
    sent: set[int] = set()
    order: deque[int] = deque()

    def fresh(message: dict[str, Any]) -> bool:
        if message["organization"] != organization.pk or message["event"] not in types:
            return False
        if (message["user"] is not None and message["user"] != user_id) or message["id"] in sent:
            return False
        sent.add(message["id"])
        order.append(message["id"])
        if len(order) > SENT_MEMORY:
            sent.discard(order.popleft())
        return True

    async with context.ws.listen_to_channel("push.message") as messages:
        if after is not None:
            missed = await database_sync_to_async(notification_selectors.pushes_since)(
                user_id=user_id, organization=organization, last_id=after, limit=notification_services.RESUME_LIMIT
            )
            for push in missed.pushes:
                message = notification_services.push_message(push)
                if fresh(message):
                    yield message
        async for message in messages:
            if fresh(message):
                yield message


def _ticket_for_push(context: Any, public_id: str) -> Any:
    """The ticket as the subscriber may see it now (None if it is gone), every field loaded."""
    try:
        page = ticket_selectors.ticket_page(
            organization=context.organization, public_id=public_id, user=context.user, include_internal=context.agent
        )
    except Http404:
        return None
    ticket = t.ticket_detail(page)
    ticket.description  # noqa: B018 - loaded by ticket_page; resolvers must not query on the event loop
    return ticket


def _notification_for_push(context: Any, public_id: str) -> Any:
    return (
        notification_selectors.notification_list(user_id=context.user.pk, organization=context.organization)
        .filter(public_id=public_id)
        .first()
    )


def _normalized(public_id: Any) -> str:
    try:
        return str(uuid.UUID(str(public_id)))
    except ValueError:
        raise errors.ApiError("Not found.", code=errors.NOT_FOUND) from None


@strawberry.type
class Subscription:
    @strawberry.subscription(description="A ticket of the organization changed (or only the one with this id).")
    async def ticket_updated(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        after: Annotated[int | None, strawberry.argument(description=AFTER_HELP)] = None,
    ) -> AsyncGenerator[t.TicketUpdated, None]:
        context = info.context
        wanted = None
        if id is not None:
            wanted = _normalized(id)
            exists = await database_sync_to_async(ticket_selectors.ticket_for_event)(
                organization=context.organization, public_id=wanted
            )
            if exists is None:
                raise errors.ApiError("Not found.", code=errors.NOT_FOUND)
        async for message in _pushes(info, {"ticket_update"}, after):
            if wanted is not None and message["data"].get("ticket") != wanted:
                continue
            ticket = await database_sync_to_async(_ticket_for_push)(context, message["data"]["ticket"])
            yield t.TicketUpdated(event=message["data"].get("event", ""), push_id=message["id"], ticket=ticket)

    @strawberry.subscription(description="A notification for you arrived (or was updated).")
    async def notification_received(
        self, info: Info, after: Annotated[int | None, strawberry.argument(description=AFTER_HELP)] = None
    ) -> AsyncGenerator[t.NotificationReceived, None]:
        context = info.context
        async for message in _pushes(info, {"notification"}, after):
            data = message["data"]
            public_id = (data.get("notification") or {}).get("id")
            notification = (
                await database_sync_to_async(_notification_for_push)(context, public_id) if public_id else None
            )
            yield t.NotificationReceived(push_id=message["id"], unread=data.get("unread", 0), notification=notification)

    @strawberry.subscription(
        description="The metrics, recomputed whenever tickets, your notifications or the platform's metrics change."
    )
    async def metrics_updated(
        self, info: Info, after: Annotated[int | None, strawberry.argument(description=AFTER_HELP)] = None
    ) -> AsyncGenerator[t.Metrics, None]:
        context = info.context
        async for _message in _pushes(info, {"metrics_update", "ticket_update", "notification"}, after):
            yield await database_sync_to_async(metrics_for)(context)


async def _coded(source: Any) -> AsyncGenerator[Any, None]:
    async with aclosing(source):
        async for result in source:
            if getattr(result, "errors", None):
                result.errors = [errors.with_code(e) for e in result.errors]
            yield result


class Schema(strawberry.Schema):
    def process_errors(self, errors_: list, execution_context: Any = None) -> None:
        """Expected errors are answers, not incidents: ``errors.with_code`` logs the others."""

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        """Subscriptions' results (setup errors included) get their codes like HTTP answers."""
        return _coded(await super().stream(*args, **kwargs))


schema = Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[
        errors.ErrorCodes,
        lambda: MaxTokensLimiter(max_token_count=limits.MAX_TOKENS),
        lambda: MaxAliasesLimiter(max_alias_count=limits.MAX_ALIASES),
        lambda: AddValidationRules([limits.CostLimitRule]),
    ],
)

HTTP_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})
