from django.urls import path

from notifications import api

app_name = "notifications-api"

urlpatterns = [
    path("notifications/", api.NotificationListApi.as_view(), name="list"),
    path("notifications/unread-count/", api.UnreadCountApi.as_view(), name="unread-count"),
    path("notifications/read-all/", api.MarkAllReadApi.as_view(), name="read-all"),
    path("notifications/preferences/", api.PreferencesApi.as_view(), name="preferences"),
    path("notifications/<uuid:public_id>/", api.NotificationDeleteApi.as_view(), name="detail"),
    path("notifications/<uuid:public_id>/read/", api.MarkReadApi.as_view(), name="read"),
]
