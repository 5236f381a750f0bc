from django.urls import path

from webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("", views.endpoint_list, name="list"),
    path("new/", views.endpoint_create, name="create"),
    path("<uuid:public_id>/", views.endpoint_detail, name="detail"),
    path("<uuid:public_id>/edit/", views.endpoint_edit, name="edit"),
    path("<uuid:public_id>/delete/", views.endpoint_delete, name="delete"),
    path("<uuid:public_id>/secret/", views.endpoint_secret, name="secret"),
    path("<uuid:public_id>/secret/rotate/", views.endpoint_secret_rotate, name="secret_rotate"),
    path("<uuid:public_id>/enable/", views.endpoint_enable, name="enable"),
    path("<uuid:public_id>/disable/", views.endpoint_disable, name="disable"),
    path("<uuid:public_id>/recover/", views.endpoint_recover, name="recover"),
    path("<uuid:public_id>/test/", views.endpoint_test, name="test"),
    path("<uuid:public_id>/test/<uuid:event_id>/", views.endpoint_test_result, name="test_result"),
    path("<uuid:public_id>/messages/<str:msg_id>/", views.delivery_detail, name="delivery"),
    path("<uuid:public_id>/messages/<str:msg_id>/replay/", views.delivery_replay, name="replay"),
]
