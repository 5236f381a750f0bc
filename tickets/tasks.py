"""Ticket tasks: thin, idempotent, and safe to run twice."""

from __future__ import annotations

from celery import shared_task

from tickets import services


@shared_task
def sla_sweep_task() -> dict[str, int]:
    return services.sla_sweep()


@shared_task
def tickets_purge_closed_task() -> int:
    return services.tickets_purge_closed()
