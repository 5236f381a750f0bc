from django import template

from tickets import services

register = template.Library()

SLA_LABELS = {
    "met": "SLA met",
    "paused": "SLA paused",
    "on_track": "On track",
    "at_risk": "At risk",
    "breached": "SLA breached",
}
TARGET_LABELS = {"first_response": "first response", "resolution": "resolution"}


@register.inclusion_tag("tickets/components/sla_badge.html")
def sla_badge(ticket, now=None):
    status = services.ticket_sla_status(ticket=ticket, now=now)
    return {
        "state": status.state,
        "label": SLA_LABELS[status.state],
        "target": TARGET_LABELS[status.target],
        "due_at": status.due_at,
        "live": status.state in ("on_track", "at_risk", "breached"),
    }
