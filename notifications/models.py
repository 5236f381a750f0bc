"""Notifications, preferences, and the durable stream of live pushes."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from portal.tenancy import TenantModel


class Kind(models.TextChoices):
    TICKET = "ticket", "Tickets"
    BILLING = "billing", "Billing"
    COMPLIANCE = "compliance", "Compliance"
    ALERT = "alert", "Alerts"
    INFO = "info", "Announcements"


# Alerts (SLA breaches, anomalies, disabled webhooks) can't be switched off.
MANDATORY_KINDS = frozenset({Kind.ALERT})


class Notification(TenantModel):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=500, blank=True)
    event = models.ForeignKey("portal.Event", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # Updates to the same thing (a ticket) coalesce into one unread row, bumped GitHub-style.
    target = models.CharField(max_length=100, blank=True)
    updates = models.PositiveIntegerField(default=1)
    read_at = models.DateTimeField(null=True, blank=True)
    email_due = models.BooleanField(default=False)
    emailed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "organization", "target"],
                condition=models.Q(read_at__isnull=True) & ~models.Q(target=""),
                name="notification_one_unread_per_target",
            ),
        ]
        indexes = [
            models.Index(fields=["recipient", "organization", "-updated_at"], name="notification_inbox"),
            models.Index(
                fields=["recipient", "organization"],
                name="notification_unread",
                condition=models.Q(read_at__isnull=True),
            ),
            models.Index(fields=["emailed_at"], name="notification_email_due", condition=models.Q(email_due=True)),
        ]

    def __str__(self) -> str:
        return self.title


class Preference(models.Model):
    class Channel(models.TextChoices):
        IN_APP = "in_app", "In the portal"
        EMAIL = "email", "In the portal and by email"
        OFF = "off", "Off"

    class Digest(models.TextChoices):
        IMMEDIATE = "immediate", "Right away"
        HOURLY = "hourly", "Hourly digest"
        DAILY = "daily", "Daily digest"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.IN_APP)
    digest = models.CharField(max_length=10, choices=Digest.choices, default=Digest.IMMEDIATE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="preference_one_per_kind")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}: {self.channel}"


class Push(TenantModel):
    """One message pushed to live clients: to one user, or (no user) to the whole organization.

    The id is the stream position clients resume from; rows live for the resume window.
    """

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    type = models.CharField(max_length=32)
    data = models.JSONField()
    html = models.TextField(blank=True, help_text="Fragments for browsers, swapped out of band by htmx.")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "id"], name="push_org_stream"),
            models.Index(fields=["created_at"], name="push_unsent", condition=models.Q(sent_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.id}"
