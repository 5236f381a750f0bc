"""Writes of notifications: creating (bulk, coalesced), reading, deleting, preferences, pushes."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from notifications.models import MANDATORY_KINDS, Kind, Notification, Preference, Push
from portal import realtime
from portal.models import Organization
from portal.tenancy import scoped_get_or_404

logger = logging.getLogger(__name__)


# --- Preferences ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    in_app: bool
    email: bool
    digest: str


def delivery_for(*, channel: str, digest: str, kind: str) -> Delivery:
    if kind in MANDATORY_KINDS and channel == Preference.Channel.OFF:
        channel = Preference.Channel.IN_APP
    return Delivery(
        in_app=channel != Preference.Channel.OFF,
        email=channel == Preference.Channel.EMAIL,
        digest=digest,
    )


# Tickets e-mail every reply (and the requester's confirmation) unless told otherwise: by default
# their e-mail channel is on.
DEFAULT_CHANNEL = dict.fromkeys(Kind.values, Preference.Channel.IN_APP) | {
    Kind.ALERT: Preference.Channel.EMAIL,
    Kind.TICKET: Preference.Channel.EMAIL,
}

# Kinds whose producing app sends its own e-mail for each event, to the people this kind's
# preference allows (tickets: the reply with its text, the requester's confirmation). That mail
# *is* the kind's immediate e-mail channel, so the notification itself is e-mailed only in a digest:
# one event, one e-mail.
PRODUCER_EMAILED_KINDS = frozenset({Kind.TICKET})


def _notification_email_due(*, kind: str, delivery: Delivery) -> bool:
    if kind in PRODUCER_EMAILED_KINDS and delivery.digest == Preference.Digest.IMMEDIATE:
        return False
    return delivery.email


def email_recipients(*, user_ids: Iterable[int], kind: str) -> set[int]:
    """Who of ``user_ids`` gets a producer's immediate e-mail of ``kind`` (see PRODUCER_EMAILED_KINDS):
    their preference is e-mail, without a digest (the default for tickets). "In-app" and "off"
    mean no e-mail; a digest gets the notification in the digest instead."""
    return {
        user_id
        for user_id, delivery in deliveries_for(user_ids=user_ids, kind=kind).items()
        if delivery.email and delivery.digest == Preference.Digest.IMMEDIATE
    }


def deliveries_for(*, user_ids: Iterable[int], kind: str) -> dict[int, Delivery]:
    """Each user's delivery for ``kind`` in one query (defaults where none is stored)."""
    ids = list(user_ids)
    # Raw: on the live-push path, where the ORM's compiling cost more than the query.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT user_id, channel, digest FROM {Preference._meta.db_table}"  # noqa: S608 - table name only
            " WHERE user_id = ANY(%s) AND kind = %s",
            [ids, kind],
        )
        stored = {user_id: (channel, digest) for user_id, channel, digest in cursor.fetchall()}
    default = (DEFAULT_CHANNEL[kind], Preference.Digest.IMMEDIATE)
    result = {}
    for user_id in ids:
        channel, digest = stored.get(user_id, default)
        result[user_id] = delivery_for(channel=channel, digest=digest, kind=kind)
    return result


@transaction.atomic
def preferences_update(*, user: Any, choices: dict[str, dict[str, str]]) -> list[Preference]:
    """``choices``: kind → {"channel": …, "digest": …}. Alerts can't be switched off."""
    errors: dict[str, str] = {}
    for kind, choice in choices.items():
        if kind not in Kind.values:
            errors[kind] = f"Unknown notification type {kind!r}."
            continue
        channel, digest = choice.get("channel"), choice.get("digest", Preference.Digest.IMMEDIATE)
        if channel not in Preference.Channel.values:
            errors[kind] = f"Choose one of: {', '.join(Preference.Channel.values)}."
        elif digest not in Preference.Digest.values:
            errors[kind] = f"Choose a digest of: {', '.join(Preference.Digest.values)}."
        elif kind in MANDATORY_KINDS and channel == Preference.Channel.OFF:
            errors[kind] = "Alerts can't be turned off."
    if errors:
        raise ValidationError(errors)
    saved = []
    for kind, choice in choices.items():
        preference, _ = Preference.objects.update_or_create(
            user=user,
            kind=kind,
            defaults={"channel": choice["channel"], "digest": choice.get("digest", Preference.Digest.IMMEDIATE)},
        )
        saved.append(preference)
    return saved


# --- Creating notifications ------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    notification_id: int
    recipient_id: int
    new: bool


def notify(
    *,
    organization: Organization,
    recipient_ids: Iterable[int],
    kind: str,
    title: str,
    body: str = "",
    link: str = "",
    event_id: int | None = None,
    target: str = "",
) -> list[Created]:
    """Create one notification per recipient in a single statement.

    With a ``target``, a recipient's unread notification about the same thing is bumped
    instead (title, body, time, count of updates), so a busy ticket doesn't flood the inbox.
    Recipients who turned this kind off get nothing (alerts excepted).
    """
    deliveries = deliveries_for(user_ids=set(recipient_ids), kind=kind)
    rows = [(uid, d) for uid, d in sorted(deliveries.items()) if d.in_app]
    if not rows:
        return []
    values, params = [], []
    for user_id, delivery in rows:
        values.append("(gen_random_uuid(), %s, %s, %s, %s, %s, %s, %s, %s, 1, %s, now(), now())")
        email_due = _notification_email_due(kind=kind, delivery=delivery)
        params += [organization.pk, user_id, kind, title[:200], body, link[:500], event_id, target, email_due]
    # A bumped row that is to be e-mailed is e-mailed again: the update is news too.
    conflict = (
        """
        ON CONFLICT (recipient_id, organization_id, target) WHERE read_at IS NULL AND NOT (target = '')
        DO UPDATE SET title = EXCLUDED.title, body = EXCLUDED.body, link = EXCLUDED.link, event_id = EXCLUDED.event_id,
            updates = notifications_notification.updates + 1, updated_at = now(),
            email_due = notifications_notification.email_due OR EXCLUDED.email_due,
            emailed_at = CASE WHEN EXCLUDED.email_due THEN NULL ELSE notifications_notification.emailed_at END
        """
        if target
        else ""
    )
    sql = f"""
        INSERT INTO notifications_notification
            (public_id, organization_id, recipient_id, kind, title, body, link, event_id, target, updates, email_due,
             created_at, updated_at)
        VALUES {", ".join(values)}
        {conflict}
        RETURNING id, recipient_id, (xmax = 0) AS inserted
    """  # noqa: S608 - only placeholders are interpolated
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [Created(*row) for row in cursor.fetchall()]


# --- Reading and deleting --------------------------------------------------------------------


def _inbox(*, user: Any, organization: Organization):
    return Notification.objects.for_organization(organization).filter(recipient=user)


@transaction.atomic
def notification_mark_read(*, user: Any, organization: Organization, public_id: Any) -> Notification:
    notification = scoped_get_or_404(
        _inbox(user=user, organization=organization), organization=organization, public_id=public_id
    )
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
        push_inbox_state(user_id=user.pk, organization=organization)
    return notification


@transaction.atomic
def notifications_mark_read(*, user: Any, organization: Organization, public_ids: list[Any] | None = None) -> int:
    """Mark some (``public_ids``) or all of the user's unread notifications read."""
    queryset = _inbox(user=user, organization=organization).filter(read_at__isnull=True)
    if public_ids is not None:
        queryset = queryset.filter(public_id__in=public_ids)
    count = queryset.update(read_at=timezone.now())
    if count:
        push_inbox_state(user_id=user.pk, organization=organization)
    return count


@transaction.atomic
def notification_delete(*, user: Any, organization: Organization, public_id: Any) -> Notification:
    """Delete one of the user's notifications; returns it (no longer in the database)."""
    notification = scoped_get_or_404(
        _inbox(user=user, organization=organization), organization=organization, public_id=public_id
    )
    notification.delete()
    push_inbox_state(user_id=user.pk, organization=organization)
    return notification


def notifications_purge(*, now: datetime | None = None) -> int:
    cutoff = (now or timezone.now()) - timedelta(days=settings.NOTIFICATION_RETENTION_DAYS)
    deleted, _ = Notification.objects.filter(updated_at__lt=cutoff).delete()
    pushes, _ = Push.objects.filter(created_at__lt=(now or timezone.now()) - PUSH_RETENTION).delete()
    if deleted or pushes:
        logger.info("purged notifications", extra={"notifications": deleted, "pushes": pushes})
    return deleted


# --- Pushes -----------------------------------------------------------------------------------

PUSH_RETENTION = timedelta(hours=24)
RESUME_LIMIT = 500


def push_create(
    *, organization: Organization, type: str, data: dict[str, Any], html: str = "", user_id: int | None = None
) -> Push:
    """Record a push in the current transaction; it is sent to sockets after commit."""
    return pushes_create(
        organization=organization, pushes=[{"type": type, "data": data, "html": html, "user_id": user_id}]
    )[0]


def pushes_create(*, organization: Organization, pushes: list[dict[str, Any]]) -> list[Push]:
    """Record many pushes with one INSERT; they are sent together after commit."""
    if not pushes:
        return []
    now = timezone.now()
    rows = [Push(organization=organization, created_at=now, **push) for push in pushes]
    data = Push._meta.get_field("data")
    params: list[Any] = []
    for row in rows:
        params += [row.organization_id, row.user_id, row.type, data.get_db_prep_save(row.data, connection)]
        params += [row.html, row.created_at]
    # Raw: on the live-push path, where bulk_create's compiling cost twice the statement.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Push._meta.db_table} (organization_id, user_id, type, data, html, created_at)"  # noqa: S608
            f" VALUES {', '.join(['(%s, %s, %s, %s, %s, %s)'] * len(rows))} RETURNING id",
            params,
        )
        for row, (pk,) in zip(rows, cursor.fetchall(), strict=True):
            row.pk = pk
            row._state.adding = False
            row._state.db = connection.alias
    transaction.on_commit(lambda: _send_after_commit(rows))
    return rows


def _send_after_commit(rows: list[Push]) -> None:
    """In a worker (an event subscriber), send right away; elsewhere hand it to a worker.

    A second Celery hop per push cost a queue round trip behind whatever the two workers are
    busy with; the sweeper still covers a send that fails here. Request threads never send. The
    committed rows are sent as they are in memory (what a re-read would return), one query less
    between the commit and the socket.
    """
    if _in_worker_task():
        try:
            pushes_send(rows)
            return
        except Exception:
            logger.warning("push not sent; enqueueing it", extra={"push_ids": [r.pk for r in rows]}, exc_info=True)
    _enqueue_send([row.pk for row in rows])


def _in_worker_task() -> bool:
    from celery import current_task

    task = current_task  # a proxy: falsy outside a task
    return bool(task) and not task.request.called_directly and not task.request.is_eager


def _enqueue_send(push_ids: list[int]) -> None:
    from notifications.tasks import push_send_task

    try:
        push_send_task.delay(push_ids)
    except Exception:
        logger.warning("push not enqueued; the sweeper will send it", extra={"push_ids": push_ids}, exc_info=True)


def push_message(push: Push) -> dict[str, Any]:
    """What consumers receive through the channel layer (and what resume replays)."""
    return {
        "type": "push.message",
        "id": push.pk,
        "event": push.type,
        "organization": push.organization_id,
        "user": push.user_id,
        "created": push.created_at.isoformat(),
        "data": push.data,
        "html": push.html,
    }


def push_send(*, push_ids: list[int]) -> None:
    """Ring each push's group (a no-op for rows gone since); idempotent, consumers drop repeats."""
    pushes_send(list(Push.objects.filter(pk__in=push_ids).order_by("id")))


def pushes_send(pushes: list[Push]) -> None:
    """Ring the groups of committed pushes in id order, then stamp them sent."""
    pushes = sorted(pushes, key=lambda p: p.pk)
    for push in pushes:
        group = realtime.user_group(push.user_id) if push.user_id else realtime.organization_group(push.organization_id)
        realtime.group_send(group, push_message(push))
    Push.objects.filter(pk__in=[p.pk for p in pushes], sent_at__isnull=True).update(sent_at=timezone.now())


def pushes_sweep(*, now: datetime | None = None) -> int:
    """Send pushes whose after-commit send never happened (broker down, worker killed)."""
    cutoff = (now or timezone.now()) - timedelta(seconds=10)
    ids = list(
        Push.objects.filter(sent_at__isnull=True, created_at__lt=cutoff)
        .order_by("id")
        .values_list("id", flat=True)[:1000]
    )
    if ids:
        push_send(push_ids=ids)
    return len(ids)


def push_inbox_state(*, user_id: int, organization: Organization) -> Push:
    """Push the user's whole inbox state (badge count and dropdown): never a "+1"."""
    from notifications import rendering, selectors

    count = selectors.unread_count(user_id=user_id, organization=organization)
    latest = list(selectors.notification_list(user_id=user_id, organization=organization)[: selectors.DROPDOWN_SIZE])
    return push_create(
        organization=organization,
        user_id=user_id,
        type="notification",
        data={"unread": count},
        html=rendering.inbox_fragments(unread=count, latest=latest),
    )


# --- Email ------------------------------------------------------------------------------------

EMAIL_BATCH = 500


def notification_emails_send(*, digest: str, now: datetime | None = None) -> int:
    """Email due notifications of recipients on ``digest`` (immediate: one email each).

    Rows are claimed with SKIP LOCKED and stamped in the same transaction as the sending, so a
    re-run or an overlapping beat never emails twice; a failed send rolls back and is retried.
    """
    from django.core.mail import send_mail
    from django.db.models import Exists, OuterRef
    from django.template.loader import render_to_string

    now = now or timezone.now()
    on_digest = Preference.objects.filter(user=OuterRef("recipient_id"), kind=OuterRef("kind"), digest=digest)
    other_digest = Preference.objects.filter(user=OuterRef("recipient_id"), kind=OuterRef("kind")).exclude(
        digest=digest
    )
    sent = 0
    with transaction.atomic():
        due = (
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(email_due=True, emailed_at__isnull=True)
            .select_related("recipient", "organization")
            .order_by("recipient_id", "id")
        )
        due = (
            due.filter(Exists(on_digest))
            if digest != Preference.Digest.IMMEDIATE
            else due.exclude(Exists(other_digest))
        )
        rows = list(due[:EMAIL_BATCH])
        by_recipient: dict[int, list[Notification]] = {}
        for row in rows:
            by_recipient.setdefault(row.recipient_id, []).append(row)
        for items in by_recipient.values():
            recipient = items[0].recipient
            if not recipient.email:
                continue
            context = {"items": items, "recipient": recipient, "base_url": settings.PORTAL_BASE_URL, "digest": digest}
            if digest == Preference.Digest.IMMEDIATE:
                for item in items:
                    body = render_to_string("emails/notifications/single.txt", {**context, "item": item})
                    send_mail(item.title, body, None, [recipient.email])
                    sent += 1
            else:
                body = render_to_string("emails/notifications/digest.txt", context)
                send_mail(f"Your {digest} SecureBase summary: {len(items)} update(s)", body, None, [recipient.email])
                sent += 1
        Notification.objects.filter(pk__in=[r.pk for r in rows]).update(emailed_at=now)
    return sent
