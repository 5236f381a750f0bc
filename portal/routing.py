"""WebSocket routes: the project wiring, like urls.py (the one place the core names a consumer)."""

from django.urls import path

from graphql_api.consumers import graphql_consumer
from notifications.consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/", LiveConsumer.as_asgi()),
    path("graphql/", graphql_consumer()),
]
