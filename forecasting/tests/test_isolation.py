"""Another organization's imports, budgets and services: a plain 404 on every route, no side effect."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from forecasting import services
from forecasting.models import CostImport
from forecasting.tests.conftest import load_costs, synthetic_costs
from portal import services as portal_services
from portal.testing import assert_cross_org_404

pytestmark = pytest.mark.django_db


@pytest.fixture
def theirs(other_organization, until):
    """Globex's cost data (a service Acme does not have), budget and import."""
    load_costs(other_organization, synthetic_costs(until=until, months=4, services_levels={"Globex Secret DB": 50.0}))
    budget = services.budget_create(organization=other_organization, actor=None, amount=10**6)
    cost_import = CostImport.objects.filter(organization=other_organization).get()
    return budget, cost_import


@pytest.fixture
def admin_api(admin_member):
    _, key = portal_services.api_token_create(membership=admin_member, name="admin")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_pages_answer_404_for_another_organizations_objects(admin_client_org, costs, theirs):
    budget, cost_import = theirs
    c = admin_client_org
    assert_cross_org_404(
        c, "get", reverse("forecasting:import_detail", args=[cost_import.public_id]), unchanged=[cost_import]
    )
    assert_cross_org_404(
        c,
        "post",
        reverse("forecasting:budget_update", args=[budget.public_id]),
        {"amount": "1", "thresholds": "10"},
        unchanged=[budget],
    )
    assert_cross_org_404(c, "post", reverse("forecasting:budget_delete", args=[budget.public_id]), unchanged=[budget])
    # Their service's name is just an unknown service here.
    assert_cross_org_404(c, "get", reverse("forecasting:overview") + "?service=Globex+Secret+DB")
    for fmt in ("csv", "json", "pdf"):
        assert_cross_org_404(c, "get", reverse("forecasting:export", args=[fmt]) + "?service=Globex+Secret+DB")
    assert_cross_org_404(c, "get", reverse("forecasting:import_detail", args=["00000000-0000-0000-0000-000000000000"]))


def test_api_answers_404_for_another_organizations_objects(admin_api, costs, theirs):
    budget, cost_import = theirs
    api = admin_api
    budget_url = reverse("forecasting-api:budget", args=[budget.public_id])
    assert_cross_org_404(api, "get", budget_url)
    assert_cross_org_404(api, "patch", budget_url, {"amount": "1"}, unchanged=[budget])
    assert_cross_org_404(api, "delete", budget_url, unchanged=[budget])
    assert_cross_org_404(
        api, "get", reverse("forecasting-api:import", args=[cost_import.public_id]), unchanged=[cost_import]
    )
    assert_cross_org_404(api, "get", reverse("forecasting-api:forecast") + "?service=Globex+Secret+DB")
    assert_cross_org_404(api, "post", reverse("forecasting-api:forecast"), {"service": "Globex Secret DB"})
    for fmt in ("csv", "json", "pdf"):
        assert_cross_org_404(api, "get", reverse("forecasting-api:export", args=[fmt]) + "?service=Globex+Secret+DB")


def test_lists_and_exports_never_show_another_organizations_data(
    admin_api, admin_client_org, costs, theirs, organization
):
    assert "Globex Secret DB" not in admin_client_org.get(reverse("forecasting:overview")).content.decode()
    assert "Globex Secret DB" not in admin_client_org.get(reverse("forecasting:import")).content.decode()
    for name in ("budgets", "anomalies", "records", "imports", "utilization", "recommendations", "breakdown"):
        body = admin_api.get(reverse(f"forecasting-api:{name}")).content.decode()
        assert "Globex" not in body, name
    assert admin_api.get(reverse("forecasting-api:budgets")).json()["count"] == 0


def test_a_budget_for_their_service_is_refused(admin_api, costs, theirs):
    response = admin_api.post(
        reverse("forecasting-api:budgets"), {"amount": "5", "service": "Globex Secret DB"}, format="json"
    )
    assert response.status_code == 400 and "service" in response.json()
