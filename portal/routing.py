"""WebSocket routes. Each app that serves sockets adds its patterns here."""

websocket_urlpatterns: list = []
