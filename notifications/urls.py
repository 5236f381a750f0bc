from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.notification_list, name="list"),
    path("dropdown/", views.dropdown, name="dropdown"),
    path("read/", views.mark_many_read, name="read_many"),
    path("preferences/", views.preferences, name="preferences"),
    path("poll/", views.poll, name="poll"),
    path("<uuid:public_id>/read/", views.mark_read, name="read"),
    path("<uuid:public_id>/delete/", views.delete, name="delete"),
]
