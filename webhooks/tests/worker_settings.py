"""Settings for the real Celery workers that test_worker.py starts.

The project's settings, plus loopback targets and a short lease, and a private queue: the
live-stack worker of other tests (conftest.live_stack) shares the broker database of this
pytest-xdist worker, and must not take these tasks, nor these workers take its.
"""

import os

from portal.settings import *  # noqa: F403

WEBHOOK_ALLOW_HTTP = True
WEBHOOK_ALLOW_LOOPBACK = True
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("TEST_WEBHOOK_TIMEOUT_SECONDS", "4"))
WEBHOOK_LEASE_MARGIN_SECONDS = 1
CELERY_TASK_DEFAULT_QUEUE = os.environ["TEST_CELERY_QUEUE"]
CELERY_BEAT_SCHEDULE = {
    "webhooks-sweep": {"task": "webhooks.tasks.deliveries_sweep_task", "schedule": 0.5},
}
