"""Support agents' workspace. Every change goes through tickets.services, like pages and the API."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

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


class TicketAdminForm(forms.ModelForm):
    class Meta:
        model = Ticket
        fields = EDITABLE

    actor: Any = None  # set by TicketAdmin.get_form

    def clean_status(self) -> str:
        status = self.cleaned_data["status"]
        if self.instance.pk and status != self.instance.status:
            # Checked here too so a refused transition is a form error, not a failed save.
            try:
                services.ticket_check_transition(ticket=self.instance, actor=self.actor, to=status)
            except ValidationError as exc:
                raise ValidationError(exc.message_dict["status"]) from exc
        return status


class CommentInline(admin.StackedInline):
    model = Comment
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
    fields = ["filename", "content_type", "size", "comment", "uploaded_by", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
    done, refused = 0, []
    for ticket in queryset:
        try:
            services.ticket_update(ticket=ticket, actor=request.user, **changes)
            done += 1
        except ValidationError as exc:
            refused.append(f"{ticket.reference}: {' '.join(exc.messages)}")
    if done:
        messages.success(request, f"{description}: {done} ticket(s).")
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
        return form

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # closed tickets are purged by the retention job

    def save_model(self, request: HttpRequest, obj: Ticket, form: forms.ModelForm, change: bool) -> None:
        changes = {field: form.cleaned_data[field] for field in form.changed_data if field in EDITABLE}
        if changes:
            services.ticket_update(ticket=obj, actor=request.user, **changes)

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        # Nothing is saved by the formset itself (admin's change log reads these lists).
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        if formset.model is not Comment:
            return
        for comment_form in formset.forms:
            data = getattr(comment_form, "cleaned_data", None) or {}
            if comment_form.instance.pk is None and data.get("body"):
                services.comment_create(
                    ticket=form.instance, author=request.user, body=data["body"], internal=data.get("internal", False)
                )

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
