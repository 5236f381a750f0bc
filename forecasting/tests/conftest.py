"""Fixtures for cost tests: synthetic cost histories written through the importer's writer, forecasts
computed the way a worker computes them, and a stored-file media root."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import transaction

from forecasting import importers, periods, services
from forecasting.models import CostImport

SAMPLES = Path(__file__).parent / "samples"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def synthetic_costs(
    *,
    until: date,
    months: int = 30,
    services_levels: dict[str, float] | None = None,
    spike: tuple[str, date, float] | None = None,
    month_factor: tuple[str, date, float] | None = None,
    currency: str = "USD",
) -> importers.Parsed:
    """Daily costs with growth, a yearly and a weekly pattern and small deterministic noise."""
    services_levels = services_levels or {"Compute": 100.0, "Storage": 30.0}
    start = periods.add_months(periods.month_start(until), -months)
    parsed = importers.Parsed(format=importers.FOCUS, currency=currency)
    for s_index, (name, level) in enumerate(services_levels.items()):
        for i in range((until - start).days + 1):
            day = start + timedelta(days=i)
            season = 1 + 0.08 * math.cos(2 * math.pi * (day.month - 11) / 12)
            week = 0.9 if day.weekday() >= 5 else 1.0
            wobble = 1 + 0.03 * math.sin(i * 1.7 + s_index)
            value = level * math.exp(0.01 * i / 30.44) * season * week * wobble
            if spike and spike[0] == name and spike[1] == day:
                value *= spike[2]
            if month_factor and month_factor[0] == name and periods.month_start(day) == month_factor[1]:
                value *= month_factor[2]
            parsed.costs[(day, name, "111122223333", "eu-west-1")] = Decimal(f"{value:.6f}")
    parsed.lines = len(parsed.costs)
    parsed.first_date, parsed.last_date = start, until
    return parsed


def load_costs(organization, parsed: importers.Parsed) -> CostImport:
    """Write parsed rows the way an import does (COPY + upsert); after-commit work does not run."""
    with transaction.atomic():
        cost_import = CostImport.objects.create(
            organization=organization, filename="synthetic.csv", status=CostImport.Status.RUNNING, source="command"
        )
        return services.cost_data_write(cost_import=cost_import, parsed=parsed)


def compute_forecast(organization):
    """What the worker does for a pending run, synchronously."""
    run = services.forecast_run_request(organization=organization, reason="test")
    return services.forecast_run_execute(run_id=run.pk)


@pytest.fixture
def until():
    return date(2026, 10, 31)


@pytest.fixture
def costs(organization, until):
    """30 months of two services for Acme, ending with a complete month."""
    return load_costs(organization, synthetic_costs(until=until))


@pytest.fixture
def forecast(costs, organization):
    return compute_forecast(organization)


@pytest.fixture
def _eager_errors_propagate():
    from portal.celery import app

    app.conf.task_eager_propagates = True
    yield
    app.conf.task_eager_propagates = False
