"""The project's URLs plus forecasting's, until portal/urls.py includes them (see the hand-off notes)."""

from django.urls import include, path

from portal.urls import urlpatterns as portal_urlpatterns

urlpatterns = [
    *portal_urlpatterns,
    path("costs/", include("forecasting.urls")),
    path("api/v1/", include("forecasting.api_urls")),
]
