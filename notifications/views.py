"""Notification center pages: the full list, the bell's dropdown, preferences, polling fallback."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from notifications import rendering, selectors, services
from notifications.models import MANDATORY_KINDS, Kind, Preference
from portal.params import whole_number
from portal.tenancy import organization_required

PAGE_SIZE = 25


class NotificationFilterForm(forms.Form):
    kind = forms.ChoiceField(label="Type", choices=[("", "All types"), *Kind.choices], required=False)
    state = forms.ChoiceField(
        label="Show", choices=[("", "Read and unread"), ("unread", "Unread"), ("read", "Read")], required=False
    )
    sort = forms.ChoiceField(label="Sort by", choices=list(selectors.SORT_LABELS.items()), required=False)


@organization_required
@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    form = NotificationFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    queryset = selectors.notification_list(
        user_id=request.user.pk,
        organization=request.organization,
        kind=data.get("kind", ""),
        state=data.get("state", ""),
        sort=data.get("sort") or "newest",
    )
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "filtered": bool(data.get("kind") or data.get("state")),
        # A new notification is unread, of any type and the newest: the top of this page only here.
        "live_inserts": page.number == 1
        and not data.get("kind")
        and data.get("state", "") in ("", "unread")
        and (data.get("sort") or "newest") in ("newest", "unread"),
    }
    template = (
        "notifications/list.html#results" if request.htmx and not request.htmx.boosted else "notifications/list.html"
    )
    return render(request, template, context, status=400 if form.is_bound and not form.is_valid() else 200)


@organization_required
@require_GET
def dropdown(request: HttpRequest) -> HttpResponse:
    latest = selectors.notification_list(user_id=request.user.pk, organization=request.organization)[
        : selectors.DROPDOWN_SIZE
    ]
    return render(request, "notifications/live.html#dropdown-list", {"latest": latest})


def _back(request: HttpRequest) -> HttpResponse:
    """Back to the page the form was on (``next``), if it is one of ours; else the notifications page."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("notifications:list")


@organization_required
@require_POST
def mark_read(request: HttpRequest, public_id: str) -> HttpResponse:
    notification = services.notification_mark_read(
        user=request.user, organization=request.organization, public_id=public_id
    )
    if request.htmx:
        return render(request, "notifications/item.html", {"n": notification})
    return _back(request)


@organization_required
@require_POST
def mark_many_read(request: HttpRequest) -> HttpResponse:
    """Bulk (checked ids) or, with ``all=1``, everything unread."""
    ids = None if request.POST.get("all") == "1" else request.POST.getlist("ids")
    try:
        count = services.notifications_mark_read(user=request.user, organization=request.organization, public_ids=ids)
    except ValidationError:
        messages.error(request, "Those notifications could not be found.")
        return _back(request)
    messages.success(request, f"Marked {count} notification{'s' if count != 1 else ''} as read.")
    return _back(request)


@organization_required
@require_POST
def delete(request: HttpRequest, public_id: str) -> HttpResponse:
    notification = services.notification_delete(
        user=request.user, organization=request.organization, public_id=public_id
    )
    if request.htmx:
        # The button swaps its row away; the row's checkbox for bulk actions is a separate element.
        return HttpResponse(format_html('<li id="select-row-{}" hx-swap-oob="delete"></li>', notification.public_id))
    messages.success(request, "Notification deleted.")
    return _back(request)


@organization_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    current = selectors.preferences_for(user=request.user)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        choices = {
            kind: {"channel": request.POST.get(f"{kind}-channel", ""), "digest": request.POST.get(f"{kind}-digest", "")}
            for kind in Kind.values
        }
        try:
            services.preferences_update(user=request.user, choices=choices)
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            messages.success(request, "Notification preferences saved.")
            return redirect("notifications:preferences")
    rows = [
        {
            "kind": kind,
            "label": label,
            "preference": current[kind],
            "mandatory": kind in MANDATORY_KINDS,
            "errors": errors.get(kind, []),
        }
        for kind, label in Kind.choices
    ]
    context = {"rows": rows, "channels": Preference.Channel.choices, "digests": Preference.Digest.choices}
    return render(request, "notifications/preferences.html", context, status=400 if errors else 200)


@organization_required
@require_GET
@never_cache
def poll(request: HttpRequest) -> HttpResponse:
    """The fallback when WebSocket is unavailable: what was pushed since ``last_id``, or 304."""
    raw = request.GET.get("last_id", "")
    last_id = whole_number(raw)
    latest = selectors.latest_push_id(user_id=request.user.pk, organization=request.organization)
    if last_id is not None and last_id >= latest:
        return HttpResponse(status=304)
    if last_id is None:
        # No cursor yet: just hand one out (the page itself is current).
        return HttpResponse(rendering.cursor_fragment(latest))
    # More missed than one answer carries: the newest pushes (so the cursor only moves past
    # what is sent) and the inbox's current state, as the socket's resume does. Each push comes
    # after its own cursor, as on the socket, so the browser can tell an older whole-state
    # fragment (the badge, the dropdown) from the one it shows.
    missed = selectors.pushes_since(
        user_id=request.user.pk,
        organization=request.organization,
        last_id=last_id,
        limit=services.RESUME_LIMIT,
        newest=True,
    )
    sent = [p for p in missed.pushes if p.html]
    html = "".join(rendering.cursor_fragment(p.pk) + p.html for p in sent)
    latest = max([latest, *(p.pk for p in missed.pushes)])
    if not sent or sent[-1].pk != latest:  # the newest pushes had nothing for browsers
        html += rendering.cursor_fragment(latest)
    if missed.truncated:
        html += rendering.inbox_state_fragments(
            user_id=request.user.pk, organization=request.organization, push_id=latest
        )
    return HttpResponse(html)
