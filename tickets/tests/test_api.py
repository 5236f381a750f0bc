import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from portal import services as portal_services
from portal.models import Event
from portal.testing import assert_cross_org_404
from portal.tests.factories import MembershipFactory
from tickets import services
from tickets.models import Comment, Status, Ticket
from tickets.tests.factories import make_ticket

pytestmark = pytest.mark.django_db

LIST = reverse("tickets-api:list")


def _detail(ticket):
    return reverse("tickets-api:detail", args=[ticket.public_id])


def _comments(ticket):
    return reverse("tickets-api:comments", args=[ticket.public_id])


def test_create_returns_the_ticket_with_sla(api_client):
    response = api_client.post(
        LIST, {"subject": "VM down", "description": "prod-1 unreachable", "priority": "critical"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["number"] == 1001 and body["status"] == "open" and body["priority"] == "critical"
    assert body["sla"]["state"] == "on_track" and body["sla"]["target"] == "first_response"
    assert body["comments"] == [] and body["requester"]["id"]


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"subject": "", "description": "d"}, "subject", "may not be blank"),
        ({"subject": "x" * 300, "description": "d"}, "subject", "no more than 255"),
        ({"subject": "s", "description": "d", "priority": "urgent"}, "priority", "not a valid choice"),
        ({"subject": "s", "description": "d", "category": "sales"}, "category", "not a valid choice"),
        ({"subject": "s", "description": "d", "assignee": 1}, "assignee", "Only support agents can set this."),
        (
            {"subject": "s", "description": "d", "first_response_due_at": "2030-01-01T00:00:00Z"},
            "first_response_due_at",
            "Only support agents",
        ),
        ({"subject": "s", "description": "x" * 20_001}, "description", "no more than 20000"),
    ],
)
def test_bad_create_is_400_with_field_errors_and_nothing_written(api_client, payload, field, message):
    response = api_client.post(LIST, payload, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert not Ticket.objects.exists() and not Event.objects.exists()


def test_list_filters_sorts_and_paginates(api_client, member):
    make_ticket(member, subject="Critical outage", priority="critical")
    make_ticket(member, subject="Low question", priority="low")
    make_ticket(member, subject="High thing", priority="high")
    body = api_client.get(LIST, {"priority": "critical,high", "sort": "priority"}).json()
    assert [t["subject"] for t in body["results"]] == ["Critical outage", "High thing"]
    assert api_client.get(LIST, {"q": "question"}).json()["count"] == 1
    assert len(api_client.get(LIST, {"page_size": 2}).json()["results"]) == 2


@pytest.mark.parametrize(
    ("param", "value"), [("status", "exploded"), ("priority", "urgent"), ("sort", "random"), ("assignee", "x")]
)
def test_unknown_filter_values_are_400(api_client, param, value):
    response = api_client.get(LIST, {param: value})
    assert response.status_code == 400 and param in response.json()


def test_list_of_50_costs_a_fixed_number_of_queries(api_client, member, agent, django_assert_max_num_queries):
    for i in range(55):
        t = make_ticket(member, subject=f"T{i}")
        if i % 3 == 0:
            services.ticket_update(ticket=t, actor=agent, assignee=agent)
    with django_assert_max_num_queries(6):
        response = api_client.get(LIST, {"q": "t", "sort": "due"})
    assert len(response.json()["results"]) == 50


def test_get_one_includes_public_comments_only(api_client, ticket, agent):
    services.comment_create(ticket=ticket, author=agent, body="We restarted it.")
    services.comment_create(ticket=ticket, author=agent, body="internal: vendor bug #42", internal=True)
    body = api_client.get(_detail(ticket)).json()
    assert [c["body"] for c in body["comments"]] == ["We restarted it."]
    assert body["comments"][0]["by_agent"] is True
    assert [c["body"] for c in api_client.get(_comments(ticket)).json()["results"]] == ["We restarted it."]


def test_detail_costs_a_fixed_number_of_queries(api_client, ticket, agent, django_assert_max_num_queries):
    for i in range(15):
        services.comment_create(ticket=ticket, author=agent, body=f"reply {i}")
    with django_assert_max_num_queries(7):
        response = api_client.get(_detail(ticket))
    assert len(response.json()["comments"]) == 15


def test_requester_updates_subject_and_closes(api_client, ticket):
    response = api_client.patch(_detail(ticket), {"subject": "DB slow in eu-1", "status": "closed"}, format="json")
    assert response.status_code == 200
    assert response.json()["subject"] == "DB slow in eu-1" and response.json()["status"] == "closed"


def test_customer_cannot_change_priority_or_assignee(api_client, ticket):
    response = api_client.patch(_detail(ticket), {"priority": "critical", "assignee": None}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "assignee": ["Only support agents can set this."],
        "priority": ["Only support agents can set this."],
    }


def test_disallowed_transition_is_400_naming_the_allowed_targets(api_client, ticket):
    response = api_client.patch(_detail(ticket), {"status": "resolved"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"status": ["Cannot change status from open to resolved. Allowed: closed."]}


def test_agent_member_assigns_through_the_api(organization, ticket, agent):
    MembershipFactory(organization=organization, user=agent)  # e.g. the account's technical manager
    _, key = portal_services.api_token_create(membership=agent.memberships.get(), name="tam")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.patch(
        _detail(ticket), {"assignee": agent.pk, "priority": "high", "status": "in_progress"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["assignee"]["id"] == agent.pk
    bad = client.patch(_detail(ticket), {"assignee": 999999}, format="json")
    assert bad.status_code == 400 and bad.json() == {"assignee": ["No active support agent has this id."]}


def test_comment_and_reopen_through_the_api(api_client, ticket, agent):
    services.ticket_change_status(ticket=ticket, actor=agent, status=Status.RESOLVED)
    response = api_client.post(_comments(ticket), {"body": "Not fixed"}, format="json")
    assert response.status_code == 201
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN


def test_customer_cannot_post_internal_notes(api_client, ticket):
    response = api_client.post(_comments(ticket), {"body": "x", "internal": True}, format="json")
    assert response.status_code == 400 and "internal" in response.json()
    assert not Comment.objects.exists()


def test_comment_on_closed_ticket_is_400(api_client, ticket, member):
    services.ticket_change_status(ticket=ticket, actor=member.user, status=Status.CLOSED)
    response = api_client.post(_comments(ticket), {"body": "hello"}, format="json")
    assert response.status_code == 400 and "closed" in response.json()["body"][0]


@pytest.mark.parametrize(
    ("route", "method", "data"),
    [
        ("detail", "get", None),
        ("detail", "patch", {"status": "closed"}),
        ("comments", "get", None),
        ("comments", "post", {"body": "hi"}),
    ],
)
def test_another_organizations_ticket_is_404_on_every_endpoint(api_client, other_ticket, route, method, data):
    url = _detail(other_ticket) if route == "detail" else _comments(other_ticket)
    assert_cross_org_404(api_client, method, url, data, unchanged=[other_ticket])


def test_schema_documents_the_ticket_endpoints(client):
    import json

    schema = json.loads(client.get(reverse("api-schema"), HTTP_ACCEPT="application/json").content)
    assert {"/api/v1/tickets/", "/api/v1/tickets/{public_id}/", "/api/v1/tickets/{public_id}/comments/"} <= set(
        schema["paths"]
    )


@pytest.mark.parametrize("value", ["²", "٣", "1" * 40, "1.0"])
def test_an_odd_assignee_filter_is_a_400_with_a_field_error(api_client, ticket, value):
    response = api_client.get(LIST, {"assignee": value})
    assert response.status_code == 400
    assert response.json() == {"assignee": ["Unknown assignee."]}


def test_a_page_past_the_end_is_a_404_not_a_500(api_client, ticket):
    for q in ("database", ""):
        response = api_client.get(LIST, {"q": q, "page": "9999999999999999999999999"})
        assert response.status_code == 404 and "Invalid page" in response.json()["detail"]


def test_an_internal_note_does_not_change_the_tickets_updated_time(api_client, ticket, agent):
    before = api_client.get(_detail(ticket)).json()["updated"]
    services.comment_create(ticket=ticket, author=agent, body="internal only", internal=True)
    assert api_client.get(_detail(ticket)).json()["updated"] == before


# --- Attachments: multipart/form-data on create and reply -------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _file(name, content, content_type="application/octet-stream"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type=content_type)


def test_a_ticket_opened_with_files_lists_them_and_serves_them(api_client):
    response = api_client.post(
        LIST,
        {
            "subject": "Backup failed",
            "description": "See the log and the screenshot.",
            "attachments": [_file("backup.log", b"ERROR disk full\n"), _file("screen.png", PNG)],
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    files = {a["filename"]: a for a in response.json()["attachments"]}
    assert set(files) == {"backup.log", "screen.png"} and files["backup.log"]["size"] == 16
    ticket = Ticket.objects.get()
    assert ticket.attachments.count() == 2
    assert files["backup.log"]["url"].startswith("http://testserver/api/v1/tickets/")
    download = api_client.get(files["backup.log"]["url"])  # the token is enough
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"ERROR disk full\n"
    assert download["Content-Disposition"].startswith("attachment")


def test_an_internal_notes_file_or_another_organizations_is_404_through_the_api(
    api_client, ticket, agent, other_member
):
    note = services.comment_create(
        ticket=ticket, author=agent, body="vendor logs", internal=True, attachments=[_file("v.log", b"secret")]
    )
    hidden = note.attachments.get()
    theirs = make_ticket(other_member, attachments=[_file("t.txt", b"theirs")])
    for ticket_id, attachment in ((ticket.public_id, hidden), (theirs.public_id, theirs.attachments.get())):
        url = reverse("tickets-api:attachment", args=[ticket_id, attachment.public_id])
        assert api_client.get(url).status_code == 404


def test_a_reply_with_a_file_lists_it(api_client, ticket):
    response = api_client.post(
        _comments(ticket),
        {"body": "Here is the trace", "attachments": [_file("trace.txt", b"boom")]},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert [a["filename"] for a in response.json()["attachments"]] == ["trace.txt"]
    assert Comment.objects.get().attachments.count() == 1


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([("tool.exe", b"MZ\x90\x00")], "this type of file is not allowed"),
        ([("fake.png", b"not a png")], "does not look like a .png file"),
        ([(f"f{i}.txt", b"x") for i in range(6)], "Attach at most 5 files"),
        ([("empty.txt", b"")], "empty.txt is empty"),
    ],
)
def test_a_bad_file_is_a_400_on_attachments_and_nothing_is_written(api_client, ticket, files, message):
    before = (Ticket.objects.count(), Comment.objects.count())
    for url, data in (
        (LIST, {"subject": "S", "description": "D"}),
        (_comments(ticket), {"body": "B"}),
    ):
        response = api_client.post(url, {**data, "attachments": [_file(n, c) for n, c in files]}, format="multipart")
        assert response.status_code == 400 and message in " ".join(response.json()["attachments"]), response.json()
    assert (Ticket.objects.count(), Comment.objects.count()) == before
    assert not ticket.attachments.exists()


def test_attachments_in_json_are_a_400(api_client, ticket):
    response = api_client.post(_comments(ticket), {"body": "B", "attachments": ["aGVsbG8="]}, format="json")
    assert response.status_code == 400 and "attachments" in response.json()
    assert not Comment.objects.exists()


def test_schema_documents_multipart_uploads(client):
    import json

    schema = json.loads(client.get(reverse("api-schema"), HTTP_ACCEPT="application/json").content)
    for path in ("/api/v1/tickets/", "/api/v1/tickets/{public_id}/comments/"):
        content = schema["paths"][path]["post"]["requestBody"]["content"]
        assert {"application/json", "multipart/form-data"} <= set(content)
