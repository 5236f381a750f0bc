from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from portal import events
from portal.models import Event, EventDispatch

pytestmark = pytest.mark.django_db

METRICS = {"metrics": {"cpu_percent": 42.5}}


@pytest.fixture
def recorder():
    """A subscriber for metrics.updated that records what it saw; removed afterwards."""
    seen: list[int] = []
    name = "tests.recorder"
    events.subscribe(events.METRICS_UPDATED, name=name)(lambda event: seen.append(event.pk))
    yield seen
    events._SUBSCRIBERS.pop(name)


def _publish(organization):
    with transaction.atomic():
        return events.publish(events.METRICS_UPDATED, organization=organization, data=METRICS)


def test_event_row_commits_with_the_change(organization):
    event = _publish(organization)
    assert Event.objects.get(pk=event.pk).payload == METRICS


def test_rollback_leaves_no_event(organization):
    with pytest.raises(RuntimeError), transaction.atomic():
        events.publish(events.METRICS_UPDATED, organization=organization, data=METRICS)
        raise RuntimeError("the change failed")
    assert not Event.objects.exists()


def test_publish_outside_a_transaction_is_refused(organization):
    with mock.patch("portal.events.transaction.get_connection") as get_connection:
        get_connection.return_value.in_atomic_block = False
        with pytest.raises(RuntimeError, match="inside the transaction"):
            events.publish(events.METRICS_UPDATED, organization=organization, data=METRICS)


def test_payload_that_does_not_match_the_catalog_is_refused(organization):
    with pytest.raises(ValidationError) as error, transaction.atomic():
        events.publish(events.METRICS_UPDATED, organization=organization, data={"metrics": {"cpu": "high"}})
    assert "data.metrics.cpu" in error.value.message_dict
    assert not Event.objects.exists()


def test_unknown_event_type_is_refused(organization):
    with pytest.raises(ValidationError, match="Unknown event type"), transaction.atomic():
        events.publish("ticket.exploded", organization=organization, data={})


def test_dispatch_happens_after_commit_not_before(organization, recorder, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        event = _publish(organization)
        assert recorder == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert recorder == [event.pk]
    event.refresh_from_db()
    assert event.dispatched_at is not None
    assert EventDispatch.objects.filter(event=event, subscriber="tests.recorder").exists()


def test_dispatching_twice_runs_each_subscriber_once(organization, recorder):
    event = _publish(organization)
    events.event_dispatch(event_id=event.pk)
    Event.objects.filter(pk=event.pk).update(dispatched_at=None)  # as if a second copy was queued
    events.event_dispatch(event_id=event.pk)
    assert recorder == [event.pk]


def test_sweeper_redispatches_an_event_whose_dispatch_was_lost(
    organization, recorder, django_capture_on_commit_callbacks
):
    # Redis is down at commit time: enqueueing fails, the request still succeeds.
    with (
        mock.patch("portal.tasks.event_dispatch_task.delay", side_effect=ConnectionError("redis down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        event = _publish(organization)
    assert recorder == []
    assert events.events_sweep() == 0  # still inside the grace period
    assert events.events_sweep(now=timezone.now() + timedelta(minutes=2)) == 1
    assert recorder == [event.pk]
    event.refresh_from_db()
    assert event.dispatched_at is not None
    assert events.events_sweep(now=timezone.now() + timedelta(minutes=2)) == 0


def test_failing_subscriber_does_not_block_others_and_is_retried(organization, recorder):
    calls = []

    def flaky(event):
        calls.append(event.pk)
        if len(calls) == 1:
            raise RuntimeError("downstream hiccup")

    events.subscribe(events.METRICS_UPDATED, name="tests.flaky")(flaky)
    try:
        event = _publish(organization)
        with pytest.raises(events.DispatchIncomplete):
            events.event_dispatch(event_id=event.pk)
        event.refresh_from_db()
        assert event.dispatched_at is None and "downstream hiccup" in event.last_error
        assert recorder == [event.pk]
        events.event_dispatch(event_id=event.pk)
        assert calls == [event.pk, event.pk]
        assert recorder == [event.pk]  # the one that succeeded is not run again
        event.refresh_from_db()
        assert event.dispatched_at is not None
    finally:
        events._SUBSCRIBERS.pop("tests.flaky")


def test_dispatch_of_a_deleted_event_is_a_no_op(organization, recorder):
    events.event_dispatch(event_id=999_999_999)
    assert recorder == []


def test_subscribers_that_push_run_before_the_others(organization, monkeypatch):
    # Registered first, but it sends no pushes: a socket's update must not wait behind it.
    calls = []
    monkeypatch.setattr(events, "_SUBSCRIBERS", {})
    events.subscribe(events.METRICS_UPDATED, name="tests.email")(lambda event: calls.append("email"))
    events.subscribe(name="tests.webhooks")(lambda event: calls.append("webhooks"))
    events.subscribe(events.METRICS_UPDATED, name="tests.push_a", pushes=True)(lambda event: calls.append("push_a"))
    events.subscribe(name="tests.push_b", pushes=True)(lambda event: calls.append("push_b"))
    event = _publish(organization)
    events.event_dispatch(event_id=event.pk)
    assert calls == ["push_a", "push_b", "email", "webhooks"]  # pushers first, else registration order


def test_the_apps_push_subscribers_come_first_for_every_event_type():
    pushers = {"notifications.notify", "notifications.push_ticket", "notifications.push_platform"}
    for event_type in events.CATALOG:
        names = [s.name for s in events.subscribers_for(event_type)]
        first_other = next((i for i, n in enumerate(names) if n not in pushers), len(names))
        assert set(names[first_other:]).isdisjoint(pushers), (event_type, names)
    # The user's notification before the organization-wide ticket update, then webhooks and e-mail.
    assert [s.name for s in events.subscribers_for(events.TICKET_COMMENT_ADDED)] == [
        "notifications.notify",
        "notifications.push_ticket",
        "webhooks.fan_out",
        "tickets.email_comment",
    ]


def test_each_subscriber_costs_one_statement_before_and_one_after_its_handler(organization, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(events, "_SUBSCRIBERS", {})
    for name in ("tests.a", "tests.b", "tests.c"):
        events.subscribe(events.METRICS_UPDATED, name=name)(lambda event: event.organization.name)
    event = _publish(organization)
    with CaptureQueriesContext(connection) as queries:
        events.event_dispatch(event_id=event.pk)
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    # The event with its organization, lock + lookup and record per subscriber, the event stamped.
    assert len(statements) == 1 + 3 * 2 + 1, statements
    assert set(EventDispatch.objects.filter(event=event).values_list("subscriber", flat=True)) == {
        "tests.a",
        "tests.b",
        "tests.c",
    }


def test_dispatch_reads_the_event_and_its_organization_as_the_orm_would(organization, django_assert_num_queries):
    event = _publish(organization)
    expected = Event.objects.select_related("organization").get(pk=event.pk)
    with django_assert_num_queries(1):
        loaded = events._event_for_dispatch(event.pk)
        org = loaded.organization  # already there: no second query
    fields = [f.attname for f in Event._meta.concrete_fields]
    assert [getattr(loaded, f) for f in fields] == [getattr(expected, f) for f in fields]
    assert loaded.payload == METRICS
    org_fields = [f.attname for f in type(org)._meta.concrete_fields]
    assert [getattr(org, f) for f in org_fields] == [getattr(expected.organization, f) for f in org_fields]
    assert events._event_for_dispatch(999_999_999) is None


def test_catalog_has_the_required_types():
    required = {
        "ticket.created",
        "ticket.updated",
        "ticket.comment_added",
        "ticket.sla_warning",
        "ticket.sla_breached",
        "notification.created",
        "metrics.updated",
        "compliance.updated",
        "invoice.created",
        "budget.threshold_reached",
        "forecast.anomaly_detected",
        "webhook.test",
    }
    assert required <= set(events.CATALOG)
    assert {n for n, t in events.CATALOG.items() if t.external} == {
        "metrics.updated",
        "compliance.updated",
        "invoice.created",
        "notice.published",
    }
