"""Every write to webhooks: endpoints and their secrets, fan-out, attempts, sweeps, replay, retention.

Delivery is at least once. A delivery row is the durable truth; the broker only carries "try
these now". Whoever attempts a delivery first *claims* it in a short transaction — its lease
(``next_attempt_at``) is pushed past the whole HTTP deadline — then makes the request outside
any transaction, then records the attempt. A worker that dies mid-attempt leaves the lease to
run out, and the sweeper (beat, ``SELECT … FOR UPDATE SKIP LOCKED``) logs the lost attempt and
hands the delivery out again. Retries wait in PostgreSQL, never in Celery countdowns.

Lock order, everywhere: endpoint rows (by id) before delivery rows, so recording, disabling,
recovering and replaying never deadlock each other. The sweeper and claims only ever
``SKIP LOCKED``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from portal import events
from portal.models import Event, Membership, Organization
from portal.tenancy import scoped_get_or_404
from webhooks import conf, crypto, schedule, signing, ssrf, transport
from webhooks.models import (
    DESCRIPTION_MAX,
    DISABLED_REASON_MAX,
    Attempt,
    AttemptOutcome,
    Delivery,
    DeliveryState,
    Endpoint,
    Message,
)

logger = logging.getLogger(__name__)

ROTATION_OVERLAP = timedelta(hours=24)
RECOVER_MAX_AGE = timedelta(days=14)
RECOVER_MAX_MESSAGES = 10_000
# Recovered deliveries are spread out rather than due all at once: 10,000 messages reach one
# endpoint over ~100 s instead of as one burst.
RECOVER_SPACING = timedelta(milliseconds=10)
# Deliveries per task: one claim, one batch of parallel requests, a few bulk writes. An event
# for 100 endpoints is one task: per-task costs (broker, claim, record transactions, endpoint
# health) halved against 50 and took throughput from ~500/s to ~590/s (bench/webhooks_RESULTS.md).
BATCH_SIZE = 100
SWEEP_LIMIT = 500
SWEEP_MAX_ROUNDS = 10
# A delivery whose worker died this many times is dead rather than retried forever (poison).
MAX_LOST_ATTEMPTS = 5
# Results are written in small groups as requests finish, so one hanging receiver does not
# hold back the record of the fast ones.
RECORD_FLUSH_SECONDS = 0.2
RECORD_FLUSH_SIZE = BATCH_SIZE
TEST_EVENT_TEXT = "A test event from SecureBase Portal: your endpoint is receiving webhooks."

PENDING, SUCCEEDED, FAILED, DEAD = (
    DeliveryState.PENDING,
    DeliveryState.SUCCEEDED,
    DeliveryState.FAILED,
    DeliveryState.DEAD,
)


def _now() -> datetime:
    """The clock every decision uses (tests replace it to move through a retry schedule)."""
    return timezone.now()


# --- Validation ------------------------------------------------------------------------------


def _require_admin(membership: Membership | None, organization_id: int) -> None:
    if membership is None or membership.organization_id != organization_id:
        raise PermissionDenied("You are not a member of this organization.")
    if not membership.is_admin:
        raise PermissionDenied("Only organization admins can manage webhook endpoints.")


def _clean_url(url: str) -> str:
    """The normalised URL, after the SSRF checks and a DNS lookup (every address checked)."""
    policy = conf.url_policy()
    try:
        target = ssrf.validate_url((url or "").strip(), policy=policy)
        ssrf.resolve_checked(target, policy=policy)
    except ssrf.BlockedUrl as exc:
        raise ValidationError({"url": str(exc)}) from None
    except ssrf.ResolutionError as exc:
        raise ValidationError({"url": f"{exc} Check the host name."}) from None
    return target.url


def _clean_description(description: str) -> str:
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise ValidationError(
            {"description": f"Keep the description to {DESCRIPTION_MAX} characters (it has {len(description)})."}
        )
    return description


def public_event_types() -> list[str]:
    return sorted(name for name, event_type in events.CATALOG.items() if event_type.public)


def _clean_event_types(event_types: Iterable[str], *, all_events: bool) -> list[str]:
    if isinstance(event_types, str):
        raise ValidationError({"event_types": "Send a list of event types."})
    names = list(dict.fromkeys(str(name).strip() for name in event_types if str(name).strip()))
    unknown = [name for name in names if name not in events.CATALOG]
    if unknown:
        raise ValidationError(
            {
                "event_types": f"Unknown event type{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. "
                f"Choose from: {', '.join(public_event_types())}."
            }
        )
    private = [name for name in names if not events.CATALOG[name].public]
    if private:
        raise ValidationError({"event_types": f"Not available to webhooks: {', '.join(private)}."})
    if all_events:
        return []
    if not names:
        raise ValidationError({"event_types": "Choose at least one event type, or all events."})
    return sorted(names)


def _collect(errors: dict[str, list[str]], check: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one field check and gather its errors, so a form shows every problem at once."""
    try:
        return check(*args, **kwargs)
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            errors.setdefault(name, []).extend(messages)
        return None


def _lock(endpoint: Endpoint) -> Endpoint:
    return Endpoint.objects.select_for_update(of=("self",)).select_related("organization").get(pk=endpoint.pk)


def _bulk_set(model: type, fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Write ``fields`` of many rows in one ``UPDATE … FROM unnest(…)``: one array per column.

    Each row is ``(pk, *values)`` in ``fields`` order. Django's ``bulk_update`` builds a ``CASE
    WHEN`` per field and row, which for a batch of deliveries costs more CPU than sending them.
    """
    if not rows:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    arrays = ", ".join(f"%s::{f.cast_db_type(connection)}[]" for f in columns)
    names = ", ".join(f"c{index}" for index in range(len(columns)))
    assignments = ", ".join(f"{quote(f.column)} = v.c{index}" for index, f in enumerate(columns) if index)
    params = [list(values) for values in zip(*rows, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608 - our identifiers only
            f"FROM unnest({arrays}) AS v({names}) WHERE t.{quote(meta.pk.column)} = v.c0",
            params,
        )

# --- Endpoints -------------------------------------------------------------------------------


@transaction.atomic
def endpoint_create(
    *,
    organization: Organization,
    actor_membership: Membership,
    url: str,
    description: str = "",
    event_types: Sequence[str] = (),
    all_events: bool = False,
) -> Endpoint:
    _require_admin(actor_membership, organization.pk)
    errors: dict[str, list[str]] = {}
    description = _collect(errors, _clean_description, description)
    types = _collect(errors, _clean_event_types, event_types, all_events=all_events)
    clean_url = _collect(errors, _clean_url, url)
    if errors:
        raise ValidationError(errors)
    # Serialise creators in one organization so the limit holds.
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    limit = conf.max_endpoints()
    if Endpoint.objects.for_organization(organization).count() >= limit:
        raise ValidationError(f"An organization can have at most {limit} webhook endpoints; delete one first.")
    endpoint = Endpoint(
        organization=organization,
        url=clean_url,
        description=description,
        all_events=all_events,
        event_types=types,
    )
    endpoint.secret_sealed = crypto.secret_encrypt(signing.secret_generate(), context=endpoint.secret_context)
    endpoint.save()
    logger.info("webhook endpoint created", extra={"endpoint": str(endpoint.public_id), "actor": actor_membership.user_id})
    return endpoint


@transaction.atomic
def endpoint_update(
    *,
    endpoint: Endpoint,
    actor_membership: Membership,
    url: str | None = None,
    description: str | None = None,
    event_types: Sequence[str] | None = None,
    all_events: bool | None = None,
) -> Endpoint:
    """Change what an endpoint receives or where; None leaves a field as it is."""
    _require_admin(actor_membership, endpoint.organization_id)
    endpoint = _lock(endpoint)
    errors: dict[str, list[str]] = {}
    fields: dict[str, Any] = {}
    if description is not None:
        fields["description"] = _collect(errors, _clean_description, description)
    if event_types is not None or all_events is not None:
        subscribe_all = endpoint.all_events if all_events is None else all_events
        types = endpoint.event_types if event_types is None else event_types
        fields["event_types"] = _collect(errors, _clean_event_types, types, all_events=subscribe_all)
        fields["all_events"] = subscribe_all
    if url is not None and url.strip() != endpoint.url:
        fields["url"] = _collect(errors, _clean_url, url)
    if errors:
        raise ValidationError(errors)
    changed = [name for name, value in fields.items() if getattr(endpoint, name) != value]
    if not changed:
        return endpoint
    for name in changed:
        setattr(endpoint, name, fields[name])
    endpoint.updated_at = _now()
    endpoint.save(update_fields=[*changed, "updated_at"])
    return endpoint


@transaction.atomic
def endpoint_delete(*, endpoint: Endpoint, actor_membership: Membership) -> None:
    """Delete the endpoint with its deliveries and attempts (messages stay for other endpoints)."""
    _require_admin(actor_membership, endpoint.organization_id)
    endpoint = _lock(endpoint)
    # Straight DELETEs: the ORM's cascade would first load every delivery into memory.
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Attempt._meta.db_table} WHERE endpoint_id = %s", [endpoint.pk])  # noqa: S608
        cursor.execute(f"DELETE FROM {Delivery._meta.db_table} WHERE endpoint_id = %s", [endpoint.pk])  # noqa: S608
    endpoint.delete()
    logger.info("webhook endpoint deleted", extra={"endpoint": str(endpoint.public_id), "actor": actor_membership.user_id})


def endpoint_secret_reveal(*, endpoint: Endpoint, actor_membership: Membership) -> str:
    """The current signing secret, for org admins only (each reveal is logged)."""
    _require_admin(actor_membership, endpoint.organization_id)
    logger.info(
        "webhook secret revealed", extra={"endpoint": str(endpoint.public_id), "actor": actor_membership.user_id}
    )
    return crypto.secret_decrypt(endpoint.secret_sealed, context=endpoint.secret_context)


@transaction.atomic
def endpoint_secret_rotate(*, endpoint: Endpoint, actor_membership: Membership) -> str:
    """A new secret signs from now on; the current one keeps signing alongside for 24 hours.

    Rotating again during an overlap ends that overlap: only the last two secrets ever sign.
    """
    _require_admin(actor_membership, endpoint.organization_id)
    endpoint = _lock(endpoint)
    now = _now()
    secret = signing.secret_generate()
    endpoint.previous_secret_sealed = endpoint.secret_sealed
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret_sealed = crypto.secret_encrypt(secret, context=endpoint.secret_context)
    endpoint.secret_rotated_at = now
    endpoint.updated_at = now
    endpoint.save(
        update_fields=[
            "previous_secret_sealed",
            "previous_secret_expires_at",
            "secret_sealed",
            "secret_rotated_at",
            "updated_at",
        ]
    )
    logger.info("webhook secret rotated", extra={"endpoint": str(endpoint.public_id), "actor": actor_membership.user_id})
    return secret


def endpoint_secrets_active(*, endpoint: Endpoint, now: datetime | None = None) -> list[str]:
    """The secrets that sign a message now: the current one, then the previous during an overlap."""
    now = now or _now()
    secrets = [crypto.secret_decrypt(endpoint.secret_sealed, context=endpoint.secret_context)]
    if endpoint.previous_secret_sealed and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        secrets.append(crypto.secret_decrypt(endpoint.previous_secret_sealed, context=endpoint.secret_context))
    return secrets


def endpoint_secrets_reencrypt() -> int:
    """Re-seal every secret with the current ``WEBHOOK_SECRET_KEY`` (operators, all organizations).

    An explicit cross-tenant operation for key rotation, run from the management command.
    """
    done = 0
    ids = list(Endpoint.objects.order_by("pk").values_list("pk", flat=True))
    for endpoint_id in ids:
        with transaction.atomic():
            endpoint = Endpoint.objects.select_for_update().filter(pk=endpoint_id).first()
            if endpoint is None:
                continue
            fields = []
            for name in ("secret_sealed", "previous_secret_sealed"):
                sealed = getattr(endpoint, name)
                if sealed and crypto.secret_needs_reencrypt(sealed):
                    plain = crypto.secret_decrypt(sealed, context=endpoint.secret_context)
                    setattr(endpoint, name, crypto.secret_encrypt(plain, context=endpoint.secret_context))
                    fields.append(name)
            if fields:
                endpoint.save(update_fields=fields)
                done += 1
    return done


def _disable(endpoint: Endpoint, *, reason: str, now: datetime, notify: bool) -> bool:
    """Disable a locked endpoint; its waiting deliveries die (recoverable). True if it changed."""
    if not endpoint.enabled:
        return False
    endpoint.enabled = False
    endpoint.disabled_reason = reason[:DISABLED_REASON_MAX]
    endpoint.disabled_at = now
    endpoint.updated_at = now
    endpoint.save(update_fields=["enabled", "disabled_reason", "disabled_at", "updated_at"])
    Delivery.objects.filter(endpoint=endpoint, state=PENDING).update(
        state=DEAD,
        next_attempt_at=None,
        lease_id=None,
        attempt_started_at=None,
        finished_at=now,
        last_error="Endpoint disabled",
    )
    if notify:
        events.publish(
            events.WEBHOOK_ENDPOINT_DISABLED,
            organization=endpoint.organization,
            data={"endpoint": str(endpoint.public_id), "url": endpoint.url[:2000], "reason": endpoint.disabled_reason},
        )
    logger.warning(
        "webhook endpoint disabled", extra={"endpoint": str(endpoint.public_id), "reason": endpoint.disabled_reason}
    )
    return True


@transaction.atomic
def endpoint_disable(*, endpoint: Endpoint, actor_membership: Membership, reason: str = "") -> Endpoint:
    _require_admin(actor_membership, endpoint.organization_id)
    endpoint = _lock(endpoint)
    user = actor_membership.user
    _disable(
        endpoint,
        reason=reason.strip() or f"Disabled by {user.get_full_name() or user.get_username()}.",
        now=_now(),
        notify=False,
    )
    return endpoint


@dataclass(frozen=True)
class RecoverResult:
    recovered: int
    more: bool  # more than RECOVER_MAX_MESSAGES matched: recover again from resume_from
    resume_from: datetime | None


@transaction.atomic
def endpoint_enable(
    *, endpoint: Endpoint, actor_membership: Membership, recover_since: datetime | None = None
) -> RecoverResult | None:
    """Enable again; with ``recover_since``, also resend its failed and dead messages since then."""
    _require_admin(actor_membership, endpoint.organization_id)
    if recover_since is not None:
        _check_recover_since(recover_since, now=_now())
    endpoint = _lock(endpoint)
    if not endpoint.enabled:
        endpoint.enabled = True
        endpoint.disabled_reason = ""
        endpoint.disabled_at = None
        endpoint.failing_since = None  # a fresh five days
        endpoint.updated_at = _now()
        endpoint.save(update_fields=["enabled", "disabled_reason", "disabled_at", "failing_since", "updated_at"])
    if recover_since is None:
        return None
    return _recover(endpoint, since=recover_since)


def _check_recover_since(since: datetime, *, now: datetime) -> None:
    if timezone.is_naive(since):
        raise ValidationError({"since": "Give a time with its time zone."})
    if since > now:
        raise ValidationError({"since": "Choose a time in the past."})
    if since < now - RECOVER_MAX_AGE:
        earliest = (now - RECOVER_MAX_AGE).strftime("%Y-%m-%d %H:%M UTC")
        raise ValidationError({"since": f"Recover at most {RECOVER_MAX_AGE.days} days back (from {earliest})."})


@transaction.atomic
def endpoint_recover(*, endpoint: Endpoint, actor_membership: Membership, since: datetime) -> RecoverResult:
    """Resend every failed or dead message of ``endpoint`` created since ``since``.

    Bounded: at most 14 days back and the 10,000 oldest matching messages per call; the
    result says where to continue when more matched.
    """
    _require_admin(actor_membership, endpoint.organization_id)
    _check_recover_since(since, now=_now())
    endpoint = _lock(endpoint)
    if not endpoint.enabled:
        raise ValidationError("Enable the endpoint before recovering its messages.")
    return _recover(endpoint, since=since)


def _recover(endpoint: Endpoint, *, since: datetime) -> RecoverResult:
    now = _now()
    matching = (
        Delivery.objects.for_organization(endpoint.organization)
        .filter(endpoint=endpoint, state__in=[FAILED, DEAD], created_at__gte=since)
        .order_by("created_at", "id")
    )
    picked = list(matching.select_for_update().values_list("pk", "created_at")[: RECOVER_MAX_MESSAGES + 1])
    more = len(picked) > RECOVER_MAX_MESSAGES
    picked = picked[:RECOVER_MAX_MESSAGES]
    recovered = [
        (pk, PENDING, 0, None, None, None, now + RECOVER_SPACING * index) for index, (pk, _created) in enumerate(picked)
    ]
    _bulk_set(
        Delivery,
        ["state", "round_attempts", "lease_id", "attempt_started_at", "finished_at", "next_attempt_at"],
        recovered,
    )
    if recovered:
        transaction.on_commit(_sweep_soon)
    resume_from = picked[-1][1] if more else None
    logger.info("webhook messages recovered", extra={"endpoint": str(endpoint.public_id), "count": len(recovered)})
    return RecoverResult(recovered=len(recovered), more=more, resume_from=resume_from)


@transaction.atomic
def delivery_replay(*, endpoint: Endpoint, actor_membership: Membership, msg_id: str) -> Delivery:
    """Send one message to ``endpoint`` again now, with a fresh retry schedule (same webhook-id)."""
    _require_admin(actor_membership, endpoint.organization_id)
    endpoint = _lock(endpoint)
    organization = endpoint.organization
    delivery = scoped_get_or_404(
        Delivery.objects.for_organization(organization).filter(endpoint=endpoint).select_for_update(of=("self",)),
        organization=organization,
        message__msg_id=msg_id,
    )
    if not endpoint.enabled:
        raise ValidationError("Enable the endpoint before replaying messages to it.")
    if delivery.state == PENDING and delivery.attempt_started_at is not None:
        raise ValidationError("An attempt is in progress right now; wait for its result.")
    token = uuid.uuid4()
    delivery.state = PENDING
    delivery.round_attempts = 0
    delivery.lease_id = token
    delivery.next_attempt_at = _now() + timedelta(seconds=conf.dispatch_lease_seconds())
    delivery.finished_at = None
    delivery.save(update_fields=["state", "round_attempts", "lease_id", "next_attempt_at", "finished_at"])
    transaction.on_commit(lambda: _enqueue([delivery.pk], token))
    return delivery


@transaction.atomic
def endpoint_test_send(*, endpoint: Endpoint, actor_membership: Membership) -> Event:
    """Publish ``webhook.test`` for this endpoint only; the delivery runs like any other."""
    _require_admin(actor_membership, endpoint.organization_id)
    endpoint = _lock(endpoint)
    if not endpoint.enabled:
        raise ValidationError("Enable the endpoint before sending it a test event.")
    return events.publish(
        events.WEBHOOK_TEST,
        organization=endpoint.organization,
        actor=actor_membership.user,
        data={"endpoint": str(endpoint.public_id), "message": TEST_EVENT_TEXT},
    )


# --- Fan-out (runs in the event dispatch transaction) ------------------------------------------


def message_body(*, event: Event) -> str:
    """The JSON body receivers get: ``type``, ``timestamp`` and the event's public data.

    Only the properties the catalog's schema declares are copied: whatever else a producer
    might attach (internal notes, secrets) never leaves the portal.
    """
    declared = events.CATALOG[event.type].schema.get("properties", {})
    data = {key: value for key, value in (event.payload or {}).items() if key in declared}
    timestamp = event.created_at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"type": event.type, "timestamp": timestamp, "data": data}, separators=(",", ":"), ensure_ascii=False)


def deliveries_fan_out(*, event: Event) -> Message | None:
    """Turn an event into a message and one delivery per subscribed, enabled endpoint.

    Writes rows only; the first attempts are enqueued after the dispatch transaction commits.
    Idempotent: a second run for the same event adds nothing.
    """
    event_type = events.CATALOG.get(event.type)
    if event_type is None or not event_type.public:
        return None
    organization = event.organization
    endpoints = Endpoint.objects.for_organization(organization).filter(enabled=True)
    if event.type == events.WEBHOOK_TEST:
        # A test goes to the one endpoint it names, whatever that endpoint subscribes to.
        try:
            target = uuid.UUID(str(event.payload.get("endpoint")))
        except ValueError:
            return None
        endpoints = endpoints.filter(public_id=target)
    else:
        endpoints = endpoints.filter(Q(all_events=True) | Q(event_types__contains=[event.type]))
    endpoint_ids = list(endpoints.order_by("pk").values_list("pk", flat=True))
    if not endpoint_ids:
        return None
    now = _now()
    msg_id, body = signing.message_id_new(), message_body(event=event)
    # Insert, or find the message a previous run of this subscriber made (idempotent, one query).
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Message._meta.db_table} (organization_id, msg_id, event_id, event_type, body, created_at) "  # noqa: S608
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING id",
            [organization.pk, msg_id, event.pk, event.type, body, now],
        )
        inserted = cursor.fetchone()
    if inserted is not None:
        message = Message(
            pk=inserted[0],
            organization=organization,
            msg_id=msg_id,
            event=event,
            event_type=event.type,
            body=body,
            created_at=now,
        )
    else:
        message = Message.objects.for_organization(organization).get(event=event)
        done = set(Delivery.objects.filter(message=message).values_list("endpoint_id", flat=True))
        endpoint_ids = [pk for pk in endpoint_ids if pk not in done]
    token = uuid.uuid4()
    due = now + timedelta(seconds=conf.dispatch_lease_seconds())
    # One statement for any number of endpoints (the ORM's bulk_create costs ~0.2 ms a row).
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Delivery._meta.db_table} (organization_id, message_id, endpoint_id, event_type, "  # noqa: S608
            "created_at, state, next_attempt_at, lease_id, attempt_count, round_attempts, lost_attempts, last_error) "
            "SELECT %s, %s, endpoint_id, %s, %s, %s, %s, %s, 0, 0, 0, '' FROM unnest(%s::bigint[]) AS endpoint_id "
            "RETURNING id",
            [organization.pk, message.pk, message.event_type, message.created_at, PENDING, due, token, endpoint_ids],
        )
        deliveries = [row[0] for row in cursor.fetchall()]
    ids = sorted(deliveries)
    if ids:
        transaction.on_commit(lambda: _enqueue(ids, token))
    return message


def _enqueue(delivery_ids: list[int], token: uuid.UUID) -> None:
    """Hand deliveries to the workers; if the broker is down the sweeper sends them later."""
    from webhooks.tasks import deliveries_attempt_task

    for start in range(0, len(delivery_ids), BATCH_SIZE):
        try:
            deliveries_attempt_task.delay(delivery_ids[start : start + BATCH_SIZE], str(token))
        except Exception:
            logger.warning("webhook attempt not enqueued; the sweeper will retry", exc_info=True)


def _sweep_soon() -> None:
    from webhooks.tasks import deliveries_sweep_task

    try:
        deliveries_sweep_task.delay()
    except Exception:
        logger.warning("webhook sweep not enqueued; beat will run it", exc_info=True)


# --- Attempts ------------------------------------------------------------------------------------


@dataclass
class _Claimed:
    delivery_id: int
    organization_id: int
    endpoint_id: int
    url: str
    msg_id: str
    body: bytes
    lease_id: uuid.UUID
    number: int  # across the delivery's life
    round_number: int  # within the current schedule (drives the retry delay)
    secrets: list[str] = field(default_factory=list)
    secret_error: str = ""


@dataclass
class _Sent:
    claimed: _Claimed
    started: datetime
    result: transport.AttemptResult


def deliveries_attempt(*, delivery_ids: Sequence[int], lease: str) -> int:
    """Claim the given deliveries (if ``lease`` still holds them), send them, record the results.

    Returns how many were attempted. Safe to run twice: the second run finds no lease to claim.
    """
    claimed = _deliveries_claim(delivery_ids=delivery_ids, lease=lease)
    if not claimed:
        return 0
    if len(claimed) == 1:
        _attempts_record([_send(claimed[0])])
        return 1
    pool = _senders()
    pending: set[Future] = {pool.submit(_send, c) for c in claimed}
    buffer: list[_Sent] = []
    last_flush = time.monotonic()
    while pending:
        done, pending = wait(pending, timeout=RECORD_FLUSH_SECONDS, return_when=FIRST_COMPLETED)
        buffer.extend(future.result() for future in done)
        if buffer and (
            not pending or len(buffer) >= RECORD_FLUSH_SIZE or time.monotonic() - last_flush >= RECORD_FLUSH_SECONDS
        ):
            _attempts_record(buffer)
            buffer, last_flush = [], time.monotonic()
    return len(claimed)


_local = threading.local()


def _senders() -> ThreadPoolExecutor:
    """The calling thread's pool of ``max_parallel`` sender threads, kept between batches.

    Starting 50 threads for every batch cost more CPU than the claim and the records together.
    One pool per calling thread, not per process: a batch still has all its senders to itself
    whatever else the process runs (Celery's thread pool runs several batches), which is what
    the claim's lease assumes (see ``_lease``). ``_send`` never touches the database, so these
    threads hold no connections.
    """
    size = conf.max_parallel()
    current = getattr(_local, "senders", None)
    if current is None or current[0] != size:
        if current is not None:
            current[1].shutdown(wait=False)
        current = _local.senders = (size, ThreadPoolExecutor(max_workers=size, thread_name_prefix="webhook-send"))
    return current[1]


def _parallel(count: int) -> int:
    return max(1, min(count, conf.max_parallel()))


def _lease(count: int) -> timedelta:
    """How long ``count`` claimed deliveries stay ours: every round of requests at full deadline."""
    rounds = -(-count // _parallel(count))
    return timedelta(seconds=rounds * conf.timeout_seconds() + conf.lease_margin_seconds())


_CLAIM_FIELDS = (
    "pk",
    "organization_id",
    "attempt_count",
    "round_attempts",
    "endpoint_id",
    "endpoint__public_id",
    "endpoint__url",
    "endpoint__secret_sealed",
    "endpoint__previous_secret_sealed",
    "endpoint__previous_secret_expires_at",
    "message__msg_id",
    "message__body",
)


def _deliveries_claim(*, delivery_ids: Sequence[int], lease: str) -> list[_Claimed]:
    try:
        token = uuid.UUID(str(lease))
    except ValueError:
        return []
    with transaction.atomic():
        rows = list(
            Delivery.objects.select_for_update(of=("self",), skip_locked=True)
            .filter(pk__in=list(delivery_ids), lease_id=token, state=PENDING, attempt_started_at__isnull=True)
            .order_by("pk")
            .values_list(*_CLAIM_FIELDS)
        )
        if not rows:
            return []
        now = _now()
        Delivery.objects.filter(pk__in=[row[0] for row in rows]).update(
            next_attempt_at=now + _lease(len(rows)), attempt_started_at=now
        )
    secrets: dict[int, tuple[list[str], str]] = {}
    claimed = []
    for pk, organization_id, attempts, round_attempts, endpoint_id, public_id, url, sealed, previous, expires, msg_id, body in rows:
        if endpoint_id not in secrets:
            endpoint = Endpoint(
                pk=endpoint_id,
                public_id=public_id,
                secret_sealed=sealed,
                previous_secret_sealed=previous,
                previous_secret_expires_at=expires,
            )
            try:
                secrets[endpoint_id] = (endpoint_secrets_active(endpoint=endpoint, now=now), "")
            except crypto.SecretDecryptError as exc:
                logger.error("webhook secret cannot be decrypted", extra={"endpoint": str(public_id)})
                secrets[endpoint_id] = ([], str(exc))
        endpoint_secrets, secret_error = secrets[endpoint_id]
        claimed.append(
            _Claimed(
                delivery_id=pk,
                organization_id=organization_id,
                endpoint_id=endpoint_id,
                url=url,
                msg_id=msg_id,
                body=body.encode(),
                lease_id=token,
                number=attempts + 1,
                round_number=round_attempts + 1,
                secrets=endpoint_secrets,
                secret_error=secret_error,
            )
        )
    return claimed


def _send(claimed: _Claimed) -> _Sent:
    started = _now()
    try:
        if claimed.secret_error:
            result = transport.AttemptResult(
                outcome=transport.Outcome.RETRY, error_class="internal_error", error_message=claimed.secret_error
            )
        else:
            headers = {
                "Content-Type": "application/json",
                # The wire time of this attempt: receivers compare it with their clock.
                **signing.headers_build(
                    msg_id=claimed.msg_id, timestamp=int(time.time()), body=claimed.body, secrets=claimed.secrets
                ),
            }
            result = transport.send(
                url=claimed.url,
                body=claimed.body,
                headers=headers,
                policy=conf.url_policy(),
                timeout=conf.timeout_seconds(),
            )
    except Exception as exc:  # a bug here must cost one attempt, never the worker or the batch
        logger.exception("webhook attempt crashed", extra={"delivery": claimed.delivery_id})
        result = transport.AttemptResult(
            outcome=transport.Outcome.RETRY, error_class="internal_error", error_message=type(exc).__name__
        )
    return _Sent(claimed=claimed, started=started, result=result)


_OUTCOME = {
    transport.Outcome.SUCCESS: AttemptOutcome.SUCCESS,
    transport.Outcome.RETRY: AttemptOutcome.RETRY,
    transport.Outcome.FAIL: AttemptOutcome.FAIL,
    transport.Outcome.GONE: AttemptOutcome.GONE,
    transport.Outcome.BLOCKED: AttemptOutcome.BLOCKED,
}


def _summary(result: transport.AttemptResult) -> str:
    if result.error_class:
        text = f"{result.error_class}: {result.error_message or ''}".strip(": ")
        return (f"HTTP {result.status} · " if result.status else "") + text
    return f"HTTP {result.status}" if result.status else ""


_ATTEMPT_COLUMNS = (
    "organization_id",
    "delivery_id",
    "endpoint_id",
    "number",
    "created_at",
    "outcome",
    "final",
    "url",
    "request_headers",
    "response_status",
    "response_headers",
    "response_body",
    "response_truncated",
    "latency_ms",
    "error_class",
    "error_message",
    "remote_address",
)
_DELIVERY_PROGRESS = (
    "state",
    "next_attempt_at",
    "lease_id",
    "attempt_started_at",
    "attempt_count",
    "round_attempts",
    "last_attempt_at",
    "last_status",
    "last_error",
    "finished_at",
)
_ENDPOINT_HEALTH_FIELDS = ("pk", "organization_id", "public_id", "url", "enabled", "last_attempt_at", "last_success_at", "failing_since")


def _nul_free(text: str) -> str:
    # PostgreSQL text and jsonb refuse NUL, which a receiver may well send: show it as U+FFFD.
    return text.replace("\x00", "\ufffd").replace("\\u0000", "\\ufffd")


def _attempts_insert(rows: list[tuple]) -> None:
    """COPY attempt rows in: the fastest way in, and free of per-row ORM overhead."""
    if not rows:
        return
    columns = ", ".join(_ATTEMPT_COLUMNS)
    with connection.cursor() as cursor, cursor.cursor.copy(
        f"COPY {Attempt._meta.db_table} ({columns}) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)


def _attempts_record(sent: list[_Sent]) -> None:
    """Log the attempts and move each delivery on, in one short transaction."""
    now = _now()
    retry_table = conf.retry_schedule()
    with transaction.atomic():
        endpoints = {
            e.pk: e
            for e in Endpoint.objects.select_for_update(of=("self",))
            .filter(pk__in=sorted({s.claimed.endpoint_id for s in sent}))
            .order_by("pk")
            .only(*_ENDPOINT_HEALTH_FIELDS)
        }
        deliveries = {
            pk: (lease_id, state, attempt_count)
            for pk, lease_id, state, attempt_count in Delivery.objects.select_for_update()
            .filter(pk__in=[s.claimed.delivery_id for s in sent])
            .order_by("pk")
            .values_list("pk", "lease_id", "state", "attempt_count")
        }
        attempts: list[tuple] = []
        changed: list[tuple] = []
        gone: set[int] = set()
        for item in sent:
            claimed, result = item.claimed, item.result
            current = deliveries.get(claimed.delivery_id)
            if current is None or claimed.endpoint_id not in endpoints:
                continue  # the endpoint was deleted meanwhile: nothing left to log against
            lease_id, current_state, attempt_count = current
            outcome = _OUTCOME[result.outcome]
            state, next_at = _next_state(outcome, result, round_number=claimed.round_number, table=retry_table, now=now)
            holds_lease = lease_id == claimed.lease_id and current_state == PENDING
            # A success always counts, even after the lease was lost (the sweeper re-sent it
            # meanwhile, or the endpoint was disabled): the message did arrive.
            applies = holds_lease or (outcome == AttemptOutcome.SUCCESS and current_state != SUCCEEDED)
            attempts.append(
                (
                    claimed.organization_id,
                    claimed.delivery_id,
                    claimed.endpoint_id,
                    claimed.number,
                    item.started,
                    str(outcome),
                    applies and state != PENDING,
                    claimed.url,
                    json.dumps(result.request_headers),
                    result.status,
                    _nul_free(json.dumps(result.response_headers)),
                    _nul_free(result.response_body),
                    result.response_truncated,
                    result.latency_ms,
                    result.error_class or "",
                    (result.error_message or "")[:600],
                    result.remote_address or "",
                )
            )
            if outcome == AttemptOutcome.GONE:
                gone.add(claimed.endpoint_id)
            if not applies:
                continue
            changed.append(
                (
                    claimed.delivery_id,
                    str(state),
                    next_at,
                    None,  # lease_id
                    None,  # attempt_started_at
                    max(attempt_count, claimed.number),
                    claimed.round_number,
                    item.started,
                    result.status,
                    _summary(result)[:200] if outcome != AttemptOutcome.SUCCESS else "",
                    now if state != PENDING else None,
                )
            )
        _attempts_insert(attempts)
        _bulk_set(Delivery, _DELIVERY_PROGRESS, changed)
        _endpoints_health(endpoints, sent, gone=gone, now=now)


def _next_state(
    outcome: str, result: transport.AttemptResult, *, round_number: int, table: Sequence[float], now: datetime
) -> tuple[str, datetime | None]:
    if outcome == AttemptOutcome.SUCCESS:
        return SUCCEEDED, None
    if outcome != AttemptOutcome.RETRY:
        return FAILED, None  # 3xx, other 4xx, 410, refused address: sending again changes nothing
    delay = schedule.next_attempt_delay(
        attempt_number=round_number, schedule=table, retry_after=result.retry_after_seconds
    )
    if delay is None:
        return DEAD, None
    return PENDING, now + timedelta(seconds=delay)


def _endpoints_health(endpoints: dict[int, Endpoint], sent: list[_Sent], *, gone: set[int], now: datetime) -> None:
    by_endpoint: dict[int, list[_Sent]] = defaultdict(list)
    for item in sent:
        if item.claimed.endpoint_id in endpoints:
            by_endpoint[item.claimed.endpoint_id].append(item)
    changed = []
    for endpoint_id, items in by_endpoint.items():
        endpoint = endpoints[endpoint_id]
        items.sort(key=lambda s: s.started)
        endpoint.last_attempt_at = max(filter(None, [endpoint.last_attempt_at, items[-1].started]))
        successes = [s.started for s in items if s.result.outcome is transport.Outcome.SUCCESS]
        if successes:
            endpoint.last_success_at = max(filter(None, [endpoint.last_success_at, successes[-1]]))
            later = [s.started for s in items if s.started > successes[-1] and s.result.outcome is not transport.Outcome.SUCCESS]
            endpoint.failing_since = later[0] if later else None
        elif endpoint.failing_since is None:
            endpoint.failing_since = items[0].started
        changed.append(endpoint)
    _bulk_set(
        Endpoint,
        ["last_attempt_at", "last_success_at", "failing_since"],
        [(e.pk, e.last_attempt_at, e.last_success_at, e.failing_since) for e in changed],
    )
    limit = conf.disable_after()
    for endpoint in changed:
        if endpoint.pk in gone:
            _disable(endpoint, reason="The endpoint answered 410 Gone.", now=now, notify=True)
        elif endpoint.failing_since is not None and now - endpoint.failing_since >= limit:
            since = endpoint.failing_since.strftime("%Y-%m-%d %H:%M UTC")
            days = limit.total_seconds() / 86400
            _disable(
                endpoint,
                reason=f"No successful delivery for {days:g} days (failing since {since}).",
                now=now,
                notify=True,
            )


# --- The sweeper ---------------------------------------------------------------------------------


def deliveries_sweep(*, now: datetime | None = None, limit: int = SWEEP_LIMIT, rounds: int = SWEEP_MAX_ROUNDS) -> int:
    """Hand out due retries and expired leases; log lost attempts. Returns how many were handed out.

    Runs from beat every few seconds. Concurrent sweepers skip each other's rows.
    """
    total = 0
    for _ in range(rounds):
        handed = _sweep_once(now=now or _now(), limit=limit)
        total += handed
        if handed < limit:
            break
    return total


def _sweep_once(*, now: datetime, limit: int) -> int:
    with transaction.atomic():
        due = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(state=PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("pk", "attempt_started_at")[:limit]
        )
        if not due:
            return 0
        lost_ids = [pk for pk, started in due if started is not None]
        dead = _lost_attempts_log(lost_ids, now=now) if lost_ids else set()
        ready = [pk for pk, _ in due if pk not in dead]
        batches = []
        for start in range(0, len(ready), BATCH_SIZE):
            chunk, token = ready[start : start + BATCH_SIZE], uuid.uuid4()
            Delivery.objects.filter(pk__in=chunk).update(
                lease_id=token,
                attempt_started_at=None,
                next_attempt_at=now + timedelta(seconds=conf.dispatch_lease_seconds()),
            )
            batches.append((chunk, token))
        transaction.on_commit(lambda: _enqueue_batches(batches))
    return len(due)


def _enqueue_batches(batches: list[tuple[list[int], uuid.UUID]]) -> None:
    for chunk, token in batches:
        _enqueue(chunk, token)


def _lost_attempts_log(delivery_ids: list[int], *, now: datetime) -> set[int]:
    """Record attempts whose worker died (lease ran out mid-attempt); returns the ones now dead."""
    rows = list(Delivery.objects.filter(pk__in=delivery_ids).select_related("endpoint").order_by("pk"))
    attempts, dead = [], set()
    for delivery in rows:
        delivery.lost_attempts += 1
        delivery.attempt_count += 1
        final = delivery.lost_attempts >= MAX_LOST_ATTEMPTS
        attempts.append(
            Attempt(
                organization_id=delivery.organization_id,
                delivery_id=delivery.pk,
                endpoint_id=delivery.endpoint_id,
                number=delivery.attempt_count,
                created_at=delivery.attempt_started_at,
                outcome=AttemptOutcome.LOST,
                final=final,
                url=delivery.endpoint.url,
                error_class="worker_lost",
                error_message=(
                    "The worker stopped during this attempt; the request may or may not have reached the "
                    "endpoint. It does not count against the retry schedule."
                ),
            )
        )
        delivery.attempt_started_at = None
        delivery.last_attempt_at = delivery.last_attempt_at or now
        if final:
            delivery.state = DEAD
            delivery.next_attempt_at = None
            delivery.lease_id = None
            delivery.finished_at = now
            delivery.last_error = f"worker_lost: the worker stopped {delivery.lost_attempts} times mid-attempt"
            dead.add(delivery.pk)
    Attempt.objects.bulk_create(attempts)
    fields = [
        "lost_attempts",
        "attempt_count",
        "attempt_started_at",
        "last_attempt_at",
        "state",
        "next_attempt_at",
        "lease_id",
        "finished_at",
        "last_error",
    ]
    _bulk_set(Delivery, fields, [(d.pk, *(getattr(d, name) for name in fields)) for d in rows])
    logger.warning("webhook attempts lost with their worker", extra={"deliveries": delivery_ids})
    return dead


# --- Retention -----------------------------------------------------------------------------------


def webhooks_purge(*, now: datetime | None = None, batch: int = 1000) -> int:
    """Delete messages older than WEBHOOK_RETENTION_DAYS with their deliveries and attempts."""
    cutoff = (now or _now()) - conf.retention()
    purged = 0
    while True:
        with transaction.atomic():
            ids = list(
                Message.objects.filter(created_at__lt=cutoff)
                .order_by("created_at")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:batch]
            )
            if not ids:
                break
            with connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {Attempt._meta.db_table} WHERE delivery_id IN "  # noqa: S608
                    f"(SELECT id FROM {Delivery._meta.db_table} WHERE message_id = ANY(%s))",
                    [ids],
                )
                cursor.execute(f"DELETE FROM {Delivery._meta.db_table} WHERE message_id = ANY(%s)", [ids])  # noqa: S608
                cursor.execute(f"DELETE FROM {Message._meta.db_table} WHERE id = ANY(%s)", [ids])  # noqa: S608
        purged += len(ids)
    if purged:
        logger.info("purged webhook messages", extra={"messages": purged, "cutoff": cutoff.isoformat()})
    return purged
