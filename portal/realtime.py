"""Names and doorbells for live sockets: groups per user, per organization and per session.

Consumers join these groups; Celery tasks (never the request thread) ring them after commit.
Closing a session's or user's sockets lives here, in the core, because signing out and changing
a password are core concerns.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from typing import Any

from channels.layers import get_channel_layer


def user_group(user_id: int) -> str:
    return f"user-{user_id}"


def organization_group(organization_id: int) -> str:
    return f"org-{organization_id}"


def session_group(session_key: str) -> str:
    # Group names must be short ASCII; the key itself never leaves the server.
    return "session-" + hashlib.sha256(session_key.encode()).hexdigest()[:32]


# Close codes: 4401 tells clients "not authenticated: stop retrying", 4001 "signed out".
CLOSE_UNAUTHENTICATED = 4401
CLOSE_SIGNED_OUT = 4001


class _LayerLoop:
    """One event loop thread per process for talking to the channel layer from sync code.

    ``async_to_sync`` per call would start a loop and a fresh Redis connection every time
    (~10-17 ms a push); a long-lived loop keeps the layer's connections warm (~1 ms). Keyed by
    PID so each forked Celery child starts its own.
    """

    def __init__(self) -> None:
        self.pid: int | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lock = threading.Lock()

    def run(self, coroutine: Any) -> Any:
        with self.lock:
            if self.pid != os.getpid() or self.loop is None or self.loop.is_closed():
                self.loop = asyncio.new_event_loop()
                threading.Thread(target=self.loop.run_forever, name="channel-layer", daemon=True).start()
                self.pid = os.getpid()
            loop = self.loop
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)


_layer_loop = _LayerLoop()


def group_send(group: str, message: dict[str, Any]) -> None:
    _layer_loop.run(get_channel_layer().group_send(group, message))


def sockets_close(*, groups: list[str], code: int = CLOSE_SIGNED_OUT) -> None:
    for group in groups:
        group_send(group, {"type": "socket.close", "code": code})


# --- Socket authentication -------------------------------------------------------------------


class ApiTokenSocketMiddleware:
    """Authenticate API clients by ``Authorization: Token …`` on the WebSocket handshake.

    Sets ``scope["user"]`` and ``scope["api_token"]``; a presented but invalid token sets
    ``scope["api_token_invalid"]`` so the consumer closes with 4401. Browsers send no such
    header and fall through to the session (``AuthMiddlewareStack``).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        from channels.db import database_sync_to_async

        from portal import services

        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1").split()
        if len(header) == 2 and header[0].lower() in ("token", "bearer"):
            token = await database_sync_to_async(services.api_token_authenticate)(key=header[1])
            scope = dict(scope)
            if token is None:
                scope["api_token_invalid"] = True
            else:
                scope["user"], scope["api_token"] = token.membership.user, token
        return await self.app(scope, receive, send)


class BrowserOriginValidator:
    """Check the Origin of cookie-authenticated sockets (cross-site WebSocket hijacking).

    Token clients carry their credential explicitly, so a foreign page cannot ride on it, and
    most non-browser clients send no Origin at all: for them the check is skipped.
    """

    def __init__(self, app: Any) -> None:
        from channels.security.websocket import AllowedHostsOriginValidator

        self.app = app
        self.checked = AllowedHostsOriginValidator(app)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if "api_token" in scope or scope.get("api_token_invalid"):
            return await self.app(scope, receive, send)
        return await self.checked(scope, receive, send)
