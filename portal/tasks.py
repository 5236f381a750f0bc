"""Core tasks: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from portal import events, health, realtime


@shared_task(
    bind=True,
    autoretry_for=(events.DispatchIncomplete, OperationalError),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def event_dispatch_task(self, event_id: int) -> None:
    events.event_dispatch(event_id=event_id)


@shared_task
def events_sweep_task() -> int:
    return events.events_sweep()


@shared_task
def worker_heartbeat_task() -> None:
    health.worker_heartbeat_record()


@shared_task(autoretry_for=(ConnectionError, OSError), retry_backoff=True, max_retries=5)
def sockets_close_task(groups: list[str | dict]) -> None:
    realtime.sockets_close(groups=groups)
