from django.urls import path

from webhooks import api

app_name = "webhooks-api"

urlpatterns = [
    path("webhooks/event-types/", api.WebhookEventTypeListApi.as_view(), name="event-types"),
    path("webhooks/endpoints/", api.WebhookEndpointListCreateApi.as_view(), name="endpoints"),
    path("webhooks/endpoints/<uuid:public_id>/", api.WebhookEndpointDetailApi.as_view(), name="endpoint"),
    path("webhooks/endpoints/<uuid:public_id>/secret/", api.WebhookEndpointSecretApi.as_view(), name="secret"),
    path(
        "webhooks/endpoints/<uuid:public_id>/secret/rotate/",
        api.WebhookEndpointSecretRotateApi.as_view(),
        name="secret-rotate",
    ),
    path("webhooks/endpoints/<uuid:public_id>/test/", api.WebhookEndpointTestApi.as_view(), name="test"),
    path("webhooks/endpoints/<uuid:public_id>/enable/", api.WebhookEndpointEnableApi.as_view(), name="enable"),
    path("webhooks/endpoints/<uuid:public_id>/disable/", api.WebhookEndpointDisableApi.as_view(), name="disable"),
    path("webhooks/endpoints/<uuid:public_id>/recover/", api.WebhookEndpointRecoverApi.as_view(), name="recover"),
    path(
        "webhooks/endpoints/<uuid:public_id>/deliveries/",
        api.WebhookEndpointDeliveryListApi.as_view(),
        name="deliveries",
    ),
    path(
        "webhooks/endpoints/<uuid:public_id>/deliveries/<str:msg_id>/attempts/",
        api.WebhookDeliveryAttemptListApi.as_view(),
        name="attempts",
    ),
    path(
        "webhooks/endpoints/<uuid:public_id>/deliveries/<str:msg_id>/replay/",
        api.WebhookDeliveryReplayApi.as_view(),
        name="replay",
    ),
    path("webhooks/messages/", api.WebhookMessageListApi.as_view(), name="messages"),
    path("webhooks/messages/<str:msg_id>/", api.WebhookMessageDetailApi.as_view(), name="message"),
]
