"""Support agents' read-only view of webhooks: endpoints, messages, deliveries and attempts.

Nothing is editable here: customers manage their endpoints in the portal, and every change
goes through webhooks.services. Signing secrets are never shown.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from webhooks.models import Attempt, Delivery, Endpoint, Message


class ReadOnlyAdmin(admin.ModelAdmin):
    list_per_page = 50
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Endpoint)
class EndpointAdmin(ReadOnlyAdmin):
    list_display = ["url", "organization", "enabled", "last_attempt_at", "last_success_at", "failing_since"]
    list_filter = ["enabled", "organization"]
    list_select_related = ["organization"]
    search_fields = ["url", "description", "organization__name", "=public_id"]
    fields = [
        "public_id",
        "organization",
        "url",
        "description",
        "all_events",
        "event_types",
        "enabled",
        "disabled_reason",
        "disabled_at",
        "secret_rotated_at",
        "previous_secret_expires_at",
        "last_attempt_at",
        "last_success_at",
        "failing_since",
        "created_at",
        "updated_at",
    ]


class AttemptInline(ReadOnlyInline):
    model = Attempt
    fk_name = "delivery"
    fields = ["number", "created_at", "outcome", "response_status", "latency_ms", "error_class", "error_message"]
    readonly_fields = fields


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["message", "event_type", "endpoint", "organization", "state", "attempt_count", "created_at"]
    list_filter = ["state", "event_type", "organization"]
    list_select_related = ["message", "endpoint", "organization"]
    search_fields = ["=message__msg_id", "endpoint__url", "organization__name"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    inlines = [AttemptInline]
    exclude = ["lease_id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer("message__body")


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["msg_id", "event_type", "organization", "created_at"]
    list_filter = ["event_type", "organization"]
    list_select_related = ["organization"]
    search_fields = ["=msg_id", "organization__name"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]


@admin.register(Attempt)
class AttemptAdmin(ReadOnlyAdmin):
    list_display = ["delivery", "number", "outcome", "response_status", "latency_ms", "error_class", "created_at"]
    list_filter = ["outcome", "error_class"]
    list_select_related = ["delivery__message", "delivery__endpoint"]
    search_fields = ["=delivery__message__msg_id", "url"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
