"""Webhook tasks: thin, take ids, safe to run twice. Durable state is in PostgreSQL.

None of them retries through Celery: a delivery that could not be claimed or recorded keeps
its lease in the database, and the sweeper hands it out again when the lease runs out.
"""

from __future__ import annotations

from celery import shared_task

from webhooks import services


@shared_task(ignore_result=True)
def deliveries_attempt_task(delivery_ids: list[int], lease: str) -> int:
    return services.deliveries_attempt(delivery_ids=delivery_ids, lease=lease)


@shared_task(ignore_result=True)
def deliveries_sweep_task() -> int:
    return services.deliveries_sweep()


@shared_task(ignore_result=True)
def webhooks_purge_task() -> int:
    return services.webhooks_purge()
