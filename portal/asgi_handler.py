"""Django's ASGI handler, with each request's sync code on a long-lived thread.

Django runs a request's sync middleware and view in an asgiref ``ThreadSensitiveContext`` that
creates a one-thread executor per request and shuts it down afterwards: a thread started and
joined per request, and, because database connections are per thread, a new PostgreSQL
connection (a backend fork) per request, so ``CONN_MAX_AGE`` never takes effect. Django's
documented answer is to turn persistent connections off under ASGI. This handler instead gives
each request a one-thread executor from a free list (asgiref's ``ThreadSensitiveContext(executor=)``
exists for this): the same thread semantics per request (one thread runs all of the request's
sync code, one request at a time per thread), threads and their connections kept across
requests, as under a threaded WSGI server. See docs/adr/0015-asgi-request-threads.md.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler
from django.db import connections

# Threads kept idle between requests; more concurrent requests than this get a thread of
# their own that is shut down after the request (the default Django behaviour).
MAX_IDLE_THREADS = 16


class ReusedThreadASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self._idle.pop() if self._idle else ThreadPoolExecutor(1, thread_name_prefix="http")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            if len(self._idle) < MAX_IDLE_THREADS:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)

    def close(self) -> None:
        """Close the idle threads' database connections and stop the threads."""
        while self._idle:
            executor = self._idle.pop()
            executor.submit(connections.close_all).result()
            executor.shutdown()


def get_asgi_application() -> ReusedThreadASGIHandler:
    """Like ``django.core.asgi.get_asgi_application``, with the reused-thread handler."""
    django.setup(set_prefix=False)
    return ReusedThreadASGIHandler()
