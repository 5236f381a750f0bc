"""Demo cost data for `make run`: 36 months of daily costs, a spike, utilisation and a budget (idempotent).

The rows go through the importer's own writer (COPY + upsert in one transaction), so forecasts and
anomaly checks are requested from the workers after commit, exactly as after an upload.
"""

from __future__ import annotations

import math
import zlib
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.utils import timezone

from forecasting import importers, periods, selectors, services
from forecasting.models import Budget, CostImport

CURRENCY = "USD"
MONTHS = 36
ACCOUNTS = ("210987654321", "345678901234")  # production, staging
# name, region, daily level at the start, monthly growth, yearly amplitude, peak month, weekend factor, noise
SERVICES = [
    ("Amazon Elastic Compute Cloud", "eu-west-1", 310.0, 0.018, 0.10, 11, 0.85, 0.05),
    ("Amazon Relational Database Service", "eu-west-1", 140.0, 0.010, 0.04, 11, 1.0, 0.03),
    ("Amazon Simple Storage Service", "eu-west-1", 45.0, 0.025, 0.0, 1, 1.0, 0.02),
    ("Amazon CloudFront", "global", 38.0, 0.012, 0.30, 12, 1.1, 0.08),
    ("AWS Lambda", "eu-west-1", 6.0, 0.055, 0.05, 3, 0.7, 0.10),
    ("Amazon Elastic Kubernetes Service", "eu-central-1", 75.0, 0.015, 0.0, 1, 1.0, 0.02),
    ("Amazon CloudWatch", "eu-west-1", 18.0, 0.008, 0.0, 1, 0.95, 0.04),
]
SPIKE_SERVICE = "Amazon CloudWatch"  # a runaway log ingestion, a few days ago
SPIKE_DAYS_AGO = 5
SPIKE_FACTOR = 4.0
# resource id, service, average CPU %, memory %, daily cost
RESOURCES = [
    ("i-0a1b2c3d4e5f60001", "Amazon Elastic Compute Cloud", 64.0, 71.0, 23.04),
    ("i-0a1b2c3d4e5f60002", "Amazon Elastic Compute Cloud", 2.1, 6.5, 23.04),  # idle
    ("i-0a1b2c3d4e5f60003", "Amazon Elastic Compute Cloud", 11.0, 24.0, 46.08),  # over-provisioned
    ("db-prod-main", "Amazon Relational Database Service", 48.0, 62.0, 96.00),
    ("db-staging-old", "Amazon Relational Database Service", 1.2, 8.0, 32.00),  # idle
    ("eks-workers-a", "Amazon Elastic Kubernetes Service", 57.0, 66.0, 38.40),
]
UTILIZATION_DAYS = 14


def demo_costs(*, seed: int, until: date) -> importers.Parsed:
    """Daily rows per service and account from the first day of the month 36 months before ``until``."""
    rng = np.random.default_rng(seed)
    start = periods.add_months(periods.month_start(until), -MONTHS)
    days = (until - start).days + 1
    parsed = importers.Parsed(format=importers.FOCUS, currency=CURRENCY)
    spike_day = until - timedelta(days=SPIKE_DAYS_AGO)
    for name, region, level, growth, amplitude, peak, weekend, noise in SERVICES:
        shocks = rng.normal(0, noise, days)
        for i in range(days):
            day = start + timedelta(days=i)
            months = i / 30.44
            season = 1 + amplitude * math.cos(2 * math.pi * (day.month - peak) / 12)
            week = weekend if day.weekday() >= 5 else 1.0
            value = level * math.exp(growth * months) * season * week * math.exp(shocks[i])
            if name == SPIKE_SERVICE and day == spike_day:
                value *= SPIKE_FACTOR
            production = value * 0.8
            for account, share in ((ACCOUNTS[0], production), (ACCOUNTS[1], value - production)):
                parsed.costs[(day, name, account, region)] = Decimal(f"{share:.6f}")
    parsed.lines = len(parsed.costs)
    parsed.first_date, parsed.last_date = start, until
    return parsed


def demo_utilization(*, seed: int, until: date) -> importers.Parsed:
    rng = np.random.default_rng(seed + 1)
    parsed = importers.Parsed(format=importers.UTILIZATION)
    for offset in range(UTILIZATION_DAYS):
        day = until - timedelta(days=offset)
        for resource, service, cpu, memory, cost in RESOURCES:
            jitter = rng.normal(0, 0.08)
            parsed.utilization[(day, resource)] = importers.Utilization(
                service=service,
                account=ACCOUNTS[0],
                region="eu-west-1",
                avg_cpu_percent=Decimal(f"{min(100.0, max(0.0, cpu * (1 + jitter))):.2f}"),
                avg_memory_percent=Decimal(f"{min(100.0, max(0.0, memory * (1 + jitter / 2))):.2f}"),
                cost=Decimal(f"{cost:.2f}"),
            )
    parsed.lines = len(parsed.utilization)
    parsed.first_date, parsed.last_date = until - timedelta(days=UTILIZATION_DAYS - 1), until
    return parsed


def _write(organization: Any, parsed: importers.Parsed, filename: str) -> CostImport:
    cost_import = CostImport.objects.create(
        organization=organization,
        source=CostImport.Source.DEMO,
        filename=filename,
        size_bytes=0,
        status=CostImport.Status.RUNNING,
    )
    return services.cost_data_write(cost_import=cost_import, parsed=parsed)


def seed(*, organizations: list[Any], agent: Any, stdout: Any) -> None:
    until = timezone.now().date() - timedelta(days=1)
    seeded = []
    for organization in organizations:
        dataset = selectors.dataset_get(organization=organization)
        if dataset is not None and dataset.version > 0:
            continue
        seed_value = zlib.crc32(organization.slug.encode())
        costs = _write(organization, demo_costs(seed=seed_value, until=until), "demo-focus-export.csv")
        _write(organization, demo_utilization(seed=seed_value, until=until), "demo-utilization.csv")
        if not Budget.objects.for_organization(organization).exists():
            month = periods.month_start(until)
            history = selectors.monthly_history(
                organization=organization, dataset=selectors.dataset_get(organization=organization)
            )
            last = history.amount(selectors.TOTAL, history.last_month) or Decimal(1000)
            services.budget_create(
                organization=organization,
                actor=None,
                amount=(last * Decimal("1.08")).quantize(Decimal("1E2")),
                thresholds=[80, 100],
                today=month,
            )
        seeded.append(f"{organization.slug} ({costs.rows_written:,} cost rows)")
    if seeded:
        stdout.write(f"Demo costs: {', '.join(seeded)}; forecasts and anomaly checks queued for the workers.")
