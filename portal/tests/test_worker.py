"""The outbox end to end through Redis and a real Celery worker (not eager mode)."""

import threading
import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import transaction

from portal import events
from portal.celery import app
from portal.models import Event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def real_worker():
    # A private queue: the live-stack worker of other tests (conftest.live_stack) shares this
    # broker database and would otherwise take these tasks, without this test's subscribers.
    queue, default_queue = f"portal-worker-test-{uuid.uuid4().hex}", app.conf.task_default_queue
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue  # read per send by Celery's router
    try:
        with start_worker(
            app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=10, queues=[queue]
        ):
            yield
    finally:
        app.conf.task_always_eager = True
        app.conf.task_default_queue = default_queue


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_committed_event_is_dispatched_by_a_real_worker(organization, real_worker):
    seen = []
    done = threading.Event()

    def handler(event):
        seen.append(event.pk)
        done.set()

    events.subscribe(events.COMPLIANCE_UPDATED, name="tests.worker-recorder")(handler)
    try:
        with transaction.atomic():
            event = events.publish(
                events.COMPLIANCE_UPDATED, organization=organization, data={"framework": "SOC 2", "status": "passing"}
            )
        assert done.wait(20), "the worker never dispatched the event"
        assert _wait_for(lambda: Event.objects.get(pk=event.pk).dispatched_at is not None)
        assert seen == [event.pk]
    finally:
        events._SUBSCRIBERS.pop("tests.worker-recorder")


def test_rolled_back_change_never_reaches_the_worker(organization, real_worker):
    seen = []
    events.subscribe(events.COMPLIANCE_UPDATED, name="tests.worker-rollback")(lambda event: seen.append(event.pk))
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            events.publish(
                events.COMPLIANCE_UPDATED, organization=organization, data={"framework": "ISO", "status": "failing"}
            )
            raise RuntimeError("abort")
        # A later, committed event proves the worker is running and the first never arrived.
        with transaction.atomic():
            later = events.publish(
                events.COMPLIANCE_UPDATED, organization=organization, data={"framework": "ISO", "status": "passing"}
            )
        assert _wait_for(lambda: seen == [later.pk])
        assert Event.objects.count() == 1
    finally:
        events._SUBSCRIBERS.pop("tests.worker-rollback")
