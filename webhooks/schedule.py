"""When to try a webhook message again.

A message gets ``len(schedule)`` attempts. ``schedule[n]`` is the delay before attempt
``n + 1``: with the default, the first attempt goes out immediately, then 5 s, 5 min, 30 min,
2 h and 5 h after each failure — about 7.6 hours from first try to giving up. The table is
roughly exponential by design rather than by formula, so support can quote it to customers.

Every delay gets ±20 % jitter, so that endpoints which fail together (an outage at a big
receiver) are not retried in lockstep when they come back.

``Retry-After`` from the receiver (429/503) can only *lengthen* a delay: the scheduled delay
is the floor, so a receiver cannot make us hammer it or drop the backoff. It is bounded by
``RETRY_AFTER_MAX_SECONDS`` (24 h): long enough for a maintenance window, short enough that
one header cannot park a message for weeks — the attempt count is unchanged, so a receiver
asking for the maximum every time spreads at most ``len(schedule) - 1`` days of retries.
When Retry-After governs, jitter only adds (0 to +20 %), never bringing the retry earlier
than the receiver asked.

The delivery layer stores the due time in PostgreSQL (durable state; see CONVENTIONS §6);
this module only computes numbers.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

DEFAULT_SCHEDULE: tuple[int, ...] = (0, 5, 300, 1800, 7200, 18000)
JITTER_FRACTION = 0.2
RETRY_AFTER_MAX_SECONDS = 24 * 60 * 60

# Jitter spreads load; it needs no cryptographic strength, and tests pass a seeded Random.
_RNG = random.Random()  # noqa: S311


def next_attempt_delay(
    *,
    attempt_number: int,
    schedule: Sequence[float] = DEFAULT_SCHEDULE,
    retry_after: float | None = None,
    retry_after_max: float = RETRY_AFTER_MAX_SECONDS,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait before the next attempt, or None when the message is out of attempts.

    ``attempt_number`` is how many attempts have been made so far: 0 asks for the first
    attempt's delay, 1 for the delay after the first attempt failed, and so on. With the
    default schedule, ``attempt_number=6`` returns None: the message is dead.
    ``retry_after`` is the receiver's Retry-After in seconds (see
    ``webhooks.transport.retry_after_parse``), or None.
    """
    schedule_validate(schedule=schedule)
    if isinstance(attempt_number, bool) or not isinstance(attempt_number, int) or attempt_number < 0:
        raise ValueError("attempt_number must be a non-negative integer.")
    if attempt_number >= len(schedule):
        return None

    random_source = rng or _RNG
    delay = schedule[attempt_number] * random_source.uniform(1 - JITTER_FRACTION, 1 + JITTER_FRACTION)
    if retry_after is not None and retry_after > 0:
        asked = min(retry_after, retry_after_max)
        if asked > delay:
            delay = min(asked * random_source.uniform(1, 1 + JITTER_FRACTION), retry_after_max)
    return delay


def schedule_validate(*, schedule: Sequence[float]) -> None:
    """Raise ValueError unless ``schedule`` is a usable retry table (for settings loaders)."""
    if isinstance(schedule, str | bytes) or not schedule:
        raise ValueError("A retry schedule needs at least one delay.")
    for delay in schedule:
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay < float("inf"):
            raise ValueError("Retry delays are finite, non-negative numbers of seconds.")
