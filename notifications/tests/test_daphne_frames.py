"""Frames over a real Daphne socket with its WebSocket writes made cheaper (ADR 0018).

Org-wide pushes go out as one prepared frame per process and frames are written to the socket
at once when nothing is queued before them; these check, over 127.0.0.1 with a real client,
that every socket still gets every frame whole and in order, including when a client stops
reading and the kernel takes only part of a frame (the rest is queued behind it).
"""

import contextlib
import json
import time

import pytest
from websockets.sync.client import connect

from notifications.tests.conftest import push_message_for
from portal import realtime
from portal import services as portal_services
from portal.tests.factories import MembershipFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

BIG = 600 * 1024  # under Daphne's 1 MiB message limit; 20 of them overflow the socket buffers


def _receive_ids(ws, count, timeout=60):
    deadline = time.monotonic() + timeout
    frames = []
    while len(frames) < count:
        frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if "id" in frame:
            frames.append(frame)
    return frames


def test_org_pushes_reach_every_socket_whole_and_in_order_even_when_a_client_stalls(live_stack, member):
    colleague = MembershipFactory(organization=member.organization)
    org = member.organization.pk
    keys = [portal_services.api_token_create(membership=m, name="ws")[1] for m in (member, colleague)]
    with contextlib.ExitStack() as stack:
        sockets = [
            # The client reads into a queue of 2 frames at most: once that is full it stops
            # reading and the server's writes back up into its own buffer.
            stack.enter_context(
                connect(
                    live_stack.ws_url, additional_headers={"Authorization": f"Token {k}"}, max_size=None, max_queue=2
                )
            )
            for k in keys
        ]
        base = 10**9
        expected = []
        for n in range(20):
            # A big org push, a small org push and a push for the first user only, interleaved.
            big = push_message_for(base + 3 * n, org, data={"seq": n, "blob": chr(ord("a") + n % 26) * BIG})
            small = push_message_for(base + 3 * n + 1, org, event="ticket_update", data={"seq": n})
            own = push_message_for(base + 3 * n + 2, org, user=member.user_id, event="notification", data={"seq": n})
            realtime.group_send(realtime.organization_group(org), big)
            realtime.group_send(realtime.organization_group(org), small)
            realtime.group_send(realtime.user_group(member.user_id), own)
            expected += [big, small, own]
        for ws, user_id in zip(sockets, (member.user_id, colleague.user_id), strict=True):
            mine = [m for m in expected if m["user"] in (None, user_id)]
            frames = _receive_ids(ws, len(mine))
            got = {f["id"]: (f["type"], f["data"]) for f in frames}
            assert len(got) == len(frames) == len(mine)
            assert got == {m["id"]: (m["event"], m["data"]) for m in mine}
            # Each group's messages arrive in the order they were sent (the org's and the
            # user's groups are separate channels, so only each one's own order is defined).
            for user in (None, user_id):
                sent = [m["id"] for m in mine if m["user"] == user]
                assert [f["id"] for f in frames if f["id"] in sent] == sent
        # The sockets are still healthy afterwards.
        for ws in sockets:
            ws.send('{"type": "ping"}')
            reply = json.loads(ws.recv(timeout=10))
            if reply == {"type": "ping"}:  # the server's heartbeat came first
                reply = json.loads(ws.recv(timeout=10))
            assert reply == {"type": "pong"}
