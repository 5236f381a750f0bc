"""Token sockets' authentication path (ADR 0018): batched last_used_at, kept connections."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.utils import timezone

from portal import realtime
from portal import services as portal_services
from portal.asgi import application
from portal.models import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)


def _token(membership):
    token, key = portal_services.api_token_create(membership=membership, name="ws")
    return token, [(b"authorization", f"Token {key}".encode())]


def _last_used(pk):
    return ApiToken.objects.get(pk=pk).last_used_at


def test_api_token_authenticate_without_touch_leaves_last_used_at(member):
    token, headers = _token(member)
    key = headers[0][1].decode().split()[1]
    assert portal_services.api_token_authenticate(key=key, touch=False).pk == token.pk
    assert _last_used(token.pk) is None
    assert portal_services.api_token_authenticate(key=key).pk == token.pk
    assert _last_used(token.pk) is not None


def test_a_socket_handshake_stamps_its_token_shortly_after_in_one_batch(member):
    from portal.tests.factories import MembershipFactory

    colleague = MembershipFactory(organization=member.organization)
    first, first_headers = _token(member)
    second, second_headers = _token(colleague)

    async def scenario():
        sockets = [WebsocketCommunicator(application, "/ws/", headers=h) for h in (first_headers, second_headers)]
        for s in sockets:
            assert (await s.connect(timeout=5))[0]
        # Not on the handshake's path: written together once the batch is due.
        assert await database_sync_to_async(_last_used)(first.pk) is None
        await asyncio.sleep(realtime.TOKEN_TOUCH_SECONDS + 1.0)
        stamps = [await database_sync_to_async(_last_used)(t.pk) for t in (first, second)]
        for s in sockets:
            await s.disconnect(timeout=5)
        return stamps

    before = timezone.now()
    stamps = async_to_sync(scenario)()
    assert all(s is not None and before <= s <= timezone.now() for s in stamps)
    assert stamps[0] == stamps[1]  # one UPDATE for both


def test_a_token_used_within_the_minute_is_not_stamped_again(member):
    token, headers = _token(member)
    recent = timezone.now() - timedelta(seconds=10)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=recent)

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/", headers=headers)
        assert (await socket.connect(timeout=5))[0]
        assert not realtime.token_touches().pending
        await asyncio.sleep(realtime.TOKEN_TOUCH_SECONDS + 0.5)
        await socket.disconnect(timeout=5)

    async_to_sync(scenario)()
    assert _last_used(token.pk) == recent


def test_a_handshake_survives_a_database_connection_dropped_while_idle(member):
    """No health-check query per handshake: a connection the server dropped is found by the
    lookup itself, closed, and the lookup retried on a new one."""
    _, first_headers = _token(member)
    _, second_headers = _token(member)

    def pool_backend_pid():
        return connection.connection.info.backend_pid if connection.connection is not None else None

    def close_own_connection():  # the pool thread's, looked up on that thread
        connection.close()

    def terminate(pid):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])

    async def scenario():
        # One pool thread, so the token lookups and the probes below all run on the thread whose
        # connection is dropped (with several idle threads, which one takes a call is chance).
        executor = ThreadPoolExecutor(max_workers=1)
        asyncio.get_running_loop().set_default_executor(executor)
        first = WebsocketCommunicator(application, "/ws/", headers=first_headers)
        assert (await first.connect(timeout=5))[0]
        # The pool thread that authenticated the first socket keeps its connection.
        old_pid = await sync_to_async(pool_backend_pid, thread_sensitive=False)()
        assert old_pid is not None
        await database_sync_to_async(terminate)(old_pid)
        await asyncio.sleep(0.2)
        second = WebsocketCommunicator(application, "/ws/", headers=second_headers)
        connected, _ = await second.connect(timeout=5)
        assert connected
        await second.send_json_to({"type": "ping"})
        assert await second.receive_json_from(timeout=5) == {"type": "pong"}
        new_pid = await sync_to_async(pool_backend_pid, thread_sensitive=False)()
        for s in (first, second):
            await s.disconnect(timeout=5)
        await sync_to_async(close_own_connection, thread_sensitive=False)()
        executor.shutdown(wait=False)
        return old_pid, new_pid

    old_pid, new_pid = async_to_sync(scenario)()
    assert new_pid is not None and new_pid != old_pid
