"""Customer ticket pages: thin views over tickets.selectors and tickets.services.

Every page works without JavaScript; with htmx, filters swap the table, and replies, status
changes and following swap their own fragment (named partials of the same template).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from portal.forms import form_add_service_errors
from portal.tenancy import organization_required
from tickets import selectors, services
from tickets.downloads import attachment_response, request_attachment
from tickets.forms import CommentForm, FollowerAddForm, StatusForm, TicketCreateForm, TicketFilterForm

PAGE_SIZE = 25
# More pages than any organization has: anything above is "past the end", like any page after the last.
MAX_PAGE = 1_000_000


class CountedPaginator(Paginator):
    """Takes the total from the rows' ``total_rows`` annotation when they carry one: one query.

    Falls back to a COUNT only when there is nothing to read it from (past the last page, or a
    queryset without the annotation).
    """

    def get_page(self, number):
        if not self.object_list.query.annotations.get(selectors.TOTAL):
            return super().get_page(number)
        try:
            # Bounded: a page past the end is the last page (below), but a huge number would first
            # become an OFFSET past PostgreSQL's bigint (a DataError, a 500 from the URL alone).
            number = min(max(int(number), 1), MAX_PAGE)
        except (TypeError, ValueError):
            number = 1
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page])
        if rows:
            self.count = getattr(rows[0], selectors.TOTAL)
            return self._get_page(rows, number, self)
        if number > 1:
            return super().get_page(self.num_pages)  # past the end: the last page, as Paginator does
        self.count = 0
        return self._get_page(rows, 1, self)


def _filters(form: TicketFilterForm) -> selectors.TicketFilters:
    data = form.cleaned_data if form.is_valid() else {}
    return selectors.TicketFilters(
        status=[data["status"]] if data.get("status") else [],
        priority=[data["priority"]] if data.get("priority") else [],
        category=[data["category"]] if data.get("category") else [],
        assignee=data.get("assignee") or "",
        q=data.get("q") or "",
        sort=data.get("sort") or "updated",
    )


@organization_required
@require_GET
def ticket_list(request: HttpRequest) -> HttpResponse:
    form = TicketFilterForm(
        request.GET or None, assignees=selectors.assignee_choices(organization=request.organization)
    )
    filters = _filters(form)
    rows = selectors.ticket_rows(organization=request.organization, filters=filters)
    page = CountedPaginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "filtered": any([filters.status, filters.priority, filters.category, filters.assignee, filters.q]),
        "query": query.urlencode(),
    }
    template = "tickets/list.html#ticket-results" if request.htmx and not request.htmx.boosted else "tickets/list.html"
    return render(request, template, context, status=400 if form.is_bound and not form.is_valid() else 200)


@organization_required
@require_http_methods(["GET", "POST"])
def ticket_create(request: HttpRequest) -> HttpResponse:
    form = TicketCreateForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            ticket = services.ticket_create(
                organization=request.organization,
                requester=request.user,
                membership=request.membership,
                **form.cleaned_data,
            )
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            messages.success(request, f"Ticket {ticket.reference} opened. We'll email you when support replies.")
            return redirect("tickets:detail", ticket.public_id)
    status = 400 if request.method == "POST" else 200
    return render(request, "tickets/create.html", {"form": form}, status=status)


def _page(request: HttpRequest, public_id: str) -> selectors.TicketPage:
    return selectors.ticket_page(
        organization=request.organization,
        public_id=public_id,
        user=request.user,
        include_internal=services.is_agent(request.user),
        with_followers=True,
    )


def _detail_context(
    request: HttpRequest,
    page: selectors.TicketPage,
    comment_form: CommentForm | None = None,
    follower_form: FollowerAddForm | None = None,
) -> dict:
    return {
        "ticket": page.ticket,
        "comments": page.comments,
        "attachments": page.attachments,
        "history": page.history,
        "following": page.following,
        "followers": page.followers,
        "follower_form": follower_form or FollowerAddForm(candidates=page.follower_candidates),
        "transitions": services.allowed_transitions(ticket=page.ticket, actor=request.user),
        "comment_form": comment_form or CommentForm(),
    }


@organization_required
@require_GET
def ticket_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    part = request.GET.get("part")
    template = f"tickets/detail.html#{part}" if request.htmx and part in PARTS else "tickets/detail.html"
    return render(request, template, _detail_context(request, _page(request, public_id)))


# Fragments a client may ask for (live updates re-fetch them by name).
PARTS = frozenset({"ticket-summary", "ticket-comments", "ticket-history", "ticket-followers"})


@organization_required
@require_POST
def comment_add(request: HttpRequest, public_id: str) -> HttpResponse:
    ticket = selectors.ticket_ref(organization=request.organization, public_id=public_id)
    form = CommentForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            comment = services.comment_create(
                ticket=ticket, author=request.user, membership=request.membership, **form.cleaned_data
            )
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            if not request.htmx:
                messages.success(request, "Reply added.")
                return redirect(reverse("tickets:detail", args=[ticket.public_id]) + "#comments")
            return render(request, "tickets/detail.html#comment-added", _comment_added_context(request, comment))
    context = _detail_context(request, _page(request, public_id), comment_form=form)
    template = "tickets/detail.html#comment-form" if request.htmx else "tickets/detail.html"
    return render(request, template, context, status=400)


def _comment_added_context(request: HttpRequest, comment) -> dict:
    """A fresh form for the ticket as the reply left it, and the reply for the thread: appended to it
    (no query), or the whole thread when the reply is the first the customer sees, or for agents,
    whose thread also holds internal notes (read again: two queries). Replies that others posted
    meanwhile arrive by the live push, which swaps the whole thread."""
    ticket = comment.ticket
    comments = None
    if services.is_agent(request.user):
        comments, _ = selectors.ticket_thread(ticket=ticket, include_internal=True)
    elif ticket.comment_count <= 1:
        comments = [comment]
    return {"ticket": ticket, "comment": comment, "comments": comments, "comment_form": CommentForm()}


@organization_required
@require_POST
def status_change(request: HttpRequest, public_id: str) -> HttpResponse:
    ticket = selectors.ticket_get(organization=request.organization, public_id=public_id)
    form = StatusForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError({"status": "Choose a valid status."})
        ticket = services.ticket_change_status(ticket=ticket, actor=request.user, status=form.cleaned_data["status"])
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(request, f"Ticket {ticket.reference} is now {ticket.get_status_display().lower()}.")
    url = reverse("tickets:detail", args=[ticket.public_id])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@organization_required
@require_POST
def follow_toggle(request: HttpRequest, public_id: str) -> HttpResponse:
    ticket = selectors.ticket_get(organization=request.organization, public_id=public_id)
    if request.POST.get("follow") == "1":
        services.ticket_follow(ticket=ticket, user=request.user)
    else:
        services.ticket_unfollow(ticket=ticket, user=request.user)
    if request.htmx:
        return _follow_parts(request, _follow_context(request, ticket), "follow-form")
    return redirect("tickets:detail", ticket.public_id)


def _follow_context(request: HttpRequest, ticket: Any, form: FollowerAddForm | None = None) -> dict:
    """What the follow button and the followers section show: one query, not the whole page's."""
    followers, candidates = selectors.ticket_followers(ticket=ticket)
    return {
        "ticket": ticket,
        "following": any(person.pk == request.user.pk for person in followers),
        "followers": followers,
        "follower_form": form or FollowerAddForm(candidates=candidates),
    }


def _follow_parts(request: HttpRequest, context: dict, swapped: str, status: int = 200) -> HttpResponse:
    """The follow button and the followers section, both: one of them is the htmx target, the
    other goes out of band (following yourself adds you to the list; removing yourself there
    resets the button)."""
    other = "ticket-followers" if swapped == "follow-form" else "follow-form"
    html = render_to_string(f"tickets/detail.html#{swapped}", context, request)
    html += render_to_string(f"tickets/detail.html#{other}", context | {"oob": True}, request)
    return HttpResponse(html, status=status)


def _followers_response(
    request: HttpRequest, ticket: Any, form: FollowerAddForm | None = None, error: str = ""
) -> HttpResponse:
    """The answer to a followers form: the section again for htmx (with the error, as a 400), the
    page otherwise (a redirect when it worked)."""
    if not request.htmx and form is None and not error:
        return redirect(reverse("tickets:detail", args=[ticket.public_id]) + "#ticket-followers")
    status = 400 if form is not None or error else 200
    if request.htmx:
        context = _follow_context(request, ticket, form) | {"follower_error": error}
        return _follow_parts(request, context, "ticket-followers", status)
    context = _detail_context(request, _page(request, ticket.public_id), follower_form=form) | {"follower_error": error}
    return render(request, "tickets/detail.html", context, status=status)


@organization_required
@require_POST
def follower_add(request: HttpRequest, public_id: str) -> HttpResponse:
    ticket = selectors.ticket_ref(organization=request.organization, public_id=public_id)
    _, candidates = selectors.ticket_followers(ticket=ticket)
    form = FollowerAddForm(request.POST, candidates=candidates)
    if form.is_valid():
        try:
            services.ticket_follower_add(
                ticket=ticket, actor=request.user, user_id=form.cleaned_data["user"], membership=request.membership
            )
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            return _followers_response(request, ticket)
    return _followers_response(request, ticket, form=form)


@organization_required
@require_POST
def follower_remove(request: HttpRequest, public_id: str) -> HttpResponse:
    ticket = selectors.ticket_ref(organization=request.organization, public_id=public_id)
    try:
        services.ticket_follower_remove(
            ticket=ticket, actor=request.user, user_id=request.POST.get("user", ""), membership=request.membership
        )
    except ValidationError as exc:
        return _followers_response(request, ticket, error=" ".join(exc.messages))
    return _followers_response(request, ticket)


@organization_required
@require_GET
def attachment_download(request: HttpRequest, public_id: str, attachment_id: str) -> FileResponse:
    return attachment_response(request_attachment(request, public_id, attachment_id))
