import pytest
from django.core import mail
from django.db import transaction

from portal import events
from portal.models import Event
from tickets import services
from tickets.tests.factories import make_ticket

pytestmark = pytest.mark.django_db


def _dispatch_all():
    for event_id in Event.objects.filter(dispatched_at__isnull=True).order_by("id").values_list("id", flat=True):
        events.event_dispatch(event_id=event_id)


def test_requester_gets_a_confirmation_after_commit(member, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ticket = make_ticket(member, priority="critical")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [member.user.email]
    assert message.subject == f"[#1001] We received your request: {ticket.subject}"
    assert f"/tickets/{ticket.public_id}/" in message.body and "Critical" in message.body


def test_no_email_when_the_change_rolls_back(member, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        make_ticket(member)
        raise RuntimeError
    assert mail.outbox == []


def test_agent_public_reply_emails_the_requester_but_internal_notes_do_not(member, agent):
    ticket = make_ticket(member)
    _dispatch_all()
    mail.outbox.clear()
    with transaction.atomic():
        services.comment_create(ticket=ticket, author=agent, body="Vendor escalation, do not share", internal=True)
        services.comment_create(ticket=ticket, author=agent, body="We restarted the node.")
    _dispatch_all()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [member.user.email]
    assert "We restarted the node." in mail.outbox[0].body and "Vendor escalation" not in mail.outbox[0].body


def test_customer_reply_emails_the_assignee(member, agent):
    ticket = make_ticket(member)
    services.ticket_update(ticket=ticket, actor=agent, assignee=agent)
    _dispatch_all()
    mail.outbox.clear()
    services.comment_create(ticket=ticket, author=member.user, body="Any news?")
    _dispatch_all()
    assert [m.to for m in mail.outbox] == [[agent.email]]
    assert "Any news?" in mail.outbox[0].body and "/admin/tickets/ticket/" in mail.outbox[0].body


def test_dispatching_twice_sends_once(member):
    make_ticket(member)
    _dispatch_all()
    event = Event.objects.get(type="ticket.created")
    Event.objects.filter(pk=event.pk).update(dispatched_at=None)
    events.event_dispatch(event_id=event.pk)
    assert len(mail.outbox) == 1
