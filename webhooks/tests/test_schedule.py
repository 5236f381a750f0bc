"""The retry schedule: delays, jitter bounds, exhaustion and Retry-After."""

import random

import pytest

from webhooks.schedule import DEFAULT_SCHEDULE, RETRY_AFTER_MAX_SECONDS, next_attempt_delay, schedule_validate


class EdgeRandom(random.Random):
    """Always picks one end of the jitter range, to test the bounds exactly."""

    def __init__(self, *, high: bool) -> None:
        super().__init__(0)
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


LOW, HIGH = EdgeRandom(high=False), EdgeRandom(high=True)


def test_the_default_schedule_is_immediate_then_5s_5min_30min_2h_5h():
    assert DEFAULT_SCHEDULE == (0, 5, 300, 1800, 7200, 18000)


@pytest.mark.parametrize(
    ("attempt_number", "base"),
    [(0, 0), (1, 5), (2, 300), (3, 1800), (4, 7200), (5, 18000)],
)
def test_each_delay_is_the_scheduled_one_within_20_percent(attempt_number, base):
    low = next_attempt_delay(attempt_number=attempt_number, rng=LOW)
    high = next_attempt_delay(attempt_number=attempt_number, rng=HIGH)

    assert low == pytest.approx(base * 0.8)
    assert high == pytest.approx(base * 1.2)


def test_attempts_are_exhausted_after_the_last_scheduled_one():
    assert next_attempt_delay(attempt_number=6) is None
    assert next_attempt_delay(attempt_number=60, retry_after=10) is None
    assert next_attempt_delay(attempt_number=5) is not None


def test_jitter_spreads_delays_across_the_whole_band():
    rng = random.Random(1234)

    delays = [next_attempt_delay(attempt_number=2, rng=rng) for _ in range(2000)]

    assert all(240 <= delay <= 360 for delay in delays)
    assert min(delays) < 250 and max(delays) > 350  # the whole band is used, not a fixed value
    assert len({round(delay, 3) for delay in delays}) > 1900


def test_a_seeded_generator_makes_delays_reproducible():
    first = [next_attempt_delay(attempt_number=n, rng=random.Random(7)) for n in range(6)]
    second = [next_attempt_delay(attempt_number=n, rng=random.Random(7)) for n in range(6)]

    assert first == second


def test_retry_after_longer_than_the_schedule_is_honoured_and_never_shortened():
    # After attempt 1 the schedule says 5 s; the receiver asks for 2 minutes.
    low = next_attempt_delay(attempt_number=1, retry_after=120, rng=LOW)
    high = next_attempt_delay(attempt_number=1, retry_after=120, rng=HIGH)

    assert low == pytest.approx(120)  # never earlier than asked, even at the low end of jitter
    assert high == pytest.approx(144)  # jitter only adds, up to 20 %


@pytest.mark.parametrize("retry_after", [0, 1, 4, -30, float("nan")])
def test_retry_after_shorter_than_the_schedule_cannot_speed_retries_up(retry_after):
    assert next_attempt_delay(attempt_number=2, retry_after=retry_after, rng=LOW) == pytest.approx(240)


def test_retry_after_is_capped_at_24_hours():
    delay = next_attempt_delay(attempt_number=1, retry_after=30 * 24 * 3600, rng=HIGH)

    assert delay == RETRY_AFTER_MAX_SECONDS == 24 * 3600
    assert next_attempt_delay(attempt_number=1, retry_after=float("inf"), rng=HIGH) == RETRY_AFTER_MAX_SECONDS


def test_the_retry_after_cap_is_configurable():
    assert next_attempt_delay(attempt_number=1, retry_after=3600, retry_after_max=600, rng=HIGH) == 600


def test_a_custom_schedule_is_used_as_given():
    schedule = (0, 60, 120)

    delays = [next_attempt_delay(attempt_number=n, schedule=schedule, rng=HIGH) for n in range(4)]

    assert delays[:3] == [pytest.approx(0), pytest.approx(72), pytest.approx(144)]
    assert delays[3] is None


@pytest.mark.parametrize("attempt_number", [-1, 1.0, True, "2"])
def test_attempt_number_must_be_a_non_negative_integer(attempt_number):
    with pytest.raises(ValueError):
        next_attempt_delay(attempt_number=attempt_number)


@pytest.mark.parametrize("schedule", [(), [], (0, -5), (0, float("inf")), (0, "5"), (0, True), "05"])
def test_unusable_schedules_are_refused(schedule):
    with pytest.raises(ValueError):
        schedule_validate(schedule=schedule)
    with pytest.raises(ValueError):
        next_attempt_delay(attempt_number=0, schedule=schedule)
