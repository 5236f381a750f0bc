"""The webhook settings, read in one place with their defaults.

``portal/settings.py`` reads the ``WEBHOOK_*`` environment variables; until then (and in tests,
through the ``settings`` fixture) these defaults apply. Values are read on every call, so a
changed setting takes effect without restarting anything that imported this module.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from webhooks import schedule, ssrf, transport

# Extra time a claimed attempt keeps its lease beyond the transport timeout: recording the
# result must fit in it, or the sweeper takes the attempt for lost and sends it again.
DEFAULT_LEASE_MARGIN_SECONDS = 5.0
# How long a delivery handed to the broker waits for a worker before the sweeper re-sends it.
DEFAULT_DISPATCH_LEASE_SECONDS = 60.0


def url_policy() -> ssrf.UrlPolicy:
    return ssrf.UrlPolicy(
        allow_http=bool(getattr(settings, "WEBHOOK_ALLOW_HTTP", False)),
        allow_loopback=bool(getattr(settings, "WEBHOOK_ALLOW_LOOPBACK", False)),
    )


def timeout_seconds() -> float:
    return float(getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", transport.DEFAULT_TIMEOUT_SECONDS))


def retry_schedule() -> tuple[float, ...]:
    value = tuple(getattr(settings, "WEBHOOK_SCHEDULE", None) or schedule.DEFAULT_SCHEDULE)
    schedule.schedule_validate(schedule=value)
    return value


def disable_after() -> timedelta:
    return timedelta(days=float(getattr(settings, "WEBHOOK_DISABLE_AFTER_DAYS", 5)))


def retention() -> timedelta:
    return timedelta(days=float(getattr(settings, "WEBHOOK_RETENTION_DAYS", 90)))


def lease_margin_seconds() -> float:
    """Added to the HTTP deadline(s) of a claim: time to record the results before the lease ends."""
    return float(getattr(settings, "WEBHOOK_LEASE_MARGIN_SECONDS", DEFAULT_LEASE_MARGIN_SECONDS))


def dispatch_lease_seconds() -> float:
    return float(getattr(settings, "WEBHOOK_DISPATCH_LEASE_SECONDS", DEFAULT_DISPATCH_LEASE_SECONDS))


def max_parallel() -> int:
    """HTTP requests one worker process sends at once (each waits on the network, not the CPU)."""
    return max(1, int(getattr(settings, "WEBHOOK_MAX_PARALLEL", 50)))


def max_endpoints() -> int:
    return int(getattr(settings, "WEBHOOK_MAX_ENDPOINTS_PER_ORGANIZATION", 100))


def secret_keys() -> tuple[str, ...]:
    """Key material for encrypting signing secrets at rest, the current one first.

    ``WEBHOOK_SECRET_KEY`` is one value or a comma-separated list (new first, old after while
    re-encrypting). Unset: ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``, so a rotated Django key
    listed in the fallbacks still decrypts until ``webhooks_reencrypt_secrets`` has run.
    """
    configured = getattr(settings, "WEBHOOK_SECRET_KEY", "") or ""
    keys = [k.strip() for k in configured.split(",")] if isinstance(configured, str) else [str(k) for k in configured]
    keys = [k for k in keys if k]
    if not keys:
        keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return tuple(keys)
