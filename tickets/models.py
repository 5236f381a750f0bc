"""Support tickets: tickets, their conversation, attachments, followers, audit trail and SLAs."""

from __future__ import annotations

import uuid
from datetime import time
from zoneinfo import available_timezones

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.db import models

from portal.tenancy import TenantModel

SUBJECT_MAX = 255
BODY_MAX = 20_000


class Status(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    WAITING_ON_CUSTOMER = "waiting_on_customer", "Waiting on customer"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


class Priority(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


# Sort order for "most urgent first".
PRIORITY_RANK = {Priority.CRITICAL: 0, Priority.HIGH: 1, Priority.MEDIUM: 2, Priority.LOW: 3}


class Category(models.TextChoices):
    GENERAL = "general", "General question"
    TECHNICAL = "technical", "Technical issue"
    BILLING = "billing", "Billing"
    ACCOUNT = "account", "Account and access"
    SECURITY = "security", "Security"


class Queue(models.TextChoices):
    SUPPORT = "support", "Support"
    INFRASTRUCTURE = "infrastructure", "Infrastructure"
    BILLING = "billing", "Billing"
    SECURITY = "security", "Security"


CATEGORY_QUEUE = {
    Category.GENERAL: Queue.SUPPORT,
    Category.TECHNICAL: Queue.INFRASTRUCTURE,
    Category.BILLING: Queue.BILLING,
    Category.ACCOUNT: Queue.SUPPORT,
    Category.SECURITY: Queue.SECURITY,
}


class BusinessCalendar(models.Model):
    """Working hours in one time zone; SLA clocks only run inside them."""

    name = models.CharField(max_length=100, unique=True)
    timezone = models.CharField(max_length=64, default="UTC")
    weekdays = models.JSONField(default=list, help_text="Working days, 0 = Monday … 6 = Sunday, e.g. [0,1,2,3,4].")
    start_time = models.TimeField(default=time(9, 0))
    end_time = models.TimeField(default=time(17, 0))

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # Every ticket of a priority whose policy uses this calendar computes its SLA from it:
        # a calendar the SLA arithmetic cannot read must never be saved.
        errors = {}
        if self.timezone not in available_timezones():
            errors["timezone"] = f"Unknown time zone {self.timezone!r}: use an IANA name such as Europe/Paris or UTC."
        weekdays = self.weekdays
        if (
            not isinstance(weekdays, list)
            or not weekdays
            or not all(type(day) is int and 0 <= day <= 6 for day in weekdays)
        ):
            errors["weekdays"] = "List the working days as numbers, 0 = Monday … 6 = Sunday, e.g. [0, 1, 2, 3, 4]."
        else:
            self.weekdays = sorted(set(weekdays))
        if self.start_time is not None and self.end_time is not None and self.end_time <= self.start_time:
            errors["end_time"] = "The working day must end after it starts."
        if errors:
            raise ValidationError(errors)


class Holiday(models.Model):
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="holiday_unique_per_calendar")]
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class SlaPolicy(models.Model):
    """First-response and resolution targets for one priority (editable by staff in admin)."""

    priority = models.CharField(max_length=10, choices=Priority.choices, unique=True)
    first_response_minutes = models.PositiveIntegerField()
    resolution_minutes = models.PositiveIntegerField()
    calendar = models.ForeignKey(
        BusinessCalendar,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        help_text="Leave empty for a 24×7 clock.",
    )

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"

    def __str__(self) -> str:
        return f"{self.get_priority_display()}: first response {self.first_response_minutes} min"


class TicketCounter(TenantModel):
    """The last ticket number used per organization (a row lock hands out the next)."""

    last_number = models.PositiveIntegerField(default=1000)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization"], name="ticket_counter_one_per_org")]


class Ticket(TenantModel):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number = models.PositiveIntegerField()
    subject = models.CharField(max_length=SUBJECT_MAX)
    description = models.TextField()
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.OPEN)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.MEDIUM)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.GENERAL)
    queue = models.CharField(max_length=20, choices=Queue.choices, default=Queue.SUPPORT)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="requested_tickets")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_tickets",
        limit_choices_to={"is_staff": True},
    )
    followers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="TicketFollower", related_name="followed_tickets"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    comment_count = models.PositiveIntegerField(default=0, help_text="Public comments.")

    # SLA clock. Due and warning times are derived from sla_started_at, the policy's targets and
    # the business time spent paused; they are stored so the sweeper finds due rows by index.
    sla_started_at = models.DateTimeField(null=True, blank=True)
    sla_paused_at = models.DateTimeField(null=True, blank=True)
    sla_paused_seconds = models.PositiveIntegerField(default=0, help_text="Business seconds spent paused.")
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    first_response_warn_at = models.DateTimeField(null=True, blank=True)
    first_response_warned_at = models.DateTimeField(null=True, blank=True)
    first_response_breached_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    resolution_warn_at = models.DateTimeField(null=True, blank=True)
    resolution_warned_at = models.DateTimeField(null=True, blank=True)
    resolution_breached_at = models.DateTimeField(null=True, blank=True)

    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "number"], name="ticket_number_unique_per_org"),
        ]
        indexes = [
            GinIndex(fields=["search_vector"], name="ticket_search_gin"),
            models.Index(fields=["organization", "-updated_at"], name="ticket_org_updated"),
            models.Index(fields=["organization", "status", "-updated_at"], name="ticket_org_status_updated"),
            models.Index(fields=["organization", "-created_at"], name="ticket_org_created"),
            # The list's assignee filter choices: an index-only scan of the organization's entries.
            models.Index(fields=["organization", "assignee"], name="ticket_org_assignee"),
            # The SLA sweeper's scans: only rows whose clock still runs are indexed.
            models.Index(
                fields=["first_response_warn_at"],
                name="ticket_fr_warn_due",
                condition=models.Q(first_response_at__isnull=True, first_response_warned_at__isnull=True),
            ),
            models.Index(
                fields=["first_response_due_at"],
                name="ticket_fr_breach_due",
                condition=models.Q(first_response_at__isnull=True, first_response_breached_at__isnull=True),
            ),
            models.Index(
                fields=["resolution_warn_at"],
                name="ticket_res_warn_due",
                condition=models.Q(resolved_at__isnull=True, resolution_warned_at__isnull=True),
            ),
            models.Index(
                fields=["resolution_due_at"],
                name="ticket_res_breach_due",
                condition=models.Q(resolved_at__isnull=True, resolution_breached_at__isnull=True),
            ),
            models.Index(fields=["closed_at"], name="ticket_closed", condition=models.Q(closed_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.subject}"

    @property
    def reference(self) -> str:
        return f"#{self.number}"


class TicketFollower(TenantModel):
    # No index of its own: ticket_follower_once (ticket, user) serves every lookup by ticket.
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ticket", "user"], name="ticket_follower_once")]


class Comment(TenantModel):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    internal = models.BooleanField(default=False, help_text="Agent-only note: never shown to customers.")
    by_agent = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # A ticket's thread is read through the ticket_id index (sorting a thread costs nothing);
        # a (ticket, created_at) index was never chosen and only slowed every write (docs/adr/0012).
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Comment on #{self.ticket_id} by {self.author_id}"


def attachment_path(instance: Attachment, filename: str) -> str:
    # Random names: an upload's name never decides where it lands or what it overwrites.
    return f"attachments/{instance.organization_id}/{uuid.uuid4().hex}"


class Attachment(TenantModel):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, null=True, blank=True, related_name="attachments")
    file = models.FileField(upload_to=attachment_path)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.filename


class TicketChange(TenantModel):
    """The audit trail: who changed what, from what to what, when."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="changes")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    field = models.CharField(max_length=40)
    old_value = models.CharField(max_length=300, blank=True)
    new_value = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]  # read by ticket_id, like comments

    def __str__(self) -> str:
        return f"{self.field}: {self.old_value} → {self.new_value}"
