"""Reads of cost data, forecasts, anomalies and budgets, each scoped to one organization.

Aggregates run in SQL (one ``GROUP BY`` per question), so a page costs a fixed handful of queries
whatever the number of services, days or months.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Avg, Count, Max, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from forecasting import conf, periods
from forecasting.models import (
    Budget,
    BudgetAlert,
    CostAnomaly,
    CostDataset,
    CostForecast,
    CostImport,
    CostMonth,
    CostRecord,
    ForecastRun,
    ResourceUtilization,
)
from portal.models import Organization
from portal.tenancy import scoped_get_or_404

TOTAL = ""  # the service key of an organization's total


def scope_label(service: str) -> str:
    return service or "Total"


# --- Cost data --------------------------------------------------------------------------------


def dataset_get(*, organization: Organization) -> CostDataset | None:
    return CostDataset.objects.for_organization(organization).first()


@dataclass(frozen=True)
class History:
    """Monthly spend: complete months per series ("" is the total), and the month in progress."""

    currency: str
    months: list[date]  # complete months, ascending
    series: dict[str, dict[date, Decimal]]  # complete months only
    partial_month: date | None = None
    partial: dict[str, Decimal] = field(default_factory=dict)
    services: list[str] = field(default_factory=list)  # biggest spend in the last complete month first

    @property
    def last_month(self) -> date | None:
        return self.months[-1] if self.months else None

    def amount(self, service: str, month: date | None) -> Decimal | None:
        if month is None:
            return None
        return self.series.get(service, {}).get(month, Decimal(0))

    def engine_series(self, service: str) -> list[tuple[date, Decimal]]:
        """From the series' first month with spend to the last complete month, gaps as zero spend.

        A service that stopped still runs to the last month (with zeros), so its forecast starts
        when everybody else's does.
        """
        values = self.series.get(service) or {}
        if not values or not self.months:
            return []
        first = min(values)
        return [(m, values.get(m, Decimal(0))) for m in self.months if m >= first]


def monthly_history(*, organization: Organization, dataset: CostDataset | None) -> History:
    if dataset is None or dataset.last_date is None:
        return History(currency=dataset.currency if dataset else "", months=[], series={})
    span = periods.complete_months(dataset.first_date, dataset.last_date)
    rows = CostMonth.objects.for_organization(organization).values_list("service", "month", "amount")
    series: dict[str, dict[date, Decimal]] = defaultdict(dict)
    partial: dict[str, Decimal] = defaultdict(Decimal)
    partial_month = periods.add_months(span[1], 1) if span else periods.month_start(dataset.last_date)
    for service, month, amount in rows:
        if span and span[0] <= month <= span[1]:
            series[service][month] = amount
            series[TOTAL][month] = series[TOTAL].get(month, Decimal(0)) + amount
        elif month == partial_month:
            partial[service] += amount
            partial[TOTAL] += amount
    months = periods.months_between(*span) if span else []
    last = months[-1] if months else None
    names = {s for s in series if s} | {s for s in partial if s}
    services = sorted(names, key=lambda s: (-(series.get(s, {}).get(last, Decimal(0)) if last else 0), s))
    return History(
        currency=dataset.currency,
        months=months,
        series=dict(series),
        partial_month=partial_month if partial else None,
        partial=dict(partial),
        services=services,
    )


def service_names(*, organization: Organization) -> list[str]:
    return list(
        CostMonth.objects.for_organization(organization)
        .order_by("service")
        .values_list("service", flat=True)
        .distinct()
    )


def daily_costs(*, organization: Organization, since: date, until: date) -> dict[str, dict[date, Decimal]]:
    """Spend per service per day (accounts and regions summed)."""
    rows = (
        CostRecord.objects.for_organization(organization)
        .filter(date__gte=since, date__lte=until)
        .values("service", "date")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    out: dict[str, dict[date, Decimal]] = defaultdict(dict)
    for row in rows:
        out[row["service"]][row["date"]] = row["total"]
    return dict(out)


def month_to_date(*, organization: Organization, month: date) -> dict[str, Decimal]:
    """Spend per service in ``month`` so far, with the total under ""."""
    rows = (
        CostRecord.objects.for_organization(organization)
        .filter(date__gte=month, date__lte=periods.month_end(month))
        .values("service")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    out = {row["service"]: row["total"] for row in rows}
    out[TOTAL] = sum(out.values(), Decimal(0))
    return out


def cost_record_list(
    *, organization: Organization, service: str = "", since: date | None = None, until: date | None = None
) -> QuerySet[CostRecord]:
    queryset = CostRecord.objects.for_organization(organization)
    if service:
        queryset = queryset.filter(service=service)
    if since:
        queryset = queryset.filter(date__gte=since)
    if until:
        queryset = queryset.filter(date__lte=until)
    return queryset.order_by("-date", "service", "account", "region", "id")


# --- Imports ----------------------------------------------------------------------------------


def cost_import_list(*, organization: Organization) -> QuerySet[CostImport]:
    return CostImport.objects.for_organization(organization).select_related("created_by").order_by("-created_at", "-id")


def cost_import_get(*, organization: Organization, public_id: Any) -> CostImport:
    return scoped_get_or_404(
        CostImport.objects.for_organization(organization).select_related("created_by"),
        organization=organization,
        public_id=public_id,
    )


# --- Forecasts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForecastState:
    dataset: CostDataset | None
    ready: ForecastRun | None  # the newest ready run that has not expired
    active: ForecastRun | None  # pending or running
    failed: ForecastRun | None  # the newest failed run, if newer than the ready one

    @property
    def has_data(self) -> bool:
        return self.dataset is not None and self.dataset.version > 0

    @property
    def current(self) -> bool:
        """The cached forecast was computed from the data as it is now."""
        return bool(self.ready and self.dataset and self.ready.data_version >= self.dataset.version)

    @property
    def active_is_stale(self) -> bool:
        return bool(self.active and self.active.requested_at < timezone.now() - conf.run_stale_after())


def forecast_state(*, organization: Organization, dataset: CostDataset | None = None, now=None) -> ForecastState:
    dataset = dataset if dataset is not None else dataset_get(organization=organization)
    now = now or timezone.now()
    runs = list(
        ForecastRun.objects.for_organization(organization)
        .filter(
            Q(status__in=ForecastRun.ACTIVE)
            | Q(status=ForecastRun.Status.READY, expires_at__gt=now)
            | Q(status=ForecastRun.Status.FAILED)
        )
        .order_by("-requested_at", "-id")[:10]
    )
    ready = next((r for r in runs if r.status == ForecastRun.Status.READY), None)
    active = next((r for r in runs if r.status in ForecastRun.ACTIVE), None)
    failed = next((r for r in runs if r.status == ForecastRun.Status.FAILED), None)
    if failed and ready and failed.requested_at < ready.requested_at:
        failed = None
    return ForecastState(dataset=dataset, ready=ready, active=active, failed=failed)


def forecast_points(
    *, organization: Organization, run: ForecastRun, horizon: int, service: str | None = None
) -> list[CostForecast]:
    """The run's forecast months within ``horizon``: one series, or every series (service None)."""
    queryset = CostForecast.objects.for_organization(organization).filter(run=run)
    if service is not None:
        queryset = queryset.filter(service=service)
    points = list(queryset.order_by("service", "month"))
    first = min((p.month for p in points), default=None)
    if first is None:
        return []
    last = periods.add_months(first, horizon - 1)
    return [p for p in points if p.month <= last]


def run_get(*, organization: Organization, public_id: Any) -> ForecastRun:
    return scoped_get_or_404(
        ForecastRun.objects.for_organization(organization), organization=organization, public_id=public_id
    )


@dataclass(frozen=True)
class SeriesSummary:
    service: str
    model: str
    backtest_mape: float | None
    coverage: dict[int, float | None]
    trend: str
    trend_slope: float
    history_months: int


@dataclass
class BreakdownRow:
    service: str
    last_month: Decimal
    previous_month: Decimal | None
    mom_change: Decimal | None
    mom_percent: float | None
    trend: str
    next_month: Decimal | None
    horizon_total: Decimal | None
    share_percent: float | None
    anomaly_count: int = 0


@dataclass
class ForecastPage:
    state: ForecastState
    history: History
    service: str
    horizon: int
    level: int
    points: list[CostForecast] = field(default_factory=list)
    points_by_service: dict[str, list[CostForecast]] = field(default_factory=dict)
    next_three: dict[str, Decimal] = field(default_factory=dict)  # mean of the next three forecast months
    summary: SeriesSummary | None = None
    breakdown: list[BreakdownRow] = field(default_factory=list)
    total_row: BreakdownRow | None = None
    anomalies: list[CostAnomaly] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def currency(self) -> str:
        return self.history.currency

    @property
    def ready(self) -> bool:
        return self.state.current and self.state.ready is not None

    @property
    def scope(self) -> str:
        return scope_label(self.service)

    @property
    def has_forecast(self) -> bool:
        return bool(self.points)


def _summary(point: CostForecast) -> SeriesSummary:
    return SeriesSummary(
        service=point.service,
        model=point.model,
        backtest_mape=point.backtest_mape,
        coverage={level: point.coverage(level) for level in conf.LEVELS},
        trend=point.trend,
        trend_slope=point.trend_slope,
        history_months=point.history_months,
    )


def _breakdown_row(history: History, service: str, ahead: dict[str, Any] | None, total_last: Decimal) -> BreakdownRow:
    last = history.amount(service, history.last_month) or Decimal(0)
    previous_month = periods.add_months(history.last_month, -1) if history.last_month else None
    previous = history.amount(service, previous_month) if previous_month and previous_month in history.months else None
    change = last - previous if previous is not None else None
    percent = float(change / abs(previous) * 100) if previous else None
    return BreakdownRow(
        service=service,
        last_month=last,
        previous_month=previous,
        mom_change=change,
        mom_percent=percent,
        trend=ahead["trend"] if ahead else "",
        next_month=ahead["next_month"] if ahead else None,
        horizon_total=ahead["horizon_total"] if ahead else None,
        share_percent=float(last / total_last * 100) if total_last else None,
    )


def _ahead(*, organization: Organization, run: ForecastRun, first: date, horizon: int) -> dict[str, dict[str, Any]]:
    """Per series, in one aggregate: next month, the next three, the horizon's total and the trend."""
    rows = (
        CostForecast.objects.for_organization(organization)
        .filter(run=run, month__gte=first, month__lte=periods.add_months(first, horizon - 1))
        .values("service")
        .annotate(
            horizon_total=Sum("mean"),
            next_month=Sum("mean", filter=Q(month=first)),
            next_three=Sum("mean", filter=Q(month__lte=periods.add_months(first, 2))),
            trend=Max("trend"),
        )
        .order_by()
    )
    return {row["service"]: row for row in rows}


def results_cache_key(*, state: ForecastState, horizon: int, level: int, service: str) -> str | None:
    """The page's results region is a pure function of these (None: nothing cacheable yet)."""
    if not state.current or state.dataset is None:
        return None
    dataset = state.dataset
    digest = hashlib.sha256(service.encode()).hexdigest()[:16]
    stamp = dataset.updated_at.timestamp()
    return (
        f"forecasting:results:v1:{dataset.organization_id}:{state.ready.public_id}:{dataset.version}:{stamp}:"
        f"{horizon}:{level}:{digest}"
    )


def forecast_page(
    *,
    organization: Organization,
    service: str,
    horizon: int,
    level: int,
    all_points: bool = False,
    state: ForecastState | None = None,
) -> ForecastPage:
    """Everything the forecast page shows for one scope, horizon and level, in a fixed number of queries.

    ``all_points``: also every series' forecast months (``points_by_service``), for the exports.
    """
    if state is None:
        state = forecast_state(organization=organization, dataset=dataset_get(organization=organization))
    history = monthly_history(organization=organization, dataset=state.dataset)
    if service and service not in history.services:
        raise Http404("No costs for this service.")
    page = ForecastPage(state=state, history=history, service=service, horizon=horizon, level=level)
    anomalies = CostAnomaly.objects.for_organization(organization).order_by("-date", "service")
    if service:
        anomalies = anomalies.filter(service=service)
    page.anomalies = list(anomalies[:50])
    if not state.current or history.last_month is None:
        return page
    run = state.ready
    if all_points:
        by_service: dict[str, list[CostForecast]] = defaultdict(list)
        for point in forecast_points(organization=organization, run=run, horizon=horizon):
            by_service[point.service].append(point)
        page.points_by_service = dict(by_service)
        page.points = by_service.get(service, [])
    else:
        page.points = list(
            CostForecast.objects.for_organization(organization)
            .filter(run=run, service=service)
            .order_by("month")[:horizon]
        )
        page.points_by_service = {service: page.points}
    if page.points:
        page.summary = _summary(page.points[0])
    page.notes = list(run.notes or [])
    ahead = _ahead(organization=organization, run=run, first=periods.add_months(history.last_month, 1), horizon=horizon)
    page.next_three = {name: row["next_three"] / 3 for name, row in ahead.items() if row["next_three"] is not None}
    total_last = history.amount(TOTAL, history.last_month) or Decimal(0)
    counts: dict[str, int] = defaultdict(int)
    for anomaly in page.anomalies:
        counts[anomaly.service] += 1
    page.breakdown = [_breakdown_row(history, name, ahead.get(name), total_last) for name in history.services]
    for row in page.breakdown:
        row.anomaly_count = counts.get(row.service, 0)
    page.total_row = _breakdown_row(history, TOTAL, ahead.get(TOTAL), total_last)
    return page


# --- Anomalies --------------------------------------------------------------------------------


def anomaly_list(*, organization: Organization, service: str = "", granularity: str = "") -> QuerySet[CostAnomaly]:
    queryset = CostAnomaly.objects.for_organization(organization)
    if service:
        queryset = queryset.filter(service=service)
    if granularity:
        queryset = queryset.filter(granularity=granularity)
    return queryset.order_by("-date", "service", "id")


# --- Budgets ----------------------------------------------------------------------------------


def budget_list(*, organization: Organization) -> QuerySet[Budget]:
    return Budget.objects.for_organization(organization).order_by("service", "id")


def budget_get(*, organization: Organization, public_id: Any) -> Budget:
    return scoped_get_or_404(
        Budget.objects.for_organization(organization), organization=organization, public_id=public_id
    )


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    month: date
    actual: Decimal
    actual_percent: float
    forecast: Decimal | None  # month-end: the forecast of the month, never below what is already spent
    forecast_percent: float | None
    alerts: list[BudgetAlert]

    @property
    def state(self) -> str:
        worst = max(self.actual_percent, self.forecast_percent or 0)
        if worst >= 100:
            return "over"
        if self.budget.thresholds and worst >= min(self.budget.thresholds):
            return "warning"
        return "ok"

    @property
    def state_label(self) -> str:
        return {"over": "Over budget", "warning": "Approaching the budget", "ok": "Within budget"}[self.state]

    @property
    def meter_value(self) -> Decimal:
        return min(self.actual, self.budget.amount * 2)


def month_end_forecasts(*, organization: Organization, run: ForecastRun | None, month: date) -> dict[str, Decimal]:
    if run is None:
        return {}
    rows = (
        CostForecast.objects.for_organization(organization).filter(run=run, month=month).values_list("service", "mean")
    )
    return dict(rows)


def budget_statuses(
    *, organization: Organization, today: date | None = None, state: ForecastState | None = None
) -> list[BudgetStatus]:
    today = today or timezone.now().date()
    month = periods.month_start(today)
    budgets = list(budget_list(organization=organization))
    if not budgets:
        return []
    state = state or forecast_state(organization=organization)
    actuals = month_to_date(organization=organization, month=month)
    forecasts = month_end_forecasts(organization=organization, run=state.ready if state.current else None, month=month)
    alerts: dict[int, list[BudgetAlert]] = defaultdict(list)
    for alert in BudgetAlert.objects.for_organization(organization).filter(month=month).order_by("threshold", "basis"):
        alerts[alert.budget_id].append(alert)
    out = []
    for budget in budgets:
        actual = actuals.get(budget.service, Decimal(0))
        forecast = forecasts.get(budget.service)
        if forecast is not None:
            forecast = max(forecast, actual)
        out.append(
            BudgetStatus(
                budget=budget,
                month=month,
                actual=actual,
                actual_percent=float(actual / budget.amount * 100),
                forecast=forecast,
                forecast_percent=float(forecast / budget.amount * 100) if forecast is not None else None,
                alerts=alerts.get(budget.pk, []),
            )
        )
    return out


# --- Utilisation and recommendations ----------------------------------------------------------


def utilization_list(
    *, organization: Organization, service: str = "", resource_id: str = ""
) -> QuerySet[ResourceUtilization]:
    queryset = ResourceUtilization.objects.for_organization(organization)
    if service:
        queryset = queryset.filter(service=service)
    if resource_id:
        queryset = queryset.filter(resource_id=resource_id)
    return queryset.order_by("-date", "resource_id", "id")


@dataclass(frozen=True)
class ResourceUsage:
    resource_id: str
    service: str
    days: int
    avg_cpu: float
    avg_memory: float | None
    cost: Decimal | None  # over the window


def resource_usage(*, organization: Organization, days: int = 14) -> list[ResourceUsage]:
    """Each resource's averages over the ``days`` before the newest utilisation row."""
    base = ResourceUtilization.objects.for_organization(organization)
    newest = base.aggregate(newest=Max("date"))["newest"]
    if newest is None:
        return []
    rows = (
        base.filter(date__gt=newest - timedelta(days=days))
        .values("resource_id")
        .annotate(
            service=Max("service"),
            days=Count("id"),
            avg_cpu=Avg("avg_cpu_percent"),
            avg_memory=Avg("avg_memory_percent"),
            cost=Sum("cost"),
        )
        .order_by("resource_id")
    )
    return [
        ResourceUsage(
            resource_id=row["resource_id"],
            service=row["service"],
            days=row["days"],
            avg_cpu=float(row["avg_cpu"]),
            avg_memory=float(row["avg_memory"]) if row["avg_memory"] is not None else None,
            cost=row["cost"],
        )
        for row in rows
    ]


def recommendation_list(*, organization: Organization, today: date | None = None) -> list:
    """Rule-based cost optimisation advice from utilisation, cost trends, forecasts and anomalies."""
    from forecasting import recommendations

    today = today or timezone.now().date()
    dataset = dataset_get(organization=organization)
    state = forecast_state(organization=organization, dataset=dataset)
    history = monthly_history(organization=organization, dataset=dataset)
    ahead: dict[str, Decimal] = {}
    if state.current and history.last_month is not None:
        first = periods.add_months(history.last_month, 1)
        rows = _ahead(organization=organization, run=state.ready, first=first, horizon=3)
        ahead = {name: row["next_three"] / 3 for name, row in rows.items() if row["next_three"] is not None}
    anomalies = list(anomaly_list(organization=organization).filter(date__gte=today - timedelta(days=30))[:50])
    return recommendations.recommend(
        usage=resource_usage(organization=organization),
        history=history,
        ahead=ahead,
        anomalies=anomalies,
        currency=history.currency or (dataset.currency if dataset else ""),
    )
