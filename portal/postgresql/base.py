"""Django's PostgreSQL backend, reading ``timestamptz`` columns with psycopg's C loader.

Django registers its own ``timestamptz`` loader on every connection, a Python subclass of psycopg's
pure-Python loader, so that values come back in the connection's time zone. With psycopg's C
implementation installed that loader is the slow part of reading rows: a ticket row has 14
timestamps, and 25 list rows with their requester and assignee took 3.9 ms of CPU to fetch against
0.7 ms with the C loader (bench, 2026-11-26). Django sets the session's ``TimeZone`` to the
connection's time zone, and psycopg's C loader converts to the session's time zone, so when that is
UTC (``USE_TZ`` with the default database ``TIME_ZONE``) both return the same aware datetimes with
``datetime.timezone.utc``; this backend then uses the C loader, and otherwise changes nothing.
See docs/adr/0015-asgi-request-threads.md.
"""

from __future__ import annotations

import datetime as dt

from django.db.backends.postgresql import base
from psycopg import adapters
from psycopg.adapt import Loader
from psycopg.pq import Format

_TIMESTAMPTZ = adapters.types["timestamptz"].oid
_FAST_LOADER = adapters.get_loader(_TIMESTAMPTZ, Format.TEXT)  # the C one when psycopg-binary is installed


class UtcTimestamptzLoader(Loader):
    """psycopg's default ``timestamptz`` loader, with the ``timezone`` attribute Django checks."""

    timezone = dt.UTC

    def __init__(self, oid: int, context=None) -> None:
        super().__init__(oid, context)
        self._load = _FAST_LOADER(oid, context).load

    def load(self, data):
        return self._load(data)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if self.timezone == dt.UTC:
            connection.adapters.register_loader("timestamptz", UtcTimestamptzLoader)
        return connection
