"""The costs page: states (empty, computing, ready, failed), toggles, budgets, exports, query counts."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date
from decimal import Decimal
from xml.etree import ElementTree

import pytest
from django.urls import reverse
from pypdf import PdfReader

from forecasting import services
from forecasting.models import Budget, ForecastRun, ResourceUtilization
from forecasting.tests.conftest import compute_forecast, load_costs, synthetic_costs

pytestmark = pytest.mark.django_db
SVG = "{http://www.w3.org/2000/svg}"


def overview(**params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return reverse("forecasting:overview") + (f"?{query}" if query else "")


# The chart is found by its class and id, never as "the first <svg>": the layout may draw SVG icons (the
# notifications bell) before it.
_CHART_RE = re.compile(r'<svg\b[^>]*\bclass="forecast-chart"[^>]*\bid="forecast-chart"[^>]*>.*?</svg>', re.S)


def chart_markup(html: str) -> str:
    found = _CHART_RE.search(html)
    assert found, 'no <svg class="forecast-chart" id="forecast-chart"> on the page'
    return found.group(0)


def chart(html: str) -> ElementTree.Element:
    return ElementTree.fromstring(chart_markup(html))  # noqa: S314 - our own SVG


def test_the_chart_helper_skips_other_svgs_on_the_page():
    icon = '<svg xmlns="http://www.w3.org/2000/svg" class="icon" viewBox="0 0 1 1"><title>Bell</title></svg>'
    page = f"<header>{icon}</header><main>" + (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8" role="img" class="forecast-chart" '
        'id="forecast-chart"><title>Costs</title></svg></main>'
    )
    assert chart(page).find(f"{SVG}title").text == "Costs"
    with pytest.raises(AssertionError):
        chart_markup(f"<header>{icon}</header>")


def test_without_data_the_page_invites_an_import(member_client):
    page = member_client.get(overview()).content.decode()
    assert "Import your first cost file" in page
    assert not ForecastRun.objects.exists()


def test_an_uncached_forecast_is_requested_from_a_worker_and_the_page_polls(member_client, costs, organization):
    response = member_client.get(overview())
    page = response.content.decode()
    run = ForecastRun.objects.get(organization=organization)
    assert run.status == "pending" and run.reason == "page"  # queued, not computed in the request
    assert 'hx-trigger="every 2s"' in page and "Computing the forecasts" in page
    assert 'aria-busy="true"' in page
    assert chart(page) is not None  # the history is drawn while the forecast is computed
    # Asking again does not queue a second run.
    member_client.get(overview())
    assert ForecastRun.objects.count() == 1


def test_the_poll_swaps_in_the_result_once_ready(member_client, costs, organization):
    member_client.get(overview())
    run = ForecastRun.objects.get()
    services.forecast_run_execute(run_id=run.pk)
    partial = member_client.get(overview(), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="forecast-results").content.decode()
    assert partial.startswith("\n<section") or partial.lstrip().startswith("<section")
    assert "<html" not in partial and "hx-trigger" not in partial
    assert 'class="forecast-mean"' in partial


def test_a_ready_forecast_draws_history_forecast_band_and_the_data_table(member_client, forecast):
    html = member_client.get(overview(horizon=6, level=95)).content.decode()
    svg = chart(html)
    assert svg.get("role") == "img" and svg.get("aria-labelledby")
    titles = [t.text for t in svg.iter(f"{SVG}title")]
    assert sum(1 for t in titles if t and " forecast: " in t) == 6
    assert any("95 %" in (t or "") for t in titles)
    assert svg.find(f".//{SVG}polygon[@class='forecast-band']") is not None
    assert "style=" not in chart_markup(html)  # CSP: presentation attributes only
    assert "<script" not in html.split("<main", 1)[1].split("</main>")[0]
    assert 'id="forecast-data-table"' in html and "Nov 2026" in html
    assert "Backtest error (MAPE)" in html and "95 % band coverage" in html


def test_every_toggle_has_an_href_and_swaps_the_results(member_client, forecast):
    html = member_client.get(overview()).content.decode()
    links = re.findall(r'<a class="toggle" href="([^"]+)" hx-get="([^"]+)"', html)
    assert len(links) == 7 and all(href == get for href, get in links)
    partial = member_client.get(
        overview(horizon=24), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="forecast-results"
    ).content.decode()
    assert "<html" not in partial
    assert sum(1 for t in chart(partial).iter(f"{SVG}title") if t.text and " forecast: " in t.text) == 24


def test_a_service_drill_down(member_client, forecast):
    html = member_client.get(overview(service="Storage")).content.decode()
    assert '<h2 id="forecast-heading">Storage</h2>' in html
    assert "Back to total spend" in html


@pytest.mark.parametrize("params", [{"horizon": 7}, {"level": 50}, {"horizon": "abc"}])
def test_a_bad_horizon_or_level_is_a_400_with_a_message(member_client, forecast, params):
    response = member_client.get(overview(**params))
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_an_unknown_service_is_a_404(member_client, forecast):
    assert member_client.get(overview(service="Nope")).status_code == 404


def test_breakdown_shows_month_over_month_change_and_trend(member_client, forecast):
    html = member_client.get(overview()).content.decode()
    section = html.split('id="breakdown-heading"')[1]
    assert "Compute" in section and "Storage" in section and "Total" in section
    assert re.search(r"[▲▼].*?\(\+?-?\d+\.\d %\)", section)
    assert "stable" in section or "increasing" in section


def test_anomalies_are_listed_and_marked_on_the_chart(member_client, organization, until):
    load_costs(organization, synthetic_costs(until=until, spike=("Storage", date(2026, 10, 28), 4.0)))
    services.anomalies_detect(organization=organization)
    html = member_client.get(overview()).content.decode()
    assert "28 Oct 2026" in html and "1 anomaly" in html
    assert chart(html).find(f".//{SVG}polygon[@class='chart-anomaly']") is not None


def test_a_failed_run_shows_the_error_and_a_retry_button(member_client, costs, organization, monkeypatch):
    run = services.forecast_run_request(organization=organization, reason="test")
    monkeypatch.setattr(services, "forecast_series", lambda history: 1 / 0)
    services.forecast_run_execute(run_id=run.pk)
    html = member_client.get(overview()).content.decode()
    assert "could not be computed" in html and "Try again" in html
    assert ForecastRun.objects.count() == 1  # not retried on every view
    response = member_client.post(reverse("forecasting:refresh"))
    assert response.status_code == 302
    assert ForecastRun.objects.filter(status="pending").count() == 1


def test_the_page_costs_a_fixed_number_of_queries(member_client, forecast, organization, django_assert_max_num_queries):
    services.budget_create(organization=organization, actor=None, amount=5000)
    services.budget_create(organization=organization, actor=None, amount=100, service="Storage")
    ResourceUtilization.objects.bulk_create(
        ResourceUtilization(
            organization=organization,
            date=date(2026, 10, d),
            service="Compute",
            resource_id=f"i-{n}",
            avg_cpu_percent=3,
        )
        for d in range(1, 15)
        for n in range(10)
    )
    with django_assert_max_num_queries(18):
        response = member_client.get(overview())
    assert response.status_code == 200 and 'hx-get="/costs/recommendations/"' in response.content.decode()
    with django_assert_max_num_queries(13):
        member_client.get(overview(horizon=3), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="forecast-results")
    with django_assert_max_num_queries(14):
        advice = member_client.get(reverse("forecasting:recommendations"), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in advice and advice.count("looks idle") == 10


def test_the_results_region_is_cached_until_the_forecast_or_the_anomalies_change(
    member_client, forecast, organization, until, django_assert_max_num_queries
):
    url = overview(horizon=6)
    first = member_client.get(url).content.decode()
    with django_assert_max_num_queries(12):
        again = member_client.get(url).content.decode()
    region = re.compile(r'<section id="forecast-results".*?</section>', re.S)
    assert region.search(again).group(0) == region.search(first).group(0)  # no history/forecast/anomaly query
    load_costs(organization, synthetic_costs(until=until, spike=("Storage", date(2026, 10, 28), 4.0)))
    compute_forecast(organization)
    services.anomalies_detect(organization=organization)
    fresh = member_client.get(url).content.decode()
    assert "28 Oct 2026" in fresh and "1 anomaly" in fresh


# --- Budgets --------------------------------------------------------------------------------------


def test_an_admin_adds_a_budget_and_the_card_is_swapped(admin_client_org, costs, organization):
    response = admin_client_org.post(
        reverse("forecasting:budget_create"),
        {"service": "Storage", "amount": "1500.00", "thresholds": "50, 90%"},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and 'id="budgets"' in html
    budget = Budget.objects.get()
    assert (budget.service, budget.amount, budget.thresholds) == ("Storage", Decimal("1500.00"), [50, 90])
    assert "1,500.00 USD a month" in html


def test_the_cached_budget_form_follows_the_budgets(admin_client_org, costs, organization):
    def service_options(html: str) -> list[str]:
        select = re.search(r'<select name="service".*?</select>', html, re.S).group(0)
        return re.findall(r'<option value="([^"]*)"', select)

    first = admin_client_org.get(overview()).content.decode()
    assert service_options(first) == ["", "Compute", "Storage"]
    assert service_options(admin_client_org.get(overview()).content.decode()) == ["", "Compute", "Storage"]
    services.budget_create(organization=organization, actor=None, amount=100, service="Storage")
    # The cached fields are keyed by their choices: a budgeted scope is never offered again from the cache.
    assert service_options(admin_client_org.get(overview()).content.decode()) == ["", "Compute"]
    assert 'name="csrfmiddlewaretoken"' in admin_client_org.get(overview()).content.decode()


def test_budget_form_errors_are_shown(admin_client_org, costs):
    response = admin_client_org.post(
        reverse("forecasting:budget_create"),
        {"service": "", "amount": "-5", "thresholds": "eighty"},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "greater than or equal to 0.01" in html and "is not a whole percentage" in html
    assert not Budget.objects.exists()


@pytest.mark.parametrize("thresholds", ["²", "80, 9999999999999999999999"])
def test_thresholds_that_are_no_whole_percentages_are_a_form_error(admin_client_org, costs, thresholds):
    response = admin_client_org.post(
        reverse("forecasting:budget_create"), {"service": "", "amount": "100", "thresholds": thresholds}
    )
    assert response.status_code == 400 and "is not a whole percentage" in response.content.decode()
    assert not Budget.objects.exists()


def test_members_cannot_change_budgets(member_client, costs, organization):
    budget = services.budget_create(organization=organization, actor=None, amount=10**6)
    assert member_client.post(reverse("forecasting:budget_create"), {"amount": "10"}).status_code == 403
    assert (
        member_client.post(
            reverse("forecasting:budget_update", args=[budget.public_id]), {"amount": "1", "thresholds": "50"}
        ).status_code
        == 403
    )
    assert member_client.post(reverse("forecasting:budget_delete", args=[budget.public_id])).status_code == 403
    assert "Only organization admins can add or change budgets" in member_client.get(overview()).content.decode()
    budget.refresh_from_db()
    assert budget.amount == 10**6


def test_an_admin_changes_and_removes_a_budget(admin_client_org, costs, organization):
    budget = services.budget_create(organization=organization, actor=None, amount=10**6)
    response = admin_client_org.post(
        reverse("forecasting:budget_update", args=[budget.public_id]), {"amount": "2500", "thresholds": "75"}
    )
    assert response.status_code == 302
    budget.refresh_from_db()
    assert budget.amount == Decimal("2500.00") and budget.thresholds == [75]
    bad = admin_client_org.post(
        reverse("forecasting:budget_update", args=[budget.public_id]), {"amount": "x", "thresholds": "75"}
    )
    assert bad.status_code == 400
    admin_client_org.post(reverse("forecasting:budget_delete", args=[budget.public_id]))
    assert not Budget.objects.exists()


# --- Exports --------------------------------------------------------------------------------------


def test_csv_export_parses_and_holds_history_and_forecast(member_client, forecast):
    response = member_client.get(reverse("forecasting:export", args=["csv"]) + "?horizon=3&level=80")
    assert response["Content-Type"].startswith("text/csv") and "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    forecasts = [r for r in rows if r["kind"] == "forecast"]
    assert {r["service"] for r in forecasts} == {"Total", "Compute", "Storage"}
    assert len(forecasts) == 9  # three series, three months
    first = next(r for r in forecasts if r["service"] == "Total")
    assert first["month"] == "2026-11" and Decimal(first["lower_95"]) <= Decimal(first["amount"]) <= Decimal(
        first["upper_95"]
    )
    assert any(r["kind"] == "actual" and r["month"] == "2026-10" for r in rows)


def test_json_export_parses(member_client, forecast):
    data = json.loads(member_client.get(reverse("forecasting:export", args=["json"]) + "?horizon=12&level=65").content)
    total = data["series"][0]
    assert data["currency"] == "USD" and data["horizon"] == 12 and total["label"] == "Total"
    assert len(total["forecast"]) == 12 and set(total["forecast"][0]["bounds"]) == {"65", "80", "95"}
    assert [row["service"] for row in data["breakdown"]] == ["Compute", "Storage"]


def test_pdf_export_opens_and_contains_the_chart_and_tables(member_client, forecast):
    response = member_client.get(reverse("forecasting:export", args=["pdf"]) + "?horizon=6&level=95&service=Compute")
    assert response["Content-Type"] == "application/pdf" and response.content.startswith(b"%PDF-")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "Cost forecast: Acme Cloud" in text
    assert "USD per month" in text and "Forecast" in text  # the chart's own labels: it is drawn, not pasted
    assert "Lower 95 %" in text and "Breakdown by service" in text and "Storage" in text


def test_exporting_before_the_forecast_is_ready_redirects_with_a_message(member_client, costs):
    response = member_client.get(reverse("forecasting:export", args=["csv"]), follow=True)
    assert "still being computed" in response.content.decode()


def test_unknown_export_format_is_a_404(member_client, forecast):
    assert member_client.get(reverse("forecasting:export", args=["xlsx"])).status_code == 404
