"""Pagination, bad input, query counts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from graphql_api.tests.conftest import gql, post
from portal.tests.factories import MembershipFactory
from tickets import services as ticket_services
from tickets.tests.factories import make_agent, make_ticket

pytestmark = pytest.mark.django_db

PAGE = """
query($first: Int, $after: String) {
  tickets(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { number } }
  }
}
"""


def test_cursor_pagination_walks_every_ticket_once(gql_client, member):
    for i in range(7):
        make_ticket(member, subject=f"Ticket {i}")
    seen, after, pages = [], None, 0
    while True:
        data = gql(gql_client, PAGE, {"first": 3, "after": after})["tickets"]
        pages += 1
        seen += [e["node"]["number"] for e in data["edges"]]
        assert data["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert data["totalCount"] == 7
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert pages == 3
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 7  # most recently updated first


@pytest.mark.parametrize("first", [0, -1, 101])
def test_page_size_is_limited(gql_client, first):
    body = post(gql_client, PAGE, {"first": first}).json()
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "between 1 and 100" in error["message"]


@pytest.mark.parametrize("cursor", ["garbage", "Y3Vyc29yOi01", "!!!"])
def test_bad_cursors_are_bad_input(gql_client, cursor):
    body = post(gql_client, PAGE, {"after": cursor}).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "cursor" in body["errors"][0]["message"]


def test_an_invalid_enum_literal_is_a_validation_error(gql_client):
    response = post(gql_client, "{ tickets(status: [SHIPPED]) { totalCount } }")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "SHIPPED" in error["message"]


def test_an_invalid_enum_variable_is_bad_user_input(gql_client):
    response = post(gql_client, "query($s: [TicketStatus!]) { tickets(status: $s) { totalCount } }", {"s": ["shipped"]})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "shipped" in error["message"]


def test_search_longer_than_the_lists_limit_is_bad_input(gql_client):
    body = post(gql_client, "query($q: String) { tickets(search: $q) { totalCount } }", {"q": "x" * 201}).json()
    assert body["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "fields": {"q": ["Keep the search to 200 characters."]},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "JSON parse error"),
        ("[1, 2]", "Send one JSON object"),
        ('{"query": ""}', "no query"),
        ('{"query": "{ metrics { openTickets } }", "variables": [1]}', "variables must be a JSON object"),
    ],
)
def test_malformed_requests_are_400_in_graphql_shape(gql_client, body, message):
    response = gql_client.post("/graphql/", body, content_type="application/json")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST" and message in error["message"]


def test_a_syntax_error_is_a_parse_failure_with_its_location(gql_client):
    response = post(gql_client, "{ tickets { edges { node { number } }")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert error["message"].startswith("Syntax Error") and error["locations"]


def test_unknown_fields_are_validation_errors(gql_client):
    response = post(gql_client, "{ tickets { edges { node { password } } } }")
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_subscriptions_over_http_are_refused(gql_client):
    response = post(gql_client, "subscription { notificationReceived { unread } }")
    assert response.status_code == 400
    assert "WebSocket" in response.json()["errors"][0]["message"]


def test_unexpected_failures_are_masked_and_logged_without_a_stack_trace(gql_client, monkeypatch, caplog):
    from graphql_api import schema as schema_module

    def boom(context):
        raise RuntimeError("secret internals at /srv/app.py line 3")

    monkeypatch.setattr(schema_module, "metrics_for", boom)
    response = post(gql_client, "{ metrics { openTickets } }")
    text = response.content.decode()
    assert response.status_code == 200
    assert response.json()["errors"][0] == {
        "message": "Internal server error.",
        "locations": [{"line": 1, "column": 3}],
        "path": ["metrics"],
        "extensions": {"code": "INTERNAL_SERVER_ERROR"},
    }
    assert "secret" not in text and "Traceback" not in text
    assert any("GraphQL resolver failed" in r.message for r in caplog.records)


THREADS = """
query($first: Int) {
  tickets(first: $first) {
    edges { node {
      id number subject description status sla { state }
      requester { id name } assignee { name }
      attachments { filename }
      comments { body author { name } attachments { filename } }
    } }
  }
}
"""


def _queries(client, first):
    with CaptureQueriesContext(connection) as captured:
        data = gql(client, THREADS, {"first": first})
    return len(captured), data


def test_a_page_of_50_tickets_with_threads_costs_a_fixed_number_of_queries(gql_client, member):
    agent = make_agent()
    colleague = MembershipFactory(organization=member.organization)
    for i in range(50):
        ticket = make_ticket(member if i % 2 else colleague, subject=f"Ticket {i}")
        ticket_services.comment_create(ticket=ticket, author=agent, body=f"Reply {i}")
        ticket_services.comment_create(ticket=ticket, author=member.user, body=f"Thanks {i}")
    _queries(gql_client, 1)  # the token's last-used stamp is written at most once a minute
    small, _ = _queries(gql_client, 5)
    large, large_data = _queries(gql_client, 50)
    edges = large_data["tickets"]["edges"]
    assert len(edges) == 50 and all(len(e["node"]["comments"]) == 2 for e in edges)
    assert all(e["node"]["description"] for e in edges)
    assert small == large
    # The token with its membership, the page, the descriptions, the tickets' files, the
    # comments with their authors, the comments' files.
    assert large == 6, large
