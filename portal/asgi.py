"""ASGI entry point: HTTP through Django, WebSockets through Channels (served by Daphne)."""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

from portal.asgi_handler import get_asgi_application, leave_request_bodies_to_django

# Django must be set up before anything imports models (consumers, routing).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from portal.realtime import (  # noqa: E402
    ApiTokenSocketMiddleware,
    BrowserOriginValidator,
    defer_autobahn_debug_arguments,
    install_daphne_frame_writes,
)
from portal.routing import websocket_urlpatterns  # noqa: E402

# Daphne hands POST bodies to Django as they came; Twisted no longer parses them first (ADR 0024).
leave_request_bodies_to_django()
# Daphne's WebSocket protocol (autobahn) renders unused debug-log arguments per connection and
# per frame; skip that work (ADR 0017).
defer_autobahn_debug_arguments()
# The channel layer (and channels_redis/redis-py) loaded now, not by the first socket's handshake.
get_channel_layer()
# Org-wide pushes framed once per process, and frames written without a reactor round trip (ADR 0018).
install_daphne_frame_writes()

# In development Daphne serves static files too; in production the reverse proxy serves
# STATIC_ROOT (see docs/deployment.md).
http_app = ASGIStaticFilesHandler(django_asgi_app) if settings.DEBUG else django_asgi_app

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": ApiTokenSocketMiddleware(
            BrowserOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)

# Everything loaded by now (Django, the URL configuration and every view it names) lives as long as
# the process: freeze it out of the garbage collector, so a full collection no longer walks it
# (ADR 0023: the slowest request of 300, and the handshakes around one, 160-200 ms → under 50 ms).
_ = get_resolver().url_patterns  # imports every view module now
gc.collect()
gc.freeze()
