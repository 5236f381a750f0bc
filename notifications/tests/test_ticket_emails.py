"""Ticket e-mails follow the recipient's "ticket" preference: they are that type's e-mail channel.

E-mail (the default) with immediate delivery: tickets' own e-mail for each event, and no second,
generic notification e-mail; a digest: the notifications in the digest; in-app or off: no e-mail.
"""

import pytest
from django.core import mail
from django.db import transaction

from notifications import services
from notifications.models import Notification, Preference
from notifications.tests.conftest import dispatch_all, publish
from portal import events
from tickets import services as ticket_services
from tickets.tests.factories import make_ticket

pytestmark = pytest.mark.django_db


def _prefer(user, channel, digest="immediate"):
    services.preferences_update(user=user, choices={"ticket": {"channel": channel, "digest": digest}})


def _reply(ticket, agent, body="We restarted the node."):
    with transaction.atomic():
        ticket_services.comment_create(ticket=ticket, author=agent, body=body)
    dispatch_all()
    services.notification_emails_send(digest="immediate")


def _subjects():
    return [m.subject for m in mail.outbox]


@pytest.fixture
def quiet_ticket(ticket):
    dispatch_all()
    mail.outbox.clear()
    return ticket


@pytest.mark.parametrize("channel", ["off", "in_app"])
def test_no_reply_email_when_ticket_emails_are_off_or_in_app_only(member, agent, quiet_ticket, channel):
    _prefer(member.user, channel)
    _reply(quiet_ticket, agent)
    assert mail.outbox == []


def test_email_preference_gets_exactly_one_email_per_reply(member, agent, quiet_ticket):
    _prefer(member.user, "email")
    _reply(quiet_ticket, agent)
    assert _subjects() == [f"[#{quiet_ticket.number}] New reply: {quiet_ticket.subject}"]
    assert "We restarted the node." in mail.outbox[0].body
    assert Notification.objects.get(recipient=member.user).read_at is None  # still in the inbox


def test_the_default_is_the_ticket_email_alone(member, agent, quiet_ticket):
    assert not Preference.objects.filter(user=member.user).exists()
    _reply(quiet_ticket, agent)
    _reply(quiet_ticket, agent, "Second reply: action needed")
    assert _subjects() == [f"[#{quiet_ticket.number}] New reply: {quiet_ticket.subject}"] * 2
    assert "Second reply: action needed" in mail.outbox[1].body


def test_a_digest_gets_the_replies_in_the_digest_and_no_per_reply_email(member, agent, quiet_ticket):
    _prefer(member.user, "email", "hourly")
    _reply(quiet_ticket, agent)
    assert mail.outbox == []
    assert services.notification_emails_send(digest="hourly") == 1
    assert _subjects() == ["Your hourly SecureBase summary: 1 update(s)"]
    # The same unread notification, bumped by a later reply, is in the next digest again.
    _reply(quiet_ticket, agent, "Second reply")
    assert services.notification_emails_send(digest="hourly") == 1
    assert len(mail.outbox) == 2 and f"#{quiet_ticket.number}" in mail.outbox[1].body


@pytest.mark.parametrize(("channel", "emails"), [("off", 0), ("in_app", 0), ("email", 1)])
def test_the_requesters_confirmation_follows_the_same_rule(member, channel, emails):
    _prefer(member.user, channel)
    make_ticket(member, subject="VPN is down")
    dispatch_all()
    services.notification_emails_send(digest="immediate")
    assert _subjects() == ["[#1001] We received your request: VPN is down"] * emails


def test_a_customer_reply_emails_the_assignee_only_if_their_preference_allows(member, agent, quiet_ticket):
    ticket_services.ticket_update(ticket=quiet_ticket, actor=agent, assignee=agent)
    dispatch_all()
    _prefer(agent, "off")
    mail.outbox.clear()
    with transaction.atomic():
        ticket_services.comment_create(ticket=quiet_ticket, author=member.user, body="Any news?")
    dispatch_all()
    services.notification_emails_send(digest="immediate")
    assert mail.outbox == []


def test_a_bumped_unread_notification_is_emailed_again(organization, admin_member):
    services.preferences_update(user=admin_member.user, choices={"compliance": {"channel": "email"}})
    publish(events.COMPLIANCE_UPDATED, organization, {"framework": "SOC 2", "status": "warning"})
    assert services.notification_emails_send(digest="immediate") == 1
    publish(events.COMPLIANCE_UPDATED, organization, {"framework": "SOC 2", "status": "failing"})
    row = Notification.objects.get(recipient=admin_member.user)
    assert row.updates == 2 and row.read_at is None  # one coalesced, unread row
    assert services.notification_emails_send(digest="immediate") == 1
    assert _subjects() == ["SOC 2 compliance is warning", "SOC 2 compliance is failing"]
    assert services.notification_emails_send(digest="immediate") == 0  # and once per update
