"""Another organization's endpoints, messages and test events: a plain 404 on every route, no side effect."""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from portal import services as portal_services
from portal.testing import assert_cross_org_404
from webhooks import services
from webhooks.models import Delivery, Endpoint
from webhooks.tests.receiver import Reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def theirs(other_member, make_endpoint, other_organization, publish, receiver, run_commit_hooks):
    """Globex's endpoint with a failed message and a test event; Acme's admin is the caller."""
    receiver.reply_with(Reply(status=400))
    endpoint = make_endpoint("/globex", membership=other_member)
    publish(other_organization)
    event = run_commit_hooks(services.endpoint_test_send, endpoint=endpoint, actor_membership=other_member)
    delivery = Delivery.objects.select_related("message").filter(endpoint=endpoint).order_by("created_at").first()
    endpoint.refresh_from_db()
    return endpoint, delivery.message.msg_id, event.public_id


@pytest.fixture
def mine(make_endpoint):
    return make_endpoint("/acme")


def _since():
    return (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")


def test_every_page_answers_404_for_another_organizations_endpoint(client, admin_member, theirs, mine):
    endpoint, msg_id, event_id = theirs
    client.force_login(admin_member.user)
    ep = endpoint.public_id

    def url(name, *args):
        return reverse(f"webhooks:{name}", args=args)

    routes = [
        ("get", url("detail", ep), None),
        ("get", url("edit", ep), None),
        ("post", url("edit", ep), {"url": "http://127.0.0.1:9/x", "all_events": "on"}),
        ("get", url("delete", ep), None),
        ("post", url("delete", ep), {}),
        ("post", url("secret", ep), {}),
        ("post", url("secret_rotate", ep), {}),
        ("post", url("enable", ep), {}),
        ("post", url("disable", ep), {}),
        ("post", url("recover", ep), {"since": _since()}),
        ("post", url("test", ep), {}),
        ("get", url("test_result", ep, event_id), None),
        ("get", url("delivery", ep, msg_id), None),
        ("post", url("replay", ep, msg_id), {}),
        # Our own endpoint with their message or their test event.
        ("get", url("delivery", mine.public_id, msg_id), None),
        ("post", url("replay", mine.public_id, msg_id), {}),
        ("get", url("test_result", mine.public_id, event_id), None),
        # Malformed and unknown ids are the same 404.
        ("get", url("delivery", mine.public_id, "msg_not-a-real-id"), None),
        ("get", url("detail", uuid.uuid4()), None),
    ]
    for method, path, data in routes:
        assert_cross_org_404(client, method, path, data, unchanged=[endpoint])
        assert_cross_org_404(client, method, path, data, HTTP_HX_REQUEST="true", unchanged=[endpoint])


def test_every_api_route_answers_404_for_another_organizations_ids(admin_member, theirs, mine):
    endpoint, msg_id, _event_id = theirs
    _, key = portal_services.api_token_create(membership=admin_member, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    ep = endpoint.public_id

    def url(name, *args):
        return reverse(f"webhooks-api:{name}", args=args)

    routes = [
        ("get", url("endpoint", ep), None),
        ("patch", url("endpoint", ep), {"description": "mine now"}),
        ("delete", url("endpoint", ep), None),
        ("get", url("secret", ep), None),
        ("post", url("secret-rotate", ep), None),
        ("post", url("test", ep), None),
        ("post", url("enable", ep), {"recover_since": timezone.now().isoformat()}),
        ("post", url("disable", ep), {"reason": "x"}),
        ("post", url("recover", ep), {"since": timezone.now().isoformat()}),
        ("get", url("deliveries", ep), None),
        ("get", url("attempts", ep, msg_id), None),
        ("post", url("replay", ep, msg_id), None),
        ("get", url("attempts", mine.public_id, msg_id), None),
        ("post", url("replay", mine.public_id, msg_id), None),
        ("get", url("message", msg_id), None),
    ]
    for method, path, data in routes:
        response = assert_cross_org_404(client, method, path, data, unchanged=[endpoint])
        assert response.json() == {"detail": "Not found."}


def test_lists_never_show_another_organizations_rows(admin_member, theirs, mine):
    _, key = portal_services.api_token_create(membership=admin_member, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    endpoints = client.get(reverse("webhooks-api:endpoints")).json()["results"]
    assert [e["id"] for e in endpoints] == [str(mine.public_id)]
    assert client.get(reverse("webhooks-api:messages")).json()["count"] == 0
    assert Endpoint.objects.count() == 2


def test_a_test_event_never_crosses_organizations(admin_member, other_member, make_endpoint, publish, receiver):
    """A webhook.test naming another organization's endpoint reaches nobody."""
    theirs = make_endpoint("/globex", membership=other_member)
    make_endpoint("/acme")
    from portal import events

    publish(admin_member.organization, events.WEBHOOK_TEST, {"endpoint": str(theirs.public_id)})
    assert receiver.requests == []
