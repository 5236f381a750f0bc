"""Webhooks: endpoints, the messages sent to them, one delivery per (message, endpoint), attempts.

Durable state lives here, not in the broker (CONVENTIONS §6): a delivery's ``next_attempt_at``
is its due time while it waits and its lease expiry while an attempt is in flight, so the
sweeper finds due retries and abandoned attempts with one index scan.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from portal.tenancy import TenantModel
from webhooks import ssrf

DESCRIPTION_MAX = 500
DISABLED_REASON_MAX = 300


class Endpoint(TenantModel):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    url = models.CharField(max_length=ssrf.MAX_URL_LENGTH)
    description = models.CharField(max_length=DESCRIPTION_MAX, blank=True)
    all_events = models.BooleanField(default=False, help_text="Every public event type, including future ones.")
    event_types = ArrayField(models.CharField(max_length=64), default=list, blank=True)

    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=DISABLED_REASON_MAX, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)

    # Signing secrets, sealed by webhooks.crypto. During a rotation the previous secret keeps
    # signing alongside the new one until previous_secret_expires_at.
    secret_sealed = models.TextField()
    previous_secret_sealed = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)

    # Health, kept up to date by every recorded attempt.
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="First failed attempt since the last success (auto-disable clock)."
    )

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["organization", "created_at"], name="webhook_endpoint_org_created")]

    def __str__(self) -> str:
        return self.url

    @property
    def secret_context(self) -> str:
        return f"webhooks.endpoint:{self.public_id}"

    def subscribes_to(self, event_type: str) -> bool:
        return self.all_events or event_type in self.event_types


class Message(TenantModel):
    """One event as sent to endpoints: the exact body bytes every attempt signs and sends."""

    msg_id = models.CharField(max_length=40, unique=True)
    event = models.OneToOneField(
        "portal.Event", on_delete=models.SET_NULL, null=True, blank=True, related_name="webhook_message"
    )
    event_type = models.CharField(max_length=64)
    # The body as sent, kept as text: jsonb would reorder keys and change the bytes.
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="webhook_message_org_created"),
            models.Index(fields=["created_at"], name="webhook_message_created"),
        ]

    def __str__(self) -> str:
        return f"{self.msg_id} {self.event_type}"

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    DEAD = "dead", "Dead"


class Delivery(TenantModel):
    """A message's journey to one endpoint."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    # Copied from the message so the endpoint's log filters and sorts without a join.
    event_type = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    # Pending: when the next attempt is due, or, while leased, when the lease runs out.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Whoever holds this token may attempt the delivery (set by the fan-out and the sweeper).
    lease_id = models.UUIDField(null=True, blank=True)
    # Set while an attempt is in flight; still set when the sweeper finds the lease expired
    # means the worker died mid-attempt.
    attempt_started_at = models.DateTimeField(null=True, blank=True)
    attempt_count = models.PositiveIntegerField(default=0, help_text="Attempts made, lost ones included.")
    round_attempts = models.PositiveIntegerField(default=0, help_text="Attempts since the last replay or recovery.")
    lost_attempts = models.PositiveSmallIntegerField(default=0)

    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["message", "endpoint"], name="webhook_delivery_once_per_endpoint"),
        ]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_endpoint"),
            models.Index(fields=["endpoint", "state", "-created_at"], name="webhook_delivery_ep_state"),
            # The sweeper's scan: only deliveries still in play are in this index.
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=models.Q(state="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} → {self.endpoint_id} ({self.state})"

    @property
    def in_flight(self) -> bool:
        return self.attempt_started_at is not None


class AttemptOutcome(models.TextChoices):
    SUCCESS = "success", "Succeeded"
    RETRY = "retry", "Failed, will retry"
    FAIL = "fail", "Failed, not retried"
    GONE = "gone", "410 Gone: endpoint disabled"
    BLOCKED = "blocked", "Address refused"
    LOST = "lost", "Worker stopped mid-attempt"


class Attempt(TenantModel):
    """One HTTP request to an endpoint and what came back.

    The request body is the message's body, byte for byte, so it is not stored again here.
    """

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="+")
    number = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=10, choices=AttemptOutcome.choices)
    # Whether this attempt ended the delivery: a retryable failure on the last attempt is dead.
    final = models.BooleanField(default=False)
    url = models.CharField(max_length=ssrf.MAX_URL_LENGTH)
    request_headers = models.JSONField(default=dict)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict)
    response_body = models.TextField(blank=True)
    response_truncated = models.BooleanField(default=False)
    latency_ms = models.PositiveIntegerField(default=0)
    error_class = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=600, blank=True)
    remote_address = models.CharField(max_length=45, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["delivery", "created_at"], name="webhook_attempt_delivery"),
            # Endpoint health (success rate over the last day).
            models.Index(fields=["endpoint", "created_at"], name="webhook_attempt_endpoint"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"

    @property
    def succeeded(self) -> bool:
        return self.outcome == AttemptOutcome.SUCCESS
