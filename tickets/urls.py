from django.urls import path

from tickets import views

app_name = "tickets"

urlpatterns = [
    path("", views.ticket_list, name="list"),
    path("new/", views.ticket_create, name="create"),
    path("<uuid:public_id>/", views.ticket_detail, name="detail"),
    path("<uuid:public_id>/comments/", views.comment_add, name="comment_add"),
    path("<uuid:public_id>/status/", views.status_change, name="status_change"),
    path("<uuid:public_id>/follow/", views.follow_toggle, name="follow"),
    path("<uuid:public_id>/followers/", views.follower_add, name="follower_add"),
    path("<uuid:public_id>/followers/remove/", views.follower_remove, name="follower_remove"),
    path("<uuid:public_id>/attachments/<uuid:attachment_id>/", views.attachment_download, name="attachment"),
]
