"""Notification tasks: thin and idempotent; durable state is in PostgreSQL."""

from __future__ import annotations

from celery import shared_task

from notifications import services


@shared_task(autoretry_for=(ConnectionError, OSError), retry_backoff=True, retry_backoff_max=60, max_retries=10)
def push_send_task(push_ids: list[int]) -> None:
    services.push_send(push_ids=push_ids)


@shared_task
def pushes_sweep_task() -> int:
    return services.pushes_sweep()


@shared_task
def notification_emails_task(digest: str = "immediate") -> int:
    return services.notification_emails_send(digest=digest)


@shared_task
def notifications_purge_task() -> int:
    return services.notifications_purge()
