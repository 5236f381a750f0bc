"""Subscriptions at /graphql/ over WebSocket (graphql-transport-ws).

The consumer authenticates like ``notifications.consumers.LiveConsumer`` (API token, or the
session with the Origin checked by the routing's middleware), joins the same channel-layer
groups (``user-<id>``, ``org-<id>`` and, for browsers, ``session-<hash>``) for the life of the
socket, and lets the subscription resolvers read the push messages it receives: the live
stream is the one source, GraphQL is another way to read it. Sign-out, password changes,
a removed membership and a revoked token close these sockets through the same ``socket.close``
message and rule (``realtime.close_applies``) as /ws/.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from strawberry.channels import GraphQLWSConsumer
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from graphql_api.context import Context
from portal import realtime, tenancy

KEEP_ALIVE_SECONDS = 25  # as /ws/'s heartbeat


class GraphQLConsumer(GraphQLWSConsumer):
    membership: Any = None
    groups_joined: list[str]

    async def connect(self) -> None:
        self.groups_joined = []
        user = self.scope.get("user")
        token = self.scope.get("api_token")
        if not self.scope.get("api_token_invalid") and user is not None and user.is_authenticated:
            self.membership = token.membership if token else await self._session_membership(user)
        if self.membership is None:
            # Accept first so the close code reaches the client: 4401 means "don't retry".
            await self.accept(subprotocol=await self.pick_websocket_subprotocol(self))
            await self.close(code=realtime.CLOSE_UNAUTHENTICATED)
            return
        groups = [realtime.user_group(user.pk), realtime.organization_group(self.membership.organization_id)]
        session = self.scope.get("session")
        if token is None and session is not None and session.session_key:
            groups.append(realtime.session_group(session.session_key))
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = groups
        await super().connect()

    def _session_key(self) -> str | None:
        session = self.scope.get("session")
        return session.session_key if session is not None and not self.scope.get("api_token") else None

    @database_sync_to_async
    def _session_membership(self, user: Any) -> Any:
        session = self.scope.get("session")
        wanted = session.get(tenancy.SESSION_KEY) if session is not None else None
        return tenancy.resolve_membership(tenancy.memberships_for_user(user), wanted)

    async def disconnect(self, code: int) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        if self.run_task is not None:
            await super().disconnect(code)

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") == "socket.close":
            # The same rule as /ws/: a removed membership, a revoked token or another session's
            # password change closes only the sockets it concerns.
            if self.membership is not None and realtime.close_applies(
                message,
                organization_id=self.membership.organization_id,
                token_id=self.scope["api_token"].pk if self.scope.get("api_token") else None,
                session_key=self._session_key(),
            ):
                await self.close(code=message.get("code", realtime.CLOSE_SIGNED_OUT))
            return
        await super().dispatch(message)

    async def get_context(self, request: Any, response: Any) -> Context:
        return Context(user=self.scope["user"], membership=self.membership, ws=self)


def graphql_consumer() -> Any:
    from graphql_api.schema import schema

    return GraphQLConsumer.as_asgi(
        schema=schema,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        keep_alive=True,
        keep_alive_interval=KEEP_ALIVE_SECONDS,
    )
