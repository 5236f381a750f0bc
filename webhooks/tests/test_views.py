"""Webhook pages: list, forms, detail with the delivery log, secrets, test events, replay, recovery.

Every action works as a plain form post (no JavaScript) and, where the page uses htmx, as a
fragment swap.
"""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.tests.factories import MembershipFactory
from webhooks import services
from webhooks.models import Attempt, Delivery, DeliveryState, Endpoint
from webhooks.tests.receiver import Reply

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def _url(name, *args):
    return reverse(f"webhooks:{name}", args=args)


@pytest.fixture
def admin_client(client, admin_member):
    client.force_login(admin_member.user)
    return client


@pytest.fixture
def member_client(client, member, admin_member):
    client.force_login(member.user)
    return client


# --- List -------------------------------------------------------------------------------------


def test_list_shows_health_and_the_add_button_to_admins(admin_client, endpoint, organization, publish, receiver):
    receiver.enqueue(Reply(status=500))
    publish(organization)
    publish(organization)
    page = admin_client.get(_url("list")).content.decode()
    assert endpoint.url in page and "Add endpoint" in page
    assert "50 %" in page and "of 2 attempts" in page and "Enabled" in page


def test_members_see_endpoints_but_no_admin_actions(member_client, endpoint):
    page = member_client.get(_url("list")).content.decode()
    assert endpoint.url in page and "Add endpoint" not in page
    detail = member_client.get(_url("detail", endpoint.public_id)).content.decode()
    assert "Delivery log" in detail
    for action in ("Reveal secret", "Rotate secret", "Send test event", "Disable endpoint", ">Edit<", ">Delete<"):
        assert action not in detail


def test_empty_state_invites_the_first_endpoint(admin_client):
    assert "Add your first endpoint" in admin_client.get(_url("list")).content.decode()


def test_list_costs_a_fixed_number_of_queries(admin_client, make_endpoint, organization, publish, django_assert_max_num_queries):
    for i in range(12):
        make_endpoint(f"/e{i}")
    publish(organization)
    with django_assert_max_num_queries(8):
        response = admin_client.get(_url("list"))
    assert response.content.decode().count('id="endpoint-row-') == 12


# --- Create, edit, delete ----------------------------------------------------------------------


def test_admin_adds_an_endpoint_with_the_event_picker(admin_client, receiver):
    response = admin_client.post(
        _url("create"),
        {"url": receiver.url("/in"), "description": "Billing sync", "event_types": ["invoice.created", "ticket.created"]},
    )
    endpoint = Endpoint.objects.get()
    assert response.status_code == 302 and response["Location"] == _url("detail", endpoint.public_id)
    assert endpoint.event_types == ["invoice.created", "ticket.created"] and not endpoint.all_events


def test_the_form_has_labelled_checkboxes_for_every_public_event_type(admin_client):
    page = admin_client.get(_url("create")).content.decode()
    assert "<legend>Events to send</legend>" in page
    assert 'value="ticket.created"' in page and 'for="id_event_types_0"' in page
    assert 'value="notification.created"' not in page  # private


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"url": "http://10.0.0.1/x", "all_events": "on"}, "private network address"),
        ({"url": "http://127.0.0.1:9/x", "event_types": ["ticket.exploded"]}, "Select a valid choice"),
        ({"url": "http://127.0.0.1:9/x"}, "Choose at least one event type"),
        ({"url": "http://127.0.0.1:9/x", "all_events": "on", "description": "x" * 501}, "at most 500 characters"),
        ({"url": "", "all_events": "on"}, "This field is required"),
    ],
)
def test_bad_input_re_renders_the_form_with_errors_and_saves_nothing(admin_client, data, message):
    response = admin_client.post(_url("create"), data)
    assert response.status_code == 400 and message in response.content.decode()
    assert not Endpoint.objects.exists()


def test_members_cannot_open_admin_pages(member_client, endpoint):
    assert member_client.get(_url("create")).status_code == 403
    assert member_client.post(_url("create"), {"url": "http://127.0.0.1/x", "all_events": "on"}).status_code == 403
    for name in ("edit", "delete", "secret", "secret_rotate", "test", "enable", "disable", "recover"):
        assert member_client.post(_url(name, endpoint.public_id)).status_code == 403, name
    assert not Endpoint.objects.exclude(pk=endpoint.pk).exists() and Endpoint.objects.get().enabled


def test_edit_keeps_values_and_saves_changes(admin_client, endpoint, receiver):
    page = admin_client.get(_url("edit", endpoint.public_id)).content.decode()
    assert endpoint.url in page and "checked" in page
    response = admin_client.post(
        _url("edit", endpoint.public_id), {"url": receiver.url("/moved"), "event_types": ["ticket.created"]}
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.url.endswith("/moved") and endpoint.event_types == ["ticket.created"]


def test_delete_asks_first_then_deletes_with_the_log(admin_client, endpoint, organization, publish):
    publish(organization)
    assert "Delete this endpoint?" in admin_client.get(_url("delete", endpoint.public_id)).content.decode()
    response = admin_client.post(_url("delete", endpoint.public_id))
    assert response.status_code == 302 and response["Location"] == _url("list")
    assert not Endpoint.objects.exists() and not Delivery.objects.exists() and not Attempt.objects.exists()


# --- Detail and the delivery log ------------------------------------------------------------------


def test_the_log_filters_by_status_and_type_and_htmx_gets_only_the_log(admin_client, endpoint, organization, publish, receiver):
    receiver.enqueue(Reply(status=400))
    publish(organization)  # failed
    publish(organization, "invoice.created", {"invoice": "INV-1", "amount": "10.00", "currency": "EUR", "period_start": "2026-01-01", "period_end": "2026-01-31"})
    url = _url("detail", endpoint.public_id)
    full = admin_client.get(url + "?status=failed").content.decode()
    assert "<html" in full and "1 message matches" in full and "compliance.updated" in full
    partial = admin_client.get(url + "?event_type=invoice.created", **HX).content.decode()
    assert "<html" not in partial and 'id="delivery-log"' in partial
    assert "invoice.created" in partial and 'id="delivery-row-' in partial and partial.count('id="delivery-row-') == 1


def test_the_log_filters_by_time(admin_client, endpoint, organization, publish, clock):
    publish(organization)
    clock.advance(days=2)
    publish(organization)
    since = (clock() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page = admin_client.get(_url("detail", endpoint.public_id) + f"?since={since}").content.decode()
    assert page.count('id="delivery-row-') == 1


def test_a_bad_filter_is_a_400_with_a_message(admin_client, endpoint):
    response = admin_client.get(_url("detail", endpoint.public_id) + "?status=exploded&since=yesterday")
    assert response.status_code == 400
    body = response.content.decode()
    assert "Select a valid choice" in body and "Enter a valid date/time" in body


def test_the_log_page_costs_a_fixed_number_of_queries(admin_client, endpoint, organization, publish, django_assert_max_num_queries):
    for _ in range(30):
        publish(organization)
    with django_assert_max_num_queries(12):
        response = admin_client.get(_url("detail", endpoint.public_id))
    assert response.content.decode().count('id="delivery-row-') == 25


def test_delivery_detail_shows_request_and_response(member_client, endpoint, organization, publish, receiver):
    receiver.enqueue(Reply(status=503, headers={"X-Trace": "t-1"}, body=b"try later"))
    publish(organization)
    delivery = Delivery.objects.select_related("message").get()
    page = member_client.get(_url("delivery", endpoint.public_id, delivery.message.msg_id)).content.decode()
    assert delivery.message.msg_id in page and "webhook-signature" in page and "HTTP 503" in page
    assert "x-trace: t-1" in page and "try later" in page and "&quot;framework&quot;: &quot;SOC 2&quot;" in page
    assert "Replay this message" not in page


# --- Secrets ------------------------------------------------------------------------------------


def test_reveal_with_htmx_swaps_the_secret_card_and_is_never_cached(admin_client, admin_member, endpoint):
    response = admin_client.post(_url("secret", endpoint.public_id), **HX)
    body = response.content.decode()
    secret = services.endpoint_secret_reveal(endpoint=endpoint, actor_membership=admin_member)
    assert secret in body and 'id="endpoint-secret"' in body and "<html" not in body
    assert "no-store" in response["Cache-Control"]


def test_reveal_without_javascript_renders_the_page_with_the_secret(admin_client, admin_member, endpoint):
    response = admin_client.post(_url("secret", endpoint.public_id))
    secret = services.endpoint_secret_reveal(endpoint=endpoint, actor_membership=admin_member)
    assert response.status_code == 200 and secret in response.content.decode() and "<html" in response.content.decode()
    assert "no-store" in response["Cache-Control"]


def test_the_secret_is_not_in_the_page_until_revealed(admin_client, admin_member, endpoint):
    secret = services.endpoint_secret_reveal(endpoint=endpoint, actor_membership=admin_member)
    assert secret not in admin_client.get(_url("detail", endpoint.public_id)).content.decode()


def test_rotate_shows_the_new_secret_and_the_overlap(admin_client, admin_member, endpoint):
    old = services.endpoint_secret_reveal(endpoint=endpoint, actor_membership=admin_member)
    body = admin_client.post(_url("secret_rotate", endpoint.public_id), **HX).content.decode()
    endpoint.refresh_from_db()
    new = services.endpoint_secret_reveal(endpoint=endpoint, actor_membership=admin_member)
    assert new != old and new in body and old not in body and "and</em> the previous one until" in body


# --- Test events ------------------------------------------------------------------------------


def test_send_test_event_shows_the_result_inline(admin_client, endpoint, receiver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(_url("test", endpoint.public_id), **HX)
    [request] = receiver.requests
    assert json.loads(request.body)["type"] == "webhook.test"
    # The fan-out ran after the response was rendered (as in production): the fragment polls.
    body = response.content.decode()
    assert 'id="test-result"' in body and "Sending the test event" in body and 'hx-trigger="load delay:1s"' in body
    poll = admin_client.get(body.split('hx-get="')[1].split('"')[0].replace("&amp;", "&"), **HX).content.decode()
    assert "Delivered: HTTP 200" in poll and "hx-trigger" not in poll


def test_send_test_event_without_javascript_redirects_to_the_result_page(admin_client, endpoint, receiver, django_capture_on_commit_callbacks):
    receiver.enqueue(Reply(status=401, body=b"bad signature"))
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(_url("test", endpoint.public_id))
    assert response.status_code == 302
    page = admin_client.get(response["Location"]).content.decode()
    assert "<html" in page and "Failed: HTTP 401" in page and "See the request and response" in page


def test_a_test_event_goes_only_to_its_endpoint(admin_client, make_endpoint, receiver, django_capture_on_commit_callbacks):
    first = make_endpoint("/first")
    make_endpoint("/second")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(_url("test", first.public_id))
    assert [r.path for r in receiver.requests] == ["/first"]


def test_test_result_of_an_unknown_event_is_404(admin_client, endpoint):
    import uuid

    assert admin_client.get(_url("test_result", endpoint.public_id, uuid.uuid4())).status_code == 404


# --- Enable, disable, replay, recover ----------------------------------------------------------------


def test_disable_then_enable_with_recovery_from_the_page(admin_client, endpoint, organization, publish, receiver, django_capture_on_commit_callbacks):
    admin_client.post(_url("disable", endpoint.public_id))
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert "Enable endpoint" in admin_client.get(_url("detail", endpoint.public_id)).content.decode()
    Delivery.objects.create(
        organization=organization,
        endpoint=endpoint,
        message=_message(organization),
        event_type="compliance.updated",
        state=DeliveryState.DEAD,
    )
    since = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(_url("enable", endpoint.public_id), {"recover": "on", "since": since}, follow=True)
    assert "Endpoint enabled." in response.content.decode() and "1 message will be sent again." in response.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.enabled and Delivery.objects.get().state == DeliveryState.SUCCEEDED


def _message(organization):
    from webhooks.models import Message
    from webhooks.signing import message_id_new

    return Message.objects.create(organization=organization, msg_id=message_id_new(), event_type="compliance.updated", body='{"type":"compliance.updated"}')


def test_recover_too_far_back_is_refused_with_a_message(admin_client, endpoint):
    since = (timezone.now() - timedelta(days=20)).strftime("%Y-%m-%dT%H:%M")
    response = admin_client.post(_url("recover", endpoint.public_id), {"since": since}, follow=True)
    assert "Recover at most 14 days back" in response.content.decode()


def test_replay_from_the_delivery_page(admin_client, endpoint, organization, publish, receiver, django_capture_on_commit_callbacks):
    receiver.enqueue(Reply(status=400))
    publish(organization)
    msg_id = Delivery.objects.select_related("message").get().message.msg_id
    page = admin_client.get(_url("delivery", endpoint.public_id, msg_id)).content.decode()
    assert "Replay this message" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(_url("replay", endpoint.public_id, msg_id), follow=True)
    assert "will be sent again now" in response.content.decode()
    assert Delivery.objects.get().state == DeliveryState.SUCCEEDED and len(receiver.requests) == 2


def test_an_admin_in_another_organization_role_is_only_a_member_here(client, endpoint, organization, other_member):
    # Admin of Globex, plain member of Acme: Acme's admin actions stay closed.
    membership = MembershipFactory(organization=organization, user=other_member.user, role="member")
    client.force_login(membership.user)
    client.post(reverse("organization_switch"), {"organization": organization.pk})
    assert client.post(_url("secret", endpoint.public_id)).status_code == 403
