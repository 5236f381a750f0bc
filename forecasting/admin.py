"""Support agents' view of cost data: read-only, plus "recompute" through forecasting.services.

Budgets and imports are the customers' own (pages and API); agents inspect them here and can ask for
a fresh forecast when a customer reports a stale one.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from forecasting import services
from forecasting.models import (
    Budget,
    BudgetAlert,
    CostAnomaly,
    CostDataset,
    CostForecast,
    CostImport,
    CostRecord,
    ForecastRun,
    ResourceUtilization,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CostDataset)
class CostDatasetAdmin(ReadOnlyAdmin):
    list_display = ["organization", "currency", "version", "first_date", "last_date", "updated_at"]
    list_select_related = ["organization"]
    search_fields = ["organization__name", "organization__slug"]
    actions = ["recompute_forecasts"]

    @admin.action(description="Recompute the forecasts of the selected organizations")
    def recompute_forecasts(self, request: HttpRequest, queryset: QuerySet[CostDataset]) -> None:
        count = sum(
            1
            for dataset in queryset.select_related("organization")
            if services.forecast_run_request(organization=dataset.organization, reason="admin") is not None
        )
        messages.success(request, f"Forecasts requested for {count} organization(s).")


@admin.register(CostRecord)
class CostRecordAdmin(ReadOnlyAdmin):
    list_display = ["organization", "date", "service", "account", "region", "amount", "currency"]
    list_filter = ["currency"]
    list_select_related = ["organization"]
    search_fields = ["service", "account", "organization__slug"]
    date_hierarchy = "date"
    show_full_result_count = False


@admin.register(ResourceUtilization)
class ResourceUtilizationAdmin(ReadOnlyAdmin):
    list_display = ["organization", "date", "resource_id", "service", "avg_cpu_percent", "avg_memory_percent", "cost"]
    list_select_related = ["organization"]
    search_fields = ["resource_id", "service", "organization__slug"]
    date_hierarchy = "date"
    show_full_result_count = False


@admin.register(CostImport)
class CostImportAdmin(ReadOnlyAdmin):
    list_display = [
        "filename",
        "organization",
        "status",
        "format",
        "source",
        "rows_written",
        "error_count",
        "created_at",
    ]
    list_filter = ["status", "format", "source"]
    list_select_related = ["organization"]
    search_fields = ["filename", "organization__slug"]
    readonly_fields = ["errors"]


class CostForecastInline(admin.TabularInline):
    model = CostForecast
    fields = ["service", "month", "mean", "lower_80", "upper_80", "model", "backtest_mape"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0
    show_change_link = False


@admin.register(ForecastRun)
class ForecastRunAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "organization",
        "status",
        "reason",
        "data_version",
        "requested_at",
        "duration_ms",
        "series_count",
    ]
    list_filter = ["status", "reason"]
    list_select_related = ["organization"]
    search_fields = ["organization__slug"]
    inlines = [CostForecastInline]


@admin.register(CostAnomaly)
class CostAnomalyAdmin(ReadOnlyAdmin):
    list_display = ["organization", "service", "granularity", "date", "actual", "expected", "impact", "impact_percent"]
    list_filter = ["granularity"]
    list_select_related = ["organization"]
    search_fields = ["service", "organization__slug"]


class BudgetAlertInline(admin.TabularInline):
    model = BudgetAlert
    fields = ["month", "threshold", "basis", "amount", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


@admin.register(Budget)
class BudgetAdmin(ReadOnlyAdmin):
    list_display = ["organization", "scope", "amount", "currency", "thresholds", "updated_at"]
    list_select_related = ["organization"]
    search_fields = ["service", "organization__slug"]
    inlines = [BudgetAlertInline]
