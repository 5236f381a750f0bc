"""Every write to tickets: validation, workflow, SLA clock, audit trail and events, in one place.

Pages, the API, admin (and its bulk actions) and tasks all call these functions, so the rules
hold for every entry point.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from portal import events
from portal.models import Membership, Organization
from portal.params import whole_number
from tickets import caching, sla
from tickets.models import (
    BODY_MAX,
    CATEGORY_QUEUE,
    SUBJECT_MAX,
    Attachment,
    BusinessCalendar,
    Category,
    Comment,
    Priority,
    Queue,
    SlaPolicy,
    Status,
    Ticket,
    TicketChange,
    TicketFollower,
)

logger = logging.getLogger(__name__)
User = get_user_model()
T = TypeVar("T")

# --- The workflow, in one place -------------------------------------------------------------

TRANSITIONS: dict[str, frozenset[str]] = {
    Status.OPEN: frozenset({Status.IN_PROGRESS, Status.WAITING_ON_CUSTOMER, Status.RESOLVED, Status.CLOSED}),
    Status.IN_PROGRESS: frozenset({Status.OPEN, Status.WAITING_ON_CUSTOMER, Status.RESOLVED, Status.CLOSED}),
    Status.WAITING_ON_CUSTOMER: frozenset({Status.OPEN, Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED}),
    Status.RESOLVED: frozenset({Status.OPEN, Status.CLOSED}),
    Status.CLOSED: frozenset({Status.OPEN}),
}
# Customers may close their tickets and reopen resolved or closed ones; agents may do anything above.
CUSTOMER_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.OPEN: frozenset({Status.CLOSED}),
    Status.IN_PROGRESS: frozenset({Status.CLOSED}),
    Status.WAITING_ON_CUSTOMER: frozenset({Status.CLOSED}),
    Status.RESOLVED: frozenset({Status.OPEN, Status.CLOSED}),
    Status.CLOSED: frozenset({Status.OPEN}),
}
# The SLA clock runs only while the ticket is with the provider.
CLOCK_RUNS = frozenset({Status.OPEN, Status.IN_PROGRESS})
# A customer's reply puts the ticket back in the provider's court.
REOPENED_BY_CUSTOMER_REPLY = frozenset({Status.RESOLVED, Status.WAITING_ON_CUSTOMER})

DEFAULT_TARGETS = {  # minutes: (first response, resolution)
    Priority.CRITICAL: (60, 8 * 60),
    Priority.HIGH: (4 * 60, 24 * 60),
    Priority.MEDIUM: (24 * 60, 3 * 24 * 60),
    Priority.LOW: (48 * 60, 7 * 24 * 60),
}

ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
ATTACHMENTS_PER_UPLOAD = 5
# Extension → (content type, magic-number prefixes; empty: any text without NUL bytes).
ATTACHMENT_TYPES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    "png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    "jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "gif": ("image/gif", (b"GIF87a", b"GIF89a")),
    "webp": ("image/webp", (b"RIFF",)),
    "pdf": ("application/pdf", (b"%PDF-",)),
    "zip": ("application/zip", (b"PK\x03\x04",)),
    "txt": ("text/plain", ()),
    "log": ("text/plain", ()),
    "csv": ("text/csv", ()),
    "json": ("application/json", ()),
}


def is_agent(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_staff)


def allowed_transitions(*, ticket: Ticket, actor: Any) -> list[str]:
    table = TRANSITIONS if is_agent(actor) else CUSTOMER_TRANSITIONS
    return [s for s in Status.values if s in table[ticket.status]]


def ticket_check_transition(*, ticket: Ticket, actor: Any, to: str) -> None:
    if to not in Status.values:
        raise ValidationError({"status": f"Unknown status {to!r}; choose one of: {', '.join(Status.values)}."})
    allowed = allowed_transitions(ticket=ticket, actor=actor)
    if to not in allowed:
        choices = ", ".join(allowed) or "none"
        raise ValidationError({"status": f"Cannot change status from {ticket.status} to {to}. Allowed: {choices}."})


# --- SLA clock ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    first_response_minutes: int
    resolution_minutes: int
    calendar: sla.Calendar


def _calendar(model: BusinessCalendar | None) -> sla.Calendar:
    if model is None:
        return sla.ALWAYS
    return sla.Calendar(
        timezone=model.timezone,
        weekdays=frozenset(int(d) for d in model.weekdays),
        start=model.start_time,
        end=model.end_time,
        holidays=frozenset(h.date for h in model.holidays.all()),
    )


def sla_policy_for(priority: str) -> Policy:
    policy = SlaPolicy.objects.select_related("calendar").filter(priority=priority).first()
    if policy is None:
        first, resolution = DEFAULT_TARGETS[priority]
        return Policy(first, resolution, sla.ALWAYS)
    return Policy(policy.first_response_minutes, policy.resolution_minutes, _calendar(policy.calendar))


def _sla_recompute(ticket: Ticket, policy: Policy) -> None:
    first = sla.deadlines(
        started_at=ticket.sla_started_at,
        target_minutes=policy.first_response_minutes,
        paused_seconds=ticket.sla_paused_seconds,
        calendar=policy.calendar,
    )
    resolution = sla.deadlines(
        started_at=ticket.sla_started_at,
        target_minutes=policy.resolution_minutes,
        paused_seconds=ticket.sla_paused_seconds,
        calendar=policy.calendar,
    )
    ticket.first_response_due_at, ticket.first_response_warn_at = first.due_at, first.warn_at
    ticket.resolution_due_at, ticket.resolution_warn_at = resolution.due_at, resolution.warn_at


SLA_FIELDS = [
    "sla_paused_at",
    "sla_paused_seconds",
    "first_response_due_at",
    "first_response_warn_at",
    "resolution_due_at",
    "resolution_warn_at",
]


def _sla_on_status_change(ticket: Ticket, old: str, new: str, now: datetime) -> None:
    was_running, runs = old in CLOCK_RUNS, new in CLOCK_RUNS
    if was_running and not runs:
        ticket.sla_paused_at = now
    elif runs and not was_running and ticket.sla_paused_at is not None:
        policy = sla_policy_for(ticket.priority)
        ticket.sla_paused_seconds += int(sla.business_seconds_between(ticket.sla_paused_at, now, policy.calendar))
        ticket.sla_paused_at = None
        _sla_recompute(ticket, policy)


@dataclass(frozen=True)
class SlaStatus:
    target: str  # "first_response" | "resolution"
    state: str  # "met" | "paused" | "on_track" | "at_risk" | "breached"
    due_at: datetime | None


def ticket_sla_status(*, ticket: Ticket, now: datetime | None = None) -> SlaStatus:
    """What the customer should see: the target that matters now and where it stands."""
    now = now or timezone.now()
    if ticket.first_response_at is None and ticket.status not in (Status.RESOLVED, Status.CLOSED):
        target, due, warn, met = "first_response", ticket.first_response_due_at, ticket.first_response_warn_at, False
    else:
        target, due, warn = "resolution", ticket.resolution_due_at, ticket.resolution_warn_at
        met = ticket.resolved_at is not None
    if met or due is None:
        return SlaStatus(target, "met", due)
    if ticket.sla_paused_at is not None:
        return SlaStatus(target, "paused", due)
    if now >= due:
        return SlaStatus(target, "breached", due)
    if warn is not None and now >= warn:
        return SlaStatus(target, "at_risk", due)
    return SlaStatus(target, "on_track", due)


# --- Validation helpers ---------------------------------------------------------------------


def subject_clean(subject: str) -> str:
    subject = (subject or "").strip()
    if not subject:
        raise ValidationError({"subject": "Enter a subject."})
    if len(subject) > SUBJECT_MAX:
        raise ValidationError({"subject": f"Keep the subject to {SUBJECT_MAX} characters (it has {len(subject)})."})
    return subject


def body_clean(field: str, body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ValidationError({field: "This can't be empty."})
    if len(body) > BODY_MAX:
        raise ValidationError({field: f"Keep it to {BODY_MAX:,} characters (it has {len(body):,})."})
    return body


def _clean_choice(field: str, value: str, choices: type) -> str:
    if value not in choices.values:
        raise ValidationError({field: f"Unknown {field} {value!r}; choose one of: {', '.join(choices.values)}."})
    return value


def _is_org_admin(*, organization: Organization, user: Any) -> bool:
    return Membership.objects.for_organization(organization).filter(user=user, role=Membership.Role.ADMIN).exists()


def _is_members(membership: Membership | None, *, organization_id: int, user: Any) -> bool:
    """``membership`` is the caller's already resolved membership of that organization (no query)."""
    return (
        membership is not None
        and membership.organization_id == organization_id
        and membership.user_id == getattr(user, "pk", None)
    )


def _require_can_see(*, ticket: Ticket, actor: Any, membership: Membership | None = None) -> None:
    if is_agent(actor) or _is_members(membership, organization_id=ticket.organization_id, user=actor):
        return
    if not Membership.objects.for_organization(ticket.organization).filter(user=actor).exists():
        raise ValidationError("You are not a member of this ticket's organization.")


def _payload(ticket: Ticket, **extra: Any) -> dict[str, Any]:
    return {
        "ticket": str(ticket.public_id),
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        **extra,
    }


def _audit(ticket: Ticket, actor: Any, changes: dict[str, tuple[str, str]]) -> None:
    TicketChange.objects.bulk_create(
        TicketChange(
            organization_id=ticket.organization_id,
            ticket=ticket,
            actor=actor if actor is not None and actor.is_authenticated else None,
            field=field,
            old_value=str(old)[:300],
            new_value=str(new)[:300],
        )
        for field, (old, new) in changes.items()
    )


def _display_name(user: Any) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else ""


def _next_number(organization: Organization) -> int:
    # One statement: concurrent creators in the same organization serialise on the counter row.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO tickets_ticketcounter (organization_id, last_number) VALUES (%s, 1001)
            ON CONFLICT (organization_id) DO UPDATE SET last_number = tickets_ticketcounter.last_number + 1
            RETURNING last_number
            """,
            [organization.pk],
        )
        return cursor.fetchone()[0]


# The full-text document: subject (A), description (B), public comments in conversation order (C).
# Each text is indexed stemmed (english) and as typed (simple): stemming finds "fails" for
# "failing", while the unstemmed copy lets a half-typed word ("replica") prefix-match a word
# whose stem is shorter than the prefix ("replication" stems to "replic").
_VECTOR_SQL = """
    setweight(to_tsvector('english', {subject}), 'A') || setweight(to_tsvector('simple', {subject}), 'A')
    || setweight(to_tsvector('english', {description}), 'B') || setweight(to_tsvector('simple', {description}), 'B')
    || setweight(to_tsvector('english', {replies}), 'C') || setweight(to_tsvector('simple', {replies}), 'C')
"""
# How much of the public replies is indexed: the first REPLIES_INDEXED_CHARS characters of the
# conversation, oldest first (where the problem is described; later words of a long thread are
# found through the ticket anyway). Why a cap, and why this number: a tsvector holds at most
# 1 MB of lexemes and positions (MAXSTRPOS, 1,048,575 bytes); past it every UPDATE of the row
# fails with "string is too long for tsvector", so an uncapped thread would end up refusing
# every reply and edit. Each indexed character costs at most ~12 bytes of the vector (measured
# worst cases: hyphenated words of 4-byte letters, where the compound and every part are
# lexemes, each with a header and a position; most text costs 2-5 bytes); we budget 16 bytes.
# The subject (255) and description (BODY_MAX) are indexed whole, so the document is at most
# 255 + 20,000 + 40,000 characters x 16 bytes = 964,080 bytes < 1,048,575.
REPLIES_INDEXED_CHARS = 40_000
# The public replies of the ticket row being updated, oldest first (deterministic positions for ranking).
_REPLIES_SQL = f"""coalesce(left((
    SELECT string_agg(c.body, ' ' ORDER BY c.created_at, c.id) FROM tickets_comment c
    WHERE c.ticket_id = "tickets_ticket"."id" AND NOT c.internal), {int(REPLIES_INDEXED_CHARS)}), '')"""  # noqa: S608 - a constant


def _search_vector(ticket: Ticket, *, replies: bool = True) -> RawSQL:
    """The vector of ``ticket``'s current subject and description, as a value for INSERT or UPDATE.

    With ``replies``, the replies are read by the statement itself (an UPDATE of that row); a new
    ticket has none.
    """
    sql = _VECTOR_SQL.format(subject="%s", description="%s", replies=_REPLIES_SQL if replies else "''")
    params = [ticket.subject, ticket.subject, ticket.description, ticket.description]
    # Constant SQL of this module; the texts travel as parameters.
    return RawSQL(sql, params, output_field=SearchVectorField())  # noqa: S611


def ticket_search_refresh(*, ticket_id: int) -> None:
    """Rebuild one ticket's full-text vector from what is stored (subject, description, replies)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tickets_ticket SET search_vector = "  # noqa: S608 - constant SQL, the id is a parameter
            + _VECTOR_SQL.format(subject="subject", description="description", replies=_REPLIES_SQL)
            + " WHERE id = %s",
            [ticket_id],
        )


def _save_with_vector(ticket: Ticket, fields: Iterable[str], *, now: datetime) -> None:
    """``ticket.save(update_fields=fields)`` and the search refresh in one UPDATE.

    Each UPDATE of a ticket row writes a new row version into every index of the table; one
    statement instead of two halves that work (and the WAL).
    """
    ticket.updated_at = now
    values = {name: getattr(ticket, name) for name in {*fields, "updated_at"}}
    Ticket.objects.filter(pk=ticket.pk).update(**values, search_vector=_search_vector(ticket))


# --- Attachments ----------------------------------------------------------------------------


def attachments_validate(files: Sequence[UploadedFile]) -> list[tuple[UploadedFile, str, str]]:
    """Check every upload before anything is written; returns (file, safe name, content type)."""
    if len(files) > ATTACHMENTS_PER_UPLOAD:
        raise ValidationError({"attachments": f"Attach at most {ATTACHMENTS_PER_UPLOAD} files at a time."})
    checked = []
    for upload in files:
        name = (upload.name or "file").replace("\\", "/").split("/")[-1][:200] or "file"
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if extension not in ATTACHMENT_TYPES:
            allowed = ", ".join(sorted(ATTACHMENT_TYPES))
            raise ValidationError({"attachments": f"{name}: this type of file is not allowed. Allowed: {allowed}."})
        if upload.size == 0:
            raise ValidationError({"attachments": f"{name} is empty."})
        if upload.size > ATTACHMENT_MAX_BYTES:
            raise ValidationError(
                {
                    "attachments": f"{name} is {filesizeformat(upload.size)}; the limit is {filesizeformat(ATTACHMENT_MAX_BYTES)}."
                }
            )
        content_type, magic = ATTACHMENT_TYPES[extension]
        upload.seek(0)
        head = upload.read(2048)
        upload.seek(0)
        if magic and not head.startswith(magic):
            raise ValidationError({"attachments": f"{name} does not look like a .{extension} file."})
        if not magic and b"\x00" in head:
            raise ValidationError({"attachments": f"{name} is not a text file."})
        checked.append((upload, name, content_type))
    return checked


# The storage paths written by ``_attachments_save`` during the current ``_atomic_with_files`` call.
_stored_files: ContextVar[list[str] | None] = ContextVar("tickets_stored_files", default=None)


def _atomic_with_files(func: Callable[..., T]) -> Callable[..., T]:
    """``transaction.atomic`` for services that store attachments: files are not transactional,
    so those the call stored are deleted again when it fails (an error after they were stored,
    or a failed commit) instead of staying in storage with no row pointing at them. The
    services also store files last, after every other write, so an error rarely gets that far.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        stored: list[str] = []
        committed: list[bool] = []
        token = _stored_files.set(stored)
        try:
            with transaction.atomic():
                # The first commit hook: an error raised by a later one (e.g. a cache drop while Redis
                # is down) comes after the rows are committed, and their files must stay.
                transaction.on_commit(lambda: committed.append(True))
                return func(*args, **kwargs)
        except BaseException:
            if not committed:
                _files_delete(stored)
            raise
        finally:
            _stored_files.reset(token)

    return wrapper


def _attachments_save(
    *, ticket: Ticket, comment: Comment | None, uploader: Any, checked: Iterable[tuple[UploadedFile, str, str]]
) -> list[Attachment]:
    """Store the files and their rows; call it inside ``_atomic_with_files``, after the other writes."""
    stored = _stored_files.get()
    if stored is None:
        raise RuntimeError("_attachments_save needs an @_atomic_with_files service around it.")
    saved = []
    for upload, name, content_type in checked:
        attachment = Attachment(
            organization_id=ticket.organization_id,
            ticket=ticket,
            comment=comment,
            filename=name,
            content_type=content_type,
            size=upload.size,
            uploaded_by=uploader,
        )
        attachment.file.save(name, upload, save=False)
        stored.append(attachment.file.name)
        attachment.save()
        saved.append(attachment)
    return saved


# --- Tickets ------------------------------------------------------------------------------


@_atomic_with_files
def ticket_create(
    *,
    organization: Organization,
    requester: Any,
    subject: str,
    description: str,
    priority: str = Priority.MEDIUM,
    category: str = Category.GENERAL,
    attachments: Sequence[UploadedFile] = (),
    membership: Membership | None = None,
) -> Ticket:
    """Open a ticket. ``membership``: the requester's membership if the caller already resolved it."""
    subject = subject_clean(subject)
    description = body_clean("description", description)
    priority = _clean_choice("priority", priority, Priority)
    category = _clean_choice("category", category, Category)
    checked = attachments_validate(attachments)
    if (
        not _is_members(membership, organization_id=organization.pk, user=requester)
        and not Membership.objects.for_organization(organization).filter(user=requester).exists()
    ):
        raise ValidationError({"requester": "The requester must be a member of the organization."})
    now = timezone.now()
    ticket = Ticket(
        organization=organization,
        number=_next_number(organization),
        subject=subject,
        description=description,
        priority=priority,
        category=category,
        queue=CATEGORY_QUEUE[category],
        requester=requester,
        sla_started_at=now,
    )
    _sla_recompute(ticket, sla_policy_for(priority))
    ticket.search_vector = _search_vector(ticket, replies=False)  # computed by the INSERT itself
    ticket.save()
    del ticket.search_vector  # deferred from here on: never written back from this instance
    TicketFollower.objects.create(organization=organization, ticket=ticket, user=requester)
    _audit(ticket, requester, {"created": ("", f"{ticket.get_priority_display()} priority")})
    events.publish(
        events.TICKET_CREATED,
        organization=organization,
        actor=requester,
        data=_payload(ticket, requester=str(requester.pk)),
    )
    _attachments_save(ticket=ticket, comment=None, uploader=requester, checked=checked)  # last: see the decorator
    return ticket


CUSTOMER_EDITABLE = frozenset({"status", "subject", "description"})
AGENT_EDITABLE = frozenset({"status", "priority", "assignee", "category", "queue", "subject", "description"})


@transaction.atomic
def ticket_update(*, ticket: Ticket, actor: Any, **changes: Any) -> Ticket:
    """Apply ``changes`` (status, priority, assignee, category, queue, subject, description).

    Customers may close/reopen tickets and edit the subject and description of tickets they
    requested; assignee, priority, queue and every SLA field are for agents only.
    """
    ticket = Ticket.objects.select_for_update().defer("search_vector").get(pk=ticket.pk)
    _require_can_see(ticket=ticket, actor=actor)
    agent = is_agent(actor)
    editable = AGENT_EDITABLE if agent else CUSTOMER_EDITABLE
    forbidden = sorted(set(changes) - editable)
    if forbidden:
        raise ValidationError(dict.fromkeys(forbidden, "Only support agents can change this."))
    if not agent and {"subject", "description"} & set(changes) and ticket.requester_id != actor.pk:
        raise ValidationError("Only the requester can edit the subject and description.")
    if (
        not agent
        and "status" in changes
        and ticket.requester_id != actor.pk
        and not _is_org_admin(organization=ticket.organization, user=actor)
    ):
        raise ValidationError(
            {"status": "Only the requester or an organization admin can close or reopen this ticket."}
        )

    now = timezone.now()
    audit: dict[str, tuple[str, str]] = {}
    event_changes: dict[str, dict[str, Any]] = {}
    update_fields: set[str] = set()

    def record(field: str, old: Any, new: Any, shown_old: str | None = None, shown_new: str | None = None) -> None:
        audit[field] = (
            shown_old if shown_old is not None else str(old or ""),
            shown_new if shown_new is not None else str(new or ""),
        )
        event_changes[field] = {"from": old, "to": new}

    if "subject" in changes:
        subject = subject_clean(changes["subject"])
        if subject != ticket.subject:
            record("subject", ticket.subject, subject)
            ticket.subject = subject
            update_fields.add("subject")
    if "description" in changes:
        description = body_clean("description", changes["description"])
        if description != ticket.description:
            audit["description"] = ("", "edited")
            event_changes["description"] = {"from": None, "to": "edited"}
            ticket.description = description
            update_fields.add("description")
    if "category" in changes:
        category = _clean_choice("category", changes["category"], Category)
        if category != ticket.category:
            record("category", ticket.category, category)
            ticket.category = category
            update_fields.add("category")
    if "queue" in changes:
        queue = _clean_choice("queue", changes["queue"], Queue)
        if queue != ticket.queue:
            record("queue", ticket.queue, queue)
            ticket.queue = queue
            update_fields.add("queue")
    if "assignee" in changes:
        assignee = changes["assignee"]
        if assignee is not None and not (getattr(assignee, "is_staff", False) and assignee.is_active):
            raise ValidationError({"assignee": "Tickets can only be assigned to active support agents."})
        if (assignee.pk if assignee else None) != ticket.assignee_id:
            record(
                "assignee",
                str(ticket.assignee_id) if ticket.assignee_id else None,
                str(assignee.pk) if assignee else None,
                _display_name(ticket.assignee),
                _display_name(assignee),
            )
            ticket.assignee = assignee
            update_fields.add("assignee")
            caching.assignee_choices_changed(ticket.organization_id)
    if "priority" in changes:
        priority = _clean_choice("priority", changes["priority"], Priority)
        if priority != ticket.priority:
            record("priority", ticket.priority, priority)
            ticket.priority = priority
            # New targets from the same start: the clock does not restart.
            _sla_recompute(ticket, sla_policy_for(priority))
            update_fields |= {"priority", *SLA_FIELDS}
    if "status" in changes and changes["status"] != ticket.status:
        new = changes["status"]
        ticket_check_transition(ticket=ticket, actor=actor, to=new)
        record("status", ticket.status, new)
        _apply_status(ticket, new, now)
        update_fields |= {"status", "resolved_at", "closed_at", *SLA_FIELDS}

    if not update_fields:
        return ticket
    if update_fields & {"subject", "description"}:
        _save_with_vector(ticket, update_fields, now=now)
    else:
        ticket.save(update_fields=[*update_fields, "updated_at"])
    _audit(ticket, actor, audit)
    events.publish(
        events.TICKET_UPDATED,
        organization=ticket.organization,
        actor=actor,
        data=_payload(ticket, changes=event_changes),
    )
    return ticket


def _apply_status(ticket: Ticket, new: str, now: datetime) -> None:
    old = ticket.status
    ticket.status = new
    if new == Status.RESOLVED:
        ticket.resolved_at = now
    elif new == Status.CLOSED:
        ticket.closed_at = now
        ticket.resolved_at = ticket.resolved_at or now
    elif old in (Status.RESOLVED, Status.CLOSED):
        # Reopened: the resolution target is live again (time spent resolved counts as paused).
        ticket.resolved_at = None
        ticket.closed_at = None
    _sla_on_status_change(ticket, old, new, now)


def ticket_change_status(*, ticket: Ticket, actor: Any, status: str) -> Ticket:
    return ticket_update(ticket=ticket, actor=actor, status=status)


@_atomic_with_files
def comment_create(
    *,
    ticket: Ticket,
    author: Any,
    body: str,
    internal: bool = False,
    attachments: Sequence[UploadedFile] = (),
    membership: Membership | None = None,
) -> Comment:
    """Add a reply (or, for agents, an internal note).

    An agent's first public reply meets the first-response target; a customer's reply on a
    resolved ticket, or one waiting on them, reopens it. ``membership``: the author's membership
    if the caller already resolved it. ``comment.ticket`` is the ticket as this reply left it, and
    ``comment.files`` the reply's attachments.
    """
    body = body_clean("body", body)
    agent = is_agent(author)
    if internal and not agent:
        raise ValidationError({"internal": "Only support agents can write internal notes."})
    checked = attachments_validate(attachments)
    ticket = (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("organization")
        .defer("search_vector")  # the row's largest column, never read: the UPDATE recomputes it
        .get(pk=ticket.pk)
    )
    _require_can_see(ticket=ticket, actor=author, membership=membership)
    if ticket.status == Status.CLOSED:
        raise ValidationError({"body": "This ticket is closed. Reopen it to reply, or open a new ticket."})
    comment = Comment.objects.create(
        organization_id=ticket.organization_id,
        ticket=ticket,
        author=author,
        body=body,
        internal=internal,
        by_agent=agent,
    )
    if internal:
        # Nothing customers see changes: not updated_at (their list's order and "Updated …" would
        # give the note away), not the thread, the vector or the events. The audit row is agents'
        # only (selectors.ticket_history).
        _audit(ticket, author, {"internal_note": ("", "added")})
        comment.files = _attachments_save(ticket=ticket, comment=comment, uploader=author, checked=checked)
        return comment

    now = timezone.now()
    update_fields = {"comment_count"}
    ticket.comment_count += 1
    status_change: dict[str, Any] = {}
    if agent and ticket.first_response_at is None:
        ticket.first_response_at = now
        update_fields.add("first_response_at")
    if not agent and ticket.status in REOPENED_BY_CUSTOMER_REPLY:
        status_change = {"status": {"from": ticket.status, "to": Status.OPEN}}
        _audit(ticket, author, {"status": (ticket.status, Status.OPEN)})
        _apply_status(ticket, Status.OPEN, now)
        update_fields |= {"status", "resolved_at", "closed_at", *SLA_FIELDS}
    _save_with_vector(ticket, update_fields, now=now)
    events.publish(
        events.TICKET_COMMENT_ADDED,
        organization=ticket.organization,
        actor=author,
        data=_payload(ticket, comment=str(comment.public_id), author=str(author.pk), by_agent=agent),
    )
    if status_change:
        events.publish(
            events.TICKET_UPDATED,
            organization=ticket.organization,
            actor=author,
            data=_payload(ticket, changes=status_change),
        )
    # Last, after every write that can fail (a file stored earlier would outlive a rollback).
    comment.files = _attachments_save(ticket=ticket, comment=comment, uploader=author, checked=checked)
    return comment


@transaction.atomic
def ticket_follow(*, ticket: Ticket, user: Any) -> None:
    _require_can_see(ticket=ticket, actor=user)
    TicketFollower.objects.get_or_create(organization_id=ticket.organization_id, ticket=ticket, user=user)


@transaction.atomic
def ticket_unfollow(*, ticket: Ticket, user: Any) -> None:
    TicketFollower.objects.filter(ticket=ticket, user=user).delete()


# Followers (CC): any member of the organization, or an agent, may add colleagues of the ticket's
# organization as followers, or remove them; every change is in the audit trail.
_NOT_A_MEMBER = "Choose an active member of this ticket's organization."


def _member_of(ticket: Ticket, user_id: Any) -> Any:
    """The active user ``user_id`` if they belong to the ticket's organization; ValidationError else
    (unknown, malformed, another organization's and inactive ids are the same error)."""
    user_id = whole_number(str(user_id)) if not isinstance(user_id, bool) else None
    if user_id is None:
        raise ValidationError({"user": _NOT_A_MEMBER})
    user = (
        User.objects.filter(
            pk=user_id,
            is_active=True,
            pk__in=Membership.objects.for_organization(ticket.organization).values("user_id"),
        )
        .only("pk", "first_name", "last_name", "username", "is_active")
        .first()
    )
    if user is None:
        raise ValidationError({"user": _NOT_A_MEMBER})
    return user


@transaction.atomic
def ticket_follower_add(*, ticket: Ticket, actor: Any, user_id: Any, membership: Membership | None = None) -> Any:
    """CC ``user_id`` on the ticket: they hear about its replies and changes. Returns the user.

    Only active members of the ticket's organization can follow it; adding a follower twice is a no-op.
    """
    ticket = Ticket.objects.select_related("organization").only("pk", "organization").get(pk=ticket.pk)
    _require_can_see(ticket=ticket, actor=actor, membership=membership)
    user = _member_of(ticket, user_id)
    _, created = TicketFollower.objects.get_or_create(organization_id=ticket.organization_id, ticket=ticket, user=user)
    if created:
        _audit(ticket, actor, {"follower": ("", _display_name(user))})
    return user


@transaction.atomic
def ticket_follower_remove(*, ticket: Ticket, actor: Any, user_id: Any, membership: Membership | None = None) -> None:
    """Stop ``user_id`` following the ticket (ValidationError if they don't follow it)."""
    ticket = Ticket.objects.select_related("organization").only("pk", "organization").get(pk=ticket.pk)
    _require_can_see(ticket=ticket, actor=actor, membership=membership)
    follower = None
    user_id = whole_number(str(user_id)) if not isinstance(user_id, bool) else None
    if user_id is not None:
        follower = (
            TicketFollower.objects.filter(ticket=ticket, user_id=user_id)
            .select_related("user")
            .only("pk", "user__id", "user__first_name", "user__last_name", "user__username")
            .first()
        )
    if follower is None:
        raise ValidationError({"user": "This person does not follow the ticket."})
    follower.delete()
    _audit(ticket, actor, {"follower": (_display_name(follower.user), "")})


# --- SLA sweep (beat, every minute) ---------------------------------------------------------

SWEEP_BATCH = 500
_TARGETS = {
    "first_response": ("first_response_at", "first_response_due_at"),
    "resolution": ("resolved_at", "resolution_due_at"),
}


def sla_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Mark tickets at risk (80 %) and breached, each once per ticket and target.

    Rows are claimed with ``FOR UPDATE SKIP LOCKED`` and stamped in the same transaction as
    the event, so overlapping sweeps and re-runs never publish twice.
    """
    now = now or timezone.now()
    counts: dict[str, int] = {}
    for target, (met_field, due_field) in _TARGETS.items():
        for kind, when_field, stamp_field, event_type in (
            ("warning", f"{target}_warn_at", f"{target}_warned_at", events.TICKET_SLA_WARNING),
            ("breach", due_field, f"{target}_breached_at", events.TICKET_SLA_BREACHED),
        ):
            counts[f"{target}_{kind}"] = _sweep_one(
                now, met_field, when_field, stamp_field, due_field, target, event_type
            )
    return counts


def _sweep_one(
    now: datetime, met_field: str, when_field: str, stamp_field: str, due_field: str, target: str, event_type: str
) -> int:
    total = 0
    while True:
        with transaction.atomic():
            batch = list(
                Ticket.objects.select_for_update(skip_locked=True)
                .select_related("organization")
                .filter(
                    **{f"{met_field}__isnull": True, f"{stamp_field}__isnull": True, f"{when_field}__lte": now},
                    sla_paused_at__isnull=True,
                    status__in=CLOCK_RUNS,
                )
                .order_by(when_field)[:SWEEP_BATCH]
            )
            for ticket in batch:
                setattr(ticket, stamp_field, now)
                ticket.save(update_fields=[stamp_field])
                due_at = getattr(ticket, due_field)
                events.publish(
                    event_type,
                    organization=ticket.organization,
                    data=_payload(ticket, target=target, due_at=due_at.isoformat()),
                )
        total += len(batch)
        if len(batch) < SWEEP_BATCH:
            return total


# --- Retention ------------------------------------------------------------------------------


def _files_delete(paths: list[str]) -> None:
    storage = Attachment._meta.get_field("file").storage
    for path in paths:
        storage.delete(path)


def tickets_purge_closed(*, now: datetime | None = None, batch: int = 500) -> int:
    """Delete tickets closed longer ago than TICKET_RETENTION_DAYS, with comments and files."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.TICKET_RETENTION_DAYS)
    purged = 0
    while True:
        with transaction.atomic():
            ids = list(
                Ticket.objects.select_for_update(skip_locked=True)
                .filter(status=Status.CLOSED, closed_at__lt=cutoff)
                .values_list("pk", flat=True)[:batch]
            )
            if not ids:
                break
            paths = list(Attachment.objects.filter(ticket_id__in=ids).values_list("file", flat=True))
            Ticket.objects.filter(pk__in=ids).delete()
            transaction.on_commit(lambda paths=paths: _files_delete(paths))
        purged += len(ids)
    if purged:
        logger.info("purged closed tickets", extra={"tickets": purged, "cutoff": cutoff.isoformat()})
    return purged
