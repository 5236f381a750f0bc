"""The ASGI handler runs requests on long-lived threads that keep their database connection."""

import asyncio
import threading

import pytest
from django.core.signals import request_finished
from django.db import connection

from portal.asgi_handler import ReusedThreadASGIHandler


def _get(handler: ReusedThreadASGIHandler, path: str) -> int:
    async def call() -> int:
        sent: list[dict] = []
        delivered = False
        never = asyncio.Event()

        async def receive() -> dict:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await never.wait()  # the client stays connected
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        await handler(scope, receive, send)
        return sent[0]["status"]

    return asyncio.run(call())


@pytest.mark.django_db(transaction=True)
def test_consecutive_requests_share_one_thread_and_one_database_connection():
    seen: list[tuple[int, int | None]] = []

    def record(**kwargs):
        # Runs on the request's thread, after Django's close_old_connections.
        seen.append((threading.get_ident(), connection.connection.info.backend_pid if connection.connection else None))

    handler = ReusedThreadASGIHandler()
    request_finished.connect(record)
    try:
        statuses = [_get(handler, "/healthz") for _ in range(3)]
    finally:
        request_finished.disconnect(record)
        handler.close()

    assert all(status in (200, 503) for status in statuses), statuses  # 503: no Celery worker here
    threads = {thread for thread, _ in seen}
    backends = {pid for _, pid in seen}
    assert len(seen) == 3
    assert threads != {threading.get_ident()}
    assert len(threads) == 1, "each request started a thread of its own"
    assert None not in backends and len(backends) == 1, "each request opened a database connection of its own"


@pytest.mark.django_db(transaction=True)
def test_the_sync_middleware_chain_answers_errors_as_pages():
    handler = ReusedThreadASGIHandler()
    try:
        assert _get(handler, "/no-such-page/") == 404
        assert _get(handler, "/tickets/") == 302  # signed out: to the login page
    finally:
        handler.close()


def test_a_web_process_freezes_what_it_loaded_at_start_up():
    """ADR 0023: Django, the URL configuration and the views it names are out of the collector's
    generations once ``portal.asgi`` is imported (as Daphne does), and the process still serves."""
    import os
    import subprocess
    import sys

    code = "import gc, sys\nimport portal.asgi\nprint(gc.get_freeze_count(), 'tickets.views' in sys.modules)\n"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True)
    frozen, views_loaded = out.stdout.split()
    assert int(frozen) > 100_000 and views_loaded == "True"


class _RecordingServer:
    """The parts of Daphne's ``Server`` its HTTP protocol uses; records what the application gets."""

    proxy_forwarded_address_header = None
    root_path = ""
    request_buffer_size = 8192
    ws_factory = None

    def __init__(self) -> None:
        self.scopes: list[dict] = []
        self.messages: list[dict] = []

    def protocol_connected(self, protocol) -> None:
        pass

    def protocol_disconnected(self, protocol) -> None:
        pass

    def create_application(self, protocol, scope):
        self.scopes.append(scope)
        return self  # the application's queue: Daphne puts the body messages here

    def put_nowait(self, message: dict) -> None:
        if message["type"] == "http.request":
            self.messages.append(message)


def _daphne_post(body: bytes, content_type: bytes) -> tuple[_RecordingServer, bytes]:
    """One POST through Daphne's HTTP protocol over an in-memory transport."""
    from daphne.http_protocol import HTTPFactory
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import StringTransport

    server = _RecordingServer()
    protocol = HTTPFactory(server).buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 50000))
    protocol.makeConnection(transport)
    protocol.dataReceived(
        b"POST /tickets/new/ HTTP/1.1\r\nHost: testserver\r\nContent-Type: "
        + content_type
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    written = transport.value()
    protocol.connectionLost(None)
    return server, written


# A body sent as multipart without a single boundary line: Twisted's own parser (the standard
# library's e-mail parser) refused it with a bare 400 before the application saw it; now the
# application gets it and answers it (Django reads it as a form with no fields).
_NOT_MULTIPART = b"subject=Disk+full&priority=high"


def test_daphne_hands_post_bodies_to_django_unparsed():
    from portal.asgi_handler import leave_request_bodies_to_django

    leave_request_bodies_to_django()
    leave_request_bodies_to_django()  # idempotent

    # A body Twisted's parser would have refused reaches the application, to be answered there.
    server, written = _daphne_post(_NOT_MULTIPART, b"multipart/form-data; boundary=xyz")
    assert written == b""  # nothing answered by the server itself
    assert [s["method"] for s in server.scopes] == ["POST"]
    assert b"".join(m["body"] for m in server.messages) == _NOT_MULTIPART

    # A real upload arrives byte for byte, and Twisted leaves its ``args`` empty.
    upload = (
        b'--xyz\r\nContent-Disposition: form-data; name="subject"\r\n\r\nDisk full\r\n'
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.log"\r\n'
        b"Content-Type: text/plain\r\n\r\n" + b"x" * 20000 + b"\r\n--xyz--\r\n"
    )
    server, written = _daphne_post(upload, b"multipart/form-data; boundary=xyz")
    assert written == b""
    assert b"".join(m["body"] for m in server.messages) == upload
    assert server.messages[-1]["more_body"] is False
