from django.urls import path

from tickets import api

app_name = "tickets-api"

urlpatterns = [
    path("tickets/", api.TicketListCreateApi.as_view(), name="list"),
    path("tickets/<uuid:public_id>/", api.TicketDetailApi.as_view(), name="detail"),
    path("tickets/<uuid:public_id>/comments/", api.TicketCommentsApi.as_view(), name="comments"),
]
