import re
import uuid
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal.testing import assert_cross_org_404
from tickets import services
from tickets.models import Attachment, Comment, Status, Ticket, TicketFollower
from tickets.tests.factories import make_agent, make_ticket

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _detail(ticket):
    return reverse("tickets:detail", args=[ticket.public_id])


# --- List ---------------------------------------------------------------------------------


def test_list_shows_only_this_organizations_tickets(member_client, ticket, other_ticket):
    page = member_client.get(reverse("tickets:list")).content.decode()
    assert ticket.subject in page and other_ticket.subject not in page


def test_filters_live_in_the_url_and_htmx_gets_only_the_table(member_client, member):
    make_ticket(member, subject="Critical outage", priority="critical")
    make_ticket(member, subject="Low question", priority="low")
    url = reverse("tickets:list") + "?priority=critical"
    full = member_client.get(url).content.decode()
    assert "Critical outage" in full and "Low question" not in full and "<html" in full
    partial = member_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Critical outage" in partial and "<html" not in partial and 'id="ticket-results"' in partial


def test_bad_filter_value_is_a_400_with_a_message_not_a_500(member_client, ticket):
    response = member_client.get(reverse("tickets:list") + "?status=exploded")
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_empty_state_invites_the_first_ticket(member_client):
    assert "Open your first ticket" in member_client.get(reverse("tickets:list")).content.decode()


def test_assignee_filter_offers_the_agents_of_this_organizations_tickets_by_name(
    member_client, member, other_member, agent
):
    zoe, ann, outsider = (make_agent(first_name=n, last_name="Agent") for n in ("Zoe", "Ann", "Otto"))
    make_agent(first_name="Idle", last_name="Agent")  # assigned nowhere
    for assignee in (zoe, ann, zoe):
        services.ticket_update(ticket=make_ticket(member), actor=agent, assignee=assignee)
    services.ticket_update(ticket=make_ticket(other_member), actor=agent, assignee=outsider)
    response = member_client.get(reverse("tickets:list"))
    choices = [(str(value), str(label)) for value, label in response.context["form"].fields["assignee"].choices]
    agents = [label for value, label in choices if value.isdigit()]
    assert agents == ["Ann Agent", "Zoe Agent"]  # once each, by first name; not another org's, not idle ones
    assert (str(zoe.pk), "Zoe Agent") in choices


def test_the_agent_filter_lists_a_newly_assigned_agent_at_once(
    member_client, member, ticket, agent, django_capture_on_commit_callbacks
):
    url = reverse("tickets:list")

    def agents() -> list[tuple[str, str]]:
        choices = member_client.get(url).context["form"].fields["assignee"].choices
        return [(str(value), str(label)) for value, label in choices if str(value).isdigit()]

    assert agents() == []
    # The choices are kept (one query fewer for every list page and filter swap) ...
    with CaptureQueriesContext(connection) as second_page:
        member_client.get(url)
    assert not [q for q in second_page.captured_queries if "ARRAY(SELECT DISTINCT" in q["sql"]]  # the agents
    # ... and dropped when an assignee changes, once the change commits.
    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_update(ticket=ticket, actor=agent, assignee=agent)
    assert agents() == [(str(agent.pk), "Sam Support")]
    response = member_client.get(url + f"?assignee={agent.pk}")
    assert response.status_code == 200 and ticket.subject in response.content.decode()


def test_list_page_of_25_costs_a_fixed_number_of_queries(member_client, member, agent, django_assert_max_num_queries):
    for i in range(30):
        t = make_ticket(member, subject=f"Ticket {i}")
        services.ticket_update(ticket=t, actor=agent, assignee=agent)
    # 4: the user with their memberships, assignee choices (cached after this page), the page with
    # its count (the search's comes with its rows, count(*) OVER ()), unread notifications
    with django_assert_max_num_queries(4):
        response = member_client.get(reverse("tickets:list") + "?sort=priority&q=ticket")
    assert response.content.decode().count('id="ticket-row-') == 25


# --- Create -------------------------------------------------------------------------------


def test_create_with_an_attachment(member_client, member):
    response = member_client.post(
        reverse("tickets:create"),
        {
            "subject": "Disk full",
            "description": "The volume is at 100 %.",
            "priority": "high",
            "category": "technical",
            "attachments": [SimpleUploadedFile("df.png", PNG, content_type="image/png")],
        },
    )
    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response["Location"] == _detail(ticket)
    assert ticket.priority == "high" and ticket.queue == "infrastructure"
    assert Attachment.objects.get().filename == "df.png"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"subject": ""}, "This field is required."),
        ({"subject": "x" * 300}, "Ensure this value has at most 255 characters"),
        ({"priority": "urgent"}, "Select a valid choice"),
        (
            {"attachments": [SimpleUploadedFile("run.exe", b"MZ....", content_type="application/octet-stream")]},
            "not allowed",
        ),
        (
            {"attachments": [SimpleUploadedFile("fake.png", b"GIF89a....", content_type="image/png")]},
            "does not look like a .png file",
        ),
        (
            {"attachments": [SimpleUploadedFile("empty.txt", b"", content_type="text/plain")]},
            "The submitted file is empty.",
        ),
    ],
)
def test_bad_create_input_shows_form_errors_and_writes_nothing(member_client, data, message):
    form = {"subject": "Disk full", "description": "Help", "priority": "high", "category": "technical", **data}
    response = member_client.post(reverse("tickets:create"), form)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Ticket.objects.exists() and not Attachment.objects.exists()


def test_oversize_attachment_is_refused(member_client, settings, monkeypatch):
    monkeypatch.setattr(services, "ATTACHMENT_MAX_BYTES", 1024)
    big = SimpleUploadedFile("big.txt", b"a" * 2048, content_type="text/plain")
    response = member_client.post(
        reverse("tickets:create"),
        {"subject": "s", "description": "d", "priority": "low", "category": "general", "attachments": [big]},
    )
    assert response.status_code == 400
    assert "big.txt is 2.0\xa0KB; the limit is 1.0\xa0KB." in response.content.decode()
    assert not Ticket.objects.exists()


# --- Detail and conversation ----------------------------------------------------------------


def test_detail_shows_the_thread_without_internal_notes(member_client, ticket, agent):
    services.comment_create(ticket=ticket, author=agent, body="Public answer")
    services.comment_create(ticket=ticket, author=agent, body="Secret agent note", internal=True)
    page = member_client.get(_detail(ticket)).content.decode()
    assert "Public answer" in page and "Secret agent note" not in page and "internal note" not in page.lower()


def test_each_reply_shows_its_author_badges_paragraphs_and_files(member_client, ticket, agent, member):
    services.comment_create(
        ticket=ticket,
        author=agent,
        body='Fixed it.\n\nSee <the> "log".',
        attachments=[SimpleUploadedFile("restore.png", PNG, content_type="image/png")],
    )
    services.comment_create(ticket=ticket, author=member.user, body="Thanks!")
    page = member_client.get(_detail(ticket)).content.decode()
    reply, thanks = ticket.comments.order_by("created_at")
    agent_reply = page[page.index(f'<li id="comment-{reply.public_id}" class="comment comment-agent">') :]
    agent_reply = agent_reply[: agent_reply.index("</li>\n")]
    assert '<strong>Sam Support</strong> <span class="badge">Support</span>' in agent_reply
    assert "<p>Fixed it.</p>\n\n<p>See &lt;the&gt; &quot;log&quot;.</p>" in agent_reply
    attachment = reply.attachments.get()
    download = reverse("tickets:attachment", args=[ticket.public_id, attachment.public_id])
    assert f'<a href="{download}">restore.png</a> <span class="muted small">(72\xa0bytes)</span>' in agent_reply
    # Relative and absolute time, both as text (a title would show only to a mouse).
    local = timezone.localtime(reply.created_at)
    assert re.search(r'<time datetime="[^"]+">[^<]* ago <span class="muted">· ([^<]+)</span></time>', agent_reply)
    assert f"· {local.day} {local:%b %Y, %H:%M}" in agent_reply
    assert f'<li id="comment-{thanks.public_id}" class="comment">' in page  # a customer's: no badge


def test_detail_costs_a_fixed_number_of_queries(member_client, ticket, agent, member, django_assert_max_num_queries):
    for i in range(20):
        services.comment_create(ticket=ticket, author=agent if i % 2 else member.user, body=f"reply {i}")
    with django_assert_max_num_queries(7):
        response = member_client.get(_detail(ticket))
    assert response.content.decode().count('<li id="comment-') == 20


def _htmx_reply(client, ticket, body):
    return client.post(reverse("tickets:comment_add", args=[ticket.public_id]), {"body": body}, HTTP_HX_REQUEST="true")


def test_htmx_reply_is_appended_to_the_thread_and_the_form_comes_back_empty(member_client, ticket, agent):
    services.comment_create(ticket=ticket, author=agent, body="Which region?")
    response = _htmx_reply(member_client, ticket, "More details")
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    # The reply goes to the end of the thread on the page; the thread itself is not sent again.
    reply = Comment.objects.get(body="More details")
    assert f'<ol hx-swap-oob="beforeend:#comments"><li id="comment-{reply.public_id}"' in body
    assert "Which region?" not in body
    # The form that was sent is replaced by an empty one.
    assert '<form id="comment-form"' in body and 'hx-target="this"' in body
    assert '<textarea name="body" cols="40" rows="4" maxlength="20000" required id="id_body">\n</textarea>' in body


def test_first_htmx_reply_replaces_the_empty_thread(member_client, ticket):
    page = member_client.get(_detail(ticket)).content.decode()
    assert "No replies yet" in page and 'id="comments"' not in page  # nothing to append to yet
    body = _htmx_reply(member_client, ticket, "First words").content.decode()
    assert f'<div id="ticket-comments-{ticket.public_id}" class="card" hx-swap-oob="true">' in body
    assert '<ol class="comments" id="comments">' in body and "First words" in body
    assert "No replies yet" not in body


def test_htmx_reply_that_reopens_the_ticket_drops_the_reopen_hint(member_client, ticket, agent):
    services.ticket_change_status(ticket=ticket, actor=agent, status=Status.RESOLVED)
    assert "Replying reopens the ticket." in member_client.get(_detail(ticket)).content.decode()
    body = _htmx_reply(member_client, ticket, "Still broken").content.decode()
    assert "Replying reopens the ticket." not in body
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN


def test_an_agents_htmx_reply_returns_the_thread_with_internal_notes(client, ticket, agent):
    from portal.tests.factories import MembershipFactory

    MembershipFactory(organization=ticket.organization, user=agent, role="member")
    services.comment_create(ticket=ticket, author=agent, body="Customer is on the old plan", internal=True)
    client.force_login(agent)
    body = _htmx_reply(client, ticket, "We are on it").content.decode()
    assert f'<div id="ticket-comments-{ticket.public_id}" class="card" hx-swap-oob="true">' in body
    assert "Customer is on the old plan" in body and "We are on it" in body


def test_reply_without_javascript_redirects_back(member_client, ticket):
    response = member_client.post(reverse("tickets:comment_add", args=[ticket.public_id]), {"body": "More"})
    assert response.status_code == 302 and response["Location"].endswith("#comments")


def test_empty_reply_is_a_form_error(member_client, ticket):
    response = member_client.post(
        reverse("tickets:comment_add", args=[ticket.public_id]), {"body": ""}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 400 and "This field is required." in body
    assert body.lstrip().startswith('<form id="comment-form"')  # the form again, in place, with its error
    assert not Comment.objects.exists()


def test_customer_closes_and_reopens_from_the_page(member_client, ticket):
    member_client.post(reverse("tickets:status_change", args=[ticket.public_id]), {"status": "closed"})
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED
    page = member_client.get(_detail(ticket)).content.decode()
    assert "Reopen ticket" in page and "This ticket is closed" in page


def test_disallowed_transition_in_the_page_shows_the_allowed_ones(member_client, ticket):
    response = member_client.post(
        reverse("tickets:status_change", args=[ticket.public_id]), {"status": "resolved"}, follow=True
    )
    assert "Cannot change status from open to resolved. Allowed: closed." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN


def test_follow_and_unfollow(client, ticket, organization):
    from portal.tests.factories import MembershipFactory

    colleague = MembershipFactory(organization=organization)
    client.force_login(colleague.user)
    client.post(reverse("tickets:follow", args=[ticket.public_id]), {"follow": "1"})
    assert TicketFollower.objects.filter(ticket=ticket, user=colleague.user).exists()
    response = client.post(reverse("tickets:follow", args=[ticket.public_id]), {"follow": "0"}, HTTP_HX_REQUEST="true")
    assert "Follow this ticket" in response.content.decode()
    assert not TicketFollower.objects.filter(ticket=ticket, user=colleague.user).exists()


def test_attachment_is_served_to_members_only_as_a_download(member_client, member, client, other_member):
    ticket = make_ticket(member, attachments=[SimpleUploadedFile("notes.txt", b"hello", content_type="text/plain")])
    attachment = Attachment.objects.get()
    url = reverse("tickets:attachment", args=[ticket.public_id, attachment.public_id])
    response = member_client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"hello"
    assert response["Content-Disposition"].startswith("attachment")
    client.force_login(other_member.user)
    assert client.get(url).status_code == 404


def test_an_attachment_whose_file_is_gone_is_404_not_a_500(member_client, member):
    ticket = make_ticket(member, attachments=[SimpleUploadedFile("gone.txt", b"bye", content_type="text/plain")])
    attachment = Attachment.objects.get()
    attachment.file.storage.delete(attachment.file.name)  # e.g. restored database, storage not
    url = reverse("tickets:attachment", args=[ticket.public_id, attachment.public_id])
    assert member_client.get(url).status_code == 404


def test_files_on_internal_notes_stay_with_agents(member_client, ticket, agent):
    note = services.comment_create(
        ticket=ticket,
        author=agent,
        body="logs",
        internal=True,
        attachments=[SimpleUploadedFile("a.log", b"x", content_type="text/plain")],
    )
    attachment = note.attachments.get()
    assert (
        member_client.get(reverse("tickets:attachment", args=[ticket.public_id, attachment.public_id])).status_code
        == 404
    )


# --- Isolation: every route with another organization's ids ---------------------------------


@pytest.mark.parametrize(
    ("name", "method", "data"),
    [
        ("tickets:detail", "get", None),
        ("tickets:comment_add", "post", {"body": "hi"}),
        ("tickets:status_change", "post", {"status": "closed"}),
        ("tickets:follow", "post", {"follow": "1"}),
    ],
)
def test_another_organizations_ticket_is_404_everywhere(member_client, other_ticket, name, method, data):
    assert_cross_org_404(
        member_client, method, reverse(name, args=[other_ticket.public_id]), data, unchanged=[other_ticket]
    )


def test_another_organizations_attachment_is_404(member_client, member, other_member):
    theirs = make_ticket(other_member, attachments=[SimpleUploadedFile("t.txt", b"secret", content_type="text/plain")])
    mine = make_ticket(member)
    attachment = theirs.attachments.get()
    assert_cross_org_404(
        member_client, "get", reverse("tickets:attachment", args=[theirs.public_id, attachment.public_id])
    )
    # Their attachment id under my ticket's URL is just as missing.
    assert_cross_org_404(
        member_client, "get", reverse("tickets:attachment", args=[mine.public_id, attachment.public_id])
    )


def test_unknown_ticket_id_is_404(member_client):
    assert member_client.get(reverse("tickets:detail", args=[uuid.uuid4()])).status_code == 404


def test_pagination_keeps_the_filters(member_client, member):
    for i in range(30):
        make_ticket(member, subject=f"Paged {i}", priority="high")
    page = member_client.get(reverse("tickets:list") + "?priority=high").content.decode()
    assert 'href="?priority=high&amp;page=2"' in page
    second = member_client.get(reverse("tickets:list") + "?priority=high&page=2").content.decode()
    assert second.count('id="ticket-row-') == 5 and "Page 2 of 2" in second


@pytest.mark.parametrize("q", ["database", ""])
@pytest.mark.parametrize("page", ["9999999999999999999999999", "1000001", "3"])
def test_a_page_past_the_end_is_the_last_page_with_or_without_a_search(member_client, member, q, page):
    for i in range(30):
        make_ticket(member, subject=f"Database ticket {i}")
    response = member_client.get(reverse("tickets:list"), {"q": q, "page": page})
    assert response.status_code == 200
    body = response.content.decode()
    assert "Page 2 of 2" in body and body.count('id="ticket-row-') == 5


@pytest.mark.parametrize("value", ["²", "٣", "1" * 40, "-1"])
def test_an_odd_assignee_filter_is_a_form_error_not_a_500(member_client, ticket, value):
    response = member_client.get(reverse("tickets:list"), {"assignee": value})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_agents_status_buttons_use_the_status_labels(client, ticket, agent, organization):
    from portal.tests.factories import MembershipFactory

    MembershipFactory(organization=organization, user=agent)  # e.g. the account's technical manager
    client.force_login(agent)
    body = client.get(_detail(ticket)).content.decode()
    assert "Mark as in progress</button>" in body and "Mark as waiting on customer</button>" in body
    assert "Mark as resolved</button>" in body and "Close ticket</button>" in body
    assert "Inprogress" not in body and "Waitingoncustomer" not in body


def test_an_internal_note_is_invisible_on_the_customers_list(member_client, member, ticket, agent):
    make_ticket(member, subject="Newer ticket")
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=ticket.updated_at - timedelta(days=1))
    url = reverse("tickets:list")
    before = member_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    services.comment_create(ticket=ticket, author=agent, body="internal only", internal=True)
    after = member_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    updated = re.compile(r'data-label="Updated"><time datetime="([^"]+)"')
    assert updated.findall(after) == updated.findall(before)  # same order, same "updated" times
    assert after.index("Newer ticket") < after.index(ticket.subject)


def test_the_result_count_is_one_live_region_outside_the_results_that_htmx_updates_out_of_band(member_client, member):
    make_ticket(member, subject="Critical outage", priority="critical")
    make_ticket(member, subject="Low question", priority="low")
    url = reverse("tickets:list") + "?priority=critical"
    full = member_client.get(url).content.decode()
    assert full.count('id="ticket-result-count"') == 1
    assert '<p id="ticket-result-count" class="result-count" role="status"><span>1 ticket matches</span></p>' in full
    assert full.index('id="ticket-result-count"') < full.index('id="ticket-results"')
    partial = member_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert '<p id="ticket-result-count" hx-swap-oob="innerHTML"><span>1 ticket matches</span></p>' in partial
