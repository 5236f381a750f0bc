"""Notification titles and activity lines read as sentences: status labels, the ticket named, no event names."""

import pytest
from django.urls import reverse

from notifications.models import Notification
from notifications.tests.conftest import dispatch_all
from tickets import services as ticket_services
from tickets.models import Status

pytestmark = pytest.mark.django_db


def _titles(user):
    return list(Notification.objects.filter(recipient=user).order_by("-pk").values_list("title", flat=True))


@pytest.mark.parametrize(
    ("status", "label"), [(Status.IN_PROGRESS, "In progress"), (Status.WAITING_ON_CUSTOMER, "Waiting on customer")]
)
def test_a_status_change_is_titled_with_the_status_label(ticket, member, agent, status, label):
    ticket_services.ticket_update(ticket=ticket, actor=agent, status=status)
    dispatch_all()
    assert _titles(member.user) == [f"#{ticket.number} is now {label}"]


def test_the_dashboard_names_the_ticket_links_to_it_and_hides_event_names(ticket, member, agent, member_client):
    ticket_services.comment_create(ticket=ticket, author=agent, body="Looking into it")
    ticket_services.ticket_update(ticket=ticket, actor=agent, status=Status.WAITING_ON_CUSTOMER)
    dispatch_all()
    page = member_client.get(reverse("dashboard")).content.decode()
    link = reverse("tickets:detail", args=[ticket.public_id])
    assert f'<a href="{link}">Support replied on #{ticket.number} {ticket.subject}.</a>' in page
    assert f'<a href="{link}">#{ticket.number} {ticket.subject}: is now Waiting on customer.</a>' in page
    for jargon in ("ticket.comment_added", "ticket.updated", "internal notes never raise", "waiting_on_customer"):
        assert jargon not in page


def test_the_live_activity_line_matches_the_dashboards(member):
    from notifications import rendering
    from portal import events
    from portal.models import Event

    with __import__("django.db").db.transaction.atomic():
        events.publish(
            events.INVOICE_CREATED,
            organization=member.organization,
            data={
                "invoice": "INV-7",
                "amount": "12.00",
                "currency": "EUR",
                "period_start": "2026-10-01",
                "period_end": "2026-10-31",
                "url": "javascript:alert(1)",
            },
        )
    event = Event.objects.get(type=events.INVOICE_CREATED)
    html = rendering.activity_fragment(event=event, description="ignored")
    assert '<span class="badge">Invoice</span> <span>New invoice INV-7: 12.00 EUR.</span>' in html
    assert "invoice.created" not in html and "javascript:" not in html
