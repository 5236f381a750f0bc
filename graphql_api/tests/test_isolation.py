"""Another organization's ids: null or NOT_FOUND, never data, nothing written."""

import pytest
from django.forms.models import model_to_dict

from graphql_api.tests.conftest import gql, post
from notifications import services as notification_services
from notifications.models import Notification
from portal.testing import _row_counts
from tickets.tests.factories import make_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def foreign_ticket(other_member):
    return make_ticket(other_member, subject="Globex secret")


@pytest.fixture
def foreign_notification(other_member):
    notification_services.notify(
        organization=other_member.organization, recipient_ids=[other_member.user_id], kind="billing", title="x"
    )
    return Notification.objects.get(recipient=other_member.user)


def test_another_organizations_ticket_is_null(gql_client, foreign_ticket):
    data = gql(gql_client, "query($id: ID!) { ticket(id: $id) { subject } }", {"id": str(foreign_ticket.public_id)})
    assert data == {"ticket": None}
    listed = gql(gql_client, '{ tickets(search: "Globex") { totalCount } }')
    assert listed["tickets"]["totalCount"] == 0


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_malformed_or_unknown_ids_are_null_too(gql_client, bad_id):
    assert gql(gql_client, "query($id: ID!) { ticket(id: $id) { id } }", {"id": bad_id}) == {"ticket": None}


@pytest.mark.parametrize(
    ("operation", "target"),
    [
        ("mutation($id: ID!) { updateTicket(id: $id, input: {status: CLOSED}) { id } }", "ticket"),
        ('mutation($id: ID!) { updateTicket(id: $id, input: {subject: "mine now"}) { id } }', "ticket"),
        ('mutation($id: ID!) { addComment(ticketId: $id, text: "hello") { id } }', "ticket"),
        ("mutation($id: ID!) { markNotificationRead(id: $id) { id } }", "notification"),
    ],
)
def test_mutations_on_another_organizations_ids_are_not_found_and_write_nothing(
    gql_client, foreign_ticket, foreign_notification, operation, target
):
    obj = foreign_ticket if target == "ticket" else foreign_notification
    before_counts, before_values = _row_counts(), model_to_dict(obj)
    response = post(gql_client, operation, {"id": str(obj.public_id)})
    body = response.json()
    assert response.status_code == 200 and body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    assert body["errors"][0]["message"] == "Not found."
    assert _row_counts() == before_counts
    obj.refresh_from_db()
    assert model_to_dict(obj) == before_values


def test_mark_all_read_only_touches_my_notifications(gql_client, foreign_notification):
    assert gql(gql_client, "mutation { markAllNotificationsRead { marked } }") == {
        "markAllNotificationsRead": {"marked": 0}
    }
    foreign_notification.refresh_from_db()
    assert foreign_notification.read_at is None


def test_metrics_and_lists_are_scoped(gql_client, foreign_ticket, foreign_notification):
    data = gql(
        gql_client,
        "{ metrics { openTickets unreadNotifications } notifications { totalCount } webhookEndpoints { id } }",
    )
    assert data == {
        "metrics": {"openTickets": 0, "unreadNotifications": 0},
        "notifications": {"totalCount": 0},
        "webhookEndpoints": [],
    }
