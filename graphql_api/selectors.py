"""Batched reads the apps' selectors do not offer yet (one query per page, not per row).

Each is scoped with ``for_organization`` and follows the rules of the selector it batches:
``comments_by_ticket`` is ``tickets.selectors.comment_list`` for many tickets at once, with the
same joins and the same "no internal notes unless agent" filter. They belong in the apps'
selectors; they live here only while those apps are being changed by others.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Prefetch

from portal.models import Organization
from tickets import services as ticket_services
from tickets.models import Attachment, Comment, Status, Ticket


def comments_by_ticket(
    *, organization: Organization, ticket_ids: list[int], include_internal: bool
) -> dict[int, list[Comment]]:
    """Every ticket's thread, oldest first, authors joined and files attached: two queries."""
    queryset = (
        Comment.objects.for_organization(organization)
        .filter(ticket_id__in=ticket_ids)
        .select_related("author")
        .prefetch_related(
            Prefetch("attachments", queryset=Attachment.objects.order_by("created_at", "id"), to_attr="files")
        )
        .order_by("created_at", "id")
    )
    if not include_internal:
        queryset = queryset.filter(internal=False)
    out: dict[int, list[Comment]] = {pk: [] for pk in ticket_ids}
    for comment in queryset:
        out[comment.ticket_id].append(comment)
    return out


def ticket_files_by_ticket(*, organization: Organization, ticket_ids: list[int]) -> dict[int, list[Attachment]]:
    """Files attached to the tickets themselves (not to a reply): one query."""
    out: dict[int, list[Attachment]] = {pk: [] for pk in ticket_ids}
    files = (
        Attachment.objects.for_organization(organization)
        .filter(ticket_id__in=ticket_ids, comment__isnull=True)
        .order_by("created_at", "id")
    )
    for attachment in files:
        out[attachment.ticket_id].append(attachment)
    return out


def descriptions_by_ticket(*, organization: Organization, ticket_ids: list[int]) -> dict[int, str]:
    """The descriptions that ``ticket_list`` defers, for one page: one query."""
    return dict(
        Ticket.objects.for_organization(organization).filter(pk__in=ticket_ids).values_list("pk", "description")
    )


@dataclass(frozen=True)
class TicketCounts:
    by_status: dict[str, int]
    sla_at_risk: int
    sla_breached: int


def ticket_counts(*, organization: Organization) -> TicketCounts:
    """Tickets per status, and how many unfinished tickets are at risk or past their SLA.

    The SLA state comes from ``tickets.services.ticket_sla_status`` itself (the one definition
    the pages and the API use), applied to the unfinished tickets' SLA columns only.
    """
    rows = (
        Ticket.objects.for_organization(organization)
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("status", "n")
    )
    by_status = dict.fromkeys(Status.values, 0) | dict(rows)
    at_risk = breached = 0
    unfinished = (
        Ticket.objects.for_organization(organization)
        .exclude(status__in=[Status.RESOLVED, Status.CLOSED])
        .only(
            "status",
            "first_response_at",
            "first_response_due_at",
            "first_response_warn_at",
            "resolution_due_at",
            "resolution_warn_at",
            "resolved_at",
            "sla_paused_at",
        )
    )
    for ticket in unfinished.iterator(chunk_size=2000):
        state = ticket_services.ticket_sla_status(ticket=ticket).state
        at_risk += state == "at_risk"
        breached += state == "breached"
    return TicketCounts(by_status=by_status, sla_at_risk=at_risk, sla_breached=breached)
