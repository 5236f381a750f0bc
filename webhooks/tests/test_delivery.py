"""Fan-out, attempts, retries, the sweeper, replay and recovery, against a real receiver on 127.0.0.1.

Tasks run eagerly here (the real-worker test is test_worker.py); time moves through the
``clock`` fixture, which replaces the clock every delivery decision uses.
"""

import json
import time
import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from portal import events
from portal.models import Event, EventDispatch
from tickets import services as ticket_services
from tickets.tests.factories import make_agent, make_ticket
from webhooks import schedule, services, signing
from webhooks.models import Attempt, AttemptOutcome, Delivery, DeliveryState, Endpoint, Message
from webhooks.tests.receiver import Reply, forbid_outside_connections

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch):
    forbid_outside_connections(monkeypatch)


def _secret(endpoint, admin_member):
    return services.endpoint_secret_reveal(endpoint=endpoint, actor_membership=admin_member)


def _delivery():
    return Delivery.objects.select_related("message").get()


def _sweep_until_done(clock, sweep, limit=20):
    """Jump to each due time and let the sweeper hand the delivery out, until nothing is pending."""
    for _ in range(limit):
        pending = Delivery.objects.filter(state=DeliveryState.PENDING).order_by("next_attempt_at").first()
        if pending is None:
            return
        clock.to(pending.next_attempt_at)
        sweep()
    raise AssertionError("deliveries still pending")


# --- The happy path -------------------------------------------------------------------------


def test_a_committed_event_reaches_the_endpoint_signed_and_verifiable_with_standardwebhooks(
    organization, admin_member, endpoint, receiver, publish
):
    event = publish(organization)

    [request] = receiver.requests
    body = json.loads(request.body)
    assert body == {
        "type": "compliance.updated",
        "timestamp": event.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": {"framework": "SOC 2", "status": "passing"},
    }
    assert request.header("content-type") == "application/json"
    message = Message.objects.get()
    assert request.header("webhook-id") == message.msg_id and message.msg_id.startswith("msg_")
    # The third-party verifier, exactly as a customer would use it.
    assert Webhook(_secret(endpoint, admin_member)).verify(request.body, request.header_map) == body

    delivery = _delivery()
    assert delivery.state == DeliveryState.SUCCEEDED and delivery.attempt_count == 1
    assert delivery.next_attempt_at is None and delivery.lease_id is None and delivery.attempt_started_at is None
    attempt = Attempt.objects.get()
    assert (attempt.outcome, attempt.response_status, attempt.final) == (AttemptOutcome.SUCCESS, 200, True)
    assert attempt.request_headers["webhook-id"] == message.msg_id
    endpoint.refresh_from_db()
    assert endpoint.last_success_at == attempt.created_at and endpoint.failing_since is None


def test_only_subscribed_enabled_endpoints_of_the_same_organization_get_a_delivery(
    organization, admin_member, make_endpoint, other_member, receiver, publish
):
    wants = make_endpoint("/wants", all_events=False, event_types=["compliance.updated"])
    make_endpoint("/other-type", all_events=False, event_types=["invoice.created"])
    paused = make_endpoint("/paused")
    services.endpoint_disable(endpoint=paused, actor_membership=admin_member)
    make_endpoint("/theirs", membership=other_member)

    publish(organization)

    assert [r.path for r in receiver.requests] == ["/wants"]
    assert list(Delivery.objects.values_list("endpoint", flat=True)) == [wants.pk]


def test_events_nobody_subscribes_to_leave_no_message(organization, make_endpoint, receiver, publish):
    make_endpoint(all_events=False, event_types=["invoice.created"])
    publish(organization)
    assert not Message.objects.exists() and receiver.requests == []


def test_private_event_types_are_never_sent(organization, endpoint, receiver, publish):
    publish(organization, events.NOTIFICATION_CREATED, {"notification": "n1", "kind": "info"})
    assert not Message.objects.exists() and receiver.requests == []


def test_fan_out_twice_for_the_same_event_adds_nothing(organization, endpoint, receiver, publish):
    event = publish(organization)
    assert services.deliveries_fan_out(event=event) is not None
    assert Message.objects.count() == 1 and Delivery.objects.count() == 1
    assert len(receiver.requests) == 1


def test_ticket_payloads_carry_public_data_only_never_internal_notes(organization, member, endpoint, receiver, publish, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ticket = make_ticket(member, subject="Disk full")
    agent = make_agent()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.comment_create(ticket=ticket, author=agent, body="SECRET internal vendor bug", internal=True)
        ticket_services.comment_create(ticket=ticket, author=agent, body="We are on it")
    types = [json.loads(r.body)["type"] for r in receiver.requests]
    assert types == ["ticket.created", "ticket.comment_added"]
    assert all(b"SECRET" not in r.body and b"We are on it" not in r.body for r in receiver.requests)
    assert json.loads(receiver.requests[0].body)["data"]["subject"] == "Disk full"


def test_the_body_is_stable_across_attempts_while_the_timestamp_moves(organization, endpoint, receiver, publish, clock, sweep):
    receiver.enqueue(Reply(status=503))
    publish(organization)
    time.sleep(1.1)  # webhook-timestamp has one-second resolution
    _sweep_until_done(clock, sweep)
    first, second = receiver.requests
    assert first.body == second.body and first.header("webhook-id") == second.header("webhook-id")
    assert first.header("webhook-timestamp") != second.header("webhook-timestamp")


# --- Secrets and rotation ---------------------------------------------------------------------


def test_during_rotation_both_secrets_verify_and_after_24_hours_only_the_new_one(
    organization, admin_member, endpoint, receiver, publish, clock
):
    old = _secret(endpoint, admin_member)
    new = services.endpoint_secret_rotate(endpoint=endpoint, actor_membership=admin_member)
    assert new != old and new.startswith("whsec_")

    publish(organization)
    request = receiver.requests[-1]
    assert len(request.header("webhook-signature").split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(request.body, request.header_map)

    clock.advance(hours=24, seconds=1)
    publish(organization)
    request = receiver.requests[-1]
    assert len(request.header("webhook-signature").split(" ")) == 1
    Webhook(new).verify(request.body, request.header_map)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(request.body, request.header_map)


def test_secrets_are_encrypted_at_rest(endpoint, admin_member):
    secret = _secret(endpoint, admin_member)
    stored = Endpoint.objects.values_list("secret_sealed", flat=True).get()
    assert secret not in stored and secret.removeprefix("whsec_") not in stored
    assert stored.startswith("v1:")


# --- Failures, retries, dead ------------------------------------------------------------------


def test_retries_follow_the_schedule_and_the_message_is_dead_after_the_last_attempt(
    organization, endpoint, receiver, publish, clock, sweep):
    receiver.reply_with(Reply(status=500, body=b"boom"))
    publish(organization)
    delays = []
    for _ in range(len(schedule.DEFAULT_SCHEDULE) - 1):
        delivery = _delivery()
        assert delivery.state == DeliveryState.PENDING
        last = Attempt.objects.order_by("-number").first()
        delays.append((delivery.next_attempt_at - clock()).total_seconds())
        assert last.outcome == AttemptOutcome.RETRY and not last.final
        clock.advance(seconds=delays[-1] - 0.5)
        assert sweep() == 0  # not due yet: nothing is sent early
        clock.to(delivery.next_attempt_at)
        assert sweep() == 1

    for delay, planned in zip(delays, schedule.DEFAULT_SCHEDULE[1:], strict=True):
        assert planned * 0.8 - 0.01 <= delay <= planned * 1.2 + 0.01
    delivery = _delivery()
    assert delivery.state == DeliveryState.DEAD and delivery.next_attempt_at is None
    assert delivery.attempt_count == 6 and len(receiver.requests) == 6
    assert Attempt.objects.order_by("-number").first().final
    assert "HTTP 500" in delivery.last_error
    assert {r.header("webhook-id") for r in receiver.requests} == {delivery.message.msg_id}


def test_a_custom_schedule_setting_is_used(organization, endpoint, receiver, publish, clock, settings, sweep):
    settings.WEBHOOK_SCHEDULE = [0, 60]
    receiver.reply_with(Reply(status=503))
    publish(organization)
    delay = (_delivery().next_attempt_at - clock()).total_seconds()
    assert 48 <= delay <= 72
    _sweep_until_done(clock, sweep)
    assert _delivery().state == DeliveryState.DEAD and len(receiver.requests) == 2


def test_retry_after_lengthens_the_wait(organization, endpoint, receiver, publish, clock, sweep):
    receiver.enqueue(Reply(status=429, headers={"Retry-After": "120"}))
    publish(organization)
    delivery = _delivery()
    delay = (delivery.next_attempt_at - clock()).total_seconds()
    assert 120 <= delay <= 144  # the receiver asked for 2 min; the schedule said 5 s
    _sweep_until_done(clock, sweep)
    assert _delivery().state == DeliveryState.SUCCEEDED


def test_a_success_after_failures_delivers_and_resets_the_failure_clock(organization, endpoint, receiver, publish, clock, sweep):
    receiver.enqueue(Reply(status=502), Reply(status=503))
    publish(organization)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None
    _sweep_until_done(clock, sweep)
    endpoint.refresh_from_db()
    assert _delivery().state == DeliveryState.SUCCEEDED and _delivery().attempt_count == 3
    assert endpoint.failing_since is None and endpoint.last_success_at is not None


@pytest.mark.parametrize("status", [400, 401, 404, 413, 422])
def test_other_4xx_fail_without_retry(organization, endpoint, receiver, publish, status, sweep):
    receiver.enqueue(Reply(status=status, body=b'{"error":"nope"}'))
    publish(organization)
    delivery = _delivery()
    assert delivery.state == DeliveryState.FAILED and delivery.next_attempt_at is None
    attempt = Attempt.objects.get()
    assert (attempt.outcome, attempt.response_status, attempt.response_body) == (AttemptOutcome.FAIL, status, '{"error":"nope"}')
    assert sweep(now=timezone.now() + timedelta(days=1)) == 0
    endpoint.refresh_from_db()
    assert endpoint.enabled


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(organization, endpoint, receiver, publish):
    receiver.enqueue(Reply.redirect("http://169.254.169.254/latest/meta-data/"))
    publish(organization)
    attempt = Attempt.objects.get()
    assert attempt.error_class == "redirect" and attempt.response_status == 302
    assert _delivery().state == DeliveryState.FAILED and len(receiver.requests) == 1


def test_410_gone_disables_the_endpoint_and_tells_the_admins(organization, endpoint, make_endpoint, receiver, publish):
    watcher = make_endpoint("/watcher", all_events=False, event_types=[events.WEBHOOK_ENDPOINT_DISABLED])
    receiver.enqueue(Reply(status=410))
    publish(organization)
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "410" in endpoint.disabled_reason
    assert _delivery_for(endpoint).state == DeliveryState.FAILED
    disabled = Event.objects.get(type=events.WEBHOOK_ENDPOINT_DISABLED)
    assert disabled.payload["endpoint"] == str(endpoint.public_id)
    # The notifications app subscribes to this event; another endpoint may too.
    assert json.loads(receiver.requests[-1].body)["data"]["endpoint"] == str(endpoint.public_id)
    assert receiver.requests[-1].path == "/watcher" and watcher.enabled
    # Nothing more goes to the disabled endpoint.
    publish(organization)
    assert [r.path for r in receiver.requests].count("/hook") == 1


def _delivery_for(endpoint):
    return Delivery.objects.filter(endpoint=endpoint).order_by("-created_at").first()


def test_an_endpoint_failing_for_five_days_without_success_is_disabled_and_admins_notified(
    organization, endpoint, receiver, publish, clock
):
    receiver.reply_with(Reply(status=503))
    publish(organization)
    start = Attempt.objects.get().created_at
    clock.advance(days=4, hours=23)
    publish(organization)
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failing_since == start

    clock.advance(hours=1, seconds=1)
    publish(organization)
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "5 days" in endpoint.disabled_reason
    assert not Delivery.objects.filter(endpoint=endpoint, state=DeliveryState.PENDING).exists()
    disabled = Event.objects.get(type=events.WEBHOOK_ENDPOINT_DISABLED)
    assert disabled.payload["endpoint"] == str(endpoint.public_id) and "5 days" in disabled.payload["reason"]
    # The notifications app (which webhooks must not import) handled it: it notifies the org admins.
    assert EventDispatch.objects.filter(event=disabled, subscriber="notifications.notify").exists()


def test_a_hanging_receiver_is_a_timeout_and_the_worker_moves_on(organization, endpoint, receiver, publish):
    receiver.enqueue(Reply.hanging())
    started = time.monotonic()
    publish(organization)
    assert time.monotonic() - started < 5
    attempt = Attempt.objects.get()
    assert attempt.error_class == "timeout" and attempt.outcome == AttemptOutcome.RETRY
    assert _delivery().state == DeliveryState.PENDING


def test_a_huge_response_body_is_truncated_in_the_log(organization, endpoint, receiver, publish):
    receiver.enqueue(Reply.huge(50 * 1024 * 1024))
    publish(organization)
    attempt = Attempt.objects.get()
    assert attempt.outcome == AttemptOutcome.SUCCESS and attempt.response_truncated
    assert len(attempt.response_body) == 20 * 1024


def test_a_connection_closed_mid_response_is_a_logged_failed_attempt(organization, endpoint, receiver, publish, clock, sweep):
    receiver.enqueue(Reply(body=b"x" * 1000, close_after=100))
    publish(organization)
    attempt = Attempt.objects.get()
    assert attempt.error_class == "incomplete_response" and attempt.outcome == AttemptOutcome.RETRY
    _sweep_until_done(clock, sweep)
    assert _delivery().state == DeliveryState.SUCCEEDED


def test_a_blocked_address_is_a_failed_attempt_not_a_request(organization, endpoint, receiver, publish, settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = False  # e.g. production settings after the endpoint was saved
    publish(organization)
    attempt = Attempt.objects.get()
    assert (attempt.outcome, attempt.error_class) == (AttemptOutcome.BLOCKED, "blocked")
    assert receiver.requests == [] and _delivery().state == DeliveryState.FAILED


def test_an_unreadable_secret_is_a_retryable_error_not_a_crash(organization, endpoint, receiver, publish, settings):
    settings.WEBHOOK_SECRET_KEY = "a-different-key-than-the-one-that-sealed-the-secret"
    publish(organization)
    attempt = Attempt.objects.get()
    assert attempt.error_class == "internal_error" and "not configured" in attempt.error_message
    assert receiver.requests == [] and _delivery().state == DeliveryState.PENDING


# --- At least once: leases and the sweeper ----------------------------------------------------


def test_a_worker_lost_mid_attempt_is_logged_and_the_message_is_sent_again(
    organization, endpoint, receiver, clock, publish, sweep, monkeypatch
):
    # The first attempt's worker "dies": it claims the delivery and never records anything.
    with monkeypatch.context() as patched:
        patched.setattr(services, "_attempts_record", lambda sent: None)
        publish(organization)
    delivery = _delivery()
    assert delivery.attempt_started_at is not None and delivery.state == DeliveryState.PENDING

    clock.advance(seconds=5)
    assert sweep() == 0  # the lease (timeout + margin) has not run out
    clock.to(delivery.next_attempt_at)
    assert sweep() == 1
    delivery = _delivery()
    assert delivery.state == DeliveryState.SUCCEEDED and delivery.lost_attempts == 1
    lost, sent = Attempt.objects.order_by("number")
    assert (lost.number, lost.outcome, lost.error_class) == (1, AttemptOutcome.LOST, "worker_lost")
    assert (sent.number, sent.outcome) == (2, AttemptOutcome.SUCCESS)
    assert len(receiver.requests) == 2  # the lost attempt did reach it: a duplicate, same webhook-id
    assert {r.header("webhook-id") for r in receiver.requests} == {delivery.message.msg_id}


def test_a_delivery_whose_worker_keeps_dying_ends_dead_not_in_a_loop(
    organization, endpoint, clock, publish, sweep, monkeypatch
):
    monkeypatch.setattr(services, "_attempts_record", lambda sent: None)
    publish(organization)
    for _ in range(services.MAX_LOST_ATTEMPTS):
        clock.to(_delivery().next_attempt_at)
        sweep()
    delivery = _delivery()
    assert delivery.state == DeliveryState.DEAD and delivery.lost_attempts == services.MAX_LOST_ATTEMPTS
    assert Attempt.objects.filter(outcome=AttemptOutcome.LOST).count() == services.MAX_LOST_ATTEMPTS


def test_an_undelivered_task_is_handed_out_again_by_the_sweeper(
    organization, endpoint, receiver, clock, publish, sweep, monkeypatch
):
    with monkeypatch.context() as patched:
        patched.setattr(services, "_enqueue", lambda ids, token: None)  # the broker lost it
        publish(organization)
    assert receiver.requests == []
    clock.to(_delivery().next_attempt_at)
    assert sweep() == 1
    assert _delivery().state == DeliveryState.SUCCEEDED and len(receiver.requests) == 1
    assert not Attempt.objects.filter(outcome=AttemptOutcome.LOST).exists()


def test_a_stale_task_with_an_old_lease_does_nothing(organization, endpoint, receiver, publish):
    publish(organization)
    delivery = _delivery()
    assert services.deliveries_attempt(delivery_ids=[delivery.pk], lease=str(uuid.uuid4())) == 0
    assert services.deliveries_attempt(delivery_ids=[delivery.pk], lease="not-a-uuid") == 0
    assert len(receiver.requests) == 1


def test_a_late_success_after_the_lease_was_lost_still_counts(
    organization, endpoint, receiver, publish, clock, sweep, monkeypatch
):
    # Worker A claims and sends but is slow to record; the sweeper hands the delivery to B.
    recorded = []
    with monkeypatch.context() as patched:
        patched.setattr(services, "_attempts_record", recorded.extend)
        publish(organization)
    clock.to(_delivery().next_attempt_at)
    receiver.reply_with(Reply(status=503))
    sweep()  # B fails and schedules a retry
    assert _delivery().state == DeliveryState.PENDING
    services._attempts_record(recorded)  # A finally records its success
    delivery = _delivery()
    assert delivery.state == DeliveryState.SUCCEEDED and delivery.next_attempt_at is None


# --- Replay and recover ----------------------------------------------------------------------


def test_replay_sends_the_same_message_again_with_a_fresh_schedule(organization, admin_member, endpoint, receiver, publish, run_commit_hooks):
    receiver.enqueue(Reply(status=400))
    publish(organization)
    delivery = _delivery()
    assert delivery.state == DeliveryState.FAILED
    run_commit_hooks(services.delivery_replay, endpoint=endpoint, actor_membership=admin_member, msg_id=delivery.message.msg_id)
    delivery = _delivery()
    assert delivery.state == DeliveryState.SUCCEEDED and delivery.attempt_count == 2 and delivery.round_attempts == 1
    assert [r.header("webhook-id") for r in receiver.requests] == [delivery.message.msg_id] * 2


def test_replay_is_refused_while_disabled(organization, admin_member, endpoint, publish):
    publish(organization)
    services.endpoint_disable(endpoint=endpoint, actor_membership=admin_member)
    with pytest.raises(services.ValidationError, match="Enable the endpoint"):
        services.delivery_replay(endpoint=endpoint, actor_membership=admin_member, msg_id=_delivery().message.msg_id)


def test_recover_resends_failed_and_dead_messages_since_a_time(organization, admin_member, endpoint, receiver, publish, clock, run_commit_hooks, sweep):
    receiver.reply_with(Reply(status=404))
    old = publish(organization)
    clock.advance(hours=2)
    cutoff = clock()
    publish(organization)
    publish(organization)
    assert Delivery.objects.filter(state=DeliveryState.FAILED).count() == 3
    receiver.reply_with(Reply(status=200))
    receiver.clear()

    result = run_commit_hooks(services.endpoint_recover, endpoint=endpoint, actor_membership=admin_member, since=cutoff)
    assert (result.recovered, result.more) == (2, False)
    _sweep_until_done(clock, sweep)
    assert len(receiver.requests) == 2
    assert Delivery.objects.filter(state=DeliveryState.SUCCEEDED).count() == 2
    assert Delivery.objects.get(message__event=old).state == DeliveryState.FAILED


@pytest.mark.parametrize(("days", "message"), [(15, "at most 14 days"), (-1, "in the past")])
def test_recover_is_bounded_in_time(admin_member, endpoint, days, message):
    with pytest.raises(services.ValidationError, match=message):
        services.endpoint_recover(
            endpoint=endpoint, actor_membership=admin_member, since=timezone.now() - timedelta(days=days)
        )


def test_recover_takes_at_most_10000_messages_and_says_where_to_continue(organization, admin_member, endpoint, monkeypatch):
    monkeypatch.setattr(services, "RECOVER_MAX_MESSAGES", 3)
    base = timezone.now() - timedelta(hours=1)
    for i in range(5):
        message = Message.objects.create(
            organization=organization, msg_id=signing.message_id_new(), event_type="compliance.updated", body="{}", created_at=base + timedelta(minutes=i)
        )
        Delivery.objects.create(
            organization=organization, message=message, endpoint=endpoint, event_type=message.event_type,
            created_at=message.created_at, state=DeliveryState.DEAD,
        )
    result = services.endpoint_recover(endpoint=endpoint, actor_membership=admin_member, since=base)
    assert (result.recovered, result.more, result.resume_from) == (3, True, base + timedelta(minutes=2))
    pending = list(Delivery.objects.filter(state=DeliveryState.PENDING).order_by("next_attempt_at"))
    assert [d.created_at for d in pending] == [base + timedelta(minutes=i) for i in range(3)]
    # Spread out, oldest first, not one burst.
    assert pending[0].next_attempt_at < pending[1].next_attempt_at < pending[2].next_attempt_at


def test_re_enabling_with_recovery_resends_what_died_while_disabled(organization, admin_member, endpoint, receiver, publish, clock, run_commit_hooks, sweep):
    receiver.enqueue(Reply(status=503))
    publish(organization)
    assert _delivery().state == DeliveryState.PENDING
    services.endpoint_disable(endpoint=endpoint, actor_membership=admin_member)
    assert _delivery().state == DeliveryState.DEAD and _delivery().last_error == "Endpoint disabled"

    result = run_commit_hooks(
        services.endpoint_enable, endpoint=endpoint, actor_membership=admin_member, recover_since=clock() - timedelta(hours=1)
    )
    assert result.recovered == 1
    _sweep_until_done(clock, sweep)
    assert _delivery().state == DeliveryState.SUCCEEDED


# --- Retention -------------------------------------------------------------------------------


def test_messages_and_attempts_older_than_the_retention_are_purged(organization, endpoint, receiver, publish, clock, settings):
    publish(organization)
    clock.advance(days=80)
    publish(organization)
    settings.WEBHOOK_RETENTION_DAYS = 90
    clock.advance(days=11)
    assert services.webhooks_purge() == 1
    assert Message.objects.count() == 1 and Delivery.objects.count() == 1 and Attempt.objects.count() == 1
    assert services.webhooks_purge() == 0


def test_nul_bytes_in_a_response_are_logged_not_a_crash(organization, endpoint, receiver, publish):
    receiver.enqueue(Reply(status=500, body=b"bad\x00body"))
    publish(organization)
    attempt = Attempt.objects.get()
    assert attempt.response_body == "bad\ufffdbody" and attempt.response_status == 500


def test_a_claim_leases_every_round_of_requests_in_its_batch(
    organization, make_endpoint, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_MAX_PARALLEL = 2
    settings.WEBHOOK_TIMEOUT_SECONDS = 10
    for index in range(5):
        make_endpoint(f"/e{index}")
    captured = []
    monkeypatch.setattr(services, "_enqueue", lambda ids, token: captured.append((ids, str(token))))
    event = Event.objects.create(organization=organization, type=events.COMPLIANCE_UPDATED, payload={"framework": "x", "status": "passing"})
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.deliveries_fan_out(event=event)
    [(ids, token)] = captured
    before = timezone.now()
    assert len(services._deliveries_claim(delivery_ids=ids, lease=token)) == 5
    # 5 requests, 2 at a time: 3 rounds of the 10 s deadline, plus the margin.
    for due in Delivery.objects.values_list("next_attempt_at", flat=True):
        assert timedelta(seconds=34) <= due - before <= timedelta(seconds=36)
