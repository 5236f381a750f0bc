"""Settings for the webhook benchmark's workers and driver: the project's, plus webhooks' (local receiver).

The retry schedule is compressed (seconds instead of minutes and hours) so the 20 %-failure run
finishes within a minute; everything else is the production code path.
"""

from portal.settings import *  # noqa: F403

WEBHOOK_ALLOW_HTTP = True
WEBHOOK_ALLOW_LOOPBACK = True
WEBHOOK_TIMEOUT_SECONDS = 10
WEBHOOK_SCHEDULE = [0, 1, 1, 2, 2, 4, 4, 8]
CELERY_BEAT_SCHEDULE = {
    "webhooks-sweep": {"task": "webhooks.tasks.deliveries_sweep_task", "schedule": 0.5},
}
