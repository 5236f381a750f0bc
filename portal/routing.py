"""WebSocket routes: the project wiring, like urls.py (the one place the core names a consumer)."""

from django.urls import path

from notifications.consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/", LiveConsumer.as_asgi()),
]
