"""The live socket through Channels' WebsocketCommunicator, with the real Redis channel layer."""

import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from notifications import services
from notifications.models import Push
from portal import realtime
from portal import services as portal_services
from portal.asgi import application
from portal.tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://testserver")


def _session_headers(user, origin=ORIGIN):
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    return [origin, (b"cookie", cookie)] if origin else [(b"cookie", cookie)]


def _token_headers(membership):
    _, key = portal_services.api_token_create(membership=membership, name="ws")
    return [(b"authorization", f"Token {key}".encode())]


def _run(coro_fn):
    return async_to_sync(coro_fn)()


def _push(organization, user_id=None, type="notification", html="<span id='x'>1</span>"):
    return services.push_create(organization=organization, user_id=user_id, type=type, data={"n": 1}, html=html)


def test_unauthenticated_socket_is_accepted_then_closed_with_4401():
    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/", headers=[ORIGIN])
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        assert await communicator.receive_output() == {"type": "websocket.close", "code": 4401}

    _run(scenario)


def test_invalid_token_is_4401():
    async def scenario():
        communicator = WebsocketCommunicator(
            application, "/ws/", headers=[(b"authorization", b"Token sbp_000000000000_nope")]
        )
        await communicator.connect(timeout=5)
        assert (await communicator.receive_output())["code"] == 4401

    _run(scenario)


def test_browser_from_a_foreign_origin_is_refused(member):
    headers = _session_headers(member.user, origin=(b"origin", b"https://evil.example"))

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/", headers=headers)
        connected, _ = await communicator.connect(timeout=5)
        assert not connected

    _run(scenario)


def test_browser_receives_html_fragments_with_a_cursor(member):
    headers = _session_headers(member.user)

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/", headers=headers)
        assert (await communicator.connect(timeout=5))[0]
        push = await database_sync_to_async(_push)(member.organization, member.user_id)
        await database_sync_to_async(services.push_send)(push_ids=[push.pk])
        frame = await communicator.receive_from(timeout=5)
        assert (
            frame
            == f'<span id="live-cursor" hidden data-live-id="{push.pk}" hx-swap-oob="true"></span>'
            + "<span id='x'>1</span>"
        )
        await communicator.disconnect(timeout=5)

    _run(scenario)


def test_api_client_gets_json_and_chooses_types(member):
    headers = _token_headers(member)

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/", headers=headers)
        assert (await communicator.connect(timeout=5))[0]
        await communicator.send_json_to({"type": "unsubscribe", "types": ["notification"]})
        assert (await communicator.receive_json_from())["data"]["types"] == [
            "compliance_update",
            "invoice_created",
            "metrics_update",
            "ticket_update",
        ]
        skipped = await database_sync_to_async(_push)(member.organization, member.user_id, "notification")
        wanted = await database_sync_to_async(_push)(member.organization, None, "metrics_update")
        for push in (skipped, wanted):
            await database_sync_to_async(services.push_send)(push_ids=[push.pk])
        message = await communicator.receive_json_from(timeout=5)
        assert message == {
            "id": wanted.pk,
            "type": "metrics_update",
            "created": wanted.created_at.isoformat(),
            "data": {"n": 1},
        }
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect(timeout=5)

    _run(scenario)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("not json", "Messages must be JSON objects."),
        ("[1, 2]", "Messages must be JSON objects."),
        (json.dumps({"type": "dance"}), "Unknown message type 'dance'"),
        (json.dumps({"type": "subscribe", "types": ["gossip"]}), "Unknown types: gossip"),
        (json.dumps({"type": "subscribe", "types": "all"}), '"types": [...]'),
        ("x" * 20000, "Message too large"),
    ],
)
def test_bad_frames_get_an_error_and_the_socket_stays_healthy(member, frame, error):
    headers = _token_headers(member)

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/", headers=headers)
        assert (await communicator.connect(timeout=5))[0]
        await communicator.send_to(text_data=frame)
        reply = await communicator.receive_json_from()
        assert reply["type"] == "error" and error in reply["error"]
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from() == {"type": "pong"}
        await communicator.disconnect(timeout=5)

    _run(scenario)


def test_organizations_and_users_are_isolated(member, other_member, organization):
    colleague = MembershipFactory(organization=organization)
    mine, colleagues, outsider = _token_headers(member), _token_headers(colleague), _token_headers(other_member)

    async def scenario():
        sockets = [WebsocketCommunicator(application, "/ws/", headers=h) for h in (mine, colleagues, outsider)]
        for s in sockets:
            assert (await s.connect(timeout=5))[0]
        personal = await database_sync_to_async(_push)(organization, member.user_id, "notification")
        org_wide = await database_sync_to_async(_push)(organization, None, "ticket_update")
        for push in (personal, org_wide):
            await database_sync_to_async(services.push_send)(push_ids=[push.pk])
        assert [(await sockets[0].receive_json_from(timeout=5))["id"] for _ in range(2)] == [personal.pk, org_wide.pk]
        assert (await sockets[1].receive_json_from(timeout=5))["id"] == org_wide.pk
        assert await sockets[1].receive_nothing(timeout=0.3)
        assert await sockets[2].receive_nothing(timeout=0.3)
        for s in sockets:
            await s.disconnect(timeout=5)

    _run(scenario)


def _group_members(group):
    import redis
    from channels.layers import get_channel_layer
    from django.conf import settings

    return redis.Redis.from_url(settings.REDIS_URL).zcard(get_channel_layer()._group_key(group))


def test_an_org_wide_push_reaches_every_local_socket_through_one_group_member(member, organization):
    """Sockets of one organization in one process share a relay: one channel-layer member, one
    message per push; the last socket to leave takes the membership with it."""
    colleagues = [MembershipFactory(organization=organization) for _ in range(2)]
    headers = [_token_headers(m) for m in (member, *colleagues)]
    group = realtime.organization_group(organization.pk)

    async def scenario():
        sockets = [WebsocketCommunicator(application, "/ws/", headers=h) for h in headers]
        for s in sockets:
            assert (await s.connect(timeout=5))[0]
        assert await database_sync_to_async(_group_members)(group) == 1
        pushes = [await database_sync_to_async(_push)(organization, None, "ticket_update") for _ in range(2)]
        await database_sync_to_async(services.push_send)(push_ids=[p.pk for p in pushes])
        for s in sockets:
            frames = [await s.receive_json_from(timeout=5) for _ in pushes]
            assert [f["id"] for f in frames] == [p.pk for p in pushes]
            assert frames[0]["type"] == "ticket_update" and frames[0]["data"] == {"n": 1}
            assert await s.receive_nothing(timeout=0.1)
        await sockets[0].disconnect(timeout=5)
        assert await database_sync_to_async(_group_members)(group) == 1
        for s in sockets[1:]:
            await s.disconnect(timeout=5)
        assert await database_sync_to_async(_group_members)(group) == 0

    _run(scenario)


def test_reconnect_with_last_id_replays_what_was_missed_in_order_then_live(member):
    headers = _token_headers(member)
    first = _push(member.organization, member.user_id, "notification")
    missed = [_push(member.organization, None, "ticket_update") for _ in range(3)]
    Push.objects.update(sent_at="2026-01-01T00:00:00Z")

    async def scenario():
        communicator = WebsocketCommunicator(application, f"/ws/?last_id={first.pk}", headers=headers)
        assert (await communicator.connect(timeout=5))[0]
        ids = [(await communicator.receive_json_from(timeout=5))["id"] for _ in missed]
        assert ids == [p.pk for p in missed]
        live = await database_sync_to_async(_push)(member.organization, None, "ticket_update")
        await database_sync_to_async(services.push_send)(push_ids=[live.pk])
        # A duplicate (the sweeper resending) is not delivered twice.
        await database_sync_to_async(services.push_send)(push_ids=[live.pk])
        assert (await communicator.receive_json_from(timeout=5))["id"] == live.pk
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect(timeout=5)

    _run(scenario)


def test_signing_out_closes_that_sessions_sockets(member):
    client = Client()
    client.force_login(member.user)
    headers = [ORIGIN, (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]
    session_key = client.session.session_key

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/", headers=headers)
        assert (await communicator.connect(timeout=5))[0]
        await database_sync_to_async(realtime.sockets_close)(groups=[realtime.session_group(session_key)])
        assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4001}

    _run(scenario)


def test_logout_and_password_change_enqueue_socket_closing(member, monkeypatch, django_capture_on_commit_callbacks):
    closed = []
    monkeypatch.setattr("portal.tasks.sockets_close_task.delay", lambda groups: closed.append(groups))
    client = Client()
    client.force_login(member.user)
    old_session = client.session.session_key
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/accounts/password/change/",
            {
                "old_password": "correct-horse-battery-staple",
                "new_password1": "brand-new-passw0rd!",
                "new_password2": "brand-new-passw0rd!",
            },
        )
    current_session = client.session.session_key  # rotated by the password change
    # Every browser socket of the user's other sessions; this session's (old and new key) stay.
    assert closed == [
        [
            {
                "group": realtime.user_group(member.user_id),
                "code": realtime.CLOSE_SIGNED_OUT,
                "keep_sessions": [realtime.session_group(old_session), realtime.session_group(current_session)],
                "browsers_only": True,
            }
        ]
    ]
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/logout/")
    assert closed[1] == [realtime.session_group(current_session)]


def test_a_consumer_that_crashes_still_leaves_the_relay(member, monkeypatch):
    from notifications.consumers import LiveConsumer

    headers = _token_headers(member)
    group = realtime.organization_group(member.organization_id)

    async def crash(self, text_data=None, bytes_data=None):
        raise RuntimeError("bug in a handler")

    monkeypatch.setattr(LiveConsumer, "receive", crash)

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/", headers=headers)
        assert (await communicator.connect(timeout=5))[0]
        assert await database_sync_to_async(_group_members)(group) == 1
        await communicator.send_to(text_data="{}")
        with pytest.raises(RuntimeError):
            await communicator.receive_output(timeout=5)
        assert await database_sync_to_async(_group_members)(group) == 0

    _run(scenario)


def test_a_relay_that_loses_the_channel_layer_closes_its_sockets_so_they_resume():
    import asyncio

    from channels.layers import InMemoryChannelLayer

    class RedisGone(InMemoryChannelLayer):
        async def receive(self, channel):
            raise ConnectionError("Redis went away")

    closed = []

    class Socket:
        async def relayed(self, message):
            raise AssertionError("nothing to relay")

        async def close(self, code=None):
            closed.append(code)

    async def scenario():
        relay = realtime.GroupRelay(RedisGone())
        await relay.join("org-1", Socket())
        for _ in range(50):
            if closed:
                break
            await asyncio.sleep(0.01)
        assert closed == [realtime.RELAY_LOST_CLOSE_CODE] == [1011]
        assert relay.groups == {}  # the next socket to connect starts a fresh relay

    _run(scenario)
