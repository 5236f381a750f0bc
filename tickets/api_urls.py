from django.urls import path

from tickets import api

app_name = "tickets-api"

urlpatterns = [
    path("tickets/", api.TicketListCreateApi.as_view(), name="list"),
    path("tickets/<uuid:public_id>/", api.TicketDetailApi.as_view(), name="detail"),
    path("tickets/<uuid:public_id>/comments/", api.TicketCommentsApi.as_view(), name="comments"),
    path(
        "tickets/<uuid:public_id>/attachments/<uuid:attachment_id>/",
        api.TicketAttachmentApi.as_view(),
        name="attachment",
    ),
    path("tickets/<uuid:public_id>/followers/", api.TicketFollowersApi.as_view(), name="followers"),
    path("tickets/<uuid:public_id>/followers/<int:user_id>/", api.TicketFollowerApi.as_view(), name="follower"),
]
