"""The database backend reads timestamptz values with psycopg's C loader, with Django's semantics."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from psycopg import adapters
from psycopg.pq import Format

from portal.models import Organization
from portal.postgresql.base import UtcTimestamptzLoader

pytestmark = pytest.mark.django_db


def test_a_timestamp_reads_back_as_the_same_instant_in_utc():
    written = dt.datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=ZoneInfo("Europe/Berlin"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz, NULL::timestamptz", [written])
        value, missing = cursor.fetchone()
    assert value == written
    assert value.tzinfo is dt.UTC  # what Django's own loader returns: timezone.utc, not a ZoneInfo
    assert missing is None
    assert connection.connection.adapters.get_loader(adapters.types["timestamptz"].oid, Format.TEXT) is UtcTimestamptzLoader


def test_model_datetimes_are_aware_utc():
    organization = Organization.objects.create(name="Acme", slug="acme-tz")
    loaded = Organization.objects.get(pk=organization.pk)
    assert loaded.created_at == organization.created_at
    assert loaded.created_at.tzinfo is dt.UTC
