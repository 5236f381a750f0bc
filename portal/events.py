"""Domain events: the catalog, ``publish()`` and ``subscribe()``.

``publish()`` writes an :class:`~portal.models.Event` row inside the caller's transaction (a
transactional outbox): the change and its event commit together or not at all. After commit a
Celery task dispatches the event to every subscriber registered for its type. Each
(event, subscriber) pair is recorded in the same transaction as the subscriber's own writes, so
dispatching twice does nothing twice, and a beat sweeper re-dispatches whatever was left behind
(Redis down at commit time, worker killed). Subscribers register in ``AppConfig.ready()`` and
only record or enqueue work; producers never import their subscribers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from jsonschema import Draft202012Validator, FormatChecker

if TYPE_CHECKING:
    from portal.models import Event, Organization

logger = logging.getLogger(__name__)

# --- The catalog --------------------------------------------------------------------------

TICKET_CREATED = "ticket.created"
TICKET_UPDATED = "ticket.updated"
TICKET_COMMENT_ADDED = "ticket.comment_added"
TICKET_SLA_WARNING = "ticket.sla_warning"
TICKET_SLA_BREACHED = "ticket.sla_breached"
NOTIFICATION_CREATED = "notification.created"
METRICS_UPDATED = "metrics.updated"
COMPLIANCE_UPDATED = "compliance.updated"
INVOICE_CREATED = "invoice.created"
BUDGET_THRESHOLD_REACHED = "budget.threshold_reached"
FORECAST_ANOMALY_DETECTED = "forecast.anomaly_detected"
WEBHOOK_TEST = "webhook.test"
WEBHOOK_ENDPOINT_DISABLED = "webhook.endpoint_disabled"
MEMBER_JOINED = "member.joined"
NOTICE_PUBLISHED = "notice.published"

_ID = {"type": "string", "minLength": 1, "maxLength": 100}
_TEXT = {"type": "string", "maxLength": 2000}
_MONEY = {"type": "string", "pattern": r"^-?\d{1,12}(\.\d{1,6})?$"}
_CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$"}
_TIMESTAMP = {"type": "string", "format": "date-time"}
_DATE = {"type": "string", "format": "date"}
_TICKET_REF = {
    "ticket": _ID,
    "number": {"type": "integer", "minimum": 1},
    "subject": {"type": "string", "maxLength": 300},
    "status": {"type": "string", "maxLength": 40},
    "priority": {"type": "string", "maxLength": 20},
}


def _object(required: list[str], properties: dict[str, Any], *, extra: bool = False) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": extra,
    }


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    schema: dict[str, Any]
    # Platform events may also arrive from outside through POST /api/v1/events/.
    external: bool = False
    # Customers may subscribe webhooks to it.
    public: bool = True
    validator: Draft202012Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "validator", Draft202012Validator(self.schema, format_checker=_FORMATS))


_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.tzinfo is not None


@_FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    datetime.strptime(value, "%Y-%m-%d")
    return True


CATALOG: dict[str, EventType] = {
    t.name: t
    for t in [
        EventType(
            TICKET_CREATED,
            "A support ticket was opened.",
            _object(["ticket", "number", "subject", "status", "priority"], _TICKET_REF | {"requester": _ID}),
        ),
        EventType(
            TICKET_UPDATED,
            "A ticket's status, priority, assignee or fields changed.",
            _object(
                ["ticket", "number", "changes"],
                _TICKET_REF | {"changes": {"type": "object", "additionalProperties": {"type": "object"}}},
            ),
        ),
        EventType(
            TICKET_COMMENT_ADDED,
            "A public reply was added to a ticket (internal notes never raise public payloads).",
            _object(
                ["ticket", "number", "comment"],
                _TICKET_REF | {"comment": _ID, "author": _ID, "by_agent": {"type": "boolean"}},
            ),
        ),
        EventType(
            TICKET_SLA_WARNING,
            "80 % of a ticket's SLA target has elapsed.",
            _object(["ticket", "number", "target", "due_at"], _TICKET_REF | {"target": _ID, "due_at": _TIMESTAMP}),
        ),
        EventType(
            TICKET_SLA_BREACHED,
            "A ticket's SLA target passed without being met.",
            _object(["ticket", "number", "target", "due_at"], _TICKET_REF | {"target": _ID, "due_at": _TIMESTAMP}),
        ),
        EventType(
            NOTIFICATION_CREATED,
            "A notification was created for a user.",
            _object(["notification", "kind"], {"notification": _ID, "kind": _ID, "title": _TEXT}),
            public=False,
        ),
        EventType(
            METRICS_UPDATED,
            "Platform metrics for the organization changed.",
            _object(
                ["metrics"],
                {
                    "metrics": {
                        "type": "object",
                        "minProperties": 1,
                        "maxProperties": 100,
                        "additionalProperties": {"type": "number"},
                    },
                    "resource": _ID,
                    "observed_at": _TIMESTAMP,
                },
            ),
            external=True,
        ),
        EventType(
            COMPLIANCE_UPDATED,
            "A compliance framework's status changed.",
            _object(
                ["framework", "status"],
                {
                    "framework": _ID,
                    "status": {"enum": ["passing", "warning", "failing"]},
                    "score": {"type": "number", "minimum": 0, "maximum": 100},
                    "summary": _TEXT,
                    "observed_at": _TIMESTAMP,
                },
            ),
            external=True,
        ),
        EventType(
            INVOICE_CREATED,
            "A new invoice was issued.",
            _object(
                ["invoice", "amount", "currency", "period_start", "period_end"],
                {
                    "invoice": _ID,
                    "amount": _MONEY,
                    "currency": _CURRENCY,
                    "period_start": _DATE,
                    "period_end": _DATE,
                    "due_date": _DATE,
                    "url": {"type": "string", "maxLength": 2000},
                },
            ),
            external=True,
        ),
        EventType(
            BUDGET_THRESHOLD_REACHED,
            "Spend reached a budget threshold (actual month-to-date or forecast month-end).",
            _object(
                ["budget", "threshold", "basis", "amount", "budget_amount", "currency", "month"],
                {
                    "budget": _ID,
                    "service": _TEXT,
                    "threshold": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "basis": {"enum": ["actual", "forecast"]},
                    "amount": _MONEY,
                    "budget_amount": _MONEY,
                    "currency": _CURRENCY,
                    "month": {"type": "string", "pattern": r"^\d{4}-\d{2}$"},
                },
            ),
        ),
        EventType(
            FORECAST_ANOMALY_DETECTED,
            "Spend on a service left its expected band.",
            _object(
                ["anomaly", "service", "date", "actual", "expected", "impact", "impact_percent", "currency"],
                {
                    "anomaly": _ID,
                    "service": _TEXT,
                    "granularity": {"enum": ["daily", "monthly"]},
                    "date": _DATE,
                    "actual": _MONEY,
                    "expected": _MONEY,
                    "impact": _MONEY,
                    "impact_percent": {"type": "number"},
                    "currency": _CURRENCY,
                },
            ),
        ),
        EventType(
            WEBHOOK_TEST,
            "A test event sent on request to one webhook endpoint.",
            _object(["endpoint"], {"endpoint": _ID, "message": _TEXT}),
        ),
        EventType(
            WEBHOOK_ENDPOINT_DISABLED,
            "A webhook endpoint was disabled after failing for too long or answering 410 Gone.",
            _object(["endpoint", "reason"], {"endpoint": _ID, "url": {"type": "string"}, "reason": _TEXT}),
        ),
        EventType(
            NOTICE_PUBLISHED,
            "A platform-wide notice for everyone in the organization (maintenance, incidents).",
            _object(
                ["title"],
                {
                    "title": {"type": "string", "minLength": 1, "maxLength": 200},
                    "body": _TEXT,
                    "link": {"type": "string", "maxLength": 500},
                },
            ),
            external=True,
        ),
        EventType(
            MEMBER_JOINED,
            "Someone joined the organization.",
            _object(["member", "role"], {"member": _ID, "role": {"enum": ["member", "admin"]}}),
        ),
    ]
}


def event_type_get(name: str) -> EventType:
    try:
        return CATALOG[name]
    except KeyError:
        raise ValidationError({"type": f"Unknown event type {name!r}."}) from None


def event_payload_errors(name: str, data: Any) -> dict[str, list[str]]:
    """Validation errors keyed by the payload path (``data.metrics.cpu``), empty when valid."""
    errors: dict[str, list[str]] = {}
    for error in sorted(event_type_get(name).validator.iter_errors(data), key=lambda e: list(e.path)):
        path = ".".join(["data", *(str(p) for p in error.path)])
        errors.setdefault(path, []).append(error.message)
    return errors


# --- Subscribers --------------------------------------------------------------------------

Handler = Callable[["Event"], None]


@dataclass(frozen=True)
class Subscriber:
    name: str
    types: frozenset[str] | None  # None: every type
    handler: Handler
    pushes: bool = False  # sends live pushes: dispatched before the others

    def wants(self, event_type: str) -> bool:
        return self.types is None or event_type in self.types


_SUBSCRIBERS: dict[str, Subscriber] = {}


def subscribe(*types: str, name: str | None = None, pushes: bool = False) -> Callable[[Handler], Handler]:
    """Register ``handler`` for ``types`` (none: all). Call from ``AppConfig.ready()``.

    The handler runs inside a transaction together with the record that it ran; it must only
    write rows or enqueue work with ``transaction.on_commit``. ``pushes=True`` marks a handler
    that records live pushes: those run first for an event, so a socket's update never waits
    behind e-mail or webhook work (registration order otherwise).
    """
    for event_type in types:
        event_type_get(event_type)

    def register(handler: Handler) -> Handler:
        key = name or f"{handler.__module__}.{handler.__qualname__}"
        _SUBSCRIBERS[key] = Subscriber(key, frozenset(types) if types else None, handler, pushes)
        return handler

    return register


def subscribers_for(event_type: str) -> list[Subscriber]:
    """The event's subscribers in dispatch order: those that push first, then registration order."""
    wanted = [s for s in _SUBSCRIBERS.values() if s.wants(event_type)]
    return [s for s in wanted if s.pushes] + [s for s in wanted if not s.pushes]


# --- Publishing ---------------------------------------------------------------------------


def publish(
    event_type: str,
    *,
    organization: Organization,
    data: dict[str, Any],
    actor: Any = None,
    source: str = "",
) -> Event:
    """Record an event in the caller's transaction; dispatch it after commit."""
    from portal.models import Event

    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("events.publish() must run inside the transaction of the change it describes.")
    errors = event_payload_errors(event_type, data)
    if errors:
        raise ValidationError(errors)
    event = Event.objects.create(
        organization=organization,
        type=event_type,
        payload=data,
        actor=actor if actor is not None and getattr(actor, "is_authenticated", False) else None,
        source=source,
    )
    transaction.on_commit(lambda: enqueue_dispatch(event.pk))
    return event


def enqueue_dispatch(event_id: int) -> None:
    """Hand an event to the workers; if the broker is unreachable the sweeper retries later."""
    from portal.tasks import event_dispatch_task

    try:
        event_dispatch_task.delay(event_id)
    except Exception:
        logger.warning(
            "event dispatch not enqueued; the sweeper will retry", extra={"event_id": event_id}, exc_info=True
        )


# --- Dispatch (runs in a worker) ----------------------------------------------------------


class DispatchIncomplete(Exception):
    """At least one subscriber failed; the event stays undispatched and is retried."""


def event_dispatch(*, event_id: int) -> None:
    """Run each subscriber of the event once, each in its own transaction with its record.

    A subscriber's transaction costs one statement besides its own: the event row is locked and its
    dispatch record looked up together (the lock serialises concurrent dispatchers of the same event).
    The event is read with its organization, which every subscriber needs, in one query.
    """
    from portal.models import Event, EventDispatch

    event = _event_for_dispatch(event_id)
    if event is None or event.dispatched_at is not None:
        return
    claim = (
        f"SELECT EXISTS (SELECT 1 FROM {EventDispatch._meta.db_table} d"  # noqa: S608 - table names only
        f" WHERE d.event_id = e.id AND d.subscriber = %s) FROM {Event._meta.db_table} e WHERE e.id = %s FOR UPDATE"
    )
    record = (
        f"INSERT INTO {EventDispatch._meta.db_table} (event_id, subscriber, handled_at)"  # noqa: S608
        " VALUES (%s, %s, %s)"
    )
    failures: list[str] = []
    for subscriber in subscribers_for(event.type):
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(claim, [subscriber.name, event.pk])
                    row = cursor.fetchone()
                if row is None:
                    return  # deleted while being dispatched
                if row[0]:
                    continue  # handled by an earlier dispatch
                subscriber.handler(event)
                with connection.cursor() as cursor:
                    cursor.execute(record, [event.pk, subscriber.name, timezone.now()])
        except Exception as exc:
            logger.exception("subscriber failed", extra={"event_id": event.pk, "subscriber": subscriber.name})
            failures.append(f"{subscriber.name}: {exc.__class__.__name__}: {exc}")
    if failures:
        Event.objects.filter(pk=event.pk).update(
            dispatch_attempts=event.dispatch_attempts + 1, last_error="\n".join(failures)[:5000]
        )
        raise DispatchIncomplete("; ".join(failures))
    Event.objects.filter(pk=event.pk).update(
        dispatched_at=timezone.now(), dispatch_attempts=event.dispatch_attempts + 1, last_error=""
    )


def _event_for_dispatch(event_id: int) -> Event | None:
    """The event with its organization, as ``select_related`` would load them, for a third of the
    CPU: a raw query (this runs before every push and the ORM compile was most of its cost)."""
    from portal.models import Event, Organization

    org_fields = Organization._meta.concrete_fields
    sql = (
        f"SELECT e.*, {', '.join(f'o.{f.column} AS org__{f.column}' for f in org_fields)}"  # noqa: S608
        f" FROM {Event._meta.db_table} e JOIN {Organization._meta.db_table} o ON o.id = e.organization_id"
        " WHERE e.id = %s"
    )
    event = next(iter(Event.objects.raw(sql, [event_id])), None)
    if event is not None:
        event.organization = Organization.from_db(
            connection.alias, [f.attname for f in org_fields], [getattr(event, f"org__{f.column}") for f in org_fields]
        )
    return event


SWEEP_GRACE = timedelta(seconds=30)
SWEEP_BATCH = 500


def events_sweep(*, now: datetime | None = None) -> int:
    """Re-enqueue events whose dispatch never finished. Returns how many were enqueued."""
    from portal.models import Event

    cutoff = (now or timezone.now()) - SWEEP_GRACE
    ids = list(
        Event.objects.filter(dispatched_at__isnull=True, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for event_id in ids:
        enqueue_dispatch(event_id)
    return len(ids)
