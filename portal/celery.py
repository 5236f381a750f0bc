"""The Celery application: configured from Django settings (the ``CELERY_`` names)."""

import os

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def check_database_connections(task=None, **kwargs) -> None:
    """With ``CELERY_DB_REUSE_MAX`` a worker reuses its database connection across tasks; like Django
    before a request, drop one that is broken or older than ``CONN_MAX_AGE`` before each task. Not for
    eager tasks: they run inside the caller's transaction and connection."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
