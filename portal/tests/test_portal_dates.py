"""The list's own date helpers say exactly what Django's would."""

import datetime as dt
import random
from zoneinfo import ZoneInfo

from django.utils import timesince as django_timesince
from django.utils import translation

from portal.templatetags.portal_dates import timesince, timeuntil

UTC = dt.UTC


def test_timesince_and_timeuntil_match_django_over_random_intervals():
    r = random.Random(7)
    now = dt.datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    checked = 0
    for _ in range(20_000):
        # seconds to about three years, either side of now, with odd days of the month around month ends
        span = r.choice([r.randint(0, 120), r.randint(0, 86_400 * 3), r.randint(0, 86_400 * 1200)])
        then = now - dt.timedelta(seconds=span, microseconds=r.randint(0, 999_999))
        assert timesince(then, now) == django_timesince.timesince(then, now), then
        assert timeuntil(now, then) == django_timesince.timeuntil(now, then), then
        checked += 1
    assert checked == 20_000


def test_month_ends_leap_days_future_dates_and_other_time_zones():
    now = dt.datetime(2024, 3, 1, 0, 30, tzinfo=UTC)
    for then in (
        dt.datetime(2024, 1, 31, 23, 0, tzinfo=UTC),
        dt.datetime(2023, 2, 28, 12, 0, tzinfo=UTC),
        dt.datetime(2024, 2, 29, 0, 31, tzinfo=UTC),
        dt.datetime(2024, 3, 1, 0, 30, tzinfo=UTC),  # the same instant
        dt.datetime(2024, 3, 2, 0, 0, tzinfo=UTC),  # in the future
        dt.datetime(2024, 2, 29, 20, 0, tzinfo=ZoneInfo("America/New_York")),
    ):
        assert timesince(then, now) == django_timesince.timesince(then, now), then
    assert timesince(dt.datetime(2024, 3, 2, tzinfo=UTC), now) == "0\xa0minutes"
    assert timesince(dt.datetime(2023, 1, 15, tzinfo=UTC), now) == "1\xa0year, 1\xa0month"


def test_other_languages_use_djangos_translations():
    then = dt.datetime(2026, 11, 20, tzinfo=UTC)
    now = dt.datetime(2026, 11, 26, tzinfo=UTC)
    with translation.override("de"):
        assert timesince(then, now) == django_timesince.timesince(then, now) == "6\xa0Tage"
