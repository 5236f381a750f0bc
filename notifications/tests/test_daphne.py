"""End to end over a real socket: Daphne, the Redis channel layer and a real Celery worker."""

import time

import pytest
from websockets.sync.client import connect

from portal import realtime
from portal import services as portal_services
from tickets import services as ticket_services
from tickets.tests.factories import make_agent, make_ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _sent_pushes():
    from notifications.models import Push

    return Push.objects.filter(sent_at__isnull=False).count()


def _wait_pushed(*, total, timeout=30):
    deadline = time.monotonic() + timeout
    while _sent_pushes() < total:
        assert time.monotonic() < deadline, "the worker did not push in time"
        time.sleep(0.1)


def _receive_json(ws, *, until=None, timeout=30.0, quiet=1.0):
    """Collect pushed messages until ``until(messages)`` holds, then until ``quiet`` s of silence."""
    import json

    deadline = time.monotonic() + timeout
    got = []
    done = until is None
    while time.monotonic() < deadline:
        wait = quiet if done else max(0.1, deadline - time.monotonic())
        try:
            message = json.loads(ws.recv(timeout=wait))
        except TimeoutError:
            if done:
                break
            continue
        if "id" in message:
            got.append(message)
        done = done or until(got)
    return got


def test_a_change_by_one_user_reaches_another_users_socket_and_reconnect_replays(live_stack, real_celery, member):
    agent = make_agent()
    _, key = portal_services.api_token_create(membership=member, name="ws")
    headers = {"Authorization": f"Token {key}"}

    with connect(live_stack.ws_url, additional_headers=headers, open_timeout=10) as ws:
        ws.send('{"type": "subscribe", "types": ["ticket_update", "notification"]}')
        # The ticket is opened while the socket listens, so this socket sees every push up to its
        # last id (opened before it, the creation's push could miss the socket and come back in
        # the reconnect's replay of the seconds before the cursor, as the protocol allows).
        ticket = make_ticket(member, subject="Socket test")
        # The agent replies; the worker dispatches the event and pushes to the customer.
        ticket_services.comment_create(ticket=ticket, author=agent, body="Looking now")
        messages = _receive_json(
            ws,
            until=lambda got: (
                {m["type"] for m in got} >= {"notification", "ticket_update"}
                and any(m["type"] == "ticket_update" and m["data"]["comment_count"] == 1 for m in got)
            ),
        )
        replies = [m for m in messages if m["type"] == "notification"]
        assert len(replies) == 1 and replies[0]["data"]["unread"] == 1, messages
        assert any(m["type"] == "ticket_update" and m["data"]["comment_count"] == 1 for m in messages), messages
        last_id = max(m["id"] for m in messages)

    # Offline: three more changes happen; the worker pushes them while nobody listens.
    _wait_pushed(total=3)  # ticket created, first reply (notification + ticket update)
    before = _sent_pushes()
    for body in ("one", "two", "three"):
        ticket_services.comment_create(ticket=ticket, author=agent, body=body)
    _wait_pushed(total=before + 6)

    with connect(f"{live_stack.ws_url}?last_id={last_id}", additional_headers=headers, open_timeout=10) as ws:
        received = _receive_json(ws, until=lambda got: len({m["id"] for m in got} - {m["id"] for m in messages}) >= 6)
        # The server also replays a few seconds before the cursor (pushes may commit out of
        # order across workers); clients drop ids they have seen, as the protocol says.
        seen_before = {m["id"] for m in messages}
        missed = [m for m in received if m["id"] not in seen_before]
        ids = [m["id"] for m in missed]
        assert all(i > last_id for i in ids)
        assert len(ids) == 6 and ids == sorted(ids) and len(set(ids)) == 6  # every one, once, in order
        assert [m["data"]["unread"] for m in missed if m["type"] == "notification"] == [1, 1, 1]  # coalesced row


def test_browser_socket_without_session_is_closed_with_4401(live_stack):
    from websockets.exceptions import ConnectionClosed

    with connect(live_stack.ws_url, origin=live_stack.url, open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 4401


def test_many_sockets_closing_at_once_share_a_few_redis_connections(live_stack, member):
    """A deploy or a network blip closes every socket at once; each one leaves its groups. Those
    channel-layer calls wait for a few pooled Redis connections instead of opening one each (200
    sockets opened 199 new connections, which then stayed open in the pool; 1,000 opened ~900)."""
    import asyncio

    import redis
    import websockets
    from django.conf import settings

    sockets = 200
    keys = [portal_services.api_token_create(membership=member, name=f"ws {i}")[1] for i in range(sockets)]
    server = redis.Redis.from_url(settings.REDIS_URL)
    user_group = f"portal-ws:group:user-{member.user_id}"

    def connections_received() -> int:
        return server.info("stats")["total_connections_received"]

    async def storm() -> tuple[int, int]:
        # One after the other, as sockets arrive in a normal day (few pooled connections so far).
        opened = [
            await websockets.connect(live_stack.ws_url, additional_headers={"Authorization": f"Token {key}"})
            for key in keys
        ]
        assert server.zcard(user_group) == sockets
        before = connections_received()
        await asyncio.gather(*(ws.close() for ws in opened))
        deadline = time.monotonic() + 30
        while server.zcard(user_group):  # the server has handled every disconnect
            assert time.monotonic() < deadline, "sockets still in their group"
            await asyncio.sleep(0.05)
        return before, connections_received()

    before, after = asyncio.run(storm())
    assert after - before <= 2 * realtime.GROUP_CHANGES_AT_ONCE
