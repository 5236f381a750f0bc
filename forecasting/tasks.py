"""Forecasting tasks: thin, take ids, and a missing or already-handled row is a no-op."""

from __future__ import annotations

from datetime import date

from celery import shared_task
from django.db import OperationalError

from forecasting import services


@shared_task(autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def cost_import_task(cost_import_id: int) -> None:
    services.cost_import_run(cost_import_id=cost_import_id)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def costs_changed_task(organization_id: int, since: str | None = None, until: str | None = None) -> None:
    services.costs_changed(
        organization_id=organization_id,
        since=date.fromisoformat(since) if since else None,
        until=date.fromisoformat(until) if until else None,
    )


@shared_task(autoretry_for=(OperationalError,), retry_backoff=5, max_retries=3)
def forecast_run_task(run_id: int) -> None:
    services.forecast_run_execute(run_id=run_id)


@shared_task
def forecasts_nightly_task() -> int:
    """Beat, nightly: one forecast run (and task) per organization with cost data."""
    return services.forecasts_refresh_all()


@shared_task
def forecasts_purge_task() -> int:
    return services.forecasts_purge_expired()
