from django.urls import path

from forecasting import api

app_name = "forecasting-api"

urlpatterns = [
    path("costs/forecast/", api.CostForecastApi.as_view(), name="forecast"),
    path("costs/breakdown/", api.CostBreakdownApi.as_view(), name="breakdown"),
    path("costs/export/<str:fmt>/", api.CostExportApi.as_view(), name="export"),
    path("costs/budgets/", api.BudgetListCreateApi.as_view(), name="budgets"),
    path("costs/budgets/<uuid:public_id>/", api.BudgetDetailApi.as_view(), name="budget"),
    path("costs/anomalies/", api.CostAnomalyListApi.as_view(), name="anomalies"),
    path("costs/recommendations/", api.CostRecommendationListApi.as_view(), name="recommendations"),
    path("costs/utilization/", api.CostUtilizationListApi.as_view(), name="utilization"),
    path("costs/records/", api.CostRecordListApi.as_view(), name="records"),
    path("costs/imports/", api.CostImportListCreateApi.as_view(), name="imports"),
    path("costs/imports/<uuid:public_id>/", api.CostImportDetailApi.as_view(), name="import"),
]
