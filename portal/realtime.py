"""Names and doorbells for live sockets: groups per user, per organization and per session.

Consumers join these groups; Celery tasks (never the request thread) ring them after commit.
Closing a session's or user's sockets lives here, in the core, because signing out and changing
a password are core concerns.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import threading
import time
import weakref
from typing import Any

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def user_group(user_id: int) -> str:
    return f"user-{user_id}"


def organization_group(organization_id: int) -> str:
    return f"org-{organization_id}"


def session_group(session_key: str) -> str:
    # Group names must be short ASCII; the key itself never leaves the server.
    return "session-" + hashlib.sha256(session_key.encode()).hexdigest()[:32]


# Close codes: 4401 tells clients "not authenticated: stop retrying" (also what a removed member's
# and a revoked token's sockets get: retrying with those credentials can't succeed), 4001 "signed out".
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


def close_request(
    group: str,
    *,
    code: int,
    organization: int | None = None,
    token: int | None = None,
    keep_sessions: list[str] | None = None,
    browsers_only: bool = False,
) -> dict[str, Any]:
    """A close of only some sockets of ``group``, for ``sockets_close`` (plain JSON, for a task).

    The sockets themselves decide (``close_applies``): ``organization`` only those of that
    organization (a member removed), ``token`` only those authenticated with that API token (a
    token revoked), ``keep_sessions`` not the browser sockets of these sessions (hashed, as
    ``session_group``), ``browsers_only`` no API-token sockets (a password change). One close
    message to the user's group instead of a group per socket joined at every handshake.
    """
    request: dict[str, Any] = {"group": group, "code": code}
    if organization is not None:
        request["organization"] = organization
    if token is not None:
        request["token"] = token
    if keep_sessions:
        request["keep_sessions"] = list(keep_sessions)
    if browsers_only:
        request["browsers_only"] = True
    return request


def close_applies(
    message: dict[str, Any], *, organization_id: int, token_id: int | None, session_key: str | None
) -> bool:
    """Whether a ``socket.close`` message is for this socket (see ``close_request``)."""
    if "organization" in message and message["organization"] != organization_id:
        return False
    if "token" in message and message["token"] != token_id:
        return False
    if token_id is not None:
        return not message.get("browsers_only")
    return not (session_key and session_group(session_key) in message.get("keep_sessions", ()))


def sockets_close(*, groups: list[str | dict[str, Any]], code: int = CLOSE_SIGNED_OUT) -> None:
    """Close the sockets of each group: a group name (all of them, with ``code``) or a
    ``close_request`` (some of them, with its own code)."""
    for entry in groups:
        if isinstance(entry, str):
            group_send(entry, {"type": "socket.close", "code": code})
        else:
            filters = {key: value for key, value in entry.items() if key != "group"}
            group_send(entry["group"], {"type": "socket.close", "code": code} | filters)


# --- Per-process group relay --------------------------------------------------------------------


class _RelayedGroup:
    def __init__(self) -> None:
        self.members: set[Any] = set()
        self.channel: str | None = None
        self.opened: asyncio.Task | None = None
        self.reader: asyncio.Task | None = None


class GroupRelay:
    """One channel-layer membership per (process, group), fanned out to this process's consumers.

    With one channel per socket, an organization-wide push to 1,000 sockets costs 1,000 Redis
    messages, 1,000 receives and 1,000 consumer wake-ups; the relay's single channel receives it
    once and hands the *same* message to every local consumer's ``relayed()`` in one pass (a
    plain call that returns None when it is done, or an awaitable for the rest), and a
    reconnect storm costs one ``group_add`` per group instead of one per socket. Messages and
    group names are unchanged: other consumers (and other processes) still ``group_add`` and
    receive as usual. One relay per event loop (Daphne has one; tests start a loop per test);
    the layer's ``group_expiry`` is kept at bay by re-adding the relay's channel periodically.
    """

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.groups: dict[str, _RelayedGroup] = {}
        self.refresher: asyncio.Task | None = None

    async def join(self, group: str, consumer: Any) -> None:
        state = self.groups.get(group)
        if state is None:
            state = self.groups[group] = _RelayedGroup()
            state.opened = asyncio.ensure_future(self._open(group, state))
        state.members.add(consumer)
        try:
            # Every joiner waits until the relay is in the group: nothing sent after connect is lost.
            await asyncio.shield(state.opened)
        except Exception:
            await self.leave(group, consumer)
            raise

    async def _open(self, group: str, state: _RelayedGroup) -> None:
        state.channel = await self.layer.new_channel()
        state.reader = asyncio.ensure_future(self._read(group, state))
        await self.layer.group_add(group, state.channel)
        if self.refresher is None or self.refresher.done():
            self.refresher = asyncio.ensure_future(self._refresh())

    async def leave(self, group: str, consumer: Any) -> None:
        state = self.groups.get(group)
        if state is None:
            return
        state.members.discard(consumer)
        if state.members:
            return
        # Last local socket gone: stop receiving and leave the group (once the join is through,
        # so a join still in flight can't leave a member behind).
        if self.groups.get(group) is state:
            del self.groups[group]
        if state.reader is not None:
            state.reader.cancel()
        with contextlib.suppress(Exception):  # a failed join has nothing to leave
            await asyncio.shield(state.opened)
            await self.layer.group_discard(group, state.channel)

    async def _read(self, group: str, state: _RelayedGroup) -> None:
        try:
            while True:
                message = await self.layer.receive(state.channel)
                for consumer in list(state.members):
                    try:
                        pending = consumer.relayed(message)
                        if pending is not None:
                            await pending
                    except Exception:
                        logger.exception("relayed message failed", extra={"group": group})
        except Exception:
            # The layer failed (Redis gone): these sockets would silently stop getting the
            # group's messages. Close them instead; clients reconnect and resume with last_id.
            logger.exception("group relay lost its channel; closing its sockets", extra={"group": group})
            if self.groups.get(group) is state:
                del self.groups[group]
            for consumer in list(state.members):
                with contextlib.suppress(Exception):
                    await consumer.close(code=RELAY_LOST_CLOSE_CODE)

    async def _refresh(self) -> None:
        interval = max(1.0, min(RELAY_REFRESH_SECONDS, getattr(self.layer, "group_expiry", 86400) / 2))
        while self.groups:
            await asyncio.sleep(interval)
            for group, state in list(self.groups.items()):
                if state.channel is not None and state.opened is not None and state.opened.done():
                    try:
                        await self.layer.group_add(group, state.channel)
                    except Exception:
                        logger.warning("relay group refresh failed", extra={"group": group}, exc_info=True)


RELAY_REFRESH_SECONDS = 600.0
RELAY_LOST_CLOSE_CODE = 1011  # "internal error": browsers and API clients reconnect and resume
_relays: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, GroupRelay]] = weakref.WeakKeyDictionary()


def group_relay(layer: Any) -> GroupRelay:
    """This event loop's relay for ``layer``."""
    per_loop = _relays.setdefault(asyncio.get_running_loop(), {})
    relay = per_loop.get(id(layer))
    if relay is None or relay.layer is not layer:
        relay = per_loop[id(layer)] = GroupRelay(layer)
    return relay


# At most this many group changes (``group_add`` / ``group_discard``) of one process's sockets
# in flight at once. channels_redis runs each call on a pooled Redis connection and opens a new
# one whenever none is free, and the pool keeps what it opened: 400 sockets closing together (a
# deploy, a network blip) opened 399 new connections, 1,000 opened ~900. Queued behind a few slots
# the same calls reuse a few connections; each takes well under a millisecond.
GROUP_CHANGES_AT_ONCE = 16
_group_change_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def group_change_slots() -> asyncio.Semaphore:
    """This event loop's slots for the group changes of its sockets (see GROUP_CHANGES_AT_ONCE)."""
    loop = asyncio.get_running_loop()
    slots = _group_change_slots.get(loop)
    if slots is None:
        slots = _group_change_slots[loop] = asyncio.Semaphore(GROUP_CHANGES_AT_ONCE)
    return slots


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
        from asgiref.sync import sync_to_async

        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1").split()
        if len(header) == 2 and header[0].lower() in ("token", "bearer"):
            # Off Channels' single sync thread: handshakes authenticate in parallel, each pool
            # thread with its own database connection.
            token = await sync_to_async(_authenticate_token, thread_sensitive=False)(header[1])
            scope = dict(scope)
            if token is None:
                scope["api_token_invalid"] = True
            else:
                scope["user"], scope["api_token"] = token.membership.user, token
                token_touches().add(token)
        return await self.app(scope, receive, send)


def _authenticate_token(key: str) -> Any:
    """``api_token_authenticate`` on a pool thread's own, kept database connection.

    Channels' ``database_sync_to_async`` runs ``close_old_connections()`` before and after each
    call, which (with ``conn_health_checks``) costs a ``SELECT 1`` round trip per handshake to
    find a connection the server dropped while it was idle. Here that is found by the lookup
    itself: on a connection error the connection is closed and the lookup retried once on a new
    one (it only reads: ``last_used_at`` is stamped later by TokenTouches). ``CONN_MAX_AGE`` and
    connections left in a bad state are handled as ``close_old_connections`` would.
    """
    from portal import services

    return _on_kept_connection(lambda: services.api_token_authenticate(key=key, touch=False))


def _on_kept_connection(work: Any) -> Any:
    from django.db import DatabaseError, InterfaceError, OperationalError, connection

    try:
        for attempt in (1, 2):
            try:
                return work()
            except (InterfaceError, OperationalError):
                connection.close()
                if attempt == 2:
                    raise
    except DatabaseError:
        connection.close()
        raise
    finally:
        if connection.connection is not None and (
            not connection.get_autocommit()
            or connection.errors_occurred
            or (connection.close_at is not None and time.monotonic() >= connection.close_at)
        ):
            connection.close()


TOKEN_TOUCH_SECONDS = 1.0


class TokenTouches:
    """``last_used_at`` of the tokens that opened sockets, written in one UPDATE per second.

    Written on the handshake (one ORM UPDATE and a durable COMMIT each: ~1.3 ms of CPU), it
    was a sixth of a handshake's cost on a first use; here the handshake only notes the token,
    and every ``TOKEN_TOUCH_SECONDS`` the tokens noted meanwhile are stamped together, with the
    time of that write (at most that much later than their use; the stamp is advisory, kept to
    the minute, ADR 0003). A process that dies loses at most that last second of stamps.
    One per event loop.
    """

    def __init__(self) -> None:
        self.pending: set[int] = set()
        self.writer: asyncio.Task | None = None

    def add(self, token: Any) -> None:
        from portal import services

        if not services.api_token_use_unrecorded(token):
            return
        self.pending.add(token.pk)
        if self.writer is None or self.writer.done():
            self.writer = asyncio.ensure_future(self._write_soon())

    async def _write_soon(self) -> None:
        from asgiref.sync import sync_to_async

        await asyncio.sleep(TOKEN_TOUCH_SECONDS)
        ids, self.pending = self.pending, set()
        try:
            await sync_to_async(_touch_tokens, thread_sensitive=False)(sorted(ids))
        except Exception:
            logger.warning("token last_used_at not recorded", extra={"tokens": len(ids)}, exc_info=True)


def _touch_tokens(ids: list[int]) -> None:
    from portal import services

    _on_kept_connection(lambda: services.api_tokens_mark_used(token_ids=ids))


_token_touches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TokenTouches] = weakref.WeakKeyDictionary()


def token_touches() -> TokenTouches:
    """This event loop's batch of token ``last_used_at`` stamps."""
    loop = asyncio.get_running_loop()
    touches = _token_touches.get(loop)
    if touches is None:
        touches = _token_touches[loop] = TokenTouches()
    return touches


class BrowserOriginValidator:
    """Check the Origin of cookie-authenticated sockets (cross-site WebSocket hijacking).

    Token clients carry their credential explicitly, so a foreign page cannot ride on it, and
    most non-browser clients send no Origin at all: for them the check is skipped, and so are
    Channels' cookie/session/auth middlewares wrapped inside (they would only resolve an empty
    session on the single sync thread: two thread hops per handshake for nothing).
    """

    def __init__(self, app: Any) -> None:
        from channels.security.websocket import AllowedHostsOriginValidator

        self.app = app
        self.checked = AllowedHostsOriginValidator(app)
        self.token_app = _past_session_auth(app)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if "api_token" in scope or scope.get("api_token_invalid"):
            return await self.token_app(scope, receive, send)
        return await self.checked(scope, receive, send)


def _past_session_auth(app: Any) -> Any:
    """The application inside ``AuthMiddlewareStack`` (cookie → session → auth), if that's ``app``."""
    from channels.auth import AuthMiddleware
    from channels.sessions import CookieMiddleware, SessionMiddleware

    while isinstance(app, CookieMiddleware | SessionMiddleware | AuthMiddleware):
        app = app.inner
    return app


# --- Daphne's WebSocket protocol (autobahn) -------------------------------------------------------


class _Deferred:
    """A log argument rendered only if a log line actually formats it."""

    __slots__ = ("args", "func", "kwargs")

    def __init__(self, func: Any, *args: Any, **kwargs: Any) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs

    def __str__(self) -> str:
        return str(self.func(*self.args, **self.kwargs))

    def __repr__(self) -> str:
        return str(self)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def defer_autobahn_debug_arguments() -> None:
    """Stop autobahn from rendering debug-log arguments that nobody logs.

    autobahn's WebSocket protocol passes ``pformat(...)`` of its ~40 options on every new
    connection, and ``hltype(self.sendData)``/``hlval(...)`` (``inspect`` plus ``click.style``)
    on every frame sent, as arguments to ``log.debug`` — evaluated even though txaio's debug
    level is off and the call is a no-op. Profiled under Daphne (bench/ws_RESULTS.md) that was
    ~19 % of the event loop's time per handshake and ~7 % per fanned-out frame. Here those
    module-level helpers are replaced by ones that return a placeholder which renders the same
    text only when a debug line is formatted; nothing else in autobahn changes. Idempotent.
    """
    import pprint

    from autobahn.websocket import protocol

    if getattr(protocol, "_portal_deferred_debug", False):
        return
    for name in ("pformat", "hltype", "hlval"):
        original = getattr(protocol, name)
        setattr(protocol, name, lambda *args, _f=original, **kwargs: _Deferred(_f, *args, **kwargs))
    # The one place that returns pformat's text instead of logging it.
    protocol.Timings.__str__ = lambda self: pprint.pformat(self._timings)
    protocol._portal_deferred_debug = True


# --- Daphne: one encoded frame per broadcast, written without a reactor round trip ---------------

# Key of an optional extra entry in a ``websocket.send`` ASGI message: a SharedFrame carrying the
# same text, encoded and framed once for every socket of a broadcast. Daphne (with
# install_daphne_frame_writes) sends that prepared frame; any other server ignores the key and
# sends ``text`` as usual.
SHARED_FRAME = "portal.shared_frame"


class SharedFrame:
    """One text message for many sockets: UTF-8 encoded and framed once per process.

    autobahn's documented broadcast API (``factory.prepareMessage`` /
    ``protocol.sendPreparedMessage``) builds the complete frame (header and payload) once;
    each socket then only writes those bytes.
    """

    __slots__ = ("factory", "prepared", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.factory: Any = None
        self.prepared: Any = None

    def prepared_for(self, factory: Any) -> Any:
        if self.factory is not factory:
            self.prepared = factory.prepareMessage(self.text.encode("utf-8"), isBinary=False)
            self.factory = factory
        return self.prepared


def _write_now(transport: Any, data: bytes) -> None:
    """Send ``data`` on the socket right away when nothing is queued before it, else queue it.

    Twisted's ``transport.write`` always buffers, registers the socket for writability (an
    ``epoll_ctl``), and sends on the reactor's next pass, then unregisters it (another
    ``epoll_ctl``): per frame per socket that bookkeeping cost more than the ``send()`` itself.
    asyncio's transports try the ``send()`` first; this does the same: when the transport's
    buffers are empty it calls ``writeSomeData`` (what the reactor would call), and whatever the
    kernel did not take (or a failed send) goes through ``transport.write`` behind it, so bytes
    stay in order and a lost connection is detected exactly as before. (A registered producer,
    which HTTPChannel leaves on every connection, is only paused when the buffer grows, and the
    buffer is empty here.)
    """
    if (
        getattr(transport, "TLS", True) is False
        and transport.connected
        and not transport.disconnecting
        and not getattr(transport, "_writeDisconnected", True)
        and not transport._tempDataBuffer
        and transport.offset == len(transport.dataBuffer)
    ):
        sent = transport.writeSomeData(data)
        if isinstance(sent, int) and sent >= 0:
            if sent == len(data):
                return
            data = data[sent:]
    transport.write(data)


def install_daphne_frame_writes() -> None:
    """Make Daphne's WebSocket protocol cheaper per frame (see ADR 0018). Idempotent.

    - ``websocket.send`` messages carrying a SharedFrame (org-wide pushes, one per socket) are
      sent with autobahn's ``sendPreparedMessage``: no per-socket UTF-8 encoding, size checks
      or frame header; the same checks as ``sendMessage`` decide when that applies (the socket
      is open, no per-message compression negotiated, the size within Daphne's limit); otherwise
      the message takes Daphne's usual path.
    - Frames of an open socket are written at once when the socket's buffers are empty
      (_write_now) instead of on the reactor's next pass.
    """
    from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
    from daphne.ws_protocol import WebSocketProtocol

    if getattr(WebSocketProtocol, "_portal_frame_writes", False):
        return
    handle_reply = WebSocketProtocol.handle_reply
    send_data = AutobahnProtocol.sendData
    open_state = AutobahnProtocol.STATE_OPEN

    def write_shared(self: Any, message: dict) -> bool:
        """Send the message's SharedFrame now if it can go as a prepared frame; False if it can't."""
        shared = message.get(SHARED_FRAME)
        if shared is None or self.state != open_state or self._perMessageCompress is not None:
            return False
        prepared = shared.prepared_for(self.factory)
        if 0 < self.maxMessagePayloadSize < len(prepared.payloadHybi):
            return False
        # What sendPreparedMessage does without compression.
        self.sendData(prepared.payloadHybi)
        return True

    def handle_reply_shared(self: Any, message: dict) -> None:
        if message["type"] == "websocket.send" and write_shared(self, message):
            return
        handle_reply(self, message)

    def send_data_now(self: Any, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        if sync or chopsize or self.send_queue or self.state != open_state or self.logOctets:
            send_data(self, data, sync, chopsize)
            return
        _write_now(self.transport, data)
        self.trafficStats.outgoingOctetsWireLevel += len(data)

    WebSocketProtocol.handle_reply = handle_reply_shared
    WebSocketProtocol.sendData = send_data_now
    WebSocketProtocol._portal_write_shared = write_shared
    WebSocketProtocol._portal_frame_writes = True


def shared_frame_writer(send: Any) -> Any:
    """For a consumer's ``send`` under Daphne: a synchronous writer of broadcast frames, else None.

    The writer takes a ``websocket.send`` message and, when it carries a SharedFrame that can go
    as a prepared frame on an open socket, writes it and returns True; otherwise it does nothing
    and returns False, and the consumer sends the message the usual way. An org-wide push then
    costs each local socket one plain call instead of three coroutines (the consumer's, Daphne's
    ``Server.handle_reply`` with its connection lookups, the protocol's): about a quarter of
    Daphne's CPU per fanned-out frame went to those layers (bench/ws_RESULTS.md, 2026-11-26 09:29).
    Daphne passes each application ``partial(server.handle_reply, protocol)`` as ``send``; a
    protocol is open only while Daphne holds it as connected, which is what its ``handle_reply``
    checks. Anything else (another server, a test communicator, middleware wrapping ``send``, or
    install_daphne_frame_writes not run) gets None.
    """
    if not isinstance(send, functools.partial) or len(send.args) != 1 or send.keywords:
        return None
    try:
        from daphne.server import Server
    except ImportError:  # pragma: no cover - Daphne is a dependency
        return None
    if getattr(send.func, "__func__", None) is not Server.handle_reply:
        return None
    protocol = send.args[0]
    write = getattr(type(protocol), "_portal_write_shared", None)
    return None if write is None else functools.partial(write, protocol)
