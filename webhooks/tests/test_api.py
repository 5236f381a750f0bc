"""The webhooks REST API: CRUD, secrets, test, deliveries and attempts, replay, recover, schema."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.testing import token_client
from webhooks import services
from webhooks.models import Delivery, DeliveryState, Endpoint
from webhooks.tests.receiver import Reply

pytestmark = pytest.mark.django_db


def _url(name, *args):
    return reverse(f"webhooks-api:{name}", args=args)


_client = token_client


@pytest.fixture
def admin_api(admin_member):
    return _client(admin_member)


@pytest.fixture
def member_api(member):
    return _client(member)


def test_admin_creates_reads_updates_and_deletes_an_endpoint(admin_api, receiver):
    response = admin_api.post(
        _url("endpoints"),
        {"url": receiver.url("/in"), "description": "ERP", "event_types": ["invoice.created"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["url"] == receiver.url("/in") and body["event_types"] == ["invoice.created"] and body["enabled"]
    assert "secret" not in json.dumps(body).lower().replace("secret_rotated_at", "").replace(
        "previous_secret_expires_at", ""
    )
    detail = _url("endpoint", body["id"])
    assert admin_api.get(detail).json()["health"] == {
        "attempts_24h": 0,
        "successes_24h": 0,
        "success_rate": None,
        "last_attempt_at": None,
        "last_success_at": None,
        "failing_since": None,
    }
    patched = admin_api.patch(detail, {"all_events": True, "description": "ERP v2"}, format="json")
    assert patched.status_code == 200 and patched.json()["all_events"] and patched.json()["description"] == "ERP v2"
    assert admin_api.delete(detail).status_code == 204
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"url": "https://10.0.0.1/x", "all_events": True}, "url", "private network"),
        ({"url": "gopher://x", "all_events": True}, "url", "must start with https://"),
        ({"url": "http://127.0.0.1:9/x", "event_types": ["nope.nope"]}, "event_types", "Unknown event type"),
        ({"url": "http://127.0.0.1:9/x", "event_types": "ticket.created"}, "event_types", "Expected a list"),
        (
            {"url": "http://127.0.0.1:9/x", "all_events": True, "description": "d" * 501},
            "description",
            "no more than 500",
        ),
        ({"url": "http://127.0.0.1:9/x", "all_events": True, "secret": "whsec_mine"}, "secret", "Unknown field"),
    ],
)
def test_bad_create_is_400_with_field_errors_and_nothing_saved(admin_api, payload, field, message):
    response = admin_api.post(_url("endpoints"), payload, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert not Endpoint.objects.exists()


def test_members_read_but_admin_operations_are_403(member_api, endpoint, organization, publish):
    publish(organization)
    msg_id = Delivery.objects.select_related("message").get().message.msg_id
    assert member_api.get(_url("endpoints")).status_code == 200
    assert member_api.get(_url("deliveries", endpoint.public_id)).status_code == 200
    assert member_api.get(_url("attempts", endpoint.public_id, msg_id)).status_code == 200
    forbidden = [
        ("post", _url("endpoints"), {"url": "http://127.0.0.1:9/", "all_events": True}),
        ("patch", _url("endpoint", endpoint.public_id), {"description": "x"}),
        ("delete", _url("endpoint", endpoint.public_id), None),
        ("get", _url("secret", endpoint.public_id), None),
        ("post", _url("secret-rotate", endpoint.public_id), None),
        ("post", _url("test", endpoint.public_id), None),
        ("post", _url("enable", endpoint.public_id), None),
        ("post", _url("disable", endpoint.public_id), None),
        ("post", _url("recover", endpoint.public_id), {"since": timezone.now().isoformat()}),
        ("post", _url("replay", endpoint.public_id, msg_id), None),
    ]
    for method, url, data in forbidden:
        response = getattr(member_api, method)(url, data, format="json")
        assert response.status_code == 403, (method, url)
        assert response.json()["detail"] == "Only organization admins can manage webhook endpoints."
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.description == ""


def test_secret_reveal_and_rotation(admin_api, admin_member, endpoint):
    revealed = admin_api.get(_url("secret", endpoint.public_id))
    assert revealed.status_code == 200 and revealed["Cache-Control"] == "no-store"
    old = revealed.json()["secret"]
    assert old == services.endpoint_secret_reveal(endpoint=endpoint, actor_membership=admin_member)
    rotated = admin_api.post(_url("secret-rotate", endpoint.public_id)).json()
    assert rotated["secret"] != old and rotated["secret"].startswith("whsec_")
    assert rotated["previous_secret_expires_at"] is not None


def test_send_test_returns_the_event_and_the_delivery(
    admin_api, endpoint, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post(_url("test", endpoint.public_id))
    assert response.status_code == 202 and response.json()["event"]
    [request] = receiver.requests
    assert json.loads(request.body)["type"] == "webhook.test"
    deliveries = admin_api.get(_url("deliveries", endpoint.public_id), {"event_type": "webhook.test"}).json()
    assert deliveries["count"] == 1 and deliveries["results"][0]["status"] == "succeeded"


def test_deliveries_filter_and_attempts_show_request_and_response(admin_api, endpoint, organization, publish, receiver):
    receiver.enqueue(Reply(status=400, body=b"nope"))
    publish(organization)
    publish(organization)
    failed = admin_api.get(_url("deliveries", endpoint.public_id), {"status": "failed"}).json()
    assert failed["count"] == 1
    delivery = failed["results"][0]
    assert delivery["event_type"] == "compliance.updated" and delivery["last_status"] == 400
    [attempt] = admin_api.get(_url("attempts", endpoint.public_id, delivery["message"])).json()["results"]
    assert attempt["response_status"] == 400 and attempt["response_body"] == "nope" and attempt["final"]
    assert attempt["request_headers"]["webhook-id"] == delivery["message"]
    since = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert admin_api.get(_url("deliveries", endpoint.public_id), {"since": since}).json()["count"] == 0


@pytest.mark.parametrize(("param", "value"), [("status", "exploded"), ("event_type", "nope"), ("since", "yesterday")])
def test_bad_delivery_filters_are_400(admin_api, endpoint, param, value):
    response = admin_api.get(_url("deliveries", endpoint.public_id), {param: value})
    assert response.status_code == 400 and param in response.json()


def test_replay_and_recover(admin_api, endpoint, organization, publish, receiver, django_capture_on_commit_callbacks):
    receiver.reply_with(Reply(status=404))
    publish(organization)
    publish(organization)
    receiver.reply_with(Reply(status=200))
    first = Delivery.objects.select_related("message").order_by("created_at").first()
    with django_capture_on_commit_callbacks(execute=True):
        replayed = admin_api.post(_url("replay", endpoint.public_id, first.message.msg_id))
    assert replayed.status_code == 202 and replayed.json()["message"] == first.message.msg_id
    first.refresh_from_db()
    assert first.state == DeliveryState.SUCCEEDED

    since = (timezone.now() - timedelta(hours=1)).isoformat()
    with django_capture_on_commit_callbacks(execute=True):
        recovered = admin_api.post(_url("recover", endpoint.public_id), {"since": since}, format="json")
    assert recovered.status_code == 202 and recovered.json() == {"recovered": 1, "more": False, "resume_from": None}
    too_old = admin_api.post(
        _url("recover", endpoint.public_id), {"since": (timezone.now() - timedelta(days=15)).isoformat()}, format="json"
    )
    assert too_old.status_code == 400 and "14 days" in too_old.json()["since"][0]


def test_disable_and_enable_with_recovery(admin_api, endpoint):
    disabled = admin_api.post(_url("disable", endpoint.public_id), {"reason": "Migrating"}, format="json").json()
    assert disabled["enabled"] is False and disabled["disabled_reason"] == "Migrating"
    since = (timezone.now() - timedelta(days=1)).isoformat()
    enabled = admin_api.post(_url("enable", endpoint.public_id), {"recover_since": since}, format="json").json()
    assert enabled["endpoint"]["enabled"] and enabled["recovery"] == {
        "recovered": 0,
        "more": False,
        "resume_from": None,
    }


def test_messages_list_and_detail(admin_api, endpoint, make_endpoint, organization, publish):
    make_endpoint("/second")
    publish(organization)
    messages = admin_api.get(_url("messages")).json()
    assert messages["count"] == 1
    message = messages["results"][0]
    assert message["id"].startswith("msg_") and message["payload"]["data"]["framework"] == "SOC 2"
    detail = admin_api.get(_url("message", message["id"])).json()
    assert [d["endpoint"] for d in detail["deliveries"]] == [
        str(e.public_id) for e in Endpoint.objects.order_by("created_at")
    ]


def test_event_types_lists_the_public_catalog(member_api):
    names = [t["name"] for t in member_api.get(_url("event-types")).json()]
    assert "ticket.created" in names and "notification.created" not in names


def test_lists_cost_a_fixed_number_of_queries(
    admin_api, make_endpoint, endpoint, organization, publish, django_assert_max_num_queries
):
    for i in range(5):
        make_endpoint(f"/e{i}")
    for _ in range(8):
        publish(organization)
    with django_assert_max_num_queries(6):
        assert len(admin_api.get(_url("endpoints")).json()["results"]) == 6
    with django_assert_max_num_queries(6):
        assert len(admin_api.get(_url("deliveries", endpoint.public_id)).json()["results"]) == 8
    with django_assert_max_num_queries(6):
        assert len(admin_api.get(_url("messages")).json()["results"]) == 8
    msg_id = admin_api.get(_url("messages")).json()["results"][0]["id"]
    with django_assert_max_num_queries(6):
        assert len(admin_api.get(_url("message", msg_id)).json()["deliveries"]) == 6


def test_every_webhooks_route_is_in_the_openapi_schema(client):
    # The schema as a whole validates without warnings (portal/tests/test_api.py); here: ours is in it.
    response = client.get(reverse("api-schema"), HTTP_ACCEPT="application/json")
    paths = json.loads(response.content)["paths"]
    for route in (
        "/api/v1/webhooks/endpoints/",
        "/api/v1/webhooks/endpoints/{public_id}/secret/rotate/",
        "/api/v1/webhooks/endpoints/{public_id}/test/",
        "/api/v1/webhooks/endpoints/{public_id}/recover/",
        "/api/v1/webhooks/endpoints/{public_id}/deliveries/{msg_id}/attempts/",
        "/api/v1/webhooks/endpoints/{public_id}/deliveries/{msg_id}/replay/",
        "/api/v1/webhooks/messages/",
    ):
        assert route in paths, route
