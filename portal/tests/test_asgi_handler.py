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

    code = (
        "import gc, sys\n"
        "import portal.asgi\n"
        "print(gc.get_freeze_count(), 'tickets.views' in sys.modules)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True)
    frozen, views_loaded = out.stdout.split()
    assert int(frozen) > 100_000 and views_loaded == "True"
