"""Webhook pages: thin views over webhooks.selectors and webhooks.services.

Every page works without JavaScript. With htmx, the delivery log's filters and pages swap the
log only, revealing or rotating the secret swaps the secret card, and a test event shows its
result inline (the fragment polls until the first attempt is recorded). Members may look;
only organization admins change anything.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.forms import form_add_service_errors
from portal.tenancy import organization_admin_required, organization_required
from webhooks import selectors, services
from webhooks.forms import DeliveryFilterForm, EnableForm, EndpointForm, RecoverForm
from webhooks.models import Endpoint

PAGE_SIZE = 25
# A test result polls once a second for at most this many seconds, then asks for a reload.
TEST_POLL_LIMIT = 30


def _endpoint(request: HttpRequest, public_id: Any) -> Endpoint:
    return selectors.endpoint_get(organization=request.organization, public_id=public_id)


def _errors(request: HttpRequest, exc: ValidationError) -> None:
    for message in exc.messages:
        messages.error(request, message)


def _detail_url(endpoint: Endpoint) -> str:
    return reverse("webhooks:detail", args=[endpoint.public_id])


# --- Endpoints --------------------------------------------------------------------------------


@organization_required
@require_GET
def endpoint_list(request: HttpRequest) -> HttpResponse:
    endpoints = list(selectors.endpoint_list(organization=request.organization))
    return render(request, "webhooks/list.html", {"endpoints": endpoints, "is_admin": request.membership.is_admin})


@organization_admin_required
@require_http_methods(["GET", "POST"])
def endpoint_create(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = services.endpoint_create(
                organization=request.organization, actor_membership=request.membership, **form.cleaned_data
            )
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            messages.success(request, "Endpoint added. Reveal its signing secret to verify our signatures.")
            return redirect(_detail_url(endpoint))
    status = 400 if request.method == "POST" else 200
    return render(request, "webhooks/form.html", {"form": form, "endpoint": None}, status=status)


@organization_admin_required
@require_http_methods(["GET", "POST"])
def endpoint_edit(request: HttpRequest, public_id: str) -> HttpResponse:
    endpoint = _endpoint(request, public_id)
    initial = {
        "url": endpoint.url,
        "description": endpoint.description,
        "all_events": endpoint.all_events,
        "event_types": endpoint.event_types,
    }
    form = EndpointForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.endpoint_update(endpoint=endpoint, actor_membership=request.membership, **form.cleaned_data)
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            messages.success(request, "Endpoint saved.")
            return redirect(_detail_url(endpoint))
    status = 400 if request.method == "POST" else 200
    return render(request, "webhooks/form.html", {"form": form, "endpoint": endpoint}, status=status)


@organization_admin_required
@require_http_methods(["GET", "POST"])
def endpoint_delete(request: HttpRequest, public_id: str) -> HttpResponse:
    endpoint = _endpoint(request, public_id)
    if request.method == "POST":
        services.endpoint_delete(endpoint=endpoint, actor_membership=request.membership)
        messages.success(request, f"Endpoint {endpoint.url} deleted with its delivery log.")
        return redirect("webhooks:list")
    return render(request, "webhooks/delete.html", {"endpoint": endpoint})


def _detail_context(request: HttpRequest, endpoint: Endpoint, **extra: Any) -> dict[str, Any]:
    filter_form = DeliveryFilterForm(request.GET or None)
    filters = filter_form.filters()
    page = Paginator(selectors.delivery_list(endpoint=endpoint, filters=filters), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    health = selectors.endpoint_health(endpoint=endpoint)
    return {
        "endpoint": endpoint,
        "is_admin": request.membership.is_admin,
        "health": health,
        "success_rate": selectors.success_rate(attempts=health["attempts_24h"], successes=health["successes_24h"]),
        "filter_form": filter_form,
        "filtered": filters.active,
        "page": page,
        "query": query.urlencode(),
        "recover_form": RecoverForm(),
        "enable_form": EnableForm(),
        "now": timezone.now(),
        **extra,
    }


@organization_required
@require_GET
def endpoint_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    endpoint = _endpoint(request, public_id)
    context = _detail_context(request, endpoint)
    invalid = context["filter_form"].is_bound and not context["filter_form"].is_valid()
    template = "webhooks/detail.html#delivery-log" if request.htmx and not request.htmx.boosted else "webhooks/detail.html"
    return render(request, template, context, status=400 if invalid else 200)


def _secret_response(request: HttpRequest, endpoint: Endpoint, **extra: Any) -> HttpResponse:
    if request.htmx:
        response = render(request, "webhooks/detail.html#endpoint-secret", {"endpoint": endpoint, "is_admin": True, **extra})
    else:
        response = render(request, "webhooks/detail.html", _detail_context(request, endpoint, **extra))
    add_never_cache_headers(response)  # a secret must not linger in caches or the back button
    return response


@organization_admin_required
@require_POST
def endpoint_secret(request: HttpRequest, public_id: str) -> HttpResponse:
    endpoint = _endpoint(request, public_id)
    secret = services.endpoint_secret_reveal(endpoint=endpoint, actor_membership=request.membership)
    return _secret_response(request, endpoint, secret=secret)


@organization_admin_required
@require_POST
def endpoint_secret_rotate(request: HttpRequest, public_id: str) -> HttpResponse:
    endpoint = _endpoint(request, public_id)
    secret = services.endpoint_secret_rotate(endpoint=endpoint, actor_membership=request.membership)
    endpoint.refresh_from_db()
    return _secret_response(request, endpoint, secret=secret, rotated=True)


@organization_admin_required
@require_POST
def endpoint_enable(request: HttpRequest, public_id: str) -> HttpResponse:
    endpoint = _endpoint(request, public_id)
    form = EnableForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(_detail_url(endpoint))
    since = form.cleaned_data["since"] if form.cleaned_data["recover"] else None
    try:
        result = services.endpoint_enable(endpoint=endpoint, actor_membership=request.membership, recover_since=since)
    except ValidationError as exc:
        _errors(request, exc)
    else:
        messages.success(request, "Endpoint enabled.")
        if result is not None:
            _recovered_message(request, result)
    return redirect(_detail_url(endpoint))


@organization_admin_required
@require_POST
def endpoint_disable(request: HttpRequest, public_id: str) -> HttpResponse:
    endpoint = _endpoint(request, public_id)
    services.endpoint_disable(endpoint=endpoint, actor_membership=request.membership)
    messages.success(request, "Endpoint disabled. Messages waiting for it will not be sent; you can recover them later.")
    return redirect(_detail_url(endpoint))


def _recovered_message(request: HttpRequest, result: services.RecoverResult) -> None:
    text = f"{result.recovered} message{'s' if result.recovered != 1 else ''} will be sent again."
    if result.more:
        text += f" More remain: recover again from {result.resume_from:%Y-%m-%d %H:%M:%S} UTC."
    messages.success(request, text)


@organization_admin_required
@require_POST
def endpoint_recover(request: HttpRequest, public_id: str) -> HttpResponse:
    endpoint = _endpoint(request, public_id)
    form = RecoverForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose from when to resend messages (a date and time).")
        return redirect(_detail_url(endpoint))
    try:
        result = services.endpoint_recover(
            endpoint=endpoint, actor_membership=request.membership, since=form.cleaned_data["since"]
        )
    except ValidationError as exc:
        _errors(request, exc)
    else:
        _recovered_message(request, result)
    return redirect(_detail_url(endpoint))


# --- Test events --------------------------------------------------------------------------------


@organization_admin_required
@require_POST
def endpoint_test(request: HttpRequest, public_id: str) -> HttpResponse:
    endpoint = _endpoint(request, public_id)
    try:
        event = services.endpoint_test_send(endpoint=endpoint, actor_membership=request.membership)
    except ValidationError as exc:
        if request.htmx:
            return render(
                request, "webhooks/test_result.html#test-result", {"endpoint": endpoint, "error": " ".join(exc.messages)}
            )
        _errors(request, exc)
        return redirect(_detail_url(endpoint))
    if request.htmx:
        context = _test_context(request, endpoint, event_id=event.public_id, polls=0)
        return render(request, "webhooks/test_result.html#test-result", context)
    return redirect("webhooks:test_result", endpoint.public_id, event.public_id)


def _test_context(request: HttpRequest, endpoint: Endpoint, *, event_id: Any, polls: int) -> dict[str, Any]:
    delivery = selectors.delivery_for_event(endpoint=endpoint, event_id=event_id)
    attempt = selectors.attempt_list(delivery=delivery).last() if delivery and delivery.attempt_count else None
    return {
        "endpoint": endpoint,
        "event_id": event_id,
        "delivery": delivery,
        "attempt": attempt,
        "poll": attempt is None and polls < TEST_POLL_LIMIT,
        "next_poll": polls + 1,
    }


@organization_required
@require_GET
def endpoint_test_result(request: HttpRequest, public_id: str, event_id: str) -> HttpResponse:
    endpoint = _endpoint(request, public_id)
    selectors.test_event_get(endpoint=endpoint, event_id=event_id)
    try:
        polls = max(0, int(request.GET.get("n", "0")))
    except ValueError:
        polls = 0
    context = _test_context(request, endpoint, event_id=event_id, polls=polls)
    template = "webhooks/test_result.html#test-result" if request.htmx else "webhooks/test_result.html"
    return render(request, template, context)


# --- Deliveries -------------------------------------------------------------------------------


@organization_required
@require_GET
def delivery_detail(request: HttpRequest, public_id: str, msg_id: str) -> HttpResponse:
    endpoint = _endpoint(request, public_id)
    delivery = selectors.delivery_get(endpoint=endpoint, msg_id=msg_id)
    try:
        pretty = json.dumps(json.loads(delivery.message.body), indent=2, ensure_ascii=False)
    except ValueError:
        pretty = delivery.message.body
    context = {
        "endpoint": endpoint,
        "delivery": delivery,
        "message": delivery.message,
        "body_pretty": pretty,
        "attempts": list(selectors.attempt_list(delivery=delivery)),
        "is_admin": request.membership.is_admin,
    }
    return render(request, "webhooks/delivery.html", context)


@organization_admin_required
@require_POST
def delivery_replay(request: HttpRequest, public_id: str, msg_id: str) -> HttpResponse:
    endpoint = _endpoint(request, public_id)
    try:
        services.delivery_replay(endpoint=endpoint, actor_membership=request.membership, msg_id=msg_id)
    except ValidationError as exc:
        _errors(request, exc)
    else:
        messages.success(request, f"Message {msg_id} will be sent again now (same webhook-id).")
    return redirect("webhooks:delivery", endpoint.public_id, msg_id)
