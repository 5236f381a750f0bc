"""The one live socket at /ws/: authenticate, join groups, replay what was missed, send.

Two kinds of client share it. Browsers (session cookie, origin checked) receive HTML fragments
that the htmx ws extension swaps out of band. API clients (``Authorization: Token …``) receive
JSON ``{"id", "type", "created", "data"}`` and choose types with subscribe/unsubscribe. The
socket is a doorbell: every message is also in the database, and a client that reconnects with
the last id it saw gets what it missed before anything live.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from notifications import rendering, selectors, services
from portal import realtime, tenancy
from portal.params import whole_number

logger = logging.getLogger(__name__)

API_TYPES = frozenset({"notification", "ticket_update", "metrics_update", "compliance_update", "invoice_created"})
MAX_FRAME = 16 * 1024  # clients only send small control messages
SENT_MEMORY = 2000


# An org-wide push reaches every local socket as the same dict (realtime.GroupRelay): the frame
# for each kind of client is serialised once and kept on the message under these local keys
# (never sent anywhere; a message from the channel layer is this process's own copy).
API_FRAME = "_api_frame"
HTML_FRAME = "_html_frame"


def _frame(message: dict[str, Any], kind: str) -> dict[str, Any]:
    """The ``websocket.send`` for this kind of client, built once per message and process."""
    send = message.get(kind)
    if send is None:
        if kind == API_FRAME:
            payload = {"id": message["id"], "type": message["event"], "created": message["created"]}
            text = json.dumps(payload | {"data": message["data"]})
        else:
            text = rendering.cursor_fragment(message["id"]) + message["html"]
        # The same frame goes to every local socket of an org-wide push: Daphne encodes and
        # frames it once (realtime.SharedFrame); other servers just send the text.
        send = message[kind] = {
            "type": "websocket.send",
            "text": text,
            realtime.SHARED_FRAME: realtime.SharedFrame(text),
        }
    return send


class LiveConsumer(AsyncWebsocketConsumer):
    relayed_group: str | None = None
    closing = False
    write_shared: Callable[[dict[str, Any]], bool] | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # However the consumer ends (a crash skips disconnect()), leave the relay so it
            # doesn't keep a dead socket, or the group's membership, for ever.
            await self._leave_relay()

    async def _leave_relay(self) -> None:
        group, self.relayed_group = self.relayed_group, None
        if group is not None:
            with contextlib.suppress(Exception):
                await realtime.group_relay(self.channel_layer).leave(group, self)

    async def connect(self) -> None:
        self.groups_joined: list[str] = []
        self.relay_backlog: deque[dict[str, Any]] | None = deque()
        # Ids already sent on this socket: replay and live messages may overlap, and pushes
        # committed out of order by different workers must still all get through.
        self.sent: set[int] = set()
        self.sent_order: deque[int] = deque()
        self.heartbeat: asyncio.Task | None = None
        user = self.scope.get("user")
        token = self.scope.get("api_token")
        if self.scope.get("api_token_invalid") or user is None or not user.is_authenticated:
            # Accept first so the close code reaches the client: 4401 means "don't retry".
            await self.accept()
            await self.close(code=realtime.CLOSE_UNAUTHENTICATED)
            return
        self.api = token is not None
        self.membership = token.membership if token else await self._session_membership(user)
        if self.membership is None:
            await self.accept()
            await self.close(code=realtime.CLOSE_UNAUTHENTICATED)
            return
        self.user_id = user.pk
        self.organization = self.membership.organization
        self.subscriptions = set(API_TYPES)
        groups = [realtime.user_group(user.pk)]
        session = self.scope.get("session")
        self.session_key = session.session_key if not self.api and session is not None else None
        if self.session_key:
            groups.append(realtime.session_group(self.session_key))
        async with realtime.group_change_slots():
            for group in groups:
                await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = groups
        # The organization's group is shared by every socket of the org in this process: one
        # channel-layer member relays each org-wide push to all of them (see realtime.GroupRelay).
        self.relayed_group = realtime.organization_group(self.organization.pk)
        await realtime.group_relay(self.channel_layer).join(self.relayed_group, self)
        await self.accept()
        self.write_shared = realtime.shared_frame_writer(self.base_send)
        # Joined before replaying: live messages queue up meanwhile and duplicates are skipped.
        await self._replay()
        while self.relay_backlog:
            await self.dispatch(self.relay_backlog.popleft())
        self.relay_backlog = None
        self.heartbeat = asyncio.create_task(self._beat())

    @database_sync_to_async
    def _session_membership(self, user: Any) -> Any:
        session = self.scope.get("session")
        wanted = session.get(tenancy.SESSION_KEY) if session is not None else None
        return tenancy.resolve_membership(tenancy.memberships_for_user(user), wanted)

    def _last_id(self) -> int | None:
        query = parse_qs(self.scope.get("query_string", b"").decode())
        raw = (query.get("last_id") or [""])[0]
        return whole_number(raw)

    async def _replay(self) -> None:
        last_id = self._last_id()
        if last_id is None:
            return
        missed, state = await database_sync_to_async(self._missed)(last_id)
        for push in missed.pushes:
            await self._deliver(services.push_message(push))
        if not missed.truncated:
            return
        if self.api:
            await self._send_json({"type": "resync", "data": {"reason": "too many missed messages"}})
        elif state:
            # After a long sleep: the badge and dropdown as they are now, not as the last replayed
            # notification push left them.
            await self.send(text_data=state)

    def _missed(self, last_id: int) -> tuple[selectors.Missed, str]:
        """What to replay and, when that is truncated, a browser's current inbox state.

        API clients get the oldest missed messages and ``resync`` (they re-read through REST);
        browsers the newest ones, which leave their elements current, and the inbox's state.
        """
        missed = selectors.pushes_since(
            user_id=self.user_id,
            organization=self.organization,
            last_id=last_id,
            limit=services.RESUME_LIMIT,
            newest=not self.api,
        )
        state = ""
        if missed.truncated and not self.api:
            state = rendering.inbox_state_fragments(
                user_id=self.user_id, organization=self.organization, push_id=missed.pushes[-1].pk
            )
        return missed, state

    async def _beat(self) -> None:
        try:
            while True:
                await asyncio.sleep(settings.WEBSOCKET_HEARTBEAT_SECONDS)
                await self._send_json({"type": "ping"})
        except asyncio.CancelledError:
            pass

    async def disconnect(self, code: int) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        await self._leave_relay()
        async with realtime.group_change_slots():
            for group in self.groups_joined:
                await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        if len(raw) > MAX_FRAME:
            await self._error(f"Message too large (limit {MAX_FRAME} bytes).")
            return
        try:
            message = json.loads(raw)
        except ValueError:
            await self._error("Messages must be JSON objects.")
            return
        if not isinstance(message, dict):
            await self._error("Messages must be JSON objects.")
            return
        kind = message.get("type")
        if kind in ("ping", "pong"):
            if kind == "ping":
                await self._send_json({"type": "pong"})
            return
        if kind in ("subscribe", "unsubscribe"):
            types = message.get("types")
            if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
                await self._error('Send {"type": "%s", "types": [...]}.' % kind)  # noqa: UP031
                return
            unknown = sorted(set(types) - API_TYPES)
            if unknown:
                await self._error(f"Unknown types: {', '.join(unknown)}. Known: {', '.join(sorted(API_TYPES))}.")
                return
            if kind == "subscribe":
                self.subscriptions |= set(types)
            else:
                self.subscriptions -= set(types)
            await self._send_json({"type": "subscribed", "data": {"types": sorted(self.subscriptions)}})
            return
        await self._error(f"Unknown message type {kind!r}: use subscribe, unsubscribe or ping.")

    # --- Channel layer handlers ---------------------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' default dispatch closes stale database connections on its one sync thread
        # before *every* handler: a thread hop per frame, per push and per handshake, which at
        # 1,000 sockets dominated both. Handlers here touch the database only through
        # database_sync_to_async, which does that cleanup itself on the thread it uses.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    def relayed(self, message: dict[str, Any]) -> Awaitable[None] | None:
        """A message of the organization's group, from this process's relay: None when handled
        here and now, else what the relay awaits to finish it.

        The relay calls this once per local socket for every org-wide push, so a push goes
        straight to the filters and, under Daphne, its shared frame straight to the socket
        (realtime.shared_frame_writer): no coroutine per socket unless a frame must wait.
        """
        if self.relay_backlog is not None:  # still connecting: after the replay, in order
            self.relay_backlog.append(message)
            return None
        if message.get("type") != "push.message":
            return self.dispatch(message)
        frame = self._outgoing(message)
        if frame is None or (self.write_shared is not None and self.write_shared(frame)):
            return None
        return self.base_send(frame)

    async def push_message(self, message: dict[str, Any]) -> None:
        await self._deliver(message)

    async def socket_close(self, message: dict[str, Any]) -> None:
        # One message reaches every socket of the user (or session): a removed membership, a
        # revoked token or a password change closes only the sockets it concerns.
        token = self.scope.get("api_token") if self.api else None
        if not realtime.close_applies(
            message,
            organization_id=self.organization.pk,
            token_id=token.pk if token is not None else None,
            session_key=self.session_key,
        ):
            return
        # Nothing more for this socket, not even what the relay or the user's group already
        # holds: its access may be gone.
        self.closing = True
        await self._leave_relay()
        await self.close(code=message.get("code", realtime.CLOSE_SIGNED_OUT))

    # --- Sending ------------------------------------------------------------------------------

    async def _deliver(self, message: dict[str, Any]) -> None:
        frame = self._outgoing(message)
        if frame is not None:
            # base_send is what AsyncWebsocketConsumer.send(text_data=...) ends in, minus two
            # calls per socket per push.
            await self.base_send(frame)

    def _outgoing(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """The ``websocket.send`` for a push, once per id, if this socket is to get it.

        The frame dict is shared by every socket of the push (servers don't keep it).
        """
        if message["organization"] != self.organization.pk or message["id"] in self.sent or self.closing:
            return None
        if message["user"] is not None and message["user"] != self.user_id:
            return None
        self.sent.add(message["id"])
        self.sent_order.append(message["id"])
        if len(self.sent_order) > SENT_MEMORY:
            self.sent.discard(self.sent_order.popleft())
        if self.api:
            return _frame(message, API_FRAME) if message["event"] in self.subscriptions else None
        return _frame(message, HTML_FRAME) if message["html"] else None

    async def _send_json(self, payload: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(payload))

    async def _error(self, text: str) -> None:
        await self._send_json({"type": "error", "error": text})
