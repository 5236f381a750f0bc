"""Anomalies: spikes judged against the engine's band, recorded and published once each."""

from __future__ import annotations

from datetime import date

import pytest

from forecasting import services
from forecasting.models import CostAnomaly
from forecasting.tests.conftest import load_costs, synthetic_costs
from portal import events
from portal.models import Event

pytestmark = pytest.mark.django_db


def test_a_daily_spike_is_found_once_and_published_once(organization, until):
    load_costs(organization, synthetic_costs(until=until, spike=("Storage", date(2026, 10, 28), 4.0)))
    found = services.anomalies_detect(organization=organization)
    assert [(a.service, a.granularity, a.date) for a in found] == [("Storage", "daily", date(2026, 10, 28))]
    anomaly = found[0]
    assert anomaly.actual > anomaly.upper > anomaly.expected > 0
    assert anomaly.impact == anomaly.actual - anomaly.expected and anomaly.impact_percent > 200
    event = Event.objects.get(type=events.FORECAST_ANOMALY_DETECTED)
    assert event.organization == organization
    assert event.payload["anomaly"] == str(anomaly.public_id)
    assert event.payload["service"] == "Storage" and event.payload["date"] == "2026-10-28"
    assert event.payload["granularity"] == "daily" and event.payload["currency"] == "USD"
    assert events.event_payload_errors(events.FORECAST_ANOMALY_DETECTED, event.payload) == {}

    # Detecting again (a re-import, a retried task) finds the same spike and records nothing new.
    assert services.anomalies_detect(organization=organization) == []
    assert CostAnomaly.objects.count() == 1 and Event.objects.count() == 1


def test_a_monthly_spike_is_judged_against_the_monthly_band(organization, until):
    load_costs(organization, synthetic_costs(until=until, month_factor=("Compute", date(2026, 10, 1), 1.8)))
    found = services.anomalies_detect(organization=organization)
    monthly = [a for a in found if a.granularity == "monthly"]
    assert [(a.service, a.date) for a in monthly] == [("Compute", date(2026, 10, 1))]
    assert 60 < monthly[0].impact_percent < 100


def test_ordinary_spend_raises_no_anomaly(organization, until):
    load_costs(organization, synthetic_costs(until=until))
    assert services.anomalies_detect(organization=organization) == []
    assert not Event.objects.exists()


def test_only_the_imported_days_are_judged(organization, until):
    load_costs(organization, synthetic_costs(until=until, spike=("Storage", date(2026, 10, 20), 4.0)))
    assert services.anomalies_detect(organization=organization, since=date(2026, 10, 25)) == []
    assert len(services.anomalies_detect(organization=organization, since=date(2026, 10, 20))) == 1


def test_small_spikes_below_the_minimum_impact_are_ignored(organization, until, settings):
    settings.FORECAST_ANOMALY_MIN_AMOUNT = 1000
    load_costs(organization, synthetic_costs(until=until, spike=("Storage", date(2026, 10, 28), 4.0)))
    assert services.anomalies_detect(organization=organization) == []


def test_no_data_no_anomalies(organization):
    assert services.anomalies_detect(organization=organization) == []
