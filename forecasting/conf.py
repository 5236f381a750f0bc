"""The forecasting settings, read in one place with their defaults.

``portal/settings.py`` reads the ``FORECAST_*`` environment variables; until then (and in tests,
through the ``settings`` fixture) these defaults apply. Values are read on every call.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings

from forecasting.engine import ALLOWED_HORIZONS, ALLOWED_LEVELS

# Every stored forecast covers the longest horizon and every level; shorter horizons are its prefix
# (ADR 0007), so toggling horizon or level on the page never needs a new fit.
HORIZON = max(ALLOWED_HORIZONS)
LEVELS: tuple[int, ...] = tuple(ALLOWED_LEVELS)
DEFAULT_HORIZON = 12
DEFAULT_LEVEL = 80
# Cost rows older than this are a wrong column or a wrong file, not history.
EARLIEST_DATE = date(2000, 1, 1)


def import_max_bytes() -> int:
    """Largest cost file accepted (upload, API or command)."""
    return int(getattr(settings, "FORECAST_IMPORT_MAX_BYTES", 200 * 1024 * 1024))


def import_inline_max_bytes() -> int:
    """Uploads up to this size are imported in the request; larger ones by a worker, with a progress bar."""
    return int(getattr(settings, "FORECAST_IMPORT_INLINE_MAX_BYTES", 2 * 1024 * 1024))


def import_max_errors() -> int:
    """How many bad rows a rejection report lists (the count covers all of them)."""
    return int(getattr(settings, "FORECAST_IMPORT_MAX_ERRORS", 100))


def forecast_ttl() -> timedelta:
    return timedelta(days=float(getattr(settings, "FORECAST_TTL_DAYS", 90)))


def run_stale_after() -> timedelta:
    """A forecast run still pending or running after this is taken for lost (worker died, broker down)."""
    return timedelta(seconds=float(getattr(settings, "FORECAST_RUN_STALE_SECONDS", 600)))


def parallel_series() -> int:
    """Series forecast at once inside one run (the engine's Stan fits are subprocesses: threads suffice)."""
    return max(1, int(getattr(settings, "FORECAST_PARALLEL_SERIES", 3)))


def anomaly_level() -> int:
    return int(getattr(settings, "FORECAST_ANOMALY_LEVEL", 95))


def anomaly_min_percent() -> float:
    """A spike must also exceed the expected value by this much (a 95 % band is left ~1 day in 40)."""
    return float(getattr(settings, "FORECAST_ANOMALY_MIN_PERCENT", 20))


def anomaly_min_amount() -> Decimal:
    return Decimal(str(getattr(settings, "FORECAST_ANOMALY_MIN_AMOUNT", "10")))


def anomaly_daily_lookback_days() -> int:
    """Daily anomalies are judged on the imported days within this many days of the newest one."""
    return int(getattr(settings, "FORECAST_ANOMALY_DAILY_LOOKBACK_DAYS", 14))


def anomaly_monthly_lookback_months() -> int:
    return int(getattr(settings, "FORECAST_ANOMALY_MONTHLY_LOOKBACK_MONTHS", 2))


def default_budget_thresholds() -> list[int]:
    return list(getattr(settings, "FORECAST_BUDGET_THRESHOLDS", [80, 100]))
