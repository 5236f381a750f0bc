"""The home page: the one place that reads from several apps (each through its selectors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from portal import events, selectors
from portal.tenancy import organization_required

RECENT_ACTIVITY = 10

# What a customer reads in "Recent activity" (here and in the live line, notifications/live.html):
# a short label and a sentence naming the ticket, never the event's machine name.
_LABELS = {
    events.TICKET_CREATED: "Ticket opened",
    events.TICKET_UPDATED: "Ticket updated",
    events.TICKET_COMMENT_ADDED: "Reply",
    events.TICKET_SLA_WARNING: "SLA at risk",
    events.TICKET_SLA_BREACHED: "SLA missed",
    events.METRICS_UPDATED: "Metrics",
    events.COMPLIANCE_UPDATED: "Compliance",
    events.INVOICE_CREATED: "Invoice",
    events.BUDGET_THRESHOLD_REACHED: "Budget",
    events.FORECAST_ANOMALY_DETECTED: "Unusual spend",
    events.WEBHOOK_TEST: "Webhook",
    events.WEBHOOK_ENDPOINT_DISABLED: "Webhook",
    events.MEMBER_JOINED: "Members",
    events.NOTICE_PUBLISHED: "Notice",
}
# The ticket fields' labels (the values are tickets.models' choices; "in_progress" → "In progress").
_TICKET_FIELDS = {"assignee": "assignee", "queue": "team", "category": "category", "subject": "subject"}


@dataclass(frozen=True)
class Activity:
    label: str
    text: str
    link: str = ""


def _safe_link(value: Any) -> str:
    """A link from a payload (external events send their own): a path or http(s) URL, or none."""
    link = str(value or "")
    return link if link.startswith(("/", "https://", "http://")) and not link.startswith("//") else ""


def _value_label(value: Any) -> str:
    return str(value).replace("_", " ").capitalize() if value else "none"


def _ticket_text(event_type: str, p: dict[str, Any]) -> str:
    name = f"#{p['number']}" + (f" {p['subject']}" if p.get("subject") else "")
    match event_type:
        case events.TICKET_CREATED:
            return f"Ticket {name} was opened."
        case events.TICKET_COMMENT_ADDED:
            return f"{'Support' if p.get('by_agent') else 'A customer'} replied on {name}."
        case events.TICKET_SLA_WARNING:
            return f"{name} is at risk of missing its {str(p.get('target', '')).replace('_', ' ')} target."
        case events.TICKET_SLA_BREACHED:
            return f"{name} missed its {str(p.get('target', '')).replace('_', ' ')} target."
    changes = p.get("changes") or {}
    parts = []
    for field, change in changes.items():
        if field in ("status", "priority"):
            to = _value_label(change.get("to") if isinstance(change, dict) else change)
            parts.append(f"is now {to}" if field == "status" else f"priority is now {to}")
        else:
            parts.append(f"{_TICKET_FIELDS.get(field, field.replace('_', ' '))} changed")
    return f"{name}: {', '.join(parts)}." if parts else f"{name} was updated."


def activity_describe(event: Any) -> Activity:
    """The label, sentence and link (if any) of one event in the activity list."""
    p = event.payload or {}
    label = _LABELS.get(event.type, "Activity")
    try:
        if event.type.startswith("ticket.") and "number" in p:
            link = reverse("tickets:detail", args=[p["ticket"]]) if p.get("ticket") else ""
            return Activity(label, _ticket_text(event.type, p), link)
        match event.type:
            case events.COMPLIANCE_UPDATED:
                return Activity(label, f"{p['framework']} compliance is {p['status']}.")
            case events.INVOICE_CREATED:
                return Activity(
                    label, f"New invoice {p['invoice']}: {p['amount']} {p['currency']}.", _safe_link(p.get("url"))
                )
            case events.BUDGET_THRESHOLD_REACHED:
                scope = p.get("service") or "Total spend"
                return Activity(label, f"{scope} reached {p['threshold']} % of its {p['month']} budget.")
            case events.FORECAST_ANOMALY_DETECTED:
                return Activity(label, f"Unusual spend on {p['service']}: {p['impact']} {p['currency']}.")
            case events.NOTICE_PUBLISHED:
                return Activity(label, p["title"], _safe_link(p.get("link")))
            case events.WEBHOOK_TEST:
                return Activity(label, "A test event was sent to a webhook endpoint.")
            case events.WEBHOOK_ENDPOINT_DISABLED:
                return Activity(label, "A webhook endpoint was disabled.", reverse("webhooks:list"))
            case events.MEMBER_JOINED:
                return Activity(label, "Someone joined the organization.", reverse("members"))
    except (KeyError, TypeError, ValueError, AttributeError, NoReverseMatch):
        pass  # an older payload without a field: the catalog's sentence below
    description = events.CATALOG[event.type].description if event.type in events.CATALOG else "Something happened."
    return Activity(label, description)


@organization_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    organization = request.organization
    recent = list(selectors.event_list(organization=organization)[:RECENT_ACTIVITY])
    for event in recent:
        event.activity = activity_describe(event)
    latest_metrics = selectors.event_list(organization=organization, types=[events.METRICS_UPDATED]).first()
    context = {
        "platform_metrics": latest_metrics.payload if latest_metrics else None,
        "member_count": selectors.membership_list(organization=organization).count(),
        "token_count": selectors.api_token_list(membership=request.membership).count(),
        "recent_events": recent,
    }
    return render(request, "portal/dashboard.html", context)
