from django.urls import path

from forecasting import views

app_name = "forecasting"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("refresh/", views.forecast_refresh, name="refresh"),
    path("import/", views.cost_import, name="import"),
    path("imports/<uuid:public_id>/", views.import_detail, name="import_detail"),
    path("budgets/", views.budget_create, name="budget_create"),
    path("budgets/<uuid:public_id>/", views.budget_update, name="budget_update"),
    path("budgets/<uuid:public_id>/delete/", views.budget_delete, name="budget_delete"),
    path("recommendations/", views.recommendation_list, name="recommendations"),
    path("export/<str:fmt>/", views.export, name="export"),
]
