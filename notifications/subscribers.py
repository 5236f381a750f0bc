"""What notifications do when events happen: notify the right people and push live updates.

Each handler runs in the dispatch transaction (see portal.events): it writes notification and
push rows, and the pushes are sent after commit. Recipient rules, per event type, live here.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from notifications import rendering, selectors, services
from notifications.models import Kind
from portal import events
from portal import services as portal_services
from portal.models import Event, Membership
from tickets import selectors as ticket_selectors

# Tickets' own e-mails (replies, the requester's confirmation) follow the ticket preference.
portal_services.email_recipients_rule_register(services.email_recipients)

TICKET_EVENTS = (
    events.TICKET_CREATED,
    events.TICKET_UPDATED,
    events.TICKET_COMMENT_ADDED,
    events.TICKET_SLA_WARNING,
    events.TICKET_SLA_BREACHED,
)


@dataclass(frozen=True)
class Message:
    kind: str
    title: str
    body: str = ""
    link: str = ""
    target: str = ""


def _admins(event: Event) -> set[int]:
    return set(
        Membership.objects.for_organization(event.organization)
        .filter(role=Membership.Role.ADMIN)
        .values_list("user_id", flat=True)
    )


def _everyone(event: Event) -> set[int]:
    return set(Membership.objects.for_organization(event.organization).values_list("user_id", flat=True))


# Field names as customers know them; status and priority values by their labels (the choices of
# tickets.models: "waiting_on_customer" → "Waiting on customer").
_FIELD_NAMES = {"queue": "team"}


def _choice_label(value: object) -> str:
    return str(value).replace("_", " ").capitalize() if value else "none"


def _update_title(ref: str, changes: dict) -> str:
    """ "#1042 is now Waiting on customer", "#1042 priority is now High", "#1042 updated: assignee changed"."""
    status = changes.get("status")
    others = [
        f"priority is now {_choice_label(change.get('to'))}"
        if field == "priority"
        else f"{_FIELD_NAMES.get(field, field)} changed"
        for field, change in changes.items()
        if field != "status"
    ]
    if status is not None:
        return f"{ref} is now {_choice_label(status.get('to'))}" + "".join(f", {part}" for part in others)
    if len(others) == 1 and others[0].startswith("priority"):
        return f"{ref} {others[0]}"
    return f"{ref} updated: {', '.join(others)}"


def _ticket_message(event: Event) -> Message:
    p = event.payload
    ref = f"#{p['number']}"
    link = reverse("tickets:detail", args=[p["ticket"]])
    target = f"ticket:{p['ticket']}"
    match event.type:
        case events.TICKET_CREATED:
            return Message(Kind.TICKET, f"{ref} opened: {p['subject']}", link=link, target=target)
        case events.TICKET_COMMENT_ADDED:
            who = "Support" if p.get("by_agent") else "A customer"
            return Message(Kind.TICKET, f"{who} replied on {ref}: {p['subject']}", link=link, target=target)
        case events.TICKET_UPDATED:
            return Message(Kind.TICKET, _update_title(ref, p["changes"]), body=p["subject"], link=link, target=target)
        case events.TICKET_SLA_WARNING:
            target_name = p["target"].replace("_", " ")
            return Message(
                Kind.ALERT, f"{ref} is at risk of missing its {target_name} target", body=p["subject"], link=link
            )
        case events.TICKET_SLA_BREACHED:
            target_name = p["target"].replace("_", " ")
            return Message(Kind.ALERT, f"{ref} missed its {target_name} target", body=p["subject"], link=link)
    raise ValueError(event.type)


def _message(event: Event) -> tuple[Message, set[int]] | None:
    """The notification an event makes and who gets it; None for events that notify nobody."""
    p = event.payload
    match event.type:
        case events.COMPLIANCE_UPDATED:
            title = f"{p['framework']} compliance is {p['status']}"
            return Message(
                Kind.COMPLIANCE, title, body=p.get("summary", ""), target=f"compliance:{p['framework']}"
            ), _admins(event)
        case events.INVOICE_CREATED:
            title = f"New invoice {p['invoice']}: {p['amount']} {p['currency']}"
            return Message(
                Kind.BILLING, title, body=f"{p['period_start']} – {p['period_end']}", link=p.get("url", "")
            ), _admins(event)
        case events.BUDGET_THRESHOLD_REACHED:
            scope = p.get("service") or "Total spend"
            title = f"{scope} reached {p['threshold']} % of its {p['month']} budget ({p['basis']})"
            return Message(Kind.BILLING, title, body=f"{p['amount']} of {p['budget_amount']} {p['currency']}"), _admins(
                event
            )
        case events.FORECAST_ANOMALY_DETECTED:
            title = f"Unusual spend on {p['service']}: {p['impact']} {p['currency']} ({p['impact_percent']:+.0f} %)"
            return Message(Kind.ALERT, title, body=f"{p['date']}: {p['actual']} vs {p['expected']} expected"), _admins(
                event
            )
        case events.WEBHOOK_ENDPOINT_DISABLED:
            return Message(Kind.ALERT, "A webhook endpoint was disabled", body=p["reason"]), _admins(event)
        case events.MEMBER_JOINED:
            return Message(Kind.INFO, "A new member joined your organization", link=reverse("members")), _admins(event)
        case events.NOTICE_PUBLISHED:
            return Message(Kind.INFO, p["title"], body=p.get("body", ""), link=p.get("link", "")), _everyone(event)
    # metrics.updated (pushed, not notified), webhook.test, notification.created: nobody.
    return None


# Only the types _message()/_ticket_message() turn into notifications: a subscriber for every
# type costs each other event (metrics.updated every few seconds) a transaction for nothing, and
# delays the pushes dispatched after it.
NOTIFY_TYPES = (
    *TICKET_EVENTS,
    events.COMPLIANCE_UPDATED,
    events.INVOICE_CREATED,
    events.BUDGET_THRESHOLD_REACHED,
    events.FORECAST_ANOMALY_DETECTED,
    events.WEBHOOK_ENDPOINT_DISABLED,
    events.MEMBER_JOINED,
    events.NOTICE_PUBLISHED,
)


@events.subscribe(*NOTIFY_TYPES, name="notifications.notify", pushes=True)
def notify_from_event(event: Event) -> None:
    if event.type in TICKET_EVENTS:
        people = ticket_selectors.ticket_people(organization=event.organization, public_id=event.payload["ticket"])
        if people is None:
            return  # purged since
        message, recipients = _ticket_message(event), people
    else:
        found = _message(event)
        if found is None:
            return
        message, recipients = found
    recipients.discard(event.actor_id)  # never notify people about their own change
    created = services.notify(
        organization=event.organization,
        recipient_ids=recipients,
        kind=message.kind,
        title=message.title,
        body=message.body,
        link=message.link,
        event_id=event.pk,
        target=message.target,
    )
    states = selectors.inbox_states(organization=event.organization, user_ids=[c.recipient_id for c in created])
    pushes = []
    for item in created:
        state = states[item.recipient_id]
        row = next(n for n in state.latest if n.pk == item.notification_id)
        pushes.append(
            {
                "user_id": item.recipient_id,
                "type": "notification",
                "data": {
                    "unread": state.unread,
                    "notification": {
                        "id": str(row.public_id),
                        "kind": message.kind,
                        "title": message.title,
                        "link": message.link,
                        "new": item.new,
                    },
                },
                "html": rendering.inbox_fragments(unread=state.unread, latest=state.latest, row=row, new=item.new),
            }
        )
    services.pushes_create(organization=event.organization, pushes=pushes)


@events.subscribe(*TICKET_EVENTS, name="notifications.push_ticket", pushes=True)
def push_ticket_update(event: Event) -> None:
    page = ticket_selectors.ticket_live_state(organization=event.organization, public_id=event.payload["ticket"])
    if page is None:
        return
    ticket = page.ticket
    services.push_create(
        organization=event.organization,
        type="ticket_update",
        data={
            "event": event.type,
            "ticket": str(ticket.public_id),
            "number": ticket.number,
            "status": ticket.status,
            "priority": ticket.priority,
            "comment_count": ticket.comment_count,
        },
        html=rendering.ticket_fragments(ticket=ticket, comments=page.comments),
    )


PLATFORM_PUSHES = {
    events.METRICS_UPDATED: "metrics_update",
    events.COMPLIANCE_UPDATED: "compliance_update",
    events.INVOICE_CREATED: "invoice_created",
}


@events.subscribe(*PLATFORM_PUSHES, name="notifications.push_platform", pushes=True)
def push_platform_event(event: Event) -> None:
    html = rendering.activity_fragment(event=event, description=events.CATALOG[event.type].description)
    if event.type == events.METRICS_UPDATED:
        html += rendering.metrics_fragment(payload=event.payload)
    services.push_create(
        organization=event.organization, type=PLATFORM_PUSHES[event.type], data=event.payload, html=html
    )
