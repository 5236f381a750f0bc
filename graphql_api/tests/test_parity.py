"""The same operations through REST and GraphQL give the same results (same selectors/services)."""

import pytest
from django.db import transaction

from graphql_api.tests.conftest import gql, post
from notifications import services as notification_services
from notifications.models import Notification
from portal.tests.factories import MembershipFactory
from tickets import services as ticket_services
from tickets.models import Comment, Ticket
from tickets.tests.factories import make_agent, make_ticket
from webhooks import services as webhook_services

pytestmark = pytest.mark.django_db

TICKET_FIELDS = """
  id number subject status priority category queue commentCount created updated
  firstResponseAt firstResponseDueAt resolutionDueAt resolvedAt closedAt
  requester { id name } assignee { id name } sla { target state dueAt }
"""
COMMENT_FIELDS = "id body byAgent internal created author { id name } attachments { id filename contentType size }"


def _rest_ticket(row):
    """A REST ticket row in GraphQL's vocabulary (camelCase, enum names)."""
    out = {
        "id": row["id"],
        "number": row["number"],
        "subject": row["subject"],
        "status": row["status"].upper(),
        "priority": row["priority"].upper(),
        "category": row["category"].upper(),
        "queue": row["queue"].upper(),
        "commentCount": row["comment_count"],
        "created": row["created"],
        "updated": row["updated"],
        "firstResponseAt": row["first_response_at"],
        "firstResponseDueAt": row["first_response_due_at"],
        "resolutionDueAt": row["resolution_due_at"],
        "resolvedAt": row["resolved_at"],
        "closedAt": row["closed_at"],
        "requester": row["requester"],
        "assignee": row["assignee"],
        "sla": {"target": row["sla"]["target"], "state": row["sla"]["state"].upper(), "dueAt": row["sla"]["due_at"]},
    }
    return out


def _rest_comment(row):
    return {
        "id": row["id"],
        "body": row["body"],
        "byAgent": row["by_agent"],
        "internal": row["internal"],
        "created": row["created"],
        "author": row["author"],
        "attachments": [
            {"id": a["id"], "filename": a["filename"], "contentType": a["content_type"], "size": a["size"]}
            for a in row["attachments"]
        ],
    }


def _iso(value):
    """DRF and GraphQL print the same instant slightly differently (Z vs +00:00)."""
    from datetime import datetime

    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def _normalize(ticket):
    return {k: (_iso(v) if k in {"created", "updated"} or k.endswith("At") else v) for k, v in ticket.items()} | {
        "sla": {**ticket["sla"], "dueAt": _iso(ticket["sla"]["dueAt"])}
    }


@pytest.fixture
def tickets(member):
    agent = make_agent(first_name="Sam")
    made = [make_ticket(member, subject=f"Disk {i} is full", priority=p) for i, p in enumerate(["low", "high", "high"])]
    ticket_services.comment_create(ticket=made[1], author=agent, body="Looking at it")
    ticket_services.comment_create(ticket=made[1], author=agent, body="Agents only", internal=True)
    ticket_services.ticket_update(ticket=made[2], actor=agent, status="in_progress", assignee=agent)
    return made


@pytest.mark.parametrize(
    ("rest_params", "arguments"),
    [
        ({}, ""),
        ({"status": "open"}, "(status: [OPEN])"),
        ({"priority": "high"}, "(priority: [HIGH])"),
        ({"q": "disk 1"}, '(search: "disk 1")'),
        ({"status": "open,in_progress", "priority": "high"}, "(status: [OPEN, IN_PROGRESS], priority: [HIGH])"),
    ],
)
def test_ticket_list_matches_rest(gql_client, tickets, rest_params, arguments):
    rest = gql_client.get("/api/v1/tickets/", rest_params).json()
    data = gql(gql_client, f"{{ tickets{arguments} {{ totalCount edges {{ node {{ {TICKET_FIELDS} }} }} }} }}")
    nodes = [e["node"] for e in data["tickets"]["edges"]]
    assert data["tickets"]["totalCount"] == rest["count"]
    assert [_normalize(n) for n in nodes] == [_normalize(_rest_ticket(r)) for r in rest["results"]]
    assert nodes, "each case matches something"


def test_ticket_detail_matches_rest_and_hides_internal_notes_from_customers(gql_client, tickets):
    ticket = tickets[1]
    rest = gql_client.get(f"/api/v1/tickets/{ticket.public_id}/").json()
    data = gql(
        gql_client,
        f"query($id: ID!) {{ ticket(id: $id) {{ {TICKET_FIELDS} description comments {{ {COMMENT_FIELDS} }} "
        "attachments { id } } }",
        {"id": str(ticket.public_id)},
    )["ticket"]
    assert _normalize({k: v for k, v in data.items() if k not in {"description", "comments", "attachments"}}) == (
        _normalize(_rest_ticket(rest))
    )
    assert data["description"] == rest["description"]
    assert [c | {"created": _iso(c["created"])} for c in data["comments"]] == [
        _rest_comment(c) | {"created": _iso(c["created"])} for c in rest["comments"]
    ]
    assert [c["body"] for c in data["comments"]] == ["Looking at it"]  # never the internal note
    assert Comment.objects.filter(ticket=ticket, internal=True).count() == 1


def test_agents_see_internal_notes_like_in_rest(member, tickets):
    from graphql_api.tests.conftest import token_client

    agent = make_agent()
    staff_member = MembershipFactory(organization=member.organization, user=agent)
    client = token_client(staff_member)
    query = "query($id: ID!) { ticket(id: $id) { comments { body internal } } }"
    data = gql(client, query, {"id": str(tickets[1].public_id)})["ticket"]
    rest = client.get(f"/api/v1/tickets/{tickets[1].public_id}/").json()
    assert (
        [c["body"] for c in data["comments"]]
        == [c["body"] for c in rest["comments"]]
        == [
            "Looking at it",
            "Agents only",
        ]
    )
    listed = gql(client, "{ tickets { edges { node { number comments { internal } } } } }")
    assert any(c["internal"] for e in listed["tickets"]["edges"] for c in e["node"]["comments"])


def test_create_ticket_does_what_rest_post_does(gql_client, member):
    created = gql(
        gql_client,
        'mutation { createTicket(input: {subject: "VPN down", description: "Since 9am", priority: HIGH, '
        "category: TECHNICAL}) { id number subject priority category queue status requester { id } comments { id } } }",
    )["createTicket"]
    rest = gql_client.post(
        "/api/v1/tickets/",
        {"subject": "VPN down", "description": "Since 9am", "priority": "high", "category": "technical"},
        format="json",
    ).json()
    assert created["number"] + 1 == rest["number"]
    for key in ("subject", "priority", "category", "queue", "status"):
        assert created[key].lower() == str(rest[key]).lower(), key
    assert created["requester"]["id"] == rest["requester"]["id"] == member.user_id
    ticket = Ticket.objects.get(public_id=created["id"])
    assert ticket.requester == member.user and ticket.organization == member.organization


def test_create_ticket_validation_matches_the_service(gql_client):
    before = Ticket.objects.count()
    response = post(gql_client, 'mutation { createTicket(input: {subject: "   ", description: "x"}) { id } }')
    body = response.json()
    assert response.status_code == 200 and body["data"] is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["fields"] == {"subject": ["Enter a subject."]}
    assert Ticket.objects.count() == before


def test_update_ticket_obeys_the_same_role_rules_as_patch(gql_client, tickets):
    ticket = tickets[0]
    closed = gql(
        gql_client,
        "mutation($id: ID!) { updateTicket(id: $id, input: {status: CLOSED}) { status closedAt } }",
        {"id": str(ticket.public_id)},
    )["updateTicket"]
    assert closed["status"] == "CLOSED" and closed["closedAt"]
    rest = gql_client.patch(f"/api/v1/tickets/{tickets[2].public_id}/", {"priority": "low"}, format="json")
    assert rest.status_code == 400
    response = post(
        gql_client,
        "mutation($id: ID!) { updateTicket(id: $id, input: {priority: LOW}) { priority } }",
        {"id": str(tickets[2].public_id)},
    )
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "priority" in error["extensions"]["fields"]
    tickets[2].refresh_from_db()
    assert tickets[2].priority == "high"


def test_add_comment_matches_rest_and_customers_cannot_write_internal_notes(gql_client, tickets):
    ticket = tickets[0]
    comment = gql(
        gql_client,
        'mutation($id: ID!) { addComment(ticketId: $id, text: "Any news?") { id body byAgent internal author { id } } }',
        {"id": str(ticket.public_id)},
    )["addComment"]
    rest = gql_client.post(f"/api/v1/tickets/{ticket.public_id}/comments/", {"body": "Any news?"}, format="json").json()
    assert {k: comment[k] for k in ("body", "byAgent", "internal")} == {
        "body": rest["body"],
        "byAgent": rest["by_agent"],
        "internal": rest["internal"],
    }
    before = Comment.objects.count()
    response = post(
        gql_client,
        'mutation($id: ID!) { addComment(ticketId: $id, text: "psst", internal: true) { id } }',
        {"id": str(ticket.public_id)},
    )
    assert response.json()["errors"][0]["extensions"]["fields"] == {
        "internal": ["Only support agents can write internal notes."]
    }
    assert Comment.objects.count() == before


def _notify(membership, title, kind="billing"):
    notification_services.notify(
        organization=membership.organization, recipient_ids=[membership.user_id], kind=kind, title=title
    )
    return Notification.objects.filter(recipient=membership.user).latest("id")


def test_notifications_and_marking_read_match_rest(gql_client, member):
    first = _notify(member, "a")
    _notify(member, "b", kind="alert")
    _notify(MembershipFactory(organization=member.organization), "someone else's")
    fields = "id kind title body link updates read"
    data = gql(gql_client, f"{{ notifications {{ totalCount edges {{ node {{ {fields} }} }} }} }}")["notifications"]
    rest = gql_client.get("/api/v1/notifications/").json()
    assert data["totalCount"] == rest["count"] == 2
    assert [e["node"]["id"] for e in data["edges"]] == [r["id"] for r in rest["results"]]
    assert [e["node"]["kind"] for e in data["edges"]] == [r["kind"].upper() for r in rest["results"]]
    alerts = gql(gql_client, "{ notifications(type: ALERT) { edges { node { title } } } }")["notifications"]
    assert [e["node"]["title"] for e in alerts["edges"]] == ["b"]
    read = gql(
        gql_client, "mutation($id: ID!) { markNotificationRead(id: $id) { id read } }", {"id": str(first.public_id)}
    )
    assert read["markNotificationRead"] == {"id": str(first.public_id), "read": True}
    unread = gql(gql_client, "{ notifications(unreadOnly: true) { totalCount } }")["notifications"]["totalCount"]
    assert unread == gql_client.get("/api/v1/notifications/", {"state": "unread"}).json()["count"] == 1
    assert gql(gql_client, "mutation { markAllNotificationsRead { marked } }") == {
        "markAllNotificationsRead": {"marked": 1}
    }
    assert gql_client.post("/api/v1/notifications/read-all/").json() == {"marked": 0}
    assert gql(gql_client, "{ metrics { unreadNotifications } }")["metrics"]["unreadNotifications"] == 0


def test_webhook_endpoints_match_rest(gql_client, member, admin_member, settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    with transaction.atomic():
        webhook_services.endpoint_create(
            organization=member.organization,
            actor_membership=admin_member,
            url="http://127.0.0.1:9/hook",
            event_types=["ticket.created"],
        )
    rest = gql_client.get("/api/v1/webhooks/endpoints/").json()["results"]
    data = gql(
        gql_client,
        "{ webhookEndpoints { id url description allEvents eventTypes enabled health { attempts24h successRate } } }",
    )["webhookEndpoints"]
    assert [
        {
            "id": r["id"],
            "url": r["url"],
            "description": r["description"],
            "allEvents": r["all_events"],
            "eventTypes": r["event_types"],
            "enabled": r["enabled"],
            "health": {"attempts24h": r["health"]["attempts_24h"], "successRate": r["health"]["success_rate"]},
        }
        for r in rest
    ] == data
    assert len(data) == 1


def test_forecast_matches_rest_without_cost_data(gql_client):
    rest = gql_client.get("/api/v1/costs/forecast/", {"horizon": 6, "levels": "80"}).json()
    data = gql(gql_client, "{ forecast(horizon: 6, level: 80) { status horizon levels currency points { month } } }")
    assert data["forecast"] == {
        "status": rest["status"],
        "horizon": rest["horizon"],
        "levels": rest["levels"],
        "currency": rest["currency"],
        "points": rest["points"],
    }
    assert rest["status"] == "no_data"


def test_forecast_rejects_what_rest_rejects(gql_client):
    response = post(gql_client, "{ forecast(horizon: 7, level: 50) { status } }")
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert set(error["extensions"]["fields"]) == {"horizon", "levels"}
    rest = gql_client.get("/api/v1/costs/forecast/", {"horizon": 7, "levels": "50"})
    assert rest.status_code == 400 and set(rest.json()) >= {"horizon", "levels"}


def test_metrics_count_tickets_by_status_and_sla(gql_client, tickets):
    from datetime import timedelta

    from django.utils import timezone

    Ticket.objects.filter(pk=tickets[0].pk).update(first_response_due_at=timezone.now() - timedelta(minutes=1))
    Ticket.objects.filter(pk=tickets[2].pk).update(
        first_response_warn_at=timezone.now() - timedelta(minutes=1),
        first_response_due_at=timezone.now() + timedelta(hours=1),
        first_response_at=None,
    )
    metrics = gql(
        gql_client,
        "{ metrics { ticketsByStatus { status count } openTickets slaAtRisk slaBreached monthToDateSpend "
        "forecastMonthEnd currency platform } }",
    )["metrics"]
    counts = {row["status"]: row["count"] for row in metrics["ticketsByStatus"]}
    assert counts == {"OPEN": 2, "IN_PROGRESS": 1, "WAITING_ON_CUSTOMER": 0, "RESOLVED": 0, "CLOSED": 0}
    assert metrics["openTickets"] == 3
    assert metrics["slaBreached"] == 1 and metrics["slaAtRisk"] == 1
    assert metrics["monthToDateSpend"] == "0" and metrics["forecastMonthEnd"] is None
    assert metrics["platform"] is None
