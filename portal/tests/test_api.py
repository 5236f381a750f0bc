import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from portal import services
from portal.models import ApiToken, Event
from portal.tests.factories import MembershipFactory
from portal.throttling import OrganizationRateThrottle

pytestmark = pytest.mark.django_db

METRICS_EVENT = {"type": "metrics.updated", "organization": "acme", "data": {"metrics": {"cpu_percent": 40}}}


def test_unauthenticated_api_call_is_401_with_the_auth_scheme():
    response = APIClient().get(reverse("api:me"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_token_authenticates_as_its_user_in_its_organization(api_client, member):
    response = api_client.get(reverse("api:me"))
    assert response.status_code == 200
    assert response.json()["email"] == member.user.email
    assert response.json()["organization"]["slug"] == member.organization.slug


def test_bearer_keyword_is_accepted(member):
    _, key = services.api_token_create(membership=member, name="ci")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get(reverse("api:me")).status_code == 200


def test_wrong_or_revoked_token_is_401(member):
    token, key = services.api_token_create(membership=member, name="ci")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key[:-2]}xx")
    assert client.get(reverse("api:me")).status_code == 401
    services.api_token_revoke(membership=member, public_id=token.public_id)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get(reverse("api:me"))
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid or revoked API token."


def test_token_is_stored_hashed_and_shown_once(api_client):
    response = api_client.post(reverse("api:tokens"), {"name": "deploy bot"}, format="json")
    assert response.status_code == 201
    key = response.json()["key"]
    token = ApiToken.objects.get(public_id=response.json()["id"])
    assert key not in (token.key_hash, token.prefix) and len(token.key_hash) == 64
    listed = api_client.get(reverse("api:tokens")).json()["results"]
    assert all("key" not in row for row in listed)


def test_removed_member_token_stops_working(member):
    _, key = services.api_token_create(membership=member, name="ci")
    member.delete()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(reverse("api:me")).status_code == 401


def test_create_token_without_a_name_is_400_with_field_errors(api_client):
    response = api_client.post(reverse("api:tokens"), {"name": ""}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


def test_malformed_json_is_400_with_a_clear_message(api_client):
    response = api_client.post(reverse("api:tokens"), "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_oversize_body_is_400_and_writes_nothing(api_client):
    body = json.dumps({"name": "x" * (1024 * 1024 + 10)})
    before = ApiToken.objects.count()
    response = api_client.post(reverse("api:tokens"), body, content_type="application/json")
    assert response.status_code == 400
    assert "1 MiB" in response.json()["detail"]
    assert ApiToken.objects.count() == before


def test_throttle_is_shared_by_the_whole_organization(monkeypatch, member):
    monkeypatch.setattr(OrganizationRateThrottle, "THROTTLE_RATES", {"organization": "3/hour"})
    colleague = MembershipFactory(organization=member.organization)
    clients = []
    for m in (member, colleague):
        _, key = services.api_token_create(membership=m, name="ci")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        clients.append(client)
    statuses = [clients[i % 2].get(reverse("api:me")).status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    outsider = MembershipFactory()  # another organization has its own budget
    _, key = services.api_token_create(membership=outsider, name="ci")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert other.get(reverse("api:me")).status_code == 200


def test_session_api_calls_use_the_active_organization(member_client, member):
    response = member_client.get(reverse("api:me"))
    assert response.status_code == 200
    assert response.json()["organization"]["slug"] == member.organization.slug


def test_lists_are_paginated(api_client, member):
    for i in range(3):
        services.api_token_create(membership=member, name=f"t{i}")
    body = api_client.get(reverse("api:tokens"), {"page_size": 2}).json()
    assert body["count"] == 4 and len(body["results"]) == 2 and body["next"]


def test_event_list_rejects_unknown_types(api_client):
    response = api_client.get(reverse("api:events"), {"type": "nope"})
    assert response.status_code == 400
    assert "Unknown event type" in response.json()["type"][0]


# --- Platform event intake ----------------------------------------------------------------


def test_platform_event_is_stored_and_listed_for_its_organization(service_client, organization, api_client):
    response = service_client.post(reverse("api:events"), METRICS_EVENT, format="json")
    assert response.status_code == 201, response.json()
    event = Event.objects.get()
    assert event.organization == organization and event.source == "platform-metrics"
    listed = api_client.get(reverse("api:events")).json()["results"]
    assert [row["type"] for row in listed] == ["metrics.updated"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({**METRICS_EVENT, "type": "metrics.exploded"}, "type", "Unknown event type"),
        ({**METRICS_EVENT, "type": "ticket.created"}, "type", "cannot be sent from outside"),
        ({**METRICS_EVENT, "organization": "nobody"}, "organization", "No organization"),
        ({**METRICS_EVENT, "data": {"metrics": {"cpu": "high"}}}, "data.metrics.cpu", "is not of type 'number'"),
        ({**METRICS_EVENT, "data": {"metrics": {}}}, "data.metrics", "should be non-empty"),
        ({**METRICS_EVENT, "data": ["not", "an", "object"]}, "data", "JSON object"),
        ({"type": "metrics.updated"}, "organization", "required"),
        (
            {
                "type": "invoice.created",
                "organization": "acme",
                "data": {
                    "invoice": "INV-1",
                    "amount": "12.5",
                    "currency": "EUR",
                    "period_start": "2026-13-01",
                    "period_end": "2026-11-30",
                },
            },
            "data.period_start",
            "is not a 'date'",
        ),
    ],
)
def test_bad_platform_events_are_400_with_field_errors_and_nothing_written(
    service_client, organization, body, field, message
):
    response = service_client.post(reverse("api:events"), body, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert not Event.objects.exists()


def test_platform_event_intake_needs_a_service_token(api_client, organization):
    assert api_client.post(reverse("api:events"), METRICS_EVENT, format="json").status_code == 403
    assert APIClient().post(reverse("api:events"), METRICS_EVENT, format="json").status_code == 401
    assert not Event.objects.exists()


def test_service_token_cannot_read_customer_data(service_client, organization):
    assert service_client.get(reverse("api:me")).status_code == 401
    assert service_client.get(reverse("api:events")).status_code == 403


def test_openapi_schema_is_served_and_documents_the_api(client):
    response = client.get(reverse("api-schema"), HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert "/api/v1/tokens/" in schema["paths"] and "ApiToken" in schema["components"]["securitySchemes"]
    assert client.get(reverse("api-docs")).status_code == 200


def test_openapi_schema_validates_without_warnings():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_cors_is_closed_unless_the_origin_is_allowlisted(api_client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://dashboard.customer.example"]
    allowed = api_client.get(reverse("api:me"), HTTP_ORIGIN="https://dashboard.customer.example")
    assert allowed["Access-Control-Allow-Origin"] == "https://dashboard.customer.example"
    refused = api_client.get(reverse("api:me"), HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in refused
