"""Django's ASGI handler, with each request's sync code on a long-lived thread.

Django runs a request's sync middleware and view in an asgiref ``ThreadSensitiveContext`` that
creates a one-thread executor per request and shuts it down afterwards: a thread started and
joined per request, and, because database connections are per thread, a new PostgreSQL
connection (a backend fork) per request, so ``CONN_MAX_AGE`` never takes effect. Django's
documented answer is to turn persistent connections off under ASGI. This handler instead gives
each request a one-thread executor from a free list (asgiref's ``ThreadSensitiveContext(executor=)``
exists for this): the same thread semantics per request (one thread runs all of the request's
sync code, one request at a time per thread), threads and their connections kept across
requests, as under a threaded WSGI server.

It also runs the middleware chain in Django's sync mode, in one call on that thread. In async mode
Django adapts each change between sync and async middleware (ours and Django's are sync; axes,
django-htmx and django-cors-headers are async-capable), so a request went loop → thread → loop
(axes) → thread (view) and back, each hop a wake-up of the other thread. Every view of the portal is
sync; an async view would still work (Django's sync handler runs it with ``async_to_sync``).
See docs/adr/0015-asgi-request-threads.md.
"""

from __future__ import annotations

import functools
import inspect
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.db import connections

# Threads kept idle between requests; more concurrent requests than this get a thread of
# their own that is shut down after the request (the default Django behaviour).
MAX_IDLE_THREADS = 16


class ReusedThreadASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        BaseHandler.__init__(self)  # ASGIHandler.__init__ would load the chain in async mode
        self.load_middleware(is_async=False)
        self._idle: list[ThreadPoolExecutor] = []

    async def get_response_async(self, request):
        """The whole sync chain (middleware, view, error logging) in one call on the request's thread."""
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)

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


def leave_request_bodies_to_django() -> None:
    """Stop Daphne's HTTP requests from parsing POST bodies that nobody reads. Idempotent.

    Daphne's request class is Twisted's ``http.Request``, which by default parses every POST
    body into ``request.args``: form-encoded bodies with ``parse_qs``, multipart ones (every form
    with a file field) with the standard library's e-mail parser, in the reactor thread, before
    the application sees a byte. Daphne never reads ``args``: it hands the raw body to the ASGI
    application, where Django parses it again. So each POST was parsed twice, once slowly and
    with the whole upload copied in memory while every socket of the process waited, and a body
    that Twisted's parser rejected got Twisted's bare 400 instead of the portal's. Twisted's
    ``parsePOSTFormSubmission=False`` (Twisted 25.5+) turns that parsing off; with an older
    Twisted this does nothing. See docs/adr/0024-daphne-request-bodies.md.
    """
    from daphne.http_protocol import WebRequest
    from twisted.web.http import Request

    if getattr(WebRequest, "_portal_raw_bodies", False):
        return
    if "parsePOSTFormSubmission" not in inspect.signature(Request.__init__).parameters:
        return
    init = WebRequest.__init__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("parsePOSTFormSubmission", False)
        init(self, *args, **kwargs)

    WebRequest.__init__ = __init__
    WebRequest._portal_raw_bodies = True
