"""The benchmark's savings, pinned as upper bounds (the shared middleware may get cheaper still): query counts of the write paths and search, and that the
cheaper code paths (one UPDATE per reply, the vector computed by the INSERT, the count read from
the search page's own rows, rows rendered in Python) give the same results as before."""

from datetime import timedelta

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from tickets import services
from tickets.models import Ticket
from tickets.templatetags.ticket_tags import sla_badge
from tickets.tests.factories import make_agent, make_ticket

pytestmark = pytest.mark.django_db


def _vector(ticket_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT search_vector::text FROM tickets_ticket WHERE id = %s", [ticket_id])
        return cursor.fetchone()[0]


def _refreshed_vector(ticket_id: int) -> str:
    services.ticket_search_refresh(ticket_id=ticket_id)
    return _vector(ticket_id)


# --- Search: count from the page's own rows ---------------------------------------------------


def test_search_page_reads_the_count_from_its_rows(member_client, member, django_assert_max_num_queries):
    for i in range(30):
        make_ticket(member, subject=f"Gateway timeout {i}")
    make_ticket(member, subject="Unrelated billing question")
    url = reverse("tickets:list") + "?q=gateway+time"
    # the user with their memberships (the session comes from the cache) · assignee choices · the
    # page with its count · unread notifications
    with django_assert_max_num_queries(4):
        first = member_client.get(url).content.decode()
    assert "30 tickets match" in first and first.count('id="ticket-row-') == 25 and "Page 1 of 2" in first
    second = member_client.get(url + "&page=2").content.decode()
    assert "30 tickets match" in second and second.count('id="ticket-row-') == 5 and "Page 2 of 2" in second


def test_search_past_the_last_page_shows_the_last_page(member_client, member):
    for i in range(3):
        make_ticket(member, subject=f"Gateway timeout {i}")
    page = member_client.get(reverse("tickets:list") + "?q=gateway&page=9").content.decode()
    assert "3 tickets match" in page and page.count('id="ticket-row-') == 3


def test_search_without_matches_is_an_empty_result_not_an_error(member_client, member):
    make_ticket(member, subject="Gateway timeout")
    for page_number in ("1", "7", "x"):
        response = member_client.get(reverse("tickets:list") + f"?q=zebracorn&page={page_number}")
        assert response.status_code == 200
        assert "0 tickets match" in response.content.decode() and "No tickets match" in response.content.decode()


# --- Writes: fewer statements, same search vector -----------------------------------------------


def test_create_costs_a_fixed_number_of_queries(member_client, member, django_assert_max_num_queries):
    data = {"subject": "VPN down", "description": "Tunnel flaps.", "priority": "high", "category": "technical"}
    # the user with their memberships · BEGIN · number · SLA policy · INSERT ticket (with its
    # vector) · follower · audit · event · COMMIT (was 13: a membership check and a search refresh more)
    with django_assert_max_num_queries(9):
        response = member_client.post(reverse("tickets:create"), data)
    assert response.status_code == 302


def test_htmx_reply_costs_a_fixed_number_of_queries(member_client, ticket, django_assert_max_num_queries):
    url = reverse("tickets:comment_add", args=[ticket.public_id])
    # the user with their memberships · ticket · BEGIN · lock · INSERT comment · one UPDATE of the
    # ticket · event · COMMIT (the fragment appends the reply, so the thread is not read again, and
    # has no bell: no unread count)
    services.comment_create(ticket=ticket, author=make_agent(), body="Which region?")
    with django_assert_max_num_queries(8):
        response = member_client.post(url, {"body": "More details"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "More details" in response.content.decode()


def test_fragments_without_the_page_shell_skip_the_unread_count(member_client, member):
    from django.test.utils import CaptureQueriesContext

    make_ticket(member, subject="VPN down")
    url = reverse("tickets:list") + "?status=open"
    member_client.get(url)  # the filter's agent choices are cached from here on, for both requests
    with CaptureQueriesContext(connection) as page:
        html = member_client.get(url).content.decode()
    with CaptureQueriesContext(connection) as fragment:
        member_client.get(url, HTTP_HX_REQUEST="true")

    def unread_reads(queries) -> int:
        return sum("notifications_notification" in q["sql"] for q in queries.captured_queries)

    assert unread_reads(page) == 1 and 'id="live-cursor"' in html  # the shell: bell and live cursor
    assert unread_reads(fragment) == 0
    assert len(fragment.captured_queries) == len(page.captured_queries) - 1


def test_new_tickets_vector_is_the_refreshed_one(member):
    ticket = make_ticket(member, subject="Replication lag on the replica", description="Lag grows at night.")
    stored = _vector(ticket.pk)
    assert stored and "replic" in stored
    assert stored == _refreshed_vector(ticket.pk)
    assert "search_vector" in ticket.get_deferred_fields()  # never written back from the instance


def test_one_update_per_reply_keeps_the_vector_and_the_ticket_in_step(member, agent):
    ticket = make_ticket(member, subject="Disk full")
    services.comment_create(ticket=ticket, author=agent, body="We extended the volume.")
    services.comment_create(ticket=ticket, author=member.user, body="Thanks, zebracorn works again.")
    services.comment_create(ticket=ticket, author=agent, body="Secret note", internal=True)
    ticket.refresh_from_db()
    assert ticket.comment_count == 2 and ticket.first_response_at is not None
    stored = _vector(ticket.pk)
    assert "zebracorn" in stored and "secret" not in stored
    assert stored == _refreshed_vector(ticket.pk)


def _first_position(vector: str, word: str) -> int:
    for item in vector.split():
        lexeme, _, positions = item.partition(":")
        if lexeme.strip("'") == word:
            return min(int(p.rstrip("ABCD")) for p in positions.split(","))
    raise AssertionError(f"{word} not in {vector}")


def test_replies_enter_the_vector_in_conversation_order(member, agent):
    ticket = make_ticket(member, subject="Order")
    first = services.comment_create(ticket=ticket, author=agent, body="alpha")
    services.comment_create(ticket=ticket, author=member.user, body="omega")
    assert _first_position(_vector(ticket.pk), "alpha") < _first_position(_vector(ticket.pk), "omega")
    # Backdate nothing, move the first reply after the second: the refresh follows created_at.
    type(first).objects.filter(pk=first.pk).update(created_at=timezone.now() + timedelta(hours=1))
    vector = _refreshed_vector(ticket.pk)
    assert _first_position(vector, "omega") < _first_position(vector, "alpha")


def test_editing_the_subject_updates_the_vector_in_the_same_statement(member, agent):
    ticket = make_ticket(member, subject="Kafka lag")
    services.comment_create(ticket=ticket, author=agent, body="Looking into the brokers.")
    services.ticket_update(ticket=ticket, actor=member.user, subject="Zookeeper quorum lost")
    stored = _vector(ticket.pk)
    assert "zookeep" in stored and "kafka" not in stored and "broker" in stored
    assert stored == _refreshed_vector(ticket.pk)


def test_a_membership_for_another_organization_is_not_trusted(member, other_member):
    ticket = make_ticket(member)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        services.comment_create(ticket=ticket, author=other_member.user, body="hi", membership=other_member)
    with pytest.raises(ValidationError):
        services.ticket_create(
            organization=member.organization,
            requester=other_member.user,
            subject="x",
            description="y",
            membership=other_member,
        )


# --- Rows and badges rendered in Python --------------------------------------------------------


def test_live_row_is_swapped_out_of_band_and_escaped(member, agent):
    ticket = make_ticket(member, subject="<b>bold</b> & co")
    services.ticket_update(ticket=ticket, actor=agent, assignee=agent)
    ticket = Ticket.objects.select_related("requester", "assignee").get(pk=ticket.pk)
    live = render_to_string("tickets/list.html#ticket-row", {"ticket": ticket, "live": True})
    assert f'<tr id="ticket-row-{ticket.public_id}" hx-swap-oob="true">' in live
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in live and "<b>bold" not in live
    assert f'href="/tickets/{ticket.public_id}/"' in live and "Sam Support" in live
    page = render_to_string("tickets/list.html#ticket-row", {"ticket": ticket})
    assert "hx-swap-oob" not in page


def test_sla_badge_markup(member):
    ticket = make_ticket(member, priority="critical")
    now = ticket.sla_started_at
    on_track = str(sla_badge(ticket, now))
    assert 'class="sla sla-on_track"' in on_track and "data-due=" in on_track
    assert "first response due in 1\xa0hour" in on_track
    breached = str(sla_badge(ticket, now + timedelta(hours=2)))
    assert "sla-breached" in breached and "first response overdue by" in breached
    ticket.first_response_at = ticket.resolved_at = timezone.now()
    met = str(sla_badge(ticket))
    assert "sla-met" in met and "data-due" not in met and "SLA met" in met
