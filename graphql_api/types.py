"""Output types. Roots are the apps' own objects (models, selector dataclasses, API bodies).

A ticket in a page carries the page (``_gql_group``), so the first ticket that needs its
comments, files or description loads them for the whole page in one query: a 50-ticket query
with threads costs the same handful of queries as a 5-ticket one.
"""

from __future__ import annotations

import base64
import enum
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

import strawberry
from django.db.models import QuerySet
from strawberry.scalars import JSON
from strawberry.types import Info

from graphql_api import errors
from notifications.models import Kind
from tickets import selectors as ticket_selectors
from tickets import services as ticket_services
from tickets.models import Category, Priority, Queue, Status


def _enum(name: str, choices: Any, description: str) -> Any:
    return strawberry.enum(enum.Enum(name, {c.name: c.value for c in choices}), description=description)


TicketStatus = _enum("TicketStatus", Status, "Where a ticket is in its workflow.")
TicketPriority = _enum("TicketPriority", Priority, "How urgent a ticket is (agents set it after creation).")
TicketCategory = _enum("TicketCategory", Category, "What a ticket is about.")
TicketQueue = _enum("TicketQueue", Queue, "The team that handles a ticket.")
NotificationKind = _enum("NotificationKind", Kind, "What a notification is about.")


@strawberry.enum(description="Where a ticket stands against its current SLA target.")
class SlaState(enum.Enum):
    MET = "met"
    PAUSED = "paused"
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    BREACHED = "breached"


# --- Pagination ---------------------------------------------------------------------------------

T = TypeVar("T")
_CURSOR_PREFIX = "cursor:"


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{offset}".encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    """The offset after ``cursor`` (0 without one)."""
    if cursor is None:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not raw.startswith(_CURSOR_PREFIX):
            raise ValueError(raw)
        offset = int(raw.removeprefix(_CURSOR_PREFIX))
        if offset < 0:
            raise ValueError(raw)
    except (ValueError, UnicodeError):
        raise errors.ApiError("Invalid cursor: pass an endCursor from a previous page.", field="after") from None
    return offset + 1


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    queryset: strawberry.Private[QuerySet]

    @strawberry.field(description="How many items match, across all pages (one COUNT query).")
    def total_count(self) -> int:
        return self.queryset.count()


def paginate(queryset: QuerySet, *, first: int, after: str | None) -> tuple[list[Any], PageInfo, list[str]]:
    """One page of ``queryset`` (one query: the page plus one row to know if there is more)."""
    start = decode_cursor(after)
    rows = list(queryset[start : start + first + 1])
    more, rows = len(rows) > first, rows[:first]
    cursors = [encode_cursor(start + i) for i in range(len(rows))]
    info = PageInfo(
        has_next_page=more,
        has_previous_page=start > 0,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )
    return rows, info, cursors


# --- Tickets ------------------------------------------------------------------------------------


@strawberry.type(description="A person: the requester of a ticket, an agent, a comment's author.")
class Person:
    @strawberry.field
    def id(self) -> int:
        return self.pk

    @strawberry.field
    def name(self) -> str:
        return self.get_full_name() or self.get_username()


@strawberry.type
class Sla:
    target: str = strawberry.field(description="first_response or resolution")
    state: SlaState
    due_at: datetime | None


@strawberry.type
class Attachment:
    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.public_id))

    filename: str
    content_type: str
    size: int


@strawberry.type
class Comment:
    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.public_id))

    @strawberry.field
    def author(self) -> Person:
        return self.author

    body: str
    by_agent: bool
    internal: bool = strawberry.field(description="An agents' note: only ever shown to agents.")

    @strawberry.field
    def created(self) -> datetime:
        return self.created_at

    @strawberry.field
    def attachments(self) -> list[Attachment]:
        return getattr(self, "files", None) or []


def _page_load(ticket: Any, info: Info, what: str) -> Any:
    attr = f"_gql_{what}"
    if not hasattr(ticket, attr):
        group = getattr(ticket, "_gql_group", None) or [ticket]
        ids = [t.pk for t in group]
        context = info.context
        if what == "comments":
            loaded: dict[int, Any] = ticket_selectors.comments_by_ticket(
                organization=context.organization, ticket_ids=ids, include_internal=context.agent
            )
        elif what == "files":
            loaded = ticket_selectors.ticket_files_by_ticket(organization=context.organization, ticket_ids=ids)
        else:
            loaded = ticket_selectors.descriptions_by_ticket(organization=context.organization, ticket_ids=ids)
        for member in group:
            setattr(member, attr, loaded.get(member.pk))
    return getattr(ticket, attr)


@strawberry.type
class Ticket:
    @strawberry.field(description="The ticket's public id (a UUID).")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.public_id))

    number: int
    subject: str

    @strawberry.field
    def description(self, info: Info) -> str:
        if "description" not in self.get_deferred_fields():
            return self.description
        return _page_load(self, info, "description") or ""

    @strawberry.field
    def status(self) -> TicketStatus:
        return TicketStatus(self.status)

    @strawberry.field
    def priority(self) -> TicketPriority:
        return TicketPriority(self.priority)

    @strawberry.field
    def category(self) -> TicketCategory:
        return TicketCategory(self.category)

    @strawberry.field
    def queue(self) -> TicketQueue:
        return TicketQueue(self.queue)

    @strawberry.field
    def requester(self) -> Person:
        return self.requester

    @strawberry.field
    def assignee(self) -> Person | None:
        return self.assignee

    comment_count: int = strawberry.field(description="Public replies.")

    @strawberry.field
    def created(self) -> datetime:
        return self.created_at

    @strawberry.field
    def updated(self) -> datetime:
        return self.updated_at

    first_response_at: datetime | None
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None

    @strawberry.field
    def sla(self) -> Sla:
        status = ticket_services.ticket_sla_status(ticket=self)
        return Sla(target=status.target, state=SlaState(status.state), due_at=status.due_at)

    @strawberry.field(description="The conversation, oldest first (internal notes for agents only).")
    def comments(self, info: Info) -> list[Comment]:
        return _page_load(self, info, "comments") or []

    @strawberry.field(description="Files attached to the ticket itself.")
    def attachments(self, info: Info) -> list[Attachment]:
        return _page_load(self, info, "files") or []


def ticket_connection(queryset: QuerySet, *, first: int, after: str | None) -> Connection[Ticket]:
    rows, page_info, cursors = paginate(queryset, first=first, after=after)
    for row in rows:
        row._gql_group = rows
    return Connection(
        edges=[Edge(cursor=c, node=row) for c, row in zip(cursors, rows, strict=True)],
        page_info=page_info,
        queryset=queryset,
    )


def ticket_detail(page: Any) -> Any:
    """The ticket of a ``tickets.selectors.TicketPage``, its thread and files already loaded."""
    ticket = page.ticket
    ticket._gql_comments, ticket._gql_files = page.comments, page.attachments
    return ticket


# --- Notifications ------------------------------------------------------------------------------


@strawberry.type
class Notification:
    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.public_id))

    @strawberry.field
    def kind(self) -> NotificationKind:
        return NotificationKind(self.kind)

    title: str
    body: str
    link: str
    updates: int = strawberry.field(description="How many updates were folded into this notification.")

    @strawberry.field
    def read(self) -> bool:
        return self.read_at is not None

    @strawberry.field
    def created(self) -> datetime:
        return self.created_at

    @strawberry.field
    def updated(self) -> datetime:
        return self.updated_at


def notification_connection(queryset: QuerySet, *, first: int, after: str | None) -> Connection[Notification]:
    rows, page_info, cursors = paginate(queryset, first=first, after=after)
    return Connection(
        edges=[Edge(cursor=c, node=row) for c, row in zip(cursors, rows, strict=True)],
        page_info=page_info,
        queryset=queryset,
    )


# --- Metrics, forecasts, webhooks -------------------------------------------------------------


@strawberry.type
class StatusCount:
    status: TicketStatus
    count: int


@strawberry.type(description="The organization at a glance, for the caller.")
class Metrics:
    tickets_by_status: list[StatusCount]
    open_tickets: int = strawberry.field(description="Tickets not resolved or closed.")
    sla_at_risk: int = strawberry.field(description="Unfinished tickets past 80 % of their SLA target.")
    sla_breached: int = strawberry.field(description="Unfinished tickets past their SLA target.")
    unread_notifications: int
    currency: str
    month_to_date_spend: Decimal
    forecast_month_end: Decimal | None = strawberry.field(
        description="The current forecast of this month's total (never below what is already spent); "
        "null until a forecast is ready."
    )
    platform: JSON | None = strawberry.field(description="The latest metrics.updated event's data.")


@strawberry.type
class ForecastInterval:
    level: int
    lower: Decimal
    upper: Decimal


@strawberry.type
class ForecastPoint:
    month: str = strawberry.field(description="YYYY-MM")
    mean: Decimal
    intervals: list[ForecastInterval]


@strawberry.type
class HistoryPoint:
    month: str
    amount: Decimal


@strawberry.type
class Coverage:
    level: int
    coverage: float | None


@strawberry.type(description="The same body as GET /api/v1/costs/forecast/.")
class Forecast:
    status: str = strawberry.field(description="ready, pending, failed or no_data")
    run: strawberry.ID | None
    error: str
    service: str | None
    currency: str
    horizon: int
    levels: list[int]
    generated_at: datetime | None
    expires_at: datetime | None
    model: str | None
    backtest_mape: float | None
    coverage: list[Coverage]
    trend: str | None
    history: list[HistoryPoint]
    points: list[ForecastPoint]
    notes: list[str]

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Forecast:
        return cls(
            status=body["status"],
            run=strawberry.ID(str(body["run"])) if body["run"] else None,
            error=body["error"],
            service=body["service"],
            currency=body["currency"],
            horizon=body["horizon"],
            levels=list(body["levels"]),
            generated_at=body["generated_at"],
            expires_at=body["expires_at"],
            model=body["model"],
            backtest_mape=body["backtest_mape"],
            coverage=[Coverage(**c) for c in body["coverage"]],
            trend=body["trend"],
            history=[HistoryPoint(**h) for h in body["history"]],
            points=[
                ForecastPoint(
                    month=p["month"], mean=p["mean"], intervals=[ForecastInterval(**i) for i in p["intervals"]]
                )
                for p in body["points"]
            ],
            notes=list(body["notes"]),
        )


@strawberry.type
class WebhookHealth:
    attempts_24h: int
    successes_24h: int
    success_rate: float | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    failing_since: datetime | None


@strawberry.type
class WebhookEndpoint:
    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.public_id))

    url: str
    description: str
    all_events: bool
    event_types: list[str]
    enabled: bool
    disabled_reason: str
    disabled_at: datetime | None
    secret_rotated_at: datetime | None
    previous_secret_expires_at: datetime | None

    @strawberry.field
    def created(self) -> datetime:
        return self.created_at

    @strawberry.field
    def updated(self) -> datetime:
        return self.updated_at

    @strawberry.field(description="Delivery attempts over the last 24 hours.")
    def health(self) -> WebhookHealth:
        from webhooks import selectors as webhook_selectors

        return WebhookHealth(
            attempts_24h=self.attempts_24h,
            successes_24h=self.successes_24h,
            success_rate=webhook_selectors.success_rate(attempts=self.attempts_24h, successes=self.successes_24h),
            last_attempt_at=self.last_attempt_at,
            last_success_at=self.last_success_at,
            failing_since=self.failing_since,
        )


# --- Mutations' inputs and results, subscriptions' payloads ------------------------------------


@strawberry.input
class CreateTicketInput:
    subject: str
    description: str
    priority: TicketPriority = TicketPriority("medium")
    category: TicketCategory = TicketCategory("general")


@strawberry.input(description="Only the fields you pass change. Customers: status, subject, description.")
class UpdateTicketInput:
    status: TicketStatus | None = strawberry.UNSET
    subject: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    priority: TicketPriority | None = strawberry.field(default=strawberry.UNSET, description="Agents only")
    category: TicketCategory | None = strawberry.field(default=strawberry.UNSET, description="Agents only")
    queue: TicketQueue | None = strawberry.field(default=strawberry.UNSET, description="Agents only")
    assignee: int | None = strawberry.field(default=strawberry.UNSET, description="Agents only: an agent's id")


@strawberry.type
class MarkAllReadResult:
    marked: int


@strawberry.type
class TicketUpdated:
    event: str = strawberry.field(description="ticket.created, ticket.updated, ticket.comment_added, ticket.sla_…")
    push_id: int = strawberry.field(description="The push's id in the live stream (/ws/ ?last_id=).")
    ticket: Ticket | None = strawberry.field(description="The ticket as it is now; null if it was deleted since.")


@strawberry.type
class NotificationReceived:
    push_id: int
    unread: int = strawberry.field(description="The whole unread count, not a delta.")
    notification: Notification | None
