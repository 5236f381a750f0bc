"""The cache keeps one Redis connection pool per process, whatever the request context."""

import contextvars

import redis
from django.conf import settings
from django.core.cache import caches


def _in_a_new_request_context(fn):
    # Under ASGI every request runs in a fresh context, and Django's cache handler (an
    # asgiref Local) hands each context its own cache object.
    return contextvars.Context().run(fn)


def _connections_received() -> int:
    return redis.Redis.from_url(settings.REDIS_URL).info("stats")["total_connections_received"]


def test_cache_objects_of_different_requests_share_the_process_connection_pool():
    first = _in_a_new_request_context(lambda: caches["default"])
    second = _in_a_new_request_context(lambda: caches["default"])
    assert first is not second  # Django: one cache object per request context (ticket #35651)
    assert first._cache._get_connection_pool(True) is second._cache._get_connection_pool(True)
    # And one client on it: Django's backend builds a new one for every operation.
    assert first._cache.get_client(write=True) is second._cache.get_client() is first._cache.get_client()


def test_reading_the_cache_in_many_requests_does_not_open_a_connection_per_request():
    caches["default"].set("warm", 1)
    before = _connections_received()
    for _ in range(20):
        assert _in_a_new_request_context(lambda: caches["default"].get("warm")) == 1
    # One more connection at most (the stats call's own), not one per request as with Django's
    # backend, which opens twenty here.
    assert _connections_received() - before <= 1
