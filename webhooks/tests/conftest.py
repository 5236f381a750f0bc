"""Fixtures for webhook tests: local-development URL policy, a live receiver, endpoints, a clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from portal import events
from webhooks import services
from webhooks.tests.receiver import Receiver


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    # Receivers run on 127.0.0.1 over plain http, as in local development.
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 2


@pytest.fixture
def _eager_errors_propagate():
    """Eager tasks raise instead of failing silently, so a broken task fails the test."""
    from portal.celery import app

    app.conf.task_eager_propagates = True
    yield
    app.conf.task_eager_propagates = False


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


class Clock:
    """A controllable ``services._now``: starts at the real time, moves only when told."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current

    def to(self, moment: datetime) -> datetime:
        self.current = max(self.current, moment)
        return self.current


@pytest.fixture
def clock(monkeypatch):
    fake = Clock(timezone.now())
    monkeypatch.setattr(services, "_now", fake)
    return fake


@pytest.fixture
def make_endpoint(admin_member, receiver):
    def make(path: str = "/hook", membership=None, **fields):
        fields.setdefault("all_events", True)
        return services.endpoint_create(
            organization=(membership or admin_member).organization,
            actor_membership=membership or admin_member,
            url=fields.pop("url", None) or receiver.url(path),
            **fields,
        )

    return make


@pytest.fixture
def endpoint(make_endpoint):
    return make_endpoint()


@pytest.fixture
def publish(django_capture_on_commit_callbacks, _eager_errors_propagate):
    """Publish an event and run everything it sets off (dispatch, fan-out, first attempts)."""

    def run(organization, event_type=events.COMPLIANCE_UPDATED, data=None):
        data = data if data is not None else {"framework": "SOC 2", "status": "passing"}
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            return events.publish(event_type, organization=organization, data=data)

    return run


@pytest.fixture
def run_commit_hooks(django_capture_on_commit_callbacks, _eager_errors_propagate):
    """Run a service (or request) and the tasks it enqueues after commit."""

    def run(function, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return function(*args, **kwargs)

    return run


@pytest.fixture
def sweep(django_capture_on_commit_callbacks, _eager_errors_propagate):
    """Run the sweeper and the attempts it hands out."""

    def run(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return services.deliveries_sweep(**kwargs)

    return run
