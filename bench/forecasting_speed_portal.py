"""Speed of forecasts in the portal: one organization with 10 services, 24-month horizon, levels 65/80/95.

1. Cold: compute and store every forecast of the organization (the total + 10 services = 11 series), as a
   worker does (``forecast_run_request`` + ``forecast_run_execute``: read the monthly history in SQL, fit,
   bulk-insert 264 forecast rows, check budgets). Target ≤ 1 s.
2. Cached page: ``GET /costs/`` (full page) and the htmx swap of the results region, served from the stored
   forecast, through Django's full middleware stack in-process (no network, no server). Target ≤ 30 ms.

Use a database of its own (never the dev database): it creates and migrates nothing itself.

    export DATABASE_URL=postgres://postgres@127.0.0.1:PORT/portal_bench_forecast REDIS_URL=redis://127.0.0.1:PORT/9
    DEBUG=1 .venv/bin/python manage.py migrate
    DEBUG=1 .venv/bin/python bench/forecasting_speed_portal.py [--months 36] [--cold-runs 5] [--requests 200]
    DEBUG=1 .venv/bin/python bench/forecasting_speed_portal.py --reset    # remove the bench organization

The data: organization ``bench-forecast`` with 10 services x 2 accounts of daily costs over ``--months``
months (trend, yearly and weekly patterns, noise), written through the importer's writer (COPY + upsert).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import statistics
import sys
import time
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

SLUG = "bench-forecast"
SERVICES = 10
TARGET_COLD_S = 1.0
TARGET_PAGE_MS = 30.0


def _setup() -> None:
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["*"]
    from portal.celery import app

    app.conf.task_always_eager = False  # the benchmark calls the worker's service itself


def _load() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "n/a"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def seed(months: int):
    from django.db import transaction

    from forecasting import importers, periods, services
    from forecasting.models import CostImport
    from portal.models import Membership, Organization
    from portal.tests.factories import UserFactory

    organization, _ = Organization.objects.get_or_create(slug=SLUG, defaults={"name": "Bench Forecast"})
    membership = Membership.objects.for_organization(organization).select_related("user").first()
    if membership is None:
        membership = Membership.objects.create(
            organization=organization, user=UserFactory(username="bench-forecast@example.com"), role="admin"
        )
    until = dt.date.today() - dt.timedelta(days=1)
    start = periods.add_months(periods.month_start(until), -months)
    parsed = importers.Parsed(format=importers.FOCUS, currency="USD")
    for s in range(SERVICES):
        level, growth, amplitude = 40.0 * (s + 1), 0.004 + 0.003 * s, 0.05 * (s % 4)
        for i in range((until - start).days + 1):
            day = start + dt.timedelta(days=i)
            value = level * math.exp(growth * i / 30.44) * (1 + amplitude * math.cos(2 * math.pi * day.month / 12))
            value *= (0.9 if day.weekday() >= 5 else 1.0) * (1 + 0.04 * math.sin(i * 1.3 + s))
            for account, share in (("111111111111", 0.7), ("222222222222", 0.3)):
                parsed.costs[(day, f"Service {s + 1:02d}", account, "eu-west-1")] = Decimal(f"{value * share:.6f}")
    parsed.lines = len(parsed.costs)
    parsed.first_date, parsed.last_date = start, until
    started = time.perf_counter()
    with transaction.atomic():
        cost_import = CostImport.objects.create(
            organization=organization, filename="bench.csv", status="running", source="command"
        )
        services.cost_data_write(cost_import=cost_import, parsed=parsed)
    return organization, membership, len(parsed.costs), time.perf_counter() - started


def cold(organization, runs: int) -> list[dict[str, float]]:
    from forecasting import selectors, services

    results = []
    original = services.forecast_series
    for _ in range(runs):
        timings: dict[str, float] = {}

        def timed_series(history, timings=timings):
            begin = time.perf_counter()
            out = original(history)
            timings["fit"] = time.perf_counter() - begin
            return out

        services.forecast_series = timed_series
        try:
            begin = time.perf_counter()
            run = services.forecast_run_request(organization=organization, reason="bench")
            run = services.forecast_run_execute(run_id=run.pk)
            timings["total"] = time.perf_counter() - begin
        finally:
            services.forecast_series = original
        assert run.status == "ready", run.error
        timings["series"] = run.series_count
        timings["rows"] = selectors.forecast_points(organization=organization, run=run, horizon=24).__len__()
        results.append(timings)
    return results


def page(membership, requests: int) -> dict[str, list[float]]:
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(membership.user)
    url = "/costs/?horizon=24&level=80"
    out: dict[str, list[float]] = {
        "page": [],
        "swap": [],
        "page_cpu": [],
        "swap_cpu": [],
        "page_queries": [],
        "swap_queries": [],
    }
    for kind, headers in (("page", {}), ("swap", {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "forecast-results"})):
        for _ in range(5):  # warm templates, connections, caches
            client.get(url, **headers)
        # Queries are counted on separate requests: capturing them forces Django's debug cursor, which
        # costs time the timed requests should not carry (the first runs of this script did both at once).
        for _ in range(3):
            reset_queries()
            with CaptureQueriesContext(connection) as queries:
                client.get(url, **headers)
            out[f"{kind}_queries"].append(len(queries))
        for _ in range(requests):
            cpu = time.process_time()
            begin = time.perf_counter()
            response = client.get(url, **headers)
            out[kind].append((time.perf_counter() - begin) * 1000)
            out[f"{kind}_cpu"].append((time.process_time() - cpu) * 1000)
            assert response.status_code == 200 and b"forecast-mean" in response.content
    return out


def reset() -> None:
    from portal.models import Organization

    Organization.objects.filter(slug=SLUG).delete()
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username="bench-forecast@example.com").delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=36, help="months of daily history (default 36)")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--reset", action="store_true", help="remove the bench organization and exit")
    args = parser.parse_args()
    _setup()
    if args.reset:
        reset()
        print("bench organization removed")
        return
    reset()

    from django.conf import settings

    print("# Forecasting in the portal: speed\n")
    print(
        f"- run {dt.datetime.now().isoformat(timespec='seconds')}, {os.cpu_count()} CPUs ({_cpu_model()}), "
        f"Python {platform.python_version()}, load average {_load()}"
    )
    print(f"- DEBUG={settings.DEBUG}, FORECAST_PARALLEL_SERIES={getattr(settings, 'FORECAST_PARALLEL_SERIES', 3)}")
    organization, membership, rows, seconds = seed(args.months)
    print(
        f"- data: 1 organization, {SERVICES} services x 2 accounts, {args.months} months + the current month of daily "
        f"rows = {rows:,} cost rows (written in {seconds:.2f} s)\n"
    )

    print(
        f"## Cold: compute + store (total + {SERVICES} services, horizon 24, levels 65/80/95), {args.cold_runs} runs\n"
    )
    results = cold(organization, args.cold_runs)
    print("| run | series | forecast rows | fits (s) | total incl. SQL read + store (s) |")
    print("|---:|---:|---:|---:|---:|")
    for i, r in enumerate(results, 1):
        print(f"| {i} | {r['series']:.0f} | {r['rows']:.0f} | {r['fit']:.3f} | {r['total']:.3f} |")
    totals = [r["total"] for r in results]
    print(
        f"\nMedian {statistics.median(totals):.3f} s, min {min(totals):.3f} s, max {max(totals):.3f} s "
        f"(target ≤ {TARGET_COLD_S:.0f} s); load average after: {_load()}\n"
    )

    print(f"## Cached page: {args.requests} requests each, in-process through the full middleware stack\n")
    timings = page(membership, args.requests)
    print("| request | p50 (ms) | p95 (ms) | max (ms) | app CPU p50 (ms) | queries |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, label in (("page", "GET /costs/ (full page)"), ("swap", "htmx swap of the results region")):
        values = sorted(timings[kind])
        p95 = values[int(len(values) * 0.95) - 1]
        cpu = statistics.median(timings[f"{kind}_cpu"])
        print(
            f"| {label} | {statistics.median(values):.1f} | {p95:.1f} | {values[-1]:.1f} | {cpu:.1f} | "
            f"{timings[f'{kind}_queries'][0]} |"
        )
    print(
        f"\nTarget ≤ {TARGET_PAGE_MS:.0f} ms (p50). App CPU is this process's CPU time per request (the database's "
        f"is not included): on a shared machine it shows the cost better than wall time. Load average after: {_load()}"
    )
    reset()


if __name__ == "__main__":
    main()
