"""Who may call /graphql/: the REST API's credentials, organization and throttle."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from graphql_api.tests.conftest import URL, gql, post, token_client
from portal import services as portal_services
from portal.tests.factories import MembershipFactory, UserFactory
from portal.throttling import OrganizationRateThrottle

pytestmark = pytest.mark.django_db

ME = "{ metrics { openTickets } }"


def test_no_credentials_is_unauthenticated_401_in_graphql_shape():
    response = post(APIClient(), ME)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in response.json()


def test_a_revoked_or_unknown_token_is_unauthenticated():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token sbp_not-a-real-key")
    response = post(client, ME)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_a_service_token_is_not_a_member(db):
    _, key = portal_services.service_token_create(name="platform")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert post(client, ME).json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_an_api_token_works(gql_client):
    assert gql(gql_client, ME) == {"metrics": {"openTickets": 0}}


def test_a_session_needs_the_csrf_token_and_then_works(member):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(member.user)
    refused = post(browser, ME)
    assert refused.status_code == 403
    error = refused.json()["errors"][0]
    assert error["extensions"]["code"] == "FORBIDDEN" and "CSRF" in error["message"]
    browser.get("/accounts/login/")  # any page sets the CSRF cookie
    browser.get("/")
    token = browser.cookies["csrftoken"].value
    accepted = post(browser, ME, HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200 and accepted.json() == {"data": {"metrics": {"openTickets": 0}}}


def test_a_signed_in_user_without_an_organization_is_forbidden(db):
    client = Client()
    client.force_login(UserFactory())
    response = post(client, ME)
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_graphiql_is_served_to_signed_in_browsers_with_a_csp_that_allows_only_it(member_client):
    response = member_client.get(URL, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"graphiql" in response.content.lower()
    csp = response["Content-Security-Policy"]
    assert "https://unpkg.com" in csp
    other = member_client.get("/")
    assert "unpkg" not in other["Content-Security-Policy"]


def test_graphiql_sends_anonymous_visitors_to_sign_in_unless_debug(client, settings):
    settings.DEBUG = False
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    settings.DEBUG = True
    assert client.get(URL).status_code == 200


def test_throttle_is_the_rest_apis_budget_shared_by_rest_and_graphql(monkeypatch, member):
    monkeypatch.setattr(OrganizationRateThrottle, "THROTTLE_RATES", {"organization": "3/hour"})
    colleague = MembershipFactory(organization=member.organization)
    graphql, rest = token_client(member), token_client(colleague)
    assert post(graphql, ME).status_code == 200
    assert rest.get("/api/v1/me/").status_code == 200
    assert post(graphql, ME).status_code == 200
    throttled = post(graphql, ME)
    assert throttled.status_code == 429
    assert throttled["Retry-After"]
    error = throttled.json()["errors"][0]
    assert error["extensions"]["code"] == "THROTTLED" and error["extensions"]["retryAfter"] > 0
    assert rest.get("/api/v1/me/").status_code == 429  # one budget per organization
    outsider = token_client(MembershipFactory())
    assert post(outsider, ME).status_code == 200
