"""Costs REST API: one view per operation, input and output serializers, the pages' services.

Members read, import and ask for forecasts; organization admins change budgets (403 otherwise).
Serializer names start with ``Cost``/``Budget`` so they stay unique in the OpenAPI schema.
Forecasts are computed by workers: a forecast that is not cached answers 202 with its run's status,
and the client asks again.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from forecasting import conf, periods, selectors, services
from forecasting.engine import ALLOWED_HORIZONS, ALLOWED_LEVELS
from forecasting.models import SERVICE_MAX, CostAnomaly, CostImport
from forecasting.views import EXPORT_TYPES, export_response
from portal.api import paginated_response, reject_unknown_fields
from portal.pagination import PagePagination
from portal.permissions import IsOrganizationAdmin, IsOrganizationMember

# --- Shared helpers ---------------------------------------------------------------------------


def _date_param(request: Request, name: str) -> date | None:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise serializers.ValidationError({name: ["Use a date like 2025-01-31."]}) from None


class LevelsField(serializers.CharField):
    """Comma-separated interval levels, a subset of 65, 80, 95."""

    def to_internal_value(self, data: Any) -> list[int]:
        if isinstance(data, list):
            parts = data
        else:
            parts = [p.strip() for p in str(super().to_internal_value(data)).split(",") if p.strip()]
        allowed = ", ".join(map(str, ALLOWED_LEVELS))
        try:
            levels = sorted({int(p) for p in parts})
        except (TypeError, ValueError):
            raise serializers.ValidationError(f"Levels must be among {allowed}.") from None
        if (
            not levels
            or any(level not in ALLOWED_LEVELS for level in levels)
            or any(isinstance(p, bool) for p in parts)
        ):
            raise serializers.ValidationError(f"Levels must be among {allowed}.")
        return levels


class CostForecastRequestInput(serializers.Serializer):
    horizon = serializers.ChoiceField(choices=ALLOWED_HORIZONS, default=conf.DEFAULT_HORIZON, help_text="Months ahead")
    levels = LevelsField(
        default=lambda: list(ALLOWED_LEVELS),
        help_text="Comma-separated interval levels, among 65, 80, 95 (default all)",
    )
    service = serializers.CharField(
        max_length=SERVICE_MAX, required=False, allow_blank=True, default="", help_text="Empty: the total"
    )


class CostForecastGenerateInput(CostForecastRequestInput):
    refresh = serializers.BooleanField(default=False, help_text="Recompute even if the cached forecast is current")


# --- Output serializers -----------------------------------------------------------------------


class CostIntervalOutput(serializers.Serializer):
    level = serializers.IntegerField()
    lower = serializers.DecimalField(max_digits=18, decimal_places=2)
    upper = serializers.DecimalField(max_digits=18, decimal_places=2)


class CostForecastPointOutput(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM")
    mean = serializers.DecimalField(max_digits=18, decimal_places=2)
    intervals = CostIntervalOutput(many=True)


class CostHistoryPointOutput(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM")
    amount = serializers.DecimalField(max_digits=20, decimal_places=2)


class CostCoverageOutput(serializers.Serializer):
    level = serializers.IntegerField()
    coverage = serializers.FloatField(allow_null=True, help_text="Share of backtest months inside the band (0-1)")


class CostForecastOutput(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ready", "pending", "failed", "no_data"])
    run = serializers.UUIDField(allow_null=True, help_text="The computation; ask again while pending")
    error = serializers.CharField(allow_blank=True)
    service = serializers.CharField(allow_null=True, help_text="null: the total")
    currency = serializers.CharField(allow_blank=True)
    horizon = serializers.IntegerField()
    levels = serializers.ListField(child=serializers.IntegerField())
    generated_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    model = serializers.CharField(allow_null=True)
    backtest_mape = serializers.FloatField(allow_null=True, help_text="Percent, on the rolling-origin backtest")
    coverage = CostCoverageOutput(many=True)
    trend = serializers.CharField(allow_null=True)
    history = CostHistoryPointOutput(many=True)
    points = CostForecastPointOutput(many=True)
    notes = serializers.ListField(child=serializers.CharField())


class CostBreakdownOutput(serializers.Serializer):
    service = serializers.CharField(allow_null=True, help_text="null: the total")
    last_month = serializers.DecimalField(max_digits=20, decimal_places=2)
    previous_month = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    mom_change = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    mom_percent = serializers.FloatField(allow_null=True)
    trend = serializers.CharField(allow_blank=True)
    next_month = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    horizon_total = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    share_percent = serializers.FloatField(allow_null=True)


class BudgetAlertOutput(serializers.Serializer):
    threshold = serializers.IntegerField()
    basis = serializers.CharField()
    month = serializers.DateField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    created = serializers.DateTimeField(source="created_at")


class BudgetOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    service = serializers.SerializerMethodField(help_text="null: total spend")
    amount = serializers.DecimalField(max_digits=16, decimal_places=2)
    currency = serializers.CharField()
    thresholds = serializers.ListField(child=serializers.IntegerField())
    created = serializers.DateTimeField(source="created_at")
    updated = serializers.DateTimeField(source="updated_at")

    @extend_schema_field(OpenApiTypes.STR)
    def get_service(self, budget: Any) -> str | None:
        return budget.service or None


class BudgetStatusOutput(serializers.Serializer):
    month = serializers.DateField()
    actual = serializers.DecimalField(max_digits=20, decimal_places=2)
    actual_percent = serializers.FloatField()
    forecast = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True, help_text="Month-end")
    forecast_percent = serializers.FloatField(allow_null=True)
    state = serializers.ChoiceField(choices=["ok", "warning", "over"])
    alerts = BudgetAlertOutput(many=True)


class BudgetDetailOutput(BudgetOutput):
    status = serializers.SerializerMethodField()

    @extend_schema_field(BudgetStatusOutput)
    def get_status(self, budget: Any) -> dict[str, Any] | None:
        found = self.context.get("statuses", {}).get(budget.pk)
        return BudgetStatusOutput(found).data if found else None


class CostAnomalyOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    service = serializers.CharField()
    granularity = serializers.CharField()
    date = serializers.DateField()
    actual = serializers.DecimalField(max_digits=20, decimal_places=2)
    expected = serializers.DecimalField(max_digits=20, decimal_places=2)
    lower = serializers.DecimalField(max_digits=20, decimal_places=2)
    upper = serializers.DecimalField(max_digits=20, decimal_places=2)
    level = serializers.IntegerField()
    impact = serializers.DecimalField(max_digits=20, decimal_places=2)
    impact_percent = serializers.FloatField()
    currency = serializers.CharField()
    detected = serializers.DateTimeField(source="detected_at")


class CostImportErrorOutput(serializers.Serializer):
    line = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()


class CostImportOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    status = serializers.CharField()
    format = serializers.CharField()
    source = serializers.CharField()
    filename = serializers.CharField()
    size_bytes = serializers.IntegerField()
    progress_percent = serializers.IntegerField()
    lines_processed = serializers.IntegerField()
    rows_written = serializers.IntegerField()
    currency = serializers.CharField()
    first_date = serializers.DateField(allow_null=True)
    last_date = serializers.DateField(allow_null=True)
    error_count = serializers.IntegerField()
    errors = CostImportErrorOutput(many=True)
    created = serializers.DateTimeField(source="created_at")
    finished = serializers.DateTimeField(source="finished_at", allow_null=True)


class CostRejectedImportOutput(serializers.Serializer):
    file = serializers.ListField(child=serializers.CharField())
    error_count = serializers.IntegerField()
    errors = CostImportErrorOutput(many=True)


class CostRecommendationOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["idle_resource", "low_utilization", "fast_growth", "anomaly"])
    severity = serializers.ChoiceField(choices=["high", "medium", "low"])
    title = serializers.CharField()
    detail = serializers.CharField()
    service = serializers.CharField()
    resource_id = serializers.CharField(allow_blank=True)
    estimated_monthly_savings = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    currency = serializers.CharField(allow_blank=True)


class CostUtilizationOutput(serializers.Serializer):
    date = serializers.DateField()
    service = serializers.CharField()
    resource_id = serializers.CharField()
    account = serializers.CharField()
    region = serializers.CharField()
    avg_cpu_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    avg_memory_percent = serializers.DecimalField(max_digits=5, decimal_places=2, allow_null=True)
    cost = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)


class CostRecordOutput(serializers.Serializer):
    date = serializers.DateField()
    service = serializers.CharField()
    account = serializers.CharField()
    region = serializers.CharField()
    amount = serializers.DecimalField(max_digits=20, decimal_places=6)
    currency = serializers.CharField()


# --- Forecasts --------------------------------------------------------------------------------


def forecast_body(page: selectors.ForecastPage, *, levels: list[int]) -> dict[str, Any]:
    state = page.state
    if not state.has_data:
        status_name, run = "no_data", None
    elif page.ready:
        status_name, run = "ready", state.ready
    elif state.active is not None:
        status_name, run = "pending", state.active
    else:
        status_name, run = "failed", state.failed
    summary = page.summary if page.ready else None
    return {
        "status": status_name,
        "run": run.public_id if run else None,
        "error": run.error if run and status_name == "failed" else "",
        "service": page.service or None,
        "currency": page.currency,
        "horizon": page.horizon,
        "levels": levels,
        "generated_at": state.ready.generated_at if page.ready else None,
        "expires_at": state.ready.expires_at if page.ready else None,
        "model": summary.model if summary else None,
        "backtest_mape": summary.backtest_mape if summary else None,
        "coverage": [{"level": lv, "coverage": summary.coverage.get(lv)} for lv in levels] if summary else [],
        "trend": summary.trend if summary else None,
        "history": [
            {"month": periods.label(m), "amount": v}
            for m, v in sorted(page.history.series.get(page.service, {}).items())
        ],
        "points": [
            {
                "month": periods.label(p.month),
                "mean": p.mean,
                "intervals": [{"level": lv, "lower": p.bounds(lv)[0], "upper": p.bounds(lv)[1]} for lv in levels],
            }
            for p in page.points
        ],
        "notes": list(page.notes) if page.ready else [],
    }


class CostForecastApi(APIView):
    """GET: the cached forecast (or 202 while a worker computes it). POST: ask for a (re)computation."""

    def _page(self, request: Request, data: dict[str, Any]) -> selectors.ForecastPage:
        return selectors.forecast_page(
            organization=request.organization,
            service=data["service"].strip(),
            horizon=int(data["horizon"]),
            level=max(data["levels"]),
        )

    def _answer(self, request: Request, page: selectors.ForecastPage, levels: list[int]) -> Response:
        body = forecast_body(page, levels=levels)
        code = {"ready": 200, "pending": 202, "failed": 200, "no_data": 200}[body["status"]]
        return Response(CostForecastOutput(body).data, status=code)

    @extend_schema(
        parameters=[CostForecastRequestInput],
        responses={200: CostForecastOutput, 202: CostForecastOutput},
        summary="The forecast of the total or one service (202 while it is being computed)",
    )
    def get(self, request: Request) -> Response:
        serializer = CostForecastRequestInput(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        page = services.forecast_page_refreshed(
            organization=request.organization,
            service=data["service"].strip(),
            horizon=int(data["horizon"]),
            level=max(data["levels"]),
            reason="api",
        )
        return self._answer(request, page, serializer.validated_data["levels"])

    @extend_schema(
        request=CostForecastGenerateInput,
        responses={200: CostForecastOutput, 202: CostForecastOutput},
        summary="Generate the forecasts (computed by a worker; answers 202 with the run to poll)",
    )
    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else None
        reject_unknown_fields(data, set(CostForecastGenerateInput().fields))
        serializer = CostForecastGenerateInput(data=data)
        serializer.is_valid(raise_exception=True)
        page = self._page(request, serializer.validated_data)
        if page.state.has_data and (serializer.validated_data["refresh"] or not page.ready):
            from dataclasses import replace

            run = services.forecast_run_request(organization=request.organization, reason="api")
            page.state = replace(page.state, active=run, failed=None, ready=None if run else page.state.ready)
            page.points, page.summary = [], None
        return self._answer(request, page, serializer.validated_data["levels"])


class CostBreakdownApi(APIView):
    pagination_class = PagePagination

    @extend_schema(
        parameters=[OpenApiParameter("horizon", int, enum=list(ALLOWED_HORIZONS))],
        responses=CostBreakdownOutput(many=True),
        summary="Spend per service: last month, month-over-month change, trend and forecast",
    )
    def get(self, request: Request) -> Response:
        serializer = CostForecastRequestInput(
            data={"horizon": request.query_params.get("horizon", conf.DEFAULT_HORIZON)}
        )
        serializer.is_valid(raise_exception=True)
        page = selectors.forecast_page(
            organization=request.organization,
            service="",
            horizon=int(serializer.validated_data["horizon"]),
            level=conf.DEFAULT_LEVEL,
        )
        rows = [*page.breakdown, *([page.total_row] if page.total_row else [])]
        data = [{**row.__dict__, "service": row.service or None} for row in rows]
        return paginated_response(request, self, data, CostBreakdownOutput)


class CostExportApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("horizon", int, enum=list(ALLOWED_HORIZONS)),
            OpenApiParameter("level", int, enum=list(ALLOWED_LEVELS)),
            OpenApiParameter("service", str, description="Empty: the total"),
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "application/pdf"): OpenApiTypes.BINARY,
            409: OpenApiResponse(description="The forecast is still being computed"),
        },
        summary="Export the forecast and breakdown as CSV, JSON or PDF",
    )
    def get(self, request: Request, fmt: str) -> Any:
        if fmt not in EXPORT_TYPES:
            raise serializers.ValidationError({"format": [f"Choose one of: {', '.join(EXPORT_TYPES)}."]})
        serializer = CostForecastRequestInput(
            data={
                "horizon": request.query_params.get("horizon", conf.DEFAULT_HORIZON),
                "levels": request.query_params.get("level", str(conf.DEFAULT_LEVEL)),
                "service": request.query_params.get("service", ""),
            }
        )
        if not serializer.is_valid():
            errors = dict(serializer.errors)
            if "levels" in errors:
                errors["level"] = errors.pop("levels")
            raise serializers.ValidationError(errors)
        data = serializer.validated_data
        if len(data["levels"]) != 1:
            raise serializers.ValidationError({"level": ["Choose one level."]})
        page = selectors.forecast_page(
            organization=request.organization,
            service=data["service"].strip(),
            horizon=int(data["horizon"]),
            level=data["levels"][0],
            all_points=True,
        )
        if not page.ready:
            if page.state.has_data and page.state.active is None:
                services.forecast_run_request(organization=request.organization, reason="api")
            return Response(
                {"detail": "The forecast is still being computed; try again in a few seconds."},
                status=status.HTTP_409_CONFLICT,
            )
        return export_response(page, organization=request.organization, fmt=fmt)


# --- Budgets ----------------------------------------------------------------------------------


class _AdminWrites(BasePermission):
    """Members read; only organization admins write (403)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return IsOrganizationMember().has_permission(request, view)
        return IsOrganizationAdmin().has_permission(request, view)


class _AdminWritesMessage(_AdminWrites):
    message = "Only organization admins can change budgets."


def _statuses(request: Request) -> dict[int, Any]:
    return {s.budget.pk: s for s in selectors.budget_statuses(organization=request.organization)}


class BudgetListCreateApi(APIView):
    pagination_class = PagePagination
    permission_classes = [_AdminWritesMessage]

    class BudgetCreateInput(serializers.Serializer):
        service = serializers.CharField(
            max_length=SERVICE_MAX, required=False, allow_blank=True, default="", help_text="Empty: total spend"
        )
        amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))
        thresholds = serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=1000),
            required=False,
            min_length=1,
            max_length=5,
            help_text="Percent of the amount; default [80, 100]",
        )

    @extend_schema(
        responses=BudgetDetailOutput(many=True), summary="The organization's budgets with this month's status"
    )
    def get(self, request: Request) -> Response:
        statuses = {str(s.budget.public_id): s for s in _statuses(request).values()}
        queryset = selectors.budget_list(organization=request.organization)
        response = paginated_response(request, self, queryset, BudgetOutput)
        for item in response.data["results"]:
            found = statuses.get(item["id"])
            item["status"] = BudgetStatusOutput(found).data if found else None
        return response

    @extend_schema(request=BudgetCreateInput, responses={201: BudgetDetailOutput}, summary="Add a budget (org admins)")
    def post(self, request: Request) -> Response:
        reject_unknown_fields(request.data, {"service", "amount", "thresholds"})
        serializer = self.BudgetCreateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        budget = services.budget_create(
            organization=request.organization,
            actor=request.user,
            service=data["service"],
            amount=data["amount"],
            thresholds=data.get("thresholds"),
        )
        return Response(
            BudgetDetailOutput(budget, context={"statuses": _statuses(request)}).data, status=status.HTTP_201_CREATED
        )


class BudgetDetailApi(APIView):
    permission_classes = [_AdminWritesMessage]

    class BudgetUpdateInput(serializers.Serializer):
        amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"), required=False)
        thresholds = serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=1000), required=False, min_length=1, max_length=5
        )

    @extend_schema(responses=BudgetDetailOutput, summary="One budget with this month's status")
    def get(self, request: Request, public_id: Any) -> Response:
        budget = selectors.budget_get(organization=request.organization, public_id=public_id)
        return Response(BudgetDetailOutput(budget, context={"statuses": _statuses(request)}).data)

    @extend_schema(request=BudgetUpdateInput, responses=BudgetDetailOutput, summary="Change a budget (org admins)")
    def patch(self, request: Request, public_id: Any) -> Response:
        budget = selectors.budget_get(organization=request.organization, public_id=public_id)
        reject_unknown_fields(request.data, {"amount", "thresholds"})
        serializer = self.BudgetUpdateInput(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.budget_update(budget=budget, actor=request.user, **serializer.validated_data)
        return Response(BudgetDetailOutput(budget, context={"statuses": _statuses(request)}).data)

    @extend_schema(responses={204: None}, summary="Remove a budget (org admins)")
    def delete(self, request: Request, public_id: Any) -> Response:
        budget = selectors.budget_get(organization=request.organization, public_id=public_id)
        services.budget_delete(budget=budget, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Anomalies, recommendations, utilisation, cost rows -------------------------------------


class CostAnomalyListApi(APIView):
    pagination_class = PagePagination

    @extend_schema(
        parameters=[
            OpenApiParameter("service", str),
            OpenApiParameter("granularity", str, enum=list(CostAnomaly.Granularity.values)),
        ],
        responses=CostAnomalyOutput(many=True),
        summary="Detected spend anomalies, newest first",
    )
    def get(self, request: Request) -> Response:
        granularity = request.query_params.get("granularity", "")
        if granularity and granularity not in CostAnomaly.Granularity.values:
            raise serializers.ValidationError(
                {"granularity": [f"Choose one of: {', '.join(CostAnomaly.Granularity.values)}."]}
            )
        queryset = selectors.anomaly_list(
            organization=request.organization, service=request.query_params.get("service", ""), granularity=granularity
        )
        return paginated_response(request, self, queryset, CostAnomalyOutput)


class CostRecommendationListApi(APIView):
    pagination_class = PagePagination

    @extend_schema(
        responses=CostRecommendationOutput(many=True), summary="Cost optimisation recommendations, biggest saving first"
    )
    def get(self, request: Request) -> Response:
        items = selectors.recommendation_list(organization=request.organization)
        return paginated_response(request, self, items, CostRecommendationOutput)


class CostUtilizationListApi(APIView):
    pagination_class = PagePagination

    @extend_schema(
        parameters=[OpenApiParameter("service", str), OpenApiParameter("resource_id", str)],
        responses=CostUtilizationOutput(many=True),
        summary="Resource utilisation rows, newest first",
    )
    def get(self, request: Request) -> Response:
        queryset = selectors.utilization_list(
            organization=request.organization,
            service=request.query_params.get("service", ""),
            resource_id=request.query_params.get("resource_id", ""),
        )
        return paginated_response(request, self, queryset, CostUtilizationOutput)


class CostRecordListApi(APIView):
    pagination_class = PagePagination

    @extend_schema(
        parameters=[
            OpenApiParameter("service", str),
            OpenApiParameter("from", OpenApiTypes.DATE),
            OpenApiParameter("to", OpenApiTypes.DATE),
        ],
        responses=CostRecordOutput(many=True),
        summary="Daily cost rows (day x service x account x region), newest first",
    )
    def get(self, request: Request) -> Response:
        queryset = selectors.cost_record_list(
            organization=request.organization,
            service=request.query_params.get("service", ""),
            since=_date_param(request, "from"),
            until=_date_param(request, "to"),
        )
        return paginated_response(request, self, queryset, CostRecordOutput)


# --- Imports ----------------------------------------------------------------------------------


class CostImportListCreateApi(APIView):
    pagination_class = PagePagination
    parser_classes = [MultiPartParser]

    class CostImportUploadInput(serializers.Serializer):
        file = serializers.FileField(
            allow_empty_file=True, help_text="FOCUS 1.x, AWS CUR (CSV or .csv.gz) or utilisation CSV"
        )

    @extend_schema(responses=CostImportOutput(many=True), summary="Recent cost imports")
    def get(self, request: Request) -> Response:
        return paginated_response(
            request, self, selectors.cost_import_list(organization=request.organization), CostImportOutput
        )

    @extend_schema(
        request={"multipart/form-data": CostImportUploadInput},
        responses={
            201: CostImportOutput,
            202: OpenApiResponse(CostImportOutput, description="Large file: imported by a worker; poll the import"),
            400: CostRejectedImportOutput,
        },
        summary="Import a cost or utilisation file (rejected whole, with a report, if any row is bad)",
    )
    def post(self, request: Request) -> Response:
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > conf.import_max_bytes() + 64 * 1024:
            services.cost_import_check_size(size=declared)  # raises the field error (400)
        serializer = self.CostImportUploadInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        result = services.cost_import_submit(
            organization=request.organization,
            user=request.user,
            file=upload,
            filename=upload.name,
            size=upload.size,
            source=CostImport.Source.API,
        )
        if result.status == CostImport.Status.FAILED:
            body = {
                "file": [
                    f"The file was rejected ({result.error_count} problem{'s' if result.error_count != 1 else ''}); nothing was imported."
                ],
                "error_count": result.error_count,
                "errors": result.errors,
            }
            return Response(CostRejectedImportOutput(body).data, status=status.HTTP_400_BAD_REQUEST)
        code = status.HTTP_201_CREATED if result.status == CostImport.Status.SUCCEEDED else status.HTTP_202_ACCEPTED
        return Response(CostImportOutput(result).data, status=code)


class CostImportDetailApi(APIView):
    @extend_schema(responses=CostImportOutput, summary="One import: progress, result or rejection report")
    def get(self, request: Request, public_id: Any) -> Response:
        return Response(
            CostImportOutput(selectors.cost_import_get(organization=request.organization, public_id=public_id)).data
        )
