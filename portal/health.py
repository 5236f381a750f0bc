"""Liveness of the parts the portal needs: PostgreSQL, Redis and a Celery worker."""

from __future__ import annotations

import time
from typing import Any

import redis
from django.conf import settings
from django.db import connection

HEARTBEAT_KEY = "portal:worker-heartbeat"
# Beat asks a worker to record a heartbeat every 15 s; three missed beats mean trouble.
HEARTBEAT_MAX_AGE = 45


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)


def worker_heartbeat_record() -> None:
    _redis().set(HEARTBEAT_KEY, str(time.time()), ex=HEARTBEAT_MAX_AGE * 4)


def health_check() -> tuple[bool, dict[str, Any]]:
    checks: dict[str, Any] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": exc.__class__.__name__}
    try:
        client = _redis()
        client.ping()
        checks["redis"] = {"ok": True}
        raw = client.get(HEARTBEAT_KEY)
        age = time.time() - float(raw) if raw else None
        checks["celery"] = (
            {"ok": True, "heartbeat_age_seconds": round(age, 1)}
            if age is not None and age <= HEARTBEAT_MAX_AGE
            else {"ok": False, "error": "no worker heartbeat" if age is None else f"last heartbeat {age:.0f}s ago"}
        )
    except Exception as exc:
        checks["redis"] = {"ok": False, "error": exc.__class__.__name__}
        checks["celery"] = {"ok": False, "error": "redis unavailable"}
    return all(c["ok"] for c in checks.values()), checks
