"""Budgets: thresholds on actual month-to-date and forecast month-end spend, each reached once a month."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from forecasting import selectors, services
from forecasting.models import BudgetAlert, CostForecast
from forecasting.tests.conftest import load_costs, synthetic_costs
from portal import events
from portal.models import Event

pytestmark = pytest.mark.django_db
OCTOBER = date(2026, 10, 15)
NOVEMBER = date(2026, 11, 10)


def october_total(organization):
    return selectors.month_to_date(organization=organization, month=date(2026, 10, 1))[""]


def alerts():
    return sorted(BudgetAlert.objects.values_list("threshold", "basis", "month"))


def test_actual_spend_past_both_thresholds_alerts_once_each(costs, organization, admin_member):
    spent = october_total(organization)
    budget = services.budget_create(
        organization=organization, actor=admin_member.user, amount=spent * Decimal("0.9"), today=OCTOBER
    )
    assert budget.thresholds == [80, 100] and budget.currency == "USD"
    assert alerts() == [(80, "actual", date(2026, 10, 1)), (100, "actual", date(2026, 10, 1))]
    payloads = [e.payload for e in Event.objects.filter(type=events.BUDGET_THRESHOLD_REACHED).order_by("id")]
    assert [p["threshold"] for p in payloads] == [80, 100]
    assert payloads[0] == {
        "budget": str(budget.public_id),
        "threshold": 80,
        "basis": "actual",
        "amount": f"{spent.quantize(Decimal('0.01')):f}",
        "budget_amount": f"{budget.amount:f}",
        "currency": "USD",
        "month": "2026-10",
    }
    assert all(events.event_payload_errors(events.BUDGET_THRESHOLD_REACHED, p) == {} for p in payloads)

    # Evaluating again (every import, every forecast run) adds nothing.
    assert services.budgets_evaluate(organization=organization, today=OCTOBER) == []
    assert Event.objects.count() == 2


def test_the_next_month_starts_afresh(costs, organization, until):
    budget = services.budget_create(organization=organization, actor=None, amount=10, today=OCTOBER)
    load_costs(organization, synthetic_costs(until=until + timedelta(days=5), months=1))
    services.budgets_evaluate(organization=organization, today=NOVEMBER, budgets=[budget])
    november = {(t, b) for t, b, m in alerts() if m == date(2026, 11, 1)}
    assert november == {(80, "actual"), (100, "actual")}  # October's alerts do not silence November's
    assert BudgetAlert.objects.filter(month=date(2026, 10, 1)).count() == 2


def test_forecast_month_end_reaches_a_threshold_before_the_spend_does(forecast, organization):
    expected = CostForecast.objects.get(run=forecast, service="", month=date(2026, 11, 1)).mean
    budget = services.budget_create(
        organization=organization, actor=None, amount=expected * Decimal("1.1"), today=NOVEMBER
    )
    assert alerts() == [(80, "forecast", date(2026, 11, 1))]
    event = Event.objects.get(type=events.BUDGET_THRESHOLD_REACHED)
    assert event.payload["basis"] == "forecast" and event.payload["budget"] == str(budget.public_id)
    status = selectors.budget_statuses(organization=organization, today=NOVEMBER)[0]
    assert status.actual == 0 and status.forecast == expected and status.state == "warning"


def test_a_new_forecast_run_checks_the_budgets(costs, organization):
    budget = services.budget_create(organization=organization, actor=None, amount=1, today=NOVEMBER)
    assert alerts() == []  # no spend in November and no forecast yet
    run = services.forecast_run_request(organization=organization, reason="test")
    import forecasting.services as module

    original = module.budgets_evaluate

    def in_november(**kwargs):
        return original(**kwargs, today=NOVEMBER)

    module.budgets_evaluate = in_november
    try:
        services.forecast_run_execute(run_id=run.pk)
    finally:
        module.budgets_evaluate = original
    assert {(a.threshold, a.basis) for a in BudgetAlert.objects.filter(budget=budget)} == {
        (80, "forecast"),
        (100, "forecast"),
    }


def test_a_service_budget_names_its_service(costs, organization):
    services.budget_create(
        organization=organization, actor=None, service="Storage", amount=1, thresholds=[50], today=OCTOBER
    )
    event = Event.objects.get(type=events.BUDGET_THRESHOLD_REACHED)
    assert event.payload["service"] == "Storage" and event.payload["threshold"] == 50


def test_an_import_that_crosses_a_threshold_alerts_in_the_same_transaction(costs, organization, until, monkeypatch):
    spent = october_total(organization)
    services.budget_create(organization=organization, actor=None, amount=spent * 2, thresholds=[100], today=OCTOBER)
    assert alerts() == []
    monkeypatch.setattr(services.periods, "month_start", lambda day: date(2026, 10, 1))
    load_costs(organization, synthetic_costs(until=until, months=0, services_levels={"Compute": 10_000.0}))
    assert alerts() == [(100, "actual", date(2026, 10, 1))]


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"amount": 0}, "amount", "more than zero"),
        ({"amount": "abc"}, "amount", "as a number"),
        ({"amount": 10**13}, "amount", "implausibly large"),
        ({"amount": 10, "thresholds": [0]}, "thresholds", "between 1 and 1000"),
        ({"amount": 10, "thresholds": []}, "thresholds", "at least one"),
        ({"amount": 10, "thresholds": [10, 20, 30, 40, 50, 60]}, "thresholds", "At most 5"),
        ({"amount": 10, "service": "Teleportation"}, "service", "no costs for a service named"),
    ],
)
def test_budget_validation(costs, organization, kwargs, field, message):
    with pytest.raises(ValidationError) as excinfo:
        services.budget_create(organization=organization, actor=None, **kwargs)
    assert message in " ".join(excinfo.value.message_dict[field])


def test_one_budget_per_scope(costs, organization):
    services.budget_create(organization=organization, actor=None, amount=10**6)
    with pytest.raises(ValidationError, match="already has a budget"):
        services.budget_create(organization=organization, actor=None, amount=10**6)


def test_budgets_need_cost_data_for_their_currency(organization):
    with pytest.raises(ValidationError, match="Import cost data first"):
        services.budget_create(organization=organization, actor=None, amount=100)


def test_update_and_delete(costs, organization):
    budget = services.budget_create(organization=organization, actor=None, amount=10**6, today=OCTOBER)
    services.budget_update(budget=budget, actor=None, amount=1, thresholds=[90], today=OCTOBER)
    budget.refresh_from_db()
    assert budget.amount == Decimal("1.00") and budget.thresholds == [90]
    assert alerts() == [(90, "actual", date(2026, 10, 1))]
    services.budget_delete(budget=budget, actor=None)
    assert not BudgetAlert.objects.exists()
