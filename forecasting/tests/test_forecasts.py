"""Stored forecasts: what a run writes, the cache and its time to live, invalidation by imports, the nightly job."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from forecasting import selectors, services
from forecasting.models import CostForecast, ForecastRun
from forecasting.tests.conftest import compute_forecast, load_costs, synthetic_costs
from portal.tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def test_a_run_stores_every_month_of_the_total_and_each_service_with_bands(forecast, organization):
    assert forecast.status == "ready" and forecast.series_count == 3
    rows = CostForecast.objects.for_organization(organization).filter(run=forecast)
    assert rows.count() == 3 * 24
    assert set(rows.values_list("service", flat=True)) == {"", "Compute", "Storage"}
    first = rows.filter(service="").order_by("month").first()
    assert first.month == date(2026, 11, 1)  # the month after the last complete one
    assert (
        first.lower_95
        <= first.lower_80
        <= first.lower_65
        <= first.mean
        <= first.upper_65
        <= first.upper_80
        <= first.upper_95
    )
    assert first.model and first.backtest_mape is not None and first.coverage_80 is not None
    assert first.trend in {"increasing", "decreasing", "stable"} and first.currency == "USD"


def test_forecasts_expire_after_90_days(forecast, organization):
    assert forecast.expires_at - forecast.generated_at == timedelta(days=90)
    point = CostForecast.objects.for_organization(organization).filter(run=forecast).first()
    assert point.expires_at == forecast.expires_at
    later = timezone.now() + timedelta(days=91)
    assert selectors.forecast_state(organization=organization, now=later).ready is None
    assert services.forecasts_purge_expired(now=later) == 1
    assert not CostForecast.objects.exists()


def test_a_current_forecast_is_served_from_the_cache(forecast, organization):
    state = selectors.forecast_state(organization=organization)
    assert state.current and state.ready == forecast and state.active is None
    page = selectors.forecast_page(organization=organization, service="", horizon=6, level=80)
    assert page.ready and len(page.points) == 6  # shorter horizons are the stored run's first months


def test_an_import_invalidates_the_cache_and_the_next_run_replaces_it(forecast, organization, until):
    load_costs(organization, synthetic_costs(until=until + timedelta(days=30), months=1))
    state = selectors.forecast_state(organization=organization)
    assert state.ready == forecast and not state.current  # kept, but no longer served as current
    page = selectors.forecast_page(organization=organization, service="", horizon=12, level=80)
    assert not page.ready and page.points == []
    newer = compute_forecast(organization)
    assert newer.data_version == forecast.data_version + 1
    assert not ForecastRun.objects.filter(pk=forecast.pk).exists()  # one ready run per organization
    assert CostForecast.objects.for_organization(organization).filter(service="").first().month == date(2026, 12, 1)


def test_one_active_run_per_organization(costs, organization):
    first = services.forecast_run_request(organization=organization, reason="page")
    second = services.forecast_run_request(organization=organization, reason="import")
    assert first == second and first.status == "pending"
    with pytest.raises(IntegrityError), transaction.atomic():
        ForecastRun.objects.create(organization=organization, status="running")


def test_a_run_left_behind_by_a_dead_worker_is_replaced(costs, organization, settings):
    stale = services.forecast_run_request(organization=organization, reason="page")
    ForecastRun.objects.filter(pk=stale.pk).update(requested_at=timezone.now() - timedelta(hours=1))
    fresh = services.forecast_run_request(organization=organization, reason="page")
    stale.refresh_from_db()
    assert fresh != stale and stale.status == "failed" and "in time" in stale.error


def test_executing_a_run_twice_is_a_no_op(costs, organization):
    run = services.forecast_run_request(organization=organization, reason="test")
    services.forecast_run_execute(run_id=run.pk)
    assert services.forecast_run_execute(run_id=run.pk) is None
    assert services.forecast_run_execute(run_id=123456789) is None


def test_no_data_no_run(organization):
    assert services.forecast_run_request(organization=organization, reason="page") is None


def test_a_short_history_is_a_ready_run_with_a_note_not_an_error(organization, until):
    load_costs(organization, synthetic_costs(until=until, months=1))
    run = compute_forecast(organization)
    assert run.status == "ready" and run.series_count == 0
    assert any("at least 3 needed" in note for note in run.notes)


def test_engine_failure_marks_the_run_failed(costs, organization, monkeypatch):
    def broken(history):
        raise RuntimeError("stan exploded")

    monkeypatch.setattr(services, "forecast_series", broken)
    run = compute_forecast(organization)
    assert run.status == "failed" and "stan exploded" in run.error
    assert selectors.forecast_state(organization=organization).failed == run


def test_the_nightly_job_requests_one_run_per_organization_with_data(
    costs, organization, django_capture_on_commit_callbacks, monkeypatch
):
    other = OrganizationFactory(slug="initech")
    load_costs(other, synthetic_costs(until=date(2026, 10, 31), months=4))
    OrganizationFactory(slug="empty")  # no data: no run
    executed = []
    monkeypatch.setattr(services, "forecast_run_execute", lambda *, run_id: executed.append(run_id))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.forecasts_refresh_all() == 2
    assert sorted(ForecastRun.objects.values_list("organization__slug", "reason")) == [
        ("acme", "nightly"),
        ("initech", "nightly"),
    ]
    assert len(executed) == 2  # one task per organization


def test_data_imported_while_a_run_computes_triggers_another_run(
    costs, organization, until, django_capture_on_commit_callbacks, monkeypatch
):
    run = services.forecast_run_request(organization=organization, reason="test")
    original = selectors.monthly_history

    def import_meanwhile(**kwargs):
        history = original(**kwargs)
        load_costs(organization, synthetic_costs(until=until + timedelta(days=3), months=1))
        return history

    enqueued = []
    monkeypatch.setattr(selectors, "monthly_history", import_meanwhile)
    monkeypatch.setattr(services, "_enqueue", lambda name, *args: enqueued.append(name))
    with django_capture_on_commit_callbacks(execute=True):
        services.forecast_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "ready"
    assert ForecastRun.objects.filter(status="pending", reason="import").exists()
    assert "forecast_run_task" in enqueued
