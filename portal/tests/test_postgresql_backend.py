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



def _prepared(fragment: str) -> list[tuple[str, int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        return [(sql, runs) for sql, runs in cursor.fetchall() if fragment in sql]


def test_a_query_run_often_on_a_connection_is_prepared_once_and_reused_with_other_values():
    # ADR 0020: server-side binding, so PostgreSQL stops parsing and planning page queries per request.
    Organization.objects.create(name="Acme", slug="acme-prepared")
    lookup = '"portal_organization"."slug" = $1'
    for _ in range(4):
        Organization.objects.filter(slug="acme-prepared").get()
    assert _prepared(lookup) == []  # not yet: psycopg prepares a query after five runs
    for slug in ["acme-prepared"] * 3 + ["missing-1", "missing-2", "missing-3"]:
        Organization.objects.filter(slug=slug).first()
        Organization.objects.filter(slug="acme-prepared").get()
    [(_statement, runs)] = _prepared(lookup + " LIMIT 21")  # the .get(): one statement, whatever the value
    assert runs == 5  # its runs 6 to 10, with either value, each without a parse
    assert len(_prepared(lookup)) == 2  # and the .first(), run six times with six values: one more
