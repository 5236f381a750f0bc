"""The project's URLs plus webhooks', until portal/urls.py includes them (see the hand-off notes)."""

from django.urls import include, path

from portal.urls import urlpatterns as portal_urlpatterns

urlpatterns = [
    *portal_urlpatterns,
    path("webhooks/", include("webhooks.urls")),
    path("api/v1/", include("webhooks.api_urls")),
]
