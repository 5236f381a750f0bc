"""The home page: the one place that reads from several apps (each through its selectors)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from portal import events, selectors
from portal.tenancy import organization_required

RECENT_ACTIVITY = 10


@organization_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    organization = request.organization
    recent = list(selectors.event_list(organization=organization)[:RECENT_ACTIVITY])
    for event in recent:
        event.description = events.CATALOG[event.type].description if event.type in events.CATALOG else event.type
    latest_metrics = selectors.event_list(organization=organization, types=[events.METRICS_UPDATED]).first()
    context = {
        "platform_metrics": latest_metrics.payload if latest_metrics else None,
        "member_count": selectors.membership_list(organization=organization).count(),
        "token_count": selectors.api_token_list(membership=request.membership).count(),
        "recent_events": recent,
    }
    return render(request, "portal/dashboard.html", context)
