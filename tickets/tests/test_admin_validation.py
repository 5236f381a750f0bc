"""Agents' bad input or a change the services refuse comes back as a form error, never a 500."""

import pytest

from portal.models import Event
from tickets import services
from tickets.models import BODY_MAX, Comment, Status, Ticket, TicketChange
from tickets.tests.factories import make_agent
from tickets.tests.test_admin import _change_url, _form

pytestmark = pytest.mark.django_db


def _nothing_written(ticket, *, comments=0, changes=None):
    """The ticket row, its thread, its audit trail and the outbox are as they were."""
    stored = Ticket.objects.get(pk=ticket.pk)
    assert (stored.status, stored.description, stored.assignee_id, stored.updated_at) == (
        ticket.status,
        ticket.description,
        ticket.assignee_id,
        ticket.updated_at,
    )
    assert Comment.objects.filter(ticket=ticket).count() == comments
    assert TicketChange.objects.filter(ticket=ticket).count() == changes
    assert not Event.objects.filter(type__in=["ticket.updated", "ticket.comment_added"]).exists()


def test_description_over_the_limit_is_a_form_error_and_kept(agent_client, ticket):
    changes = TicketChange.objects.filter(ticket=ticket).count()
    too_long = "x" * (BODY_MAX + 1)
    response = agent_client.post(_change_url(ticket), _form(ticket, description=too_long))
    assert response.status_code == 200
    page = response.content.decode()
    assert f"Keep it to {BODY_MAX:,} characters (it has {BODY_MAX + 1:,})." in page
    assert response.context["adminform"].form["description"].value() == too_long  # the agent's text is kept
    _nothing_written(ticket, changes=changes)


def test_reply_over_the_limit_is_a_form_error_and_kept(agent_client, ticket):
    changes = TicketChange.objects.filter(ticket=ticket).count()
    too_long = "y" * (BODY_MAX + 1)
    response = agent_client.post(
        _change_url(ticket), _form(ticket, status="in_progress", **{"comments-0-body": too_long})
    )
    assert response.status_code == 200
    assert f"Keep it to {BODY_MAX:,} characters (it has {BODY_MAX + 1:,})." in response.content.decode()
    comment_form = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert comment_form["body"].value() == too_long
    _nothing_written(ticket, changes=changes)  # the status change in the same submit is not applied


def test_reply_on_a_closed_ticket_is_a_form_error(agent_client, ticket, agent):
    services.ticket_change_status(ticket=ticket, actor=agent, status=Status.CLOSED)
    Event.objects.all().delete()
    ticket.refresh_from_db()
    changes = TicketChange.objects.filter(ticket=ticket).count()
    response = agent_client.post(_change_url(ticket), _form(ticket, **{"comments-0-body": "One more thing"}))
    assert response.status_code == 200
    assert "This ticket is closed" in response.content.decode()
    assert response.context["inline_admin_formsets"][0].formset.forms[0]["body"].value() == "One more thing"
    _nothing_written(ticket, changes=changes)


def test_reopen_and_reply_in_one_submit(agent_client, ticket, agent):
    services.ticket_change_status(ticket=ticket, actor=agent, status=Status.CLOSED)
    ticket.refresh_from_db()
    response = agent_client.post(
        _change_url(ticket), _form(ticket, status="open", **{"comments-0-body": "Reopening: found the cause"})
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN
    assert Comment.objects.get(ticket=ticket).body == "Reopening: found the cause"


def test_close_with_a_farewell_reply_in_one_submit(agent_client, ticket, agent):
    response = agent_client.post(
        _change_url(ticket), _form(ticket, status="closed", **{"comments-0-body": "Fixed, closing. Bye!"})
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED and ticket.closed_at is not None
    reply = Comment.objects.get(ticket=ticket)
    assert (reply.body, reply.internal, reply.by_agent) == ("Fixed, closing. Bye!", False, True)
    assert ticket.first_response_at is not None and ticket.comment_count == 1
    # The customer hears the reply, then the close.
    assert list(Event.objects.filter(type__startswith="ticket.").order_by("id").values_list("type", flat=True)) == [
        "ticket.created",
        "ticket.comment_added",
        "ticket.updated",
    ]


def test_inactive_agent_is_not_offered_nor_accepted_as_assignee(agent_client, ticket):
    gone = make_agent(first_name="Former", last_name="Agent", is_active=False)
    page = agent_client.get(_change_url(ticket))
    assert page.status_code == 200
    offered = {choice.pk for choice in page.context["adminform"].form.fields["assignee"].queryset}
    assert gone.pk not in offered
    assert "Former Agent" not in page.content.decode() and gone.username not in page.content.decode()

    changes = TicketChange.objects.filter(ticket=ticket).count()
    response = agent_client.post(_change_url(ticket), _form(ticket, assignee=gone.pk))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["assignee"]
    _nothing_written(ticket, changes=changes)


def test_ticket_still_assigned_to_a_deactivated_agent_saves_other_changes(agent_client, ticket, agent):
    former = make_agent()
    services.ticket_update(ticket=ticket, actor=agent, assignee=former)
    former.is_active = False
    former.save(update_fields=["is_active"])
    ticket.refresh_from_db()
    assert f'<option value="{former.pk}" selected>' in agent_client.get(_change_url(ticket)).content.decode()
    response = agent_client.post(_change_url(ticket), _form(ticket, priority="high"))
    assert response.status_code == 302, response.content.decode()[:2000]
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.assignee_id) == ("high", former.pk)  # not silently unassigned


def test_service_refusal_at_save_time_re_renders_the_form(agent_client, ticket, monkeypatch):
    """The safety net: a rule only the service knows still comes back as a form error, with nothing written."""
    changes = TicketChange.objects.filter(ticket=ticket).count()
    real_comment_create = services.comment_create

    def refuse(**kwargs):
        real_comment_create(**kwargs)  # writes, then refuses: the whole submit must roll back
        raise services.ValidationError({"body": "Refused by the service."})

    monkeypatch.setattr(services, "comment_create", refuse)
    response = agent_client.post(
        _change_url(ticket), _form(ticket, status="in_progress", **{"comments-0-body": "Hello"})
    )
    assert response.status_code == 200
    assert "Refused by the service." in response.content.decode()
    assert response.context["adminform"].form["status"].value() == "in_progress"
    assert response.context["inline_admin_formsets"][0].formset.forms[0]["body"].value() == "Hello"
    _nothing_written(ticket, changes=changes)
