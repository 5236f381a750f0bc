import pytest
from django.urls import reverse

from portal.models import Event
from tickets import services
from tickets.models import Comment, Status, Ticket, TicketChange
from tickets.tests.factories import make_ticket

pytestmark = pytest.mark.django_db


def _change_url(ticket):
    return reverse("admin:tickets_ticket_change", args=[ticket.pk])


def _form(ticket, **overrides):
    data = {
        "subject": ticket.subject,
        "description": ticket.description,
        "status": ticket.status,
        "priority": ticket.priority,
        "assignee": ticket.assignee_id or "",
        "category": ticket.category,
        "queue": ticket.queue,
        "comments-TOTAL_FORMS": "1",
        "comments-INITIAL_FORMS": "0",
        "comments-MIN_NUM_FORMS": "0",
        "comments-MAX_NUM_FORMS": "1000",
        "comments-0-body": "",
        "attachments-TOTAL_FORMS": "0",
        "attachments-INITIAL_FORMS": "0",
        "changes-TOTAL_FORMS": "0",
        "changes-INITIAL_FORMS": "0",
    }
    return {**data, **overrides}


def test_admin_list_shows_tickets_across_organizations_in_few_queries(
    agent_client, member, other_member, django_assert_max_num_queries
):
    for i in range(20):
        make_ticket(member if i % 2 else other_member, subject=f"Ticket {i}")
    with django_assert_max_num_queries(12):
        response = agent_client.get(reverse("admin:tickets_ticket_changelist"))
    assert response.status_code == 200 and response.content.decode().count("Ticket 1") >= 10


def test_admin_filters_by_sla_state(agent_client, ticket):
    Ticket.objects.filter(pk=ticket.pk).update(
        first_response_due_at=ticket.created_at, first_response_warn_at=ticket.created_at
    )
    response = agent_client.get(reverse("admin:tickets_ticket_changelist") + "?sla=breached")
    assert ticket.subject in response.content.decode()
    assert (
        ticket.subject
        not in agent_client.get(reverse("admin:tickets_ticket_changelist") + "?sla=running").content.decode()
    )


def test_agent_changes_go_through_the_service(agent_client, ticket, agent):
    response = agent_client.post(
        _change_url(ticket), _form(ticket, status="in_progress", assignee=agent.pk, priority="high")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee, ticket.priority) == ("in_progress", agent, "high")
    assert TicketChange.objects.filter(ticket=ticket, field="status", actor=agent).exists()
    assert Event.objects.filter(type="ticket.updated").count() == 1


def test_disallowed_transition_in_admin_is_a_form_error(agent_client, ticket, agent):
    services.ticket_change_status(ticket=ticket, actor=agent, status=Status.CLOSED)
    response = agent_client.post(_change_url(ticket), _form(ticket, status="resolved"))
    assert response.status_code == 200
    assert "Cannot change status from closed to resolved. Allowed: open." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED


def test_agent_replies_publicly_or_as_internal_note(agent_client, ticket, agent):
    agent_client.post(_change_url(ticket), _form(ticket, **{"comments-0-body": "We're on it"}))
    agent_client.post(
        _change_url(ticket), _form(ticket, **{"comments-0-body": "Escalated to vendor", "comments-0-internal": "on"})
    )
    public, note = Comment.objects.order_by("id")
    assert (public.body, public.internal, public.by_agent) == ("We're on it", False, True)
    assert (note.body, note.internal) == ("Escalated to vendor", True)
    ticket.refresh_from_db()
    assert ticket.first_response_at is not None


def test_bulk_actions_obey_the_workflow(agent_client, member, agent):
    open_ticket = make_ticket(member, subject="A")
    closed_ticket = make_ticket(member, subject="B")
    services.ticket_change_status(ticket=closed_ticket, actor=agent, status=Status.CLOSED)
    response = agent_client.post(
        reverse("admin:tickets_ticket_changelist"),
        {"action": "mark_resolved", "_selected_action": [open_ticket.pk, closed_ticket.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "Resolved: 1 ticket(s)." in page
    assert f"{closed_ticket.reference}: Cannot change status from closed to resolved. Allowed: open." in page
    open_ticket.refresh_from_db()
    closed_ticket.refresh_from_db()
    assert (open_ticket.status, closed_ticket.status) == (Status.RESOLVED, Status.CLOSED)


def test_bulk_close_says_which_tickets_already_were_closed(agent_client, member, agent):
    open_ticket = make_ticket(member, subject="A")
    closed_ticket = make_ticket(member, subject="B")
    services.ticket_change_status(ticket=closed_ticket, actor=agent, status=Status.CLOSED)
    changes_before = closed_ticket.changes.count()
    response = agent_client.post(
        reverse("admin:tickets_ticket_changelist"),
        {"action": "close", "_selected_action": [open_ticket.pk, closed_ticket.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "Closed: 1 ticket(s)." in page and "1 ticket(s) already were: nothing to do." in page
    assert closed_ticket.changes.count() == changes_before


def test_bulk_assign_to_me(agent_client, ticket, agent):
    agent_client.post(
        reverse("admin:tickets_ticket_changelist"), {"action": "assign_to_me", "_selected_action": [ticket.pk]}
    )
    ticket.refresh_from_db()
    assert ticket.assignee == agent


def test_sla_policies_are_editable_in_admin(agent_client):
    from tickets.models import SlaPolicy

    policy = SlaPolicy.objects.get(priority="critical")
    assert (policy.first_response_minutes, policy.resolution_minutes) == (60, 480)
    response = agent_client.post(
        reverse("admin:tickets_slapolicy_change", args=[policy.pk]),
        {"priority": "critical", "first_response_minutes": 30, "resolution_minutes": 240, "calendar": ""},
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.first_response_minutes == 30


def test_admin_search_finds_a_ticket_by_its_hash_reference(agent_client, member, other_member):
    first = make_ticket(member, subject="Backups failing")
    second = make_ticket(member, subject="VPN down")
    theirs = make_ticket(other_member, subject="Billing question")
    assert (first.number, second.number, theirs.number) == (1001, 1002, 1001)
    url = reverse("admin:tickets_ticket_changelist")

    page = agent_client.get(url, {"q": "#1002"}).content.decode()
    assert "VPN down" in page and "Backups failing" not in page and "Billing question" not in page

    page = agent_client.get(url, {"q": " #1001 "}).content.decode()
    assert "Backups failing" in page and "Billing question" in page and "VPN down" not in page

    page = agent_client.get(url, {"q": "#99999999999999999999"})  # no such number, and never a 500
    assert page.status_code == 200 and "VPN down" not in page.content.decode()
