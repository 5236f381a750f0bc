"""The costs API: forecasts (202 while computing), budgets (admins write), exports, imports, lists, schema."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from pypdf import PdfReader
from rest_framework.test import APIClient

from forecasting import services
from forecasting.models import Budget, CostImport, CostRecord, ForecastRun, ResourceUtilization
from forecasting.tests.conftest import SAMPLES, load_costs, synthetic_costs
from portal import services as portal_services

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"forecasting-api:{name}", args=args)


@pytest.fixture
def admin_api(admin_member):
    _, key = portal_services.api_token_create(membership=admin_member, name="admin tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


# --- Forecast -----------------------------------------------------------------------------------


def test_get_forecast_answers_202_until_a_worker_has_computed_it(api_client, costs, organization):
    response = api_client.get(url("forecast"))
    assert response.status_code == 202
    body = response.json()
    run = ForecastRun.objects.get()
    assert body["status"] == "pending" and body["run"] == str(run.public_id) and body["points"] == []
    assert len(body["history"]) == 31
    services.forecast_run_execute(run_id=run.pk)
    ready = api_client.get(url("forecast"), {"horizon": 3, "levels": "80,95", "service": "Compute"})
    assert ready.status_code == 200
    data = ready.json()
    assert data["status"] == "ready" and data["service"] == "Compute" and data["levels"] == [80, 95]
    assert [p["month"] for p in data["points"]] == ["2026-11", "2026-12", "2027-01"]
    assert [i["level"] for i in data["points"][0]["intervals"]] == [80, 95]
    assert data["model"] and data["expires_at"] and data["coverage"][0]["level"] == 80


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"horizon": 5}, "horizon"),
        ({"levels": "80,99"}, "levels"),
        ({"levels": "x"}, "levels"),
        ({"levels": "0"}, "levels"),
    ],
)
def test_horizon_and_levels_not_allowed_are_400_with_field_errors(api_client, forecast, params, field):
    response = api_client.get(url("forecast"), params)
    assert response.status_code == 400 and field in response.json()


def test_unknown_service_is_a_404(api_client, forecast):
    assert api_client.get(url("forecast"), {"service": "Nope"}).status_code == 404


def test_generate_queues_a_recomputation(api_client, forecast, organization):
    response = api_client.post(url("forecast"), {"horizon": 24, "levels": [65], "refresh": True}, format="json")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    assert ForecastRun.objects.filter(status="pending", reason="api").count() == 1
    unknown = api_client.post(url("forecast"), {"horizon": 24, "colour": "red"}, format="json")
    assert unknown.status_code == 400 and "colour" in unknown.json()


def test_without_data_the_status_says_so(api_client):
    body = api_client.get(url("forecast")).json()
    assert body["status"] == "no_data" and body["points"] == []


def test_breakdown(api_client, forecast):
    results = api_client.get(url("breakdown"), {"horizon": 6}).json()["results"]
    assert [r["service"] for r in results] == ["Compute", "Storage", None]
    assert results[0]["trend"] and results[0]["horizon_total"]


# --- Export -------------------------------------------------------------------------------------


def test_exports(api_client, forecast):
    text = api_client.get(url("export", "csv"), {"horizon": 3, "level": 80}).content.decode()
    assert len([r for r in csv.DictReader(io.StringIO(text)) if r["kind"] == "forecast"]) == 9
    data = api_client.get(url("export", "json"), {"horizon": 6}).json()
    assert len(data["series"][0]["forecast"]) == 6
    pdf = api_client.get(url("export", "pdf"), {"horizon": 12, "level": 65})
    assert "Cost forecast" in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert api_client.get(url("export", "xlsx")).status_code == 400
    assert api_client.get(url("export", "csv"), {"level": 50}).status_code == 400


def test_export_before_the_forecast_is_ready_is_409(api_client, costs):
    assert api_client.get(url("export", "csv")).status_code == 409


# --- Budgets ------------------------------------------------------------------------------------


def test_budget_crud_for_admins(admin_api, costs, organization):
    created = admin_api.post(
        url("budgets"), {"amount": "2500.00", "service": "Storage", "thresholds": [50, 100]}, format="json"
    )
    assert created.status_code == 201
    body = created.json()
    assert (
        body["service"] == "Storage"
        and body["thresholds"] == [50, 100]
        and body["status"]["state"] in {"ok", "warning", "over"}
    )
    budget_url = url("budget", body["id"])
    changed = admin_api.patch(budget_url, {"amount": "100"}, format="json")
    assert changed.status_code == 200 and changed.json()["amount"] == "100.00"
    listed = admin_api.get(url("budgets")).json()["results"]
    assert len(listed) == 1 and listed[0]["status"] is not None
    assert admin_api.delete(budget_url).status_code == 204
    assert not Budget.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "-1"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "10", "thresholds": [0]}, "thresholds"),
        ({"amount": "10", "service": "Nope"}, "service"),
        ({"amount": "10", "currency": "EUR"}, "currency"),
    ],
)
def test_budget_input_errors_are_400_with_field_errors(admin_api, costs, body, field):
    response = admin_api.post(url("budgets"), body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not Budget.objects.exists()


def test_members_read_budgets_but_cannot_write_them(api_client, costs, organization):
    budget = services.budget_create(organization=organization, actor=None, amount=1000)
    assert api_client.get(url("budgets")).status_code == 200
    assert api_client.get(url("budget", budget.public_id)).status_code == 200
    assert api_client.post(url("budgets"), {"amount": "5"}, format="json").status_code == 403
    assert api_client.patch(url("budget", budget.public_id), {"amount": "5"}, format="json").status_code == 403
    assert api_client.delete(url("budget", budget.public_id)).status_code == 403
    budget.refresh_from_db()
    assert budget.amount == 1000


# --- Imports ------------------------------------------------------------------------------------


def test_import_a_file_through_the_api(api_client, organization):
    upload = SimpleUploadedFile("focus.csv", (SAMPLES / "focus_1_0.csv").read_bytes(), content_type="text/csv")
    response = api_client.post(url("imports"), {"file": upload}, format="multipart")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "succeeded" and body["rows_written"] == 4 and body["source"] == "api"
    assert api_client.get(url("import", body["id"])).json()["format"] == "focus"
    assert len(api_client.get(url("imports")).json()["results"]) == 1


def test_a_rejected_file_is_a_400_with_the_report_and_nothing_written(api_client, organization):
    bad = b"ChargePeriodStart,ServiceName,BilledCost,BillingCurrency\n2025-01-01,Compute,1,USD\n2025-01-02,Compute,x,USD\n"
    response = api_client.post(url("imports"), {"file": SimpleUploadedFile("bad.csv", bad)}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert body["error_count"] == 1 and body["errors"] == [{"line": 3, "message": "BilledCost 'x' is not a number"}]
    assert not CostRecord.objects.exists() and not CostImport.objects.exists()


@pytest.mark.parametrize(("content", "message"), [(b"", "empty"), (b"a,b\n1,2\n", "Unrecognised")])
def test_empty_or_unknown_files_are_400(api_client, content, message):
    response = api_client.post(url("imports"), {"file": SimpleUploadedFile("x.csv", content)}, format="multipart")
    assert response.status_code == 400 and message in str(response.json())


def test_a_large_file_is_accepted_for_a_worker(api_client, settings, organization):
    settings.FORECAST_IMPORT_INLINE_MAX_BYTES = 10
    upload = SimpleUploadedFile("cur.csv", (SAMPLES / "aws_cur.csv").read_bytes())
    response = api_client.post(url("imports"), {"file": upload}, format="multipart")
    assert response.status_code == 202 and response.json()["status"] == "pending"


def test_an_oversized_upload_is_refused(api_client, settings):
    settings.FORECAST_IMPORT_MAX_BYTES = 100
    upload = SimpleUploadedFile("big.csv", b"x" * 100_000)
    response = api_client.post(url("imports"), {"file": upload}, format="multipart")
    assert response.status_code == 400 and "limit" in str(response.json())


# --- Lists --------------------------------------------------------------------------------------


def test_anomalies_recommendations_utilisation_and_records(api_client, organization, until):
    load_costs(organization, synthetic_costs(until=until, spike=("Storage", date(2026, 10, 28), 4.0)))
    services.anomalies_detect(organization=organization)
    ResourceUtilization.objects.bulk_create(
        ResourceUtilization(
            organization=organization,
            date=date(2026, 10, d),
            service="Compute",
            resource_id="i-idle",
            avg_cpu_percent=1,
            cost=10,
        )
        for d in range(1, 15)
    )
    anomalies = api_client.get(url("anomalies"), {"granularity": "daily"}).json()["results"]
    assert [(a["service"], a["date"]) for a in anomalies] == [("Storage", "2026-10-28")]
    assert api_client.get(url("anomalies"), {"granularity": "hourly"}).status_code == 400
    advice = api_client.get(url("recommendations")).json()["results"]
    assert advice[0]["kind"] == "idle_resource" and advice[0]["estimated_monthly_savings"] == "304.00"
    assert any(a["kind"] == "anomaly" for a in advice)
    assert api_client.get(url("utilization"), {"resource_id": "i-idle"}).json()["count"] == 14
    records = api_client.get(url("records"), {"service": "Storage", "from": "2026-10-01", "to": "2026-10-31"}).json()
    assert records["count"] == 31
    assert api_client.get(url("records"), {"from": "yesterday"}).status_code == 400


def test_lists_cost_a_fixed_number_of_queries(api_client, forecast, organization, django_assert_max_num_queries):
    for service in ("Compute", "Storage"):
        services.budget_create(organization=organization, actor=None, amount=10**6, service=service)
    with django_assert_max_num_queries(12):
        assert len(api_client.get(url("budgets")).json()["results"]) == 2
    with django_assert_max_num_queries(8):
        assert api_client.get(url("records")).json()["count"] > 50
    with django_assert_max_num_queries(10):
        assert api_client.get(url("forecast")).status_code == 200
    with django_assert_max_num_queries(14):
        api_client.get(url("recommendations"))


def test_every_costs_route_is_in_the_openapi_schema(client):
    # The schema as a whole validates without warnings (portal/tests/test_api.py); here: ours is in it.
    paths = json.loads(client.get(reverse("api-schema"), HTTP_ACCEPT="application/json").content)["paths"]
    for route in ("forecast", "breakdown", "export/{fmt}", "budgets", "budgets/{public_id}", "recommendations", "imports"):
        assert f"/api/v1/costs/{route}/" in paths, route
