"""At least once, with real processes: a Celery worker killed mid-attempt loses nothing.

Two ``celery -A portal worker`` subprocesses run against the test database and Redis. The
first takes the delivery and is SIGKILLed while the receiver holds the request open; the
second (with beat running the sweeper) finds the lease expired, logs the lost attempt and
delivers the message, with the same webhook-id and a valid signature.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction
from standardwebhooks import Webhook

from portal import events
from portal.celery import app
from webhooks import services
from webhooks.models import Attempt, AttemptOutcome, Delivery, DeliveryState
from webhooks.tests.receiver import Reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Worker:
    def __init__(self, name: str, log: Path, queue: str, *extra: str) -> None:
        env = {
            **os.environ,
            "TEST_CELERY_QUEUE": queue,  # see worker_settings: a queue nobody else consumes
            "DEBUG": "1",
            "DATABASE_URL": _database_url(),  # the test database, not the development one
            "DJANGO_SETTINGS_MODULE": "webhooks.tests.worker_settings",
        }
        self.log = log
        command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "-n", f"{name}@%h", "-l", "INFO"]
        command += ["--without-heartbeat", "--without-mingle", "--without-gossip", *extra]
        with open(log, "wb") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b" ready." in self.log.read_bytes():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"worker did not start:\n{self.log.read_text(errors='replace')[-3000:]}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture
def workers(tmp_path):
    started: list[Worker] = []
    queue = f"webhooks-worker-test-{uuid.uuid4().hex}"
    default_queue = app.conf.task_default_queue
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue  # read per send by Celery's router

    def start(name: str, *extra: str) -> Worker:
        worker = Worker(name, tmp_path / f"{name}.log", queue, *extra)
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    app.conf.task_always_eager = True
    app.conf.task_default_queue = default_queue
    for worker in started:
        worker.stop()


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_worker_killed_mid_delivery_loses_nothing(organization, admin_member, receiver, workers, tmp_path):
    assert settings.REDIS_URL  # the workers share this broker (and its database number)
    receiver.enqueue(Reply.hanging())  # the first attempt never gets an answer
    endpoint = services.endpoint_create(
        organization=organization, actor_membership=admin_member, url=receiver.url("/hook"), all_events=True
    )
    secret = services.endpoint_secret_reveal(endpoint=endpoint, actor_membership=admin_member)

    doomed = workers("doomed", "-P", "solo")
    with transaction.atomic():
        events.publish(events.COMPLIANCE_UPDATED, organization=organization, data={"framework": "ISO", "status": "passing"})
    receiver.wait_for_requests(1, timeout=60)
    doomed.kill()  # mid-attempt: the request is on the wire, no answer recorded

    delivery = Delivery.objects.select_related("message").get()
    assert delivery.state == DeliveryState.PENDING and delivery.attempt_started_at is not None
    assert not Attempt.objects.exists()

    workers("rescuer", "-P", "threads", "-c", "4", "-B", "-s", str(tmp_path / "beat-schedule"))
    receiver.wait_for_requests(2, timeout=60)
    assert _wait_for(lambda: Delivery.objects.get().state == DeliveryState.SUCCEEDED), "never recorded"

    lost, delivered = Attempt.objects.order_by("number")
    assert (lost.outcome, lost.error_class, delivered.outcome) == (AttemptOutcome.LOST, "worker_lost", AttemptOutcome.SUCCESS)
    first, second = receiver.requests
    assert first.header("webhook-id") == second.header("webhook-id") == delivery.message.msg_id
    assert first.body == second.body
    Webhook(secret).verify(second.body, second.header_map)
