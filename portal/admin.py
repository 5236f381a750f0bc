from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils import timezone

from portal import services
from portal.models import ApiToken, Event, Invitation, Membership, Organization, ServiceToken

admin.site.site_header = "SecureBase Portal — support"
admin.site.site_title = "SecureBase support"


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    list_select_related = ["user", "organization"]
    search_fields = ["user__email", "user__username", "organization__name"]
    autocomplete_fields = ["user", "organization"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "created_at", "expires_at", "accepted_at"]
    list_select_related = ["organization"]
    search_fields = ["email", "organization__name"]
    readonly_fields = ["token_hash"]


@admin.action(description="Revoke selected tokens")
def revoke_tokens(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset) -> None:
    count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
    modeladmin.message_user(request, f"{count} token(s) revoked.")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "organization", "membership", "created_at", "last_used_at", "revoked_at"]
    list_select_related = ["organization", "membership__user"]
    search_fields = ["name", "prefix", "organization__name"]
    readonly_fields = ["public_id", "prefix", "key_hash", "membership", "organization", "created_at", "last_used_at"]
    actions = [revoke_tokens]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # customers create their own tokens in the portal


@admin.register(ServiceToken)
class ServiceTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    fields = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = [revoke_tokens]

    def save_model(self, request: HttpRequest, obj: ServiceToken, form, change: bool) -> None:
        if change:
            obj.save(update_fields=["name"])
            return
        token, key = services.service_token_create(name=obj.name)
        obj.pk, obj.prefix, obj.key_hash = token.pk, token.prefix, token.key_hash
        messages.warning(request, f"Service token created. Copy it now, it is shown only once: {key}")


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["type", "organization", "actor", "source", "created_at", "dispatched_at", "dispatch_attempts"]
    list_filter = ["type", ("dispatched_at", admin.EmptyFieldListFilter)]
    list_select_related = ["organization", "actor"]
    search_fields = ["public_id", "organization__name"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False
