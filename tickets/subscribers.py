"""What tickets do when their events happen: customer and agent emails.

Runs in the worker inside the dispatch transaction: if sending fails, the dispatch record rolls
back and the event is retried, so an email is never silently lost (at worst sent twice).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from portal import events
from portal import services as portal_services
from portal.models import Event
from tickets.models import Comment, Ticket

User = get_user_model()


# The notification type whose preference decides these e-mails: they are its e-mail channel
# ("off" or "in-app" means none; a digest gets the notification instead).
EMAIL_KIND = "ticket"


def _wants_email(user: Any) -> bool:
    return bool(user.email) and user.pk in portal_services.email_recipients(user_ids=[user.pk], kind=EMAIL_KIND)


def _ticket(event: Event) -> Ticket | None:
    return (
        Ticket.objects.for_organization(event.organization)
        .select_related("requester", "assignee", "organization")
        .filter(public_id=event.payload["ticket"])
        .first()
    )


def _send(
    template: str, subject: str, ticket: Ticket, recipient: str, *, for_agent: bool = False, **context: object
) -> None:
    # Agents work in admin; customers on the ticket page.
    path = (
        reverse("admin:tickets_ticket_change", args=[ticket.pk])
        if for_agent
        else reverse("tickets:detail", args=[ticket.public_id])
    )
    link = settings.PORTAL_BASE_URL + path
    body = render_to_string(f"emails/tickets/{template}.txt", {"ticket": ticket, "link": link, **context})
    send_mail(f"[{ticket.reference}] {subject}", body, None, [recipient])


@events.subscribe(events.TICKET_CREATED, name="tickets.email_created")
def email_ticket_created(event: Event) -> None:
    ticket = _ticket(event)
    if ticket is None or not _wants_email(ticket.requester):
        return  # purged since, or not wanted: nothing to tell
    _send("created", f"We received your request: {ticket.subject}", ticket, ticket.requester.email)


@events.subscribe(events.TICKET_COMMENT_ADDED, name="tickets.email_comment")
def email_comment_added(event: Event) -> None:
    ticket = _ticket(event)
    comment = (
        Comment.objects.filter(public_id=event.payload["comment"], internal=False).select_related("author").first()
    )
    if ticket is None or comment is None:
        return
    if comment.by_agent:
        if ticket.requester_id != comment.author_id and _wants_email(ticket.requester):
            _send("agent_reply", f"New reply: {ticket.subject}", ticket, ticket.requester.email, comment=comment)
    elif ticket.assignee_id and _wants_email(ticket.assignee):
        _send(
            "customer_reply",
            f"Customer replied: {ticket.subject}",
            ticket,
            ticket.assignee.email,
            for_agent=True,
            comment=comment,
        )
