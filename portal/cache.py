"""Django's Redis cache with one connection pool per process instead of one per request.

Django keeps cache objects in an ``asgiref.local.Local``, which under ASGI is per request context:
every request served by Daphne gets a fresh ``RedisCache``, with a fresh client and a fresh
``redis.ConnectionPool``, so the session read that starts every page opened a new TCP connection to
Redis (and redis-py's ``CLIENT SETINFO`` round trips) and left the old one to the garbage collector
(Django ticket #35651, still open). Profiled under Daphne on the list page: 371 of 423 samples of
the session read were ``ConnectionPool.make_connection``/``connect``. Here the pools live in the
module, shared by every cache object of the process with the same server and options; redis-py's
pools are thread-safe and reset themselves in a forked child, and one ``redis.Redis`` client per pool
serves every cache operation (Django builds one per operation). Everything else is Django's backend.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

_pools: dict[tuple[str, str], Any] = {}
_clients: dict[int, Any] = {}  # id(pool) -> the one client of that pool (pools are never dropped)
_lock = threading.Lock()


class SharedPoolRedisCacheClient(RedisCacheClient):
    def _get_connection_pool(self, write: bool) -> Any:
        index = self._get_connection_pool_index(write)
        key = (self._servers[index], repr(sorted(self._pool_options.items(), key=lambda item: item[0])))
        pool = _pools.get(key)
        if pool is None:
            with _lock:
                pool = _pools.get(key)
                if pool is None:
                    pool = _pools[key] = self._pool_class.from_url(self._servers[index], **self._pool_options)
        return pool

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # Django builds a new ``redis.Redis`` for every cache operation (~0.1 ms of CPU: redis-py
        # fills its command tables per client). A client holds no connection of its own, and
        # redis-py's clients are thread-safe: one per pool serves the whole process.
        pool = self._get_connection_pool(write)
        client = _clients.get(id(pool))
        if client is None:
            client = _clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient
