"""Demo data: 36 months of realistic costs, a spike, utilisation and a budget; idempotent and quick."""

from __future__ import annotations

import io
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from forecasting import demo, selectors, services
from forecasting.models import Budget, CostRecord, ResourceUtilization
from portal.tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def test_seed_is_quick_idempotent_and_realistic(organization, other_organization, django_capture_on_commit_callbacks):
    MembershipFactory(organization=organization, role="admin")
    out = io.StringIO()
    started = time.monotonic()
    with django_capture_on_commit_callbacks() as callbacks:
        demo.seed(organizations=[organization, other_organization], agent=None, stdout=out)
    assert time.monotonic() - started < 15
    assert "Demo costs: acme" in out.getvalue() and len(callbacks) == 2  # forecasts + anomalies queued per org
    rows = CostRecord.objects.for_organization(organization)
    history = selectors.monthly_history(
        organization=organization, dataset=selectors.dataset_get(organization=organization)
    )
    assert len(history.months) == 36 and len(history.services) == len(demo.SERVICES)
    assert rows.filter(date=timezone.now().date() - timedelta(days=1)).exists()
    assert ResourceUtilization.objects.for_organization(organization).count() == demo.UTILIZATION_DAYS * len(
        demo.RESOURCES
    )
    assert Budget.objects.for_organization(organization).count() == 1
    count = rows.count()

    again = io.StringIO()
    demo.seed(organizations=[organization], agent=None, stdout=again)
    assert rows.count() == count and again.getvalue() == ""


def test_the_demo_spike_is_detected(organization):
    demo.seed(organizations=[organization], agent=None, stdout=io.StringIO())
    found = services.anomalies_detect(organization=organization)
    daily = [(a.service, a.date) for a in found if a.granularity == "daily"]
    spike_day = timezone.now().date() - timedelta(days=1 + demo.SPIKE_DAYS_AGO)
    assert (demo.SPIKE_SERVICE, spike_day) in daily
    assert len(found) <= 3  # the spike, not noise
