"""Demo tickets for `make run`: realistic conversations in every state (idempotent)."""

from __future__ import annotations

from typing import Any

from portal.models import Membership
from tickets import services
from tickets.models import Status, Ticket

# (subject, description, priority, category, [(who, body, internal)], final status)
DEMO = [
    (
        "Production database CPU at 100 %",
        "Since 08:10 UTC our primary PostgreSQL (db-prod-1) has been pegged at 100 % CPU and checkout latency is up 10x.",
        "critical",
        "technical",
        [
            ("agent", "We see it too: a runaway autovacuum on the orders table. Throttling it now.", False),
            ("agent", "Customer is on the legacy instance class; propose upgrade after the incident.", True),
            ("customer", "Latency is back to normal, thank you!", False),
        ],
        Status.RESOLVED,
    ),
    (
        "Invoice for October shows double egress charges",
        "Line 14 and 15 of invoice INV-2026-10 both bill 2.1 TB of egress for eu-west.",
        "medium",
        "billing",
        [("agent", "Thanks, could you confirm the account id the egress belongs to?", False)],
        Status.WAITING_ON_CUSTOMER,
    ),
    (
        "Add SSO for our new subsidiary",
        "We acquired a company and need their Okta tenant added as a second identity provider.",
        "low",
        "account",
        [],
        Status.OPEN,
    ),
    (
        "Kubernetes node pool upgrade stuck",
        "The upgrade of pool 'workers-b' to 1.31 has been at 2/6 nodes for three hours.",
        "high",
        "technical",
        [("agent", "Looking into it: one node is failing its drain because of a PodDisruptionBudget.", False)],
        Status.IN_PROGRESS,
    ),
    (
        "Question about backup retention",
        "How long are daily snapshots kept on the Business plan?",
        "low",
        "general",
        [("agent", "30 days for dailies, 12 months for monthlies.", False), ("customer", "Perfect, thanks.", False)],
        Status.CLOSED,
    ),
]


def seed(*, organizations: list[Any], agent: Any, stdout: Any) -> None:
    created = 0
    for organization in organizations:
        if Ticket.objects.for_organization(organization).exists():
            continue
        requester = Membership.objects.for_organization(organization).select_related("user").order_by("id").first().user
        for subject, description, priority, category, thread, status in DEMO:
            ticket = services.ticket_create(
                organization=organization,
                requester=requester,
                subject=subject,
                description=description,
                priority=priority,
                category=category,
            )
            if thread:
                services.ticket_update(ticket=ticket, actor=agent, assignee=agent)
            for who, body, internal in thread:
                author = agent if who == "agent" else requester
                services.comment_create(ticket=ticket, author=author, body=body, internal=internal)
            ticket.refresh_from_db()
            if status != ticket.status:
                for step in _path(ticket.status, status):
                    services.ticket_change_status(ticket=ticket, actor=agent, status=step)
            created += 1
    if created:
        stdout.write(f"Demo tickets: {created} created.")


def _path(start: str, end: str) -> list[str]:
    if end in services.TRANSITIONS[start]:
        return [end]
    return [Status.RESOLVED, end]
