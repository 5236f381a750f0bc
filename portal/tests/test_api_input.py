"""Hostile input to the API: NUL bytes, deep JSON, unknown fields, odd pages, unknown routes.

Each is a clear 4xx in JSON (a 400 names the problem), never a 500 or an HTML page, and
nothing is written.
"""

import json

import pytest
from django.urls import path
from rest_framework.test import APIClient

from portal.api import MeApi
from portal.models import ApiToken
from portal.parsers import MAX_DEPTH
from portal.testing import _row_counts, token_client
from portal.urls import urlpatterns as portal_urlpatterns

pytestmark = pytest.mark.django_db

NUL_DETAIL = "The URL contains a NUL character (%00), which is never valid."


def _client(membership) -> APIClient:
    return token_client(membership, raise_request_exception=False)


@pytest.fixture
def api(member):
    return _client(member)


@pytest.fixture
def admin_api(admin_member):
    return _client(admin_member)


@pytest.fixture
def endpoint_id(admin_api, settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    response = admin_api.post(
        "/api/v1/webhooks/endpoints/", {"url": "http://127.0.0.1:9/in", "all_events": True}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


# --- NUL in the URL ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/costs/anomalies/?service=a%00b",
        "/api/v1/costs/utilization/?service=a%00b",
        "/api/v1/costs/utilization/?resource_id=a%00b",
        "/api/v1/costs/records/?service=a%00b",
        "/api/v1/tickets/?q=ok&q%00=x",
        "/api/v1/webhooks/messages/a%00b/",
    ],
)
def test_a_nul_in_an_api_url_is_a_json_400_and_writes_nothing(api, url):
    before = _row_counts()
    response = api.get(url)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": NUL_DETAIL}
    assert _row_counts() == before


@pytest.mark.parametrize(("method", "suffix"), [("get", "attempts/"), ("post", "replay/")])
def test_a_nul_in_a_webhook_message_id_is_a_json_400_and_writes_nothing(admin_api, endpoint_id, method, suffix):
    before = _row_counts()
    response = getattr(admin_api, method)(f"/api/v1/webhooks/endpoints/{endpoint_id}/deliveries/a%00b/{suffix}")
    assert response.status_code == 400 and response.json() == {"detail": NUL_DETAIL}
    assert _row_counts() == before


def test_a_nul_in_a_page_url_is_a_short_plain_400(member_client):
    response = member_client.get("/costs/?service=a%00b")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == NUL_DETAIL


def test_an_encoded_percent_zero_zero_is_not_a_nul(api):
    # "%2500" is the text "%00": an ordinary (if odd) filter value, not a NUL byte.
    assert api.get("/api/v1/costs/records/?service=%2500").status_code == 200


# --- JSON bodies: depth and NUL ---------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/v1/tokens/", "/graphql/"])
def test_json_nested_past_pythons_recursion_limit_is_a_400(api, url):
    before = _row_counts()
    response = api.post(url, b"[" * 5000 + b"]" * 5000, content_type="application/json")
    assert response.status_code == 400
    assert "JSON nested too deeply" in response.content.decode()
    assert _row_counts() == before


def test_json_nested_past_the_depth_limit_is_a_400_and_just_below_it_parses(api):
    def body(depth):
        return json.dumps({"name": "ok", "x": json.loads("[" * (depth - 1) + "]" * (depth - 1))})

    too_deep = api.post("/api/v1/tokens/", body(MAX_DEPTH + 1), content_type="application/json")
    assert too_deep.status_code == 400 and "nested too deeply" in too_deep.json()["detail"]
    # At the limit the body parses: the 400 now comes from the view (an unknown field).
    at_limit = api.post("/api/v1/tokens/", body(MAX_DEPTH), content_type="application/json")
    assert at_limit.status_code == 400 and at_limit.json() == {"x": ["Unknown field."]}


def test_a_nul_in_an_event_is_a_400_and_stores_nothing(service_client, organization):
    from portal.models import Event

    service_client.raise_request_exception = False
    response = service_client.post(
        "/api/v1/events/",
        {"type": "notice.published", "organization": "acme", "data": {"title": "a\u0000b", "body": "x"}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "JSON strings must not contain the NUL character (\\u0000)."}
    assert not Event.objects.exists()


@pytest.mark.parametrize("body", [{"name": "a\u0000b"}, {"name\u0000": "ok"}, {"name": "ok", "x": [[{"y": "\u0000"}]]}])
def test_a_nul_anywhere_in_a_token_body_is_a_400(api, member, body):
    response = api.post("/api/v1/tokens/", body, format="json")
    assert response.status_code == 400 and "NUL" in response.json()["detail"]
    assert ApiToken.objects.filter(membership=member).count() == 1  # the client's own token


def test_a_nul_in_a_graphql_variable_is_a_400(api):
    response = api.post(
        "/graphql/",
        {"query": "query($q: String) { tickets(q: $q) { totalCount } }", "variables": {"q": "a\u0000b"}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


# --- Tokens: unknown fields, strict name, no caching of the key -------------------------------


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"name": "ok", "nmae": 1}, {"nmae": ["Unknown field."]}),
        ({"name": 12}, {"name": ["Not a valid string."]}),
        ({"name": True}, {"name": ["Not a valid string."]}),
        (["name"], {"non_field_errors": ["Send a JSON object."]}),
    ],
)
def test_a_token_body_with_an_unknown_field_or_a_non_string_name_is_a_400(api, member, body, errors):
    response = api.post("/api/v1/tokens/", body, format="json")
    assert response.status_code == 400 and response.json() == errors
    assert ApiToken.objects.filter(membership=member).count() == 1


def test_a_new_tokens_key_is_never_cached(api):
    response = api.post("/api/v1/tokens/", {"name": "deploy"}, format="json")
    assert response.status_code == 201 and response.json()["key"]
    assert "no-store" in response["Cache-Control"]


# --- Pages of lists ---------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/v1/tickets/", "/api/v1/members/", "/api/v1/costs/records/"])
@pytest.mark.parametrize("page", ["0", "-1", "²", "abc", "1.5", " 1", "00"])
def test_a_malformed_page_is_a_400_naming_page(api, url, page):
    response = api.get(url, {"page": page})
    assert response.status_code == 400
    assert list(response.json()) == ["page"]


def test_a_page_past_the_end_stays_a_404_and_first_and_last_pages_answer(api):
    assert api.get("/api/v1/members/", {"page": "2"}).status_code == 404
    for page in ("1", "01", "last", ""):
        response = api.get("/api/v1/members/", {"page": page})
        assert response.status_code == 200 and response.json()["count"] == 1


# --- JSON for unknown routes and server errors under /api/ ------------------------------------


def test_an_unknown_api_route_is_a_json_404(api):
    response = api.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_a_request_django_refuses_before_the_api_is_a_json_400(api):
    # An unknown Host is refused by Django itself (SuspiciousOperation), before any DRF view.
    response = api.get("/api/v1/me/", HTTP_HOST="attacker.example")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json" and response.json() == {"detail": "Bad request."}


def test_an_unknown_page_is_still_the_html_404(member_client):
    response = member_client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_a_server_error_under_api_is_json(api, monkeypatch, settings):
    settings.DEBUG = False

    def crash(self, request):
        raise RuntimeError("boom")

    monkeypatch.setattr(MeApi, "get", crash)
    response = api.get("/api/v1/me/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"detail"} and "boom" not in response.content.decode()


def _crash(request):
    raise RuntimeError("boom")


urlpatterns = [path("crash/", _crash), *portal_urlpatterns]
handler500 = "portal.exceptions.server_error"


@pytest.mark.urls(__name__)
def test_a_server_error_on_a_page_is_still_the_html_500(client, settings):
    settings.DEBUG = False
    client.raise_request_exception = False
    response = client.get("/crash/")
    assert response.status_code == 500 and response["Content-Type"].startswith("text/html")
