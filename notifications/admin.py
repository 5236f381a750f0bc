from django.contrib import admin

from notifications.models import Notification, Preference, Push


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["title", "recipient", "organization", "kind", "updates", "read_at", "updated_at"]
    list_filter = ["kind", ("read_at", admin.EmptyFieldListFilter)]
    list_select_related = ["recipient", "organization"]
    search_fields = ["title", "recipient__email"]
    readonly_fields = [f.name for f in Notification._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Preference)
class PreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "channel", "digest"]
    list_select_related = ["user"]


@admin.register(Push)
class PushAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "organization", "user", "created_at", "sent_at"]
    list_select_related = ["organization", "user"]
    list_filter = ["type"]
    readonly_fields = [f.name for f in Push._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
