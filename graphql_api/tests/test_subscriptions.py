"""Subscriptions end to end: Daphne, the Redis channel layer, a real Celery worker, a real client."""

import json
import time
from contextlib import contextmanager

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from portal import services as portal_services
from tickets import services as ticket_services
from tickets.tests.factories import make_agent, make_ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

PROTOCOL = "graphql-transport-ws"


def _url(live_stack):
    return live_stack.ws_url.replace("/ws/", "/graphql/")


@contextmanager
def _open(live_stack, key):
    headers = {"Authorization": f"Token {key}"}
    with connect(_url(live_stack), subprotocols=[PROTOCOL], additional_headers=headers, open_timeout=10) as ws:
        assert ws.subprotocol == PROTOCOL
        _pending.pop(id(ws), None)
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "connection_ack"}
        yield ws


_pending: dict[int, list[dict]] = {}


def _next(ws, *, operation_id, timeout=30.0):
    """The next message for ``operation_id``; others are kept for their turn, pings answered."""
    pending = _pending.setdefault(id(ws), [])
    for i, message in enumerate(pending):
        if message.get("id") == operation_id:
            return pending.pop(i)
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["type"] == "ping":
            ws.send(json.dumps({"type": "pong"}))
        elif message.get("id") == operation_id:
            return message
        else:
            pending.append(message)


def _subscribe(ws, operation_id, query, variables=None):
    ws.send(
        json.dumps({"id": operation_id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}})
    )


def _cursor(membership):
    """The newest push id the member could have seen: subscribing ``after`` it misses nothing."""
    from notifications import selectors

    return selectors.latest_push_id(user_id=membership.user_id, organization=membership.organization)


TICKET_UPDATED = """
subscription($id: ID, $after: Int) {
  ticketUpdated(id: $id, after: $after) { event pushId ticket { id status commentCount comments { body internal } } }
}
"""


def test_a_ticket_update_made_through_the_service_arrives_on_ticket_updated(live_stack, real_celery, member):
    agent = make_agent()
    ticket = make_ticket(member, subject="Subscription test")
    other = make_ticket(member, subject="Not this one")
    _, key = portal_services.api_token_create(membership=member, name="ws")
    with _open(live_stack, key) as ws:
        after = _cursor(member)
        _subscribe(ws, "t1", TICKET_UPDATED, {"id": str(ticket.public_id), "after": after})
        _subscribe(ws, "all", "subscription($a: Int) { ticketUpdated(after: $a) { ticket { id } } }", {"a": after})
        ticket_services.ticket_update(ticket=other, actor=agent, status="in_progress")
        ticket_services.ticket_update(ticket=ticket, actor=agent, status="in_progress")
        ticket_services.comment_create(ticket=ticket, author=agent, body="A note", internal=True)
        ticket_services.comment_create(ticket=ticket, author=agent, body="On it")
        events = []
        while not events or events[-1]["event"] != "ticket.updated":  # ticket.created may still be on its way
            message = _next(ws, operation_id="t1")
            assert message["type"] == "next", message
            events.append(message["payload"]["data"]["ticketUpdated"])
        payload = events[-1]
        assert payload["ticket"]["id"] == str(ticket.public_id) and payload["ticket"]["status"] == "IN_PROGRESS"
        assert {e["ticket"]["id"] for e in events} == {str(ticket.public_id)}
        # Only ticket.comment_added for public replies reaches customers; keep reading until it does.
        while payload["ticket"]["commentCount"] < 1:
            payload = _next(ws, operation_id="t1")["payload"]["data"]["ticketUpdated"]
        assert [c["body"] for c in payload["ticket"]["comments"]] == ["On it"]  # no internal note
        seen = set()
        while len(seen) < 2:
            seen.add(_next(ws, operation_id="all")["payload"]["data"]["ticketUpdated"]["ticket"]["id"])
        assert seen == {str(ticket.public_id), str(other.public_id)}
        ws.send(json.dumps({"id": "t1", "type": "complete"}))


def test_notifications_arrive_on_notification_received(live_stack, real_celery, member):
    agent = make_agent()
    ticket = make_ticket(member, subject="Notify me")
    _, key = portal_services.api_token_create(membership=member, name="ws")
    with _open(live_stack, key) as ws:
        after = _cursor(member)
        _subscribe(
            ws,
            "n",
            "subscription($a: Int) { notificationReceived(after: $a) { unread notification { kind read } } }",
            {"a": after},
        )
        _subscribe(ws, "m", "subscription($a: Int) { metricsUpdated(after: $a) { openTickets } }", {"a": after})
        ticket_services.comment_create(ticket=ticket, author=agent, body="Reply")
        received = _next(ws, operation_id="n")["payload"]["data"]["notificationReceived"]
        assert received["notification"] is not None, received
        assert received["unread"] == 1
        assert received["notification"]["kind"] == "TICKET" and received["notification"]["read"] is False
        metrics = _next(ws, operation_id="m")["payload"]["data"]["metricsUpdated"]
        assert metrics["openTickets"] == 1


def test_another_organizations_ticket_id_is_an_error_and_nothing_is_sent(live_stack, member, other_member):
    foreign = make_ticket(other_member, subject="Globex")
    _, key = portal_services.api_token_create(membership=member, name="ws")
    with _open(live_stack, key) as ws:
        _subscribe(ws, "x", TICKET_UPDATED, {"id": str(foreign.public_id)})
        message = _next(ws, operation_id="x", timeout=10)
        assert message["type"] in ("error", "next"), message
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["message"] == "Not found."
        assert errors[0]["extensions"]["code"] == "NOT_FOUND"


def test_subscription_validation_errors_have_codes(live_stack, member):
    _, key = portal_services.api_token_create(membership=member, name="ws")
    with _open(live_stack, key) as ws:
        _subscribe(ws, "v", "subscription { ticketUpdated { nope } }")
        message = _next(ws, operation_id="v", timeout=10)
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Token sbp_wrong"}])
def test_unauthenticated_subscriptions_are_closed_with_4401(live_stack, headers):
    with connect(_url(live_stack), subprotocols=[PROTOCOL], additional_headers=headers, origin=live_stack.url) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 4401


def test_a_browser_socket_from_another_origin_is_refused(live_stack):
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as refused:
        connect(_url(live_stack), subprotocols=[PROTOCOL], origin="https://evil.example", open_timeout=10)
    assert refused.value.response.status_code == 403


def test_subscribing_after_a_push_id_replays_what_was_missed(live_stack, real_celery, member):
    agent = make_agent()
    ticket = make_ticket(member, subject="Missed while offline")
    _, key = portal_services.api_token_create(membership=member, name="ws")
    after = _cursor(member)
    ticket_services.ticket_update(ticket=ticket, actor=agent, status="in_progress")
    deadline = time.monotonic() + 30
    while _cursor(member) == after:  # the worker pushed it while nobody listened
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with _open(live_stack, key) as ws:
        _subscribe(ws, "r", TICKET_UPDATED, {"id": str(ticket.public_id), "after": after})
        replayed = _next(ws, operation_id="r")["payload"]["data"]["ticketUpdated"]
        assert replayed["pushId"] > after and replayed["ticket"]["status"] == "IN_PROGRESS"


def test_a_browser_session_subscribes_and_signing_out_closes_the_socket(live_stack, real_celery, member):
    from django.test import Client

    from portal import realtime

    browser = Client()
    browser.force_login(member.user)
    session_key = browser.cookies["sessionid"].value
    agent = make_agent()
    ticket = make_ticket(member, subject="Browser socket")
    after = _cursor(member)
    with connect(
        _url(live_stack),
        subprotocols=[PROTOCOL],
        origin=live_stack.url,
        additional_headers={"Cookie": f"sessionid={session_key}"},
        open_timeout=10,
    ) as ws:
        _pending.pop(id(ws), None)
        ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "connection_ack"}
        _subscribe(ws, "b", TICKET_UPDATED, {"id": str(ticket.public_id), "after": after})
        ticket_services.ticket_update(ticket=ticket, actor=agent, status="in_progress")
        payload = {}
        while payload.get("event") != "ticket.updated":
            payload = _next(ws, operation_id="b")["payload"]["data"]["ticketUpdated"]
        assert payload["ticket"]["status"] == "IN_PROGRESS"
        # What sign-out does (from a worker): close the session's sockets.
        realtime.sockets_close(groups=[realtime.session_group(session_key)])
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
        assert closed.value.rcvd.code == realtime.CLOSE_SIGNED_OUT


def test_platform_metrics_arrive_on_metrics_updated(live_stack, real_celery, member):
    token, _ = portal_services.service_token_create(name="platform-metrics")
    _, key = portal_services.api_token_create(membership=member, name="ws")
    after = _cursor(member)
    with _open(live_stack, key) as ws:
        _subscribe(
            ws, "m", "subscription($a: Int) { metricsUpdated(after: $a) { platform openTickets } }", {"a": after}
        )
        portal_services.platform_event_ingest(
            service_token=token,
            event_type="metrics.updated",
            organization_slug=member.organization.slug,
            data={"metrics": {"cpu": 42.5}},
        )
        metrics = _next(ws, operation_id="m")["payload"]["data"]["metricsUpdated"]
        assert metrics == {"platform": {"metrics": {"cpu": 42.5}}, "openTickets": 0}


def test_revoking_a_token_closes_only_that_tokens_subscription_sockets(live_stack, member):
    from django.db import transaction

    from portal import realtime

    revoked, old_key = portal_services.api_token_create(membership=member, name="old")
    _, new_key = portal_services.api_token_create(membership=member, name="new")
    with _open(live_stack, old_key) as gone, _open(live_stack, new_key) as kept:
        with transaction.atomic():
            portal_services.api_token_revoke(membership=member, public_id=revoked.public_id)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                gone.recv(timeout=10)
        assert closed.value.rcvd.code == realtime.CLOSE_UNAUTHENTICATED
        # The other token's socket is still open and answers.
        kept.send(json.dumps({"type": "ping"}))
        while (message := json.loads(kept.recv(timeout=10)))["type"] != "pong":
            assert message["type"] == "ping"
