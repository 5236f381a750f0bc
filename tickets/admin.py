"""Support agents' workspace. Every change goes through tickets.services, like pages and the API."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from portal.forms import form_add_service_errors
from tickets import services
from tickets.models import (
    Attachment,
    BusinessCalendar,
    Comment,
    Holiday,
    SlaPolicy,
    Status,
    Ticket,
    TicketChange,
)

EDITABLE = ["status", "priority", "assignee", "category", "queue", "subject", "description"]
# "#1042": a ticket reference (as many digits as the number column holds).
_REFERENCE = re.compile(r"#([0-9]{1,9})")


def _service_rule(field: str, check: Callable[..., Any], *args: Any) -> Any:
    """Run one of the services' own validation helpers and report its message on ``field``."""
    try:
        return check(*args)
    except ValidationError as exc:
        raise ValidationError(exc.message_dict[field]) from exc


class _Refused(Exception):
    """A service refused the change after admin had accepted the forms (see changeform_view)."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(error)
        self.error = error


class TicketAdminForm(forms.ModelForm):
    class Meta:
        model = Ticket
        fields = EDITABLE

    actor: Any = None  # set by TicketAdmin.get_form
    refusal: ValidationError | None = None  # set by TicketAdmin.get_form when a service refused this submit

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assignee = self.fields.get("assignee")
        if assignee is not None:
            # Only active agents can take a ticket (ticket_update refuses anyone else). A ticket
            # still assigned to an agent who has since been deactivated keeps showing them, so a
            # save that leaves the assignee alone does not unassign it. Not the model field's
            # limit_choices_to: model validation would then refuse every save of such a ticket.
            assignee.queryset = assignee.queryset.filter(Q(is_active=True) | Q(pk=self.instance.assignee_id or None))

    def clean_subject(self) -> str:
        subject = self.cleaned_data["subject"]
        if "subject" not in self.changed_data:
            return subject
        return _service_rule("subject", services.subject_clean, subject)

    def clean_description(self) -> str:
        description = self.cleaned_data["description"]
        if "description" not in self.changed_data:
            return description  # the service checks only what changes
        return _service_rule("description", services.body_clean, "description", description)

    def clean_status(self) -> str:
        status = self.cleaned_data["status"]
        if self.instance.pk and status != self.instance.status:
            # Checked here too so a refused transition is a form error, not a failed save.
            try:
                services.ticket_check_transition(ticket=self.instance, actor=self.actor, to=status)
            except ValidationError as exc:
                raise ValidationError(exc.message_dict["status"]) from exc
        return status

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.refusal is not None:
            form_add_service_errors(self, self.refusal)
        return cleaned


class CommentForm(forms.ModelForm):
    class Meta:
        model = Comment
        fields = ["body", "internal"]

    def clean_body(self) -> str:
        return _service_rule("body", services.body_clean, "body", self.cleaned_data["body"])


class CommentFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        replies = [form for form in self.forms if form.instance.pk is None and form.cleaned_data.get("body")]
        if not replies or self.instance.pk is None:
            return
        # self.instance carries the status submitted with this reply (the ticket form is cleaned
        # first); TicketAdmin.save_related reopens before replying and replies before closing,
        # so only a reply to a ticket that stays closed is refused (as comment_create would).
        stored = Ticket.objects.filter(pk=self.instance.pk).values_list("status", flat=True).first()
        if stored == Status.CLOSED and self.instance.status == Status.CLOSED:
            for form in replies:
                form.add_error("body", "This ticket is closed. Set the status to Open to reopen it with this reply.")


class CommentInline(admin.StackedInline):
    model = Comment
    form = CommentForm
    formset = CommentFormSet
    extra = 1
    fields = ["author", "body", "internal", "created_at"]
    readonly_fields = ["author", "created_at"]
    verbose_name = "reply or internal note"
    verbose_name_plural = "Conversation (tick “internal” for an agent-only note)"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the conversation is append-only

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("author")


class AttachmentInline(admin.TabularInline):
    model = Attachment
    extra = 0
    fields = ["download", "content_type", "size", "comment", "uploaded_by", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("comment", "uploaded_by")

    @admin.display(description="File")
    def download(self, attachment: Attachment) -> str:
        url = reverse(f"{self.admin_site.name}:tickets_ticket_attachment", args=[attachment.public_id])
        return format_html('<a href="{}">{}</a>', url, attachment.filename)


class TicketChangeInline(admin.TabularInline):
    model = TicketChange
    extra = 0
    fields = ["created_at", "actor", "field", "old_value", "new_value"]
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = "History"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("actor")


class SlaStateFilter(admin.SimpleListFilter):
    title = "SLA state"
    parameter_name = "sla"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("breached", "Breached"), ("at_risk", "At risk"), ("running", "On track"), ("paused", "Paused")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        running = Q(sla_paused_at__isnull=True, status__in=services.CLOCK_RUNS)
        breached = Q(first_response_at__isnull=True, first_response_due_at__lte=now) | Q(
            resolved_at__isnull=True, resolution_due_at__lte=now
        )
        at_risk = Q(first_response_at__isnull=True, first_response_warn_at__lte=now) | Q(
            resolved_at__isnull=True, resolution_warn_at__lte=now
        )
        match self.value():
            case "breached":
                return queryset.filter(running & breached)
            case "at_risk":
                return queryset.filter(running & at_risk).exclude(breached)
            case "running":
                return queryset.filter(running).exclude(at_risk)
            case "paused":
                return queryset.exclude(status__in=[Status.RESOLVED, Status.CLOSED]).filter(sla_paused_at__isnull=False)
        return queryset


def _bulk(request: HttpRequest, queryset: QuerySet, description: str, **changes: Any) -> None:
    """Apply ``changes`` to each ticket through the service; say what changed, what already was so,
    and what the workflow refused (one message a ticket)."""
    done, already, refused = 0, 0, []
    for ticket in queryset:
        if all(getattr(ticket, field) == value for field, value in changes.items()):
            already += 1
            continue
        try:
            services.ticket_update(ticket=ticket, actor=request.user, **changes)
            done += 1
        except ValidationError as exc:
            refused.append(f"{ticket.reference}: {' '.join(exc.messages)}")
    if done:
        messages.success(request, f"{description}: {done} ticket(s).")
    if already:
        messages.info(request, f"{already} ticket(s) already were: nothing to do.")
    for line in refused:
        messages.error(request, line)


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    form = TicketAdminForm
    list_display = ["reference", "subject", "organization", "status", "priority", "assignee", "sla", "updated_at"]
    list_filter = [
        SlaStateFilter,
        "status",
        "priority",
        "queue",
        "category",
        "organization",
        ("assignee", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["organization", "requester", "assignee"]
    search_fields = ["=number", "subject", "organization__name", "requester__email"]
    ordering = ["-updated_at"]
    list_per_page = 50
    show_full_result_count = False
    readonly_fields = [
        "reference",
        "organization",
        "requester",
        "created_at",
        "updated_at",
        "first_response_at",
        "first_response_due_at",
        "resolution_due_at",
        "resolved_at",
        "closed_at",
        "sla",
    ]
    fieldsets = [
        (None, {"fields": ["reference", "organization", "requester", "subject", "description"]}),
        ("Handling", {"fields": ["status", "priority", "assignee", "category", "queue"]}),
        (
            "SLA",
            {
                "fields": [
                    "sla",
                    "first_response_due_at",
                    "first_response_at",
                    "resolution_due_at",
                    "resolved_at",
                    "closed_at",
                ]
            },
        ),
    ]
    inlines = [CommentInline, AttachmentInline, TicketChangeInline]
    actions = ["assign_to_me", "mark_in_progress", "mark_waiting", "mark_resolved", "close"]

    @admin.display(description="Ticket", ordering="number")
    def reference(self, ticket: Ticket) -> str:
        return ticket.reference

    @admin.display(description="SLA")
    def sla(self, ticket: Ticket) -> str:
        status = services.ticket_sla_status(ticket=ticket)
        due = timezone.localtime(status.due_at).strftime("%d %b %H:%M") if status.due_at else "–"
        return format_html(
            '<span class="sla sla-{}">{} · {} due {}</span>',
            status.state,
            status.state.replace("_", " "),
            status.target.replace("_", " "),
            due,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # customers open tickets in the portal or the API

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> type[forms.ModelForm]:
        form = super().get_form(request, obj, **kwargs)
        form.actor = request.user
        form.refusal = getattr(request, "_ticket_refusal", None)
        return form

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        # "#1042" is how agents and customers write a ticket reference: that number, nothing else.
        reference = _REFERENCE.fullmatch(search_term.strip())
        if reference:
            return queryset.filter(number=int(reference.group(1))), False
        return super().get_search_results(request, queryset, search_term)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # closed tickets are purged by the retention job

    def get_urls(self) -> list[URLPattern]:
        # Before the default URLs: their "<path:object_id>/" would match this path too.
        download = path(
            "attachments/<uuid:public_id>/",
            self.admin_site.admin_view(self.attachment_download),
            name="tickets_ticket_attachment",
        )
        return [download, *super().get_urls()]

    def attachment_download(self, request: HttpRequest, public_id: Any) -> HttpResponse:
        """Any attachment, internal notes' included: the customers' download page needs a membership."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        from tickets.downloads import attachment_response

        return attachment_response(get_object_or_404(Attachment, public_id=public_id))

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except _Refused as refused:
            # super() runs in one transaction, which the exception rolled back: nothing was
            # written. Run it again on the same POST with the service's error on the form, so the
            # agent gets the page back with the error and everything they typed.
            request._ticket_refusal = refused.error
            return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Ticket, form: forms.ModelForm, change: bool) -> None:
        """Nothing here: save_related applies the changes and the new replies, in the right order."""

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        replies = []
        for formset in formsets:
            # Nothing is saved by the formsets themselves (admin's change log reads these lists).
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            if formset.model is Comment:
                replies += [
                    (comment_form.cleaned_data["body"], comment_form.cleaned_data.get("internal", False))
                    for comment_form in formset.forms
                    if comment_form.instance.pk is None and comment_form.cleaned_data.get("body")
                ]
        changes = {field: form.cleaned_data[field] for field in form.changed_data if field in EDITABLE}
        ticket = form.instance

        def update() -> None:
            if changes:
                services.ticket_update(ticket=ticket, actor=request.user, **changes)

        def reply() -> None:
            for body, internal in replies:
                services.comment_create(ticket=ticket, author=request.user, body=body, internal=internal)

        # "Close" with a farewell reply: the reply goes out first, then the ticket closes. A reply
        # with "reopen" on a closed ticket: it reopens first, then takes the reply.
        steps = (update, reply) if form.initial.get("status") == Status.CLOSED else (reply, update)
        try:
            for step in steps:
                step()
        except ValidationError as exc:
            raise _Refused(exc) from exc

    @admin.action(description="Assign to me")
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet) -> None:
        _bulk(request, queryset, "Assigned to you", assignee=request.user)

    @admin.action(description="Mark in progress")
    def mark_in_progress(self, request: HttpRequest, queryset: QuerySet) -> None:
        _bulk(request, queryset, "Marked in progress", status=Status.IN_PROGRESS)

    @admin.action(description="Mark waiting on customer")
    def mark_waiting(self, request: HttpRequest, queryset: QuerySet) -> None:
        _bulk(request, queryset, "Waiting on customer", status=Status.WAITING_ON_CUSTOMER)

    @admin.action(description="Mark resolved")
    def mark_resolved(self, request: HttpRequest, queryset: QuerySet) -> None:
        _bulk(request, queryset, "Resolved", status=Status.RESOLVED)

    @admin.action(description="Close")
    def close(self, request: HttpRequest, queryset: QuerySet) -> None:
        _bulk(request, queryset, "Closed", status=Status.CLOSED)


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 1


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    list_display = ["name", "timezone", "start_time", "end_time"]
    inlines = [HolidayInline]


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = ["priority", "first_response_minutes", "resolution_minutes", "calendar"]
    list_select_related = ["calendar"]
