"""Every write to forecasting: imports, forecast runs, anomalies and budgets, with their events.

Pages, the API, the ``import_costs`` command, tasks, admin and the demo seed all call these functions.
Fits never run here on a request thread: requests only create a pending ``ForecastRun`` and a worker
executes it (``forecasting.tasks``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from forecasting import conf, engine, importers, periods, selectors
from forecasting.models import (
    Budget,
    BudgetAlert,
    CostAnomaly,
    CostDataset,
    CostForecast,
    CostImport,
    ForecastRun,
)
from portal import events
from portal.models import Organization

logger = logging.getLogger(__name__)

TWO_PLACES = Decimal("0.01")
MAX_BUDGET = Decimal("1e12")
MAX_THRESHOLDS = 5


def _money(value: Decimal | float) -> str:
    """A payload money string (``_MONEY`` in the event catalog): fixed point, two decimals."""
    return f"{Decimal(str(value)).quantize(TWO_PLACES):f}"


# --- Imports ----------------------------------------------------------------------------------


def cost_import_check_size(*, size: int | None) -> None:
    limit = conf.import_max_bytes()
    if not size:
        raise ValidationError({"file": "The file is empty (0 bytes)."})
    if size > limit:
        raise ValidationError(
            {"file": f"The file is {filesizeformat(size)}; the limit is {filesizeformat(limit)}. Split it by month."}
        )


def _dataset_for_update(organization: Organization) -> CostDataset:
    """The organization's dataset row, created if needed, locked until the end of the transaction."""
    CostDataset.objects.get_or_create(organization=organization)
    return CostDataset.objects.for_organization(organization).select_for_update().get()


def cost_import_submit(
    *,
    organization: Organization,
    user: Any,
    file: IO[bytes],
    filename: str,
    size: int,
    source: str = CostImport.Source.UPLOAD,
    inline: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CostImport:
    """Take a cost or utilisation file: import it now (small files, the command) or hand it to a worker.

    The returned import is finished (succeeded or failed, with its report) when run inline, or pending
    with its file stored for the worker otherwise.
    """
    cost_import_check_size(size=size)
    inline = size <= conf.import_inline_max_bytes() if inline is None else inline
    with transaction.atomic():
        cost_import = CostImport(
            organization=organization,
            source=source,
            filename=(filename or "costs.csv")[-255:],
            size_bytes=size,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        if not inline:
            cost_import.file.save(cost_import.filename, File(file), save=False)
        cost_import.save()
        if not inline:
            transaction.on_commit(lambda: _enqueue("cost_import_task", cost_import.pk))
    if not inline:
        return cost_import
    result = cost_import_run(cost_import_id=cost_import.pk, stream=file, progress=progress)
    if result.status == CostImport.Status.FAILED:
        # Rejected on the spot: the caller shows the report now, and a bad file leaves no row behind.
        # (A worker's rejection is kept: that report is read later, on the import's page.)
        result.delete()
    return result


def _enqueue(task_name: str, *args: Any) -> None:
    """Hand work to the workers; if the broker is down, log it (runs are re-requested when stale)."""
    from forecasting import tasks

    try:
        getattr(tasks, task_name).delay(*args)
    except Exception:
        logger.warning("forecasting task not enqueued", extra={"task": task_name}, exc_info=True)


class _ProgressWriter:
    """Writes parsing progress to the import row at most twice a second (outside any transaction)."""

    def __init__(self, cost_import_id: int, forward: Callable[[int, int], None] | None) -> None:
        self.cost_import_id, self.forward, self.last = cost_import_id, forward, 0.0

    def __call__(self, bytes_read: int, lines: int) -> None:
        if self.forward is not None:
            self.forward(bytes_read, lines)
        now = time.monotonic()
        if now - self.last >= 0.5:
            self.last = now
            CostImport.objects.filter(pk=self.cost_import_id).update(bytes_processed=bytes_read, lines_processed=lines)


def cost_import_run(
    *, cost_import_id: int, stream: IO[bytes] | None = None, progress: Callable[[int, int], None] | None = None
) -> CostImport | None:
    """Parse and write one import. A missing or already-claimed import is a no-op (returns None)."""
    claimed = CostImport.objects.filter(pk=cost_import_id, status=CostImport.Status.PENDING).update(
        status=CostImport.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    cost_import = CostImport.objects.select_related("organization").get(pk=cost_import_id)
    opened = None
    try:
        if stream is None:
            opened = stream = cost_import.file.open("rb")
        parsed = importers.parse(
            stream,
            today=timezone.now().date(),
            max_bytes=conf.import_max_bytes(),
            max_errors=conf.import_max_errors(),
            progress=_ProgressWriter(cost_import.pk, progress),
        )
    except importers.FileRejected as exc:
        return _import_fail(cost_import, [{"line": None, "message": str(exc)}], 1)
    except (OSError, ValueError) as exc:
        logger.warning("cost import could not be read", extra={"cost_import": cost_import.pk}, exc_info=True)
        return _import_fail(cost_import, [{"line": None, "message": f"The file could not be read ({exc})."}], 1)
    finally:
        if opened is not None:
            opened.close()
    if not parsed.ok:
        return _import_fail(cost_import, [e.as_dict() for e in parsed.errors], parsed.error_count, parsed=parsed)
    try:
        cost_import = cost_data_write(cost_import=cost_import, parsed=parsed)
    except ValidationError as exc:
        return _import_fail(cost_import, [{"line": None, "message": m} for m in exc.messages], 1, parsed=parsed)
    _delete_file(cost_import)
    return cost_import


def _import_fail(
    cost_import: CostImport, errors: list[dict[str, Any]], count: int, *, parsed: importers.Parsed | None = None
) -> CostImport:
    cost_import.status = CostImport.Status.FAILED
    cost_import.errors = errors
    cost_import.error_count = count
    cost_import.finished_at = timezone.now()
    if parsed is not None:
        cost_import.format = parsed.format
        cost_import.lines_processed = parsed.lines
        cost_import.currency = parsed.currency
    cost_import.save(
        update_fields=["status", "errors", "error_count", "finished_at", "format", "lines_processed", "currency"]
    )
    _delete_file(cost_import)
    return cost_import


def _delete_file(cost_import: CostImport) -> None:
    if cost_import.file:
        cost_import.file.delete(save=False)
        CostImport.objects.filter(pk=cost_import.pk).update(file="")


_COST_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS forecasting_cost_stage (
    date date, service text, account text, region text, amount numeric
) ON COMMIT DROP
"""
_COST_UPSERT = """
INSERT INTO forecasting_costrecord (organization_id, date, service, account, region, amount, currency, updated_at)
SELECT %s, date, service, account, region, amount, %s, now() FROM forecasting_cost_stage
ON CONFLICT (organization_id, date, service, account, region)
DO UPDATE SET amount = EXCLUDED.amount, currency = EXCLUDED.currency, updated_at = EXCLUDED.updated_at
"""
# The months an import touched, summed again from the daily rows (rows are only ever upserted, so a
# month's set of services can only grow and no roll-up row needs deleting).
_MONTH_ROLLUP = """
INSERT INTO forecasting_costmonth (organization_id, service, month, amount, updated_at)
SELECT organization_id, service, date_trunc('month', date)::date, SUM(amount), now()
FROM forecasting_costrecord
WHERE organization_id = %s AND date >= %s AND date <= %s
GROUP BY organization_id, service, date_trunc('month', date)::date
ON CONFLICT (organization_id, service, month) DO UPDATE SET amount = EXCLUDED.amount, updated_at = EXCLUDED.updated_at
"""
_USAGE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS forecasting_usage_stage (
    date date, resource_id text, service text, account text, region text,
    avg_cpu_percent numeric, avg_memory_percent numeric, cost numeric
) ON COMMIT DROP
"""
_USAGE_UPSERT = """
INSERT INTO forecasting_resourceutilization
    (organization_id, date, resource_id, service, account, region, avg_cpu_percent, avg_memory_percent, cost, updated_at)
SELECT %s, date, resource_id, service, account, region, avg_cpu_percent, avg_memory_percent, cost, now()
FROM forecasting_usage_stage
ON CONFLICT (organization_id, date, resource_id)
DO UPDATE SET service = EXCLUDED.service, account = EXCLUDED.account, region = EXCLUDED.region,
    avg_cpu_percent = EXCLUDED.avg_cpu_percent, avg_memory_percent = EXCLUDED.avg_memory_percent,
    cost = EXCLUDED.cost, updated_at = EXCLUDED.updated_at
"""


def _copy(stage_sql: str, table: str, columns: str, rows: Iterable[tuple]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(stage_sql)
        cursor.execute(f"TRUNCATE {table}")
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _copy_models(model: type, objects: Iterable[Any]) -> None:
    """Insert unsaved model instances with one COPY (their ids are not read back).

    A run's 264 forecast rows took ~100-280 ms through ``bulk_create``'s multi-row INSERT ... RETURNING on this
    loaded machine (5,000+ bound parameters); COPY streams them in one round trip.
    """
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN") as copy,
    ):
        for obj in objects:
            copy.write_row([f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields])


@transaction.atomic
def cost_data_write(*, cost_import: CostImport, parsed: importers.Parsed) -> CostImport:
    """Upsert a parsed file's rows in one transaction (COPY into a staging table, then one INSERT).

    Cost rows replace the amount stored under the same natural key, so importing the same file twice
    leaves the data as it was. Budgets are checked against the new month-to-date spend in the same
    transaction; forecasts and anomaly detection are requested after commit.
    """
    organization = cost_import.organization
    dataset = _dataset_for_update(organization)
    written = 0
    if parsed.format == importers.UTILIZATION:
        _copy(
            _USAGE_STAGE,
            "forecasting_usage_stage",
            "date, resource_id, service, account, region, avg_cpu_percent, avg_memory_percent, cost",
            (
                (day, resource, u.service, u.account, u.region, u.avg_cpu_percent, u.avg_memory_percent, u.cost)
                for (day, resource), u in parsed.utilization.items()
            ),
        )
        with connection.cursor() as cursor:
            cursor.execute(_USAGE_UPSERT, [organization.pk])
            written = cursor.rowcount
    else:
        if dataset.currency and parsed.currency != dataset.currency:
            raise ValidationError(
                f"This organization's costs are in {dataset.currency} and the file is in {parsed.currency}: "
                "forecasts cannot add up two currencies. Export the file in "
                f"{dataset.currency}."
            )
        _copy(
            _COST_STAGE,
            "forecasting_cost_stage",
            "date, service, account, region, amount",
            (
                (day, service, account, region, amount)
                for (day, service, account, region), amount in parsed.costs.items()
            ),
        )
        with connection.cursor() as cursor:
            cursor.execute(_COST_UPSERT, [organization.pk, parsed.currency])
            written = cursor.rowcount
            cursor.execute(
                _MONTH_ROLLUP,
                [organization.pk, periods.month_start(parsed.first_date), periods.month_end(parsed.last_date)],
            )
        dataset.currency = parsed.currency
        dataset.version += 1
        dataset.first_date = min(filter(None, [dataset.first_date, parsed.first_date]))
        dataset.last_date = max(filter(None, [dataset.last_date, parsed.last_date]))
        dataset.save(update_fields=["currency", "version", "first_date", "last_date", "updated_at"])
    cost_import.status = CostImport.Status.SUCCEEDED
    cost_import.format = parsed.format
    cost_import.currency = parsed.currency or dataset.currency
    cost_import.lines_processed = parsed.lines
    cost_import.bytes_processed = cost_import.size_bytes
    cost_import.rows_written = written
    cost_import.first_date, cost_import.last_date = parsed.first_date, parsed.last_date
    cost_import.errors, cost_import.error_count = [], 0
    cost_import.finished_at = timezone.now()
    cost_import.save(
        update_fields=[
            "status",
            "format",
            "currency",
            "lines_processed",
            "bytes_processed",
            "rows_written",
            "first_date",
            "last_date",
            "errors",
            "error_count",
            "finished_at",
        ]
    )
    if parsed.format != importers.UTILIZATION:
        budgets_evaluate(organization=organization, bases=(BudgetAlert.Basis.ACTUAL,))
        since, until = parsed.first_date.isoformat(), parsed.last_date.isoformat()
        transaction.on_commit(lambda: _enqueue("costs_changed_task", organization.pk, since, until))
    return cost_import


def costs_changed(*, organization_id: int, since: date | None = None, until: date | None = None) -> None:
    """After an import: recompute the forecasts (in their own task) and look for anomalies in the new days."""
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return
    forecast_run_request(organization=organization, reason="import")
    anomalies_detect(organization=organization, since=since, until=until)


# --- Forecast runs ----------------------------------------------------------------------------


@transaction.atomic
def forecast_run_request(*, organization: Organization, reason: str) -> ForecastRun | None:
    """A pending run for the organization's forecasts (or the one already waiting); None without data.

    The dataset row lock serialises concurrent requests, and the partial unique constraint allows one
    active run per organization: a page, an import and the nightly job asking at once share a run.
    A run left pending or running past ``FORECAST_RUN_STALE_SECONDS`` (worker killed, broker down) is
    marked failed and replaced.
    """
    dataset = CostDataset.objects.for_organization(organization).select_for_update().first()
    if dataset is None or dataset.version == 0:
        return None
    active = ForecastRun.objects.for_organization(organization).filter(status__in=ForecastRun.ACTIVE).first()
    if active is not None:
        if active.requested_at >= timezone.now() - conf.run_stale_after():
            return active
        active.status = ForecastRun.Status.FAILED
        active.error = "No worker finished this run in time; a new one was requested."
        active.save(update_fields=["status", "error"])
    run = ForecastRun.objects.create(
        organization=organization, status=ForecastRun.Status.PENDING, reason=reason[:20], data_version=dataset.version
    )
    transaction.on_commit(lambda: _enqueue("forecast_run_task", run.pk))
    return run


def forecast_page_refreshed(
    *, organization: Organization, service: str, horizon: int, level: int, reason: str
) -> selectors.ForecastPage:
    """The forecast page of the API (REST and GraphQL); a stale forecast asks a worker for a new run.

    Unless a run is already active, or this very data already failed (asking again would fail
    again), a forecast older than the data gets a new run, shown as pending.
    """

    def load() -> selectors.ForecastPage:
        return selectors.forecast_page(organization=organization, service=service, horizon=horizon, level=level)

    page = load()
    state = page.state
    if state.has_data and not state.current and (state.active is None or state.active_is_stale):
        failed_here = state.failed is not None and state.failed.data_version >= state.dataset.version
        if not failed_here or state.active_is_stale:
            run = forecast_run_request(organization=organization, reason=reason)
            if run is None:
                return load()
            page.state = replace(state, active=run, failed=None)
    return page


@dataclass(frozen=True)
class _SeriesResult:
    service: str
    result: engine.Forecast | None
    note: str = ""


def _forecast_one(service: str, series: list[tuple[date, Decimal]]) -> _SeriesResult:
    try:
        result = engine.forecast(series, horizon=conf.HORIZON, levels=conf.LEVELS, missing="zero")
    except engine.NotEnoughData as exc:
        return _SeriesResult(service, None, f"{selectors.scope_label(service)}: {exc}")
    except ValueError as exc:
        return _SeriesResult(service, None, f"{selectors.scope_label(service)}: not forecast ({exc})")
    return _SeriesResult(service, result)


def forecast_series(history: selectors.History) -> list[_SeriesResult]:
    """The total and every service forecast from ``history``, a few series at a time."""
    jobs = [(name, history.engine_series(name)) for name in [selectors.TOTAL, *history.services]]
    jobs = [(name, series) for name, series in jobs if series]
    workers = min(conf.parallel_series(), max(1, len(jobs)))
    if workers == 1:
        return [_forecast_one(name, series) for name, series in jobs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="forecast-series") as pool:
        return list(pool.map(lambda job: _forecast_one(*job), jobs))


def _claim_run(run_id: int) -> ForecastRun | None:
    with transaction.atomic():
        run = (
            ForecastRun.objects.select_for_update(skip_locked=True)
            .select_related("organization")
            .filter(pk=run_id, status=ForecastRun.Status.PENDING)
            .first()
        )
        if run is None:
            return None
        run.status = ForecastRun.Status.RUNNING
        run.started_at = timezone.now()
        run.save(update_fields=["status", "started_at"])
        return run


def forecast_run_execute(*, run_id: int) -> ForecastRun | None:
    """Compute and store one pending run (in a worker). A missing or already-claimed run is a no-op."""
    run = _claim_run(run_id)
    if run is None:
        return None
    organization = run.organization
    started = time.perf_counter()
    try:
        dataset = selectors.dataset_get(organization=organization)
        version = dataset.version if dataset else 0  # read before the data: a later import makes us stale, not wrong
        history = selectors.monthly_history(organization=organization, dataset=dataset)
        results = forecast_series(history)
        return forecast_run_store(
            run=run, version=version, history=history, results=results, duration=time.perf_counter() - started
        )
    except Exception as exc:
        logger.exception("forecast run failed", extra={"run": run.pk})
        ForecastRun.objects.filter(pk=run.pk).update(
            status=ForecastRun.Status.FAILED, error=f"{exc.__class__.__name__}: {exc}"[:2000]
        )
        run.refresh_from_db()
        return run


def _decimal(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


@transaction.atomic
def forecast_run_store(
    *, run: ForecastRun, version: int, history: selectors.History, results: list[_SeriesResult], duration: float
) -> ForecastRun:
    organization = run.organization
    now = timezone.now()
    expires = now + conf.forecast_ttl()
    rows = []
    for item in results:
        result = item.result
        if result is None:
            continue
        for point in result.points:
            bounds = {
                f"{side}_{level}": _decimal(point.bounds[level][i])
                for level in conf.LEVELS
                for i, side in enumerate(("lower", "upper"))
            }
            rows.append(
                CostForecast(
                    organization=organization,
                    run=run,
                    service=item.service,
                    month=point.month,
                    mean=_decimal(point.mean),
                    **bounds,
                    model=result.model[:120],
                    backtest_mape=result.backtest_mape,
                    **{f"coverage_{level}": result.coverage.get(level) for level in conf.LEVELS},
                    trend=result.trend.direction,
                    trend_slope=result.trend.slope_per_month,
                    history_months=result.history_months,
                    currency=history.currency,
                    generated_at=now,
                    expires_at=expires,
                )
            )
    _copy_models(CostForecast, rows)
    run.status = ForecastRun.Status.READY
    run.generated_at, run.expires_at = now, expires
    run.data_version = version
    run.duration_ms = int(duration * 1000)
    run.series_count = sum(1 for r in results if r.result is not None)
    run.notes = [r.note for r in results if r.note][:50]
    run.error = ""
    run.save(
        update_fields=[
            "status",
            "generated_at",
            "expires_at",
            "data_version",
            "duration_ms",
            "series_count",
            "notes",
            "error",
        ]
    )
    # The newest ready run is the cache: older ones (and failures before it) go.
    ForecastRun.objects.for_organization(organization).exclude(pk=run.pk).filter(
        status__in=[ForecastRun.Status.READY, ForecastRun.Status.FAILED], requested_at__lte=run.requested_at
    ).delete()
    budgets_evaluate(organization=organization, bases=(BudgetAlert.Basis.FORECAST,), run=run)
    transaction.on_commit(lambda: _rerun_if_stale(organization, version))
    return run


def _rerun_if_stale(organization: Organization, version: int) -> None:
    """Data imported while the run was computing: compute again from the newer data."""
    dataset = selectors.dataset_get(organization=organization)
    if dataset is not None and dataset.version > version:
        forecast_run_request(organization=organization, reason="import")


def forecasts_refresh_all() -> int:
    """The nightly job: one run per organization that has cost data (each executed by its own task).

    Staff-side sweep across organizations, like the SLA sweeper: the one place that is not scoped.
    """
    count = 0
    for organization in Organization.objects.filter(
        pk__in=CostDataset.objects.filter(version__gt=0).values("organization_id")
    ).order_by("pk"):
        if forecast_run_request(organization=organization, reason="nightly") is not None:
            count += 1
    return count


def forecasts_purge_expired(*, now: Any = None) -> int:
    """Forget forecasts past their time to live (90 days) and failed runs older than a week.

    Returns how many runs were deleted (their forecast rows go with them).
    """
    now = now or timezone.now()
    expired = Q(status=ForecastRun.Status.READY, expires_at__lt=now) | Q(
        status=ForecastRun.Status.FAILED, requested_at__lt=now - timedelta(days=7)
    )
    _, by_model = ForecastRun.objects.filter(expired).delete()
    return by_model.get(ForecastRun._meta.label, 0)


# --- Anomalies --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Finding:
    service: str
    granularity: str
    day: date
    band: engine.ExpectedBand


def _spike(band: engine.ExpectedBand) -> bool:
    if band.actual is None or band.expected <= 0 or band.actual <= band.upper:
        return False
    impact = band.actual - band.expected
    return impact >= float(conf.anomaly_min_amount()) and impact / band.expected * 100 >= conf.anomaly_min_percent()


def _band(series: Any, *, at: date, level: int, freq: str) -> engine.ExpectedBand | None:
    try:
        return engine.expected_band(series, at=at, level=level, freq=freq, missing="zero")
    except ValueError:  # NotEnoughData included: too little history before this day or month
        return None


def _bands(series: Any, *, at: list[date], level: int, freq: str) -> list[engine.ExpectedBand | None]:
    if not at:
        return []
    try:
        return engine.expected_bands(series, at=at, level=level, freq=freq, missing="zero")
    except ValueError:  # a series the engine cannot use at all
        return []


def anomalies_detect(
    *, organization: Organization, since: date | None = None, until: date | None = None
) -> list[CostAnomaly]:
    """Judge recent days and months of every service against its expected band; record new spikes.

    Days: the imported days (``since``..``until``) within ``FORECAST_ANOMALY_DAILY_LOOKBACK_DAYS`` of the
    newest data, each against the engine's daily band from the days before it. Months: the last
    ``FORECAST_ANOMALY_MONTHLY_LOOKBACK_MONTHS`` complete months, against the monthly band. A spike is
    above the band's upper bound by at least ``FORECAST_ANOMALY_MIN_PERCENT`` and ``..._MIN_AMOUNT``.
    Runs in a worker (each band is a model fit); recording is idempotent (one row and event per spike).
    """
    dataset = selectors.dataset_get(organization=organization)
    if dataset is None or dataset.last_date is None:
        return []
    level = conf.anomaly_level()
    last = dataset.last_date
    first_day = max(last - timedelta(days=conf.anomaly_daily_lookback_days() - 1), since or dataset.first_date)
    last_day = min(last, until or last)
    findings: list[_Finding] = []
    if first_day <= last_day:
        daily = selectors.daily_costs(
            organization=organization, since=first_day - timedelta(days=engine.DAILY_MAX_DAYS + 1), until=last_day
        )
        for service in sorted(daily):
            values = daily[service]
            days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
            # One ETS pass per service judges all its new days (engine.expected_bands).
            bands = _bands(values, at=[d for d in days if d in values], level=level, freq="day")
            findings.extend(
                _Finding(service, CostAnomaly.Granularity.DAILY, band.at, band)
                for band in bands
                if band is not None and _spike(band)
            )
    history = selectors.monthly_history(organization=organization, dataset=dataset)
    months = history.months[-conf.anomaly_monthly_lookback_months() :] if conf.anomaly_monthly_lookback_months() else []
    if since is not None:
        months = [m for m in months if periods.month_end(m) >= since]
    jobs = [(service, month) for service in history.services for month in months]

    def judge(job: tuple[str, date]) -> _Finding | None:
        service, month = job
        band = _band(history.engine_series(service), at=month, level=level, freq="month")
        return _Finding(service, CostAnomaly.Granularity.MONTHLY, month, band) if band and _spike(band) else None

    if jobs:
        with ThreadPoolExecutor(max_workers=conf.parallel_series(), thread_name_prefix="forecast-anomaly") as pool:
            findings.extend(f for f in pool.map(judge, jobs) if f is not None)
    return anomalies_record(organization=organization, currency=dataset.currency, findings=findings)


@transaction.atomic
def anomalies_record(*, organization: Organization, currency: str, findings: list[_Finding]) -> list[CostAnomaly]:
    """Insert the findings not yet recorded and publish ``forecast.anomaly_detected`` once for each."""
    if not findings:
        return []
    dataset = _dataset_for_update(organization)  # one recorder per organization at a time
    existing = set(
        CostAnomaly.objects.for_organization(organization)
        .filter(service__in={f.service for f in findings}, date__in={f.day for f in findings})
        .values_list("service", "granularity", "date")
    )
    created = []
    for finding in findings:
        if (finding.service, finding.granularity, finding.day) in existing:
            continue
        band = finding.band
        actual, expected = Decimal(str(band.actual)), Decimal(str(band.expected))
        impact = actual - expected
        percent = round(float(impact / expected * 100), 1)
        try:
            with transaction.atomic():
                anomaly = CostAnomaly.objects.create(
                    organization=organization,
                    service=finding.service,
                    granularity=finding.granularity,
                    date=finding.day,
                    actual=actual.quantize(importers.SIX_PLACES),
                    expected=expected.quantize(importers.SIX_PLACES),
                    lower=Decimal(str(band.lower)).quantize(importers.SIX_PLACES),
                    upper=Decimal(str(band.upper)).quantize(importers.SIX_PLACES),
                    level=band.level,
                    impact=impact.quantize(importers.SIX_PLACES),
                    impact_percent=percent,
                    currency=currency,
                    model=band.model[:160],
                )
        except IntegrityError:
            continue  # recorded by a concurrent detector
        events.publish(
            events.FORECAST_ANOMALY_DETECTED,
            organization=organization,
            data={
                "anomaly": str(anomaly.public_id),
                "service": anomaly.service,
                "granularity": anomaly.granularity,
                "date": anomaly.date.isoformat(),
                "actual": _money(actual),
                "expected": _money(expected),
                "impact": _money(impact),
                "impact_percent": percent,
                "currency": currency,
            },
        )
        created.append(anomaly)
    if created:
        # Pages cache their results region under the dataset's stamp: new anomalies show at once.
        dataset.save(update_fields=["updated_at"])
    return created


# --- Budgets ----------------------------------------------------------------------------------


def _clean_amount(amount: Any) -> Decimal:
    try:
        value = Decimal(str(amount)).quantize(TWO_PLACES)
    except (InvalidOperation, ValueError):
        raise ValidationError({"amount": "Enter the monthly amount as a number."}) from None
    if not value.is_finite() or value <= 0:
        raise ValidationError({"amount": "The monthly amount must be more than zero."})
    if value >= MAX_BUDGET:
        raise ValidationError({"amount": "The monthly amount is implausibly large."})
    return value


def _clean_thresholds(thresholds: Iterable[Any] | None) -> list[int]:
    if thresholds is None:
        return sorted(conf.default_budget_thresholds())
    values = []
    for raw in thresholds:
        if isinstance(raw, bool):
            raise ValidationError({"thresholds": "Thresholds are whole percentages, e.g. 80, 100."})
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ValidationError({"thresholds": f"{raw!r} is not a whole percentage."}) from None
        if not 1 <= value <= 1000:
            raise ValidationError({"thresholds": "Each threshold must be between 1 and 1000 %."})
        values.append(value)
    values = sorted(set(values))
    if not values:
        raise ValidationError({"thresholds": "Give at least one threshold, e.g. 80, 100."})
    if len(values) > MAX_THRESHOLDS:
        raise ValidationError({"thresholds": f"At most {MAX_THRESHOLDS} thresholds."})
    return values


@transaction.atomic
def budget_create(
    *,
    organization: Organization,
    actor: Any,
    amount: Any,
    service: str = "",
    thresholds: Iterable[Any] | None = None,
    today: date | None = None,
) -> Budget:
    service = (service or "").strip()
    amount = _clean_amount(amount)
    thresholds = _clean_thresholds(thresholds)
    dataset = selectors.dataset_get(organization=organization)
    if dataset is None or not dataset.currency:
        raise ValidationError({"amount": "Import cost data first: budgets use the currency of your costs."})
    if service and service not in selectors.service_names(organization=organization):
        raise ValidationError({"service": f"There are no costs for a service named {service!r}."})
    if Budget.objects.for_organization(organization).filter(service=service).exists():
        raise ValidationError({"service": f"{service or 'Total spend'} already has a budget; change that one."})
    try:
        with transaction.atomic():
            budget = Budget.objects.create(
                organization=organization,
                service=service,
                amount=amount,
                currency=dataset.currency,
                thresholds=thresholds,
                created_by=actor if getattr(actor, "is_authenticated", False) else None,
            )
    except IntegrityError:
        raise ValidationError({"service": f"{service or 'Total spend'} already has a budget."}) from None
    budgets_evaluate(organization=organization, budgets=[budget], today=today)
    return budget


@transaction.atomic
def budget_update(
    *,
    budget: Budget,
    actor: Any,
    amount: Any = None,
    thresholds: Iterable[Any] | None = None,
    today: date | None = None,
) -> Budget:
    fields = ["updated_at"]
    if amount is not None:
        budget.amount = _clean_amount(amount)
        fields.append("amount")
    if thresholds is not None:
        budget.thresholds = _clean_thresholds(thresholds)
        fields.append("thresholds")
    budget.save(update_fields=fields)
    budgets_evaluate(organization=budget.organization, budgets=[budget], today=today)
    return budget


@transaction.atomic
def budget_delete(*, budget: Budget, actor: Any) -> None:
    budget.delete()


@transaction.atomic
def budgets_evaluate(
    *,
    organization: Organization,
    bases: Iterable[str] = (BudgetAlert.Basis.ACTUAL, BudgetAlert.Basis.FORECAST),
    budgets: list[Budget] | None = None,
    run: ForecastRun | None = None,
    today: date | None = None,
) -> list[BudgetAlert]:
    """Record and publish every threshold newly reached this month (once per budget x threshold x basis).

    Actual: month-to-date spend. Forecast: the current month's forecast, never below what is already
    spent. A budget raised above the spend later does not un-send alerts; the next month starts afresh.
    """
    budgets = budgets if budgets is not None else list(Budget.objects.for_organization(organization))
    if not budgets:
        return []
    bases = set(bases)
    month = periods.month_start(today or timezone.now().date())
    actuals = selectors.month_to_date(organization=organization, month=month)
    forecasts: dict[str, Decimal] = {}
    if BudgetAlert.Basis.FORECAST in bases:
        if run is None:
            state = selectors.forecast_state(organization=organization)
            run = state.ready if state.current else None
        forecasts = selectors.month_end_forecasts(organization=organization, run=run, month=month)
    existing = set(
        BudgetAlert.objects.for_organization(organization)
        .filter(budget__in=budgets, month=month)
        .values_list("budget_id", "threshold", "basis")
    )
    created = []
    for budget in budgets:
        actual = actuals.get(budget.service, Decimal(0))
        values = {}
        if BudgetAlert.Basis.ACTUAL in bases:
            values[BudgetAlert.Basis.ACTUAL] = actual
        if budget.service in forecasts:
            values[BudgetAlert.Basis.FORECAST] = max(forecasts[budget.service], actual)
        for basis, value in values.items():
            for threshold in sorted(budget.thresholds):
                if value * 100 < budget.amount * threshold or (budget.pk, threshold, str(basis)) in existing:
                    continue
                try:
                    with transaction.atomic():
                        alert = BudgetAlert.objects.create(
                            organization=organization,
                            budget=budget,
                            threshold=threshold,
                            basis=basis,
                            month=month,
                            amount=value.quantize(TWO_PLACES),
                            budget_amount=budget.amount,
                        )
                except IntegrityError:
                    continue
                data = {
                    "budget": str(budget.public_id),
                    "threshold": threshold,
                    "basis": str(basis),
                    "amount": _money(value),
                    "budget_amount": _money(budget.amount),
                    "currency": budget.currency,
                    "month": periods.label(month),
                }
                if budget.service:
                    data["service"] = budget.service
                events.publish(events.BUDGET_THRESHOLD_REACHED, organization=organization, data=data)
                created.append(alert)
    return created
