from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from portal.models import Event
from portal.tests.factories import MembershipFactory
from tickets import services
from tickets.models import Comment, Status, Ticket, TicketChange
from tickets.tests.factories import make_ticket

pytestmark = pytest.mark.django_db

ALL = [s.value for s in Status]


def _set_status(ticket, status):
    Ticket.objects.filter(pk=ticket.pk).update(status=status)
    ticket.refresh_from_db()
    return ticket


@pytest.mark.parametrize("start", ALL)
@pytest.mark.parametrize("target", ALL)
def test_agents_follow_the_transition_table(ticket, agent, start, target):
    _set_status(ticket, start)
    if target == start:
        return
    allowed = target in services.TRANSITIONS[start]
    if allowed:
        assert services.ticket_change_status(ticket=ticket, actor=agent, status=target).status == target
    else:
        with pytest.raises(ValidationError) as error:
            services.ticket_change_status(ticket=ticket, actor=agent, status=target)
        assert f"Cannot change status from {start} to {target}. Allowed:" in error.value.message_dict["status"][0]
        assert Ticket.objects.get(pk=ticket.pk).status == start


def test_transition_table_is_the_product_workflow():
    assert services.TRANSITIONS[Status.RESOLVED] == {Status.OPEN, Status.CLOSED}
    assert services.TRANSITIONS[Status.CLOSED] == {Status.OPEN}
    assert Status.CLOSED in services.TRANSITIONS[Status.OPEN]


def test_customer_may_close_and_reopen_but_not_resolve(ticket, member):
    with pytest.raises(ValidationError) as error:
        services.ticket_change_status(ticket=ticket, actor=member.user, status=Status.RESOLVED)
    assert "Allowed: closed" in error.value.message_dict["status"][0]
    services.ticket_change_status(ticket=ticket, actor=member.user, status=Status.CLOSED)
    reopened = services.ticket_change_status(ticket=ticket, actor=member.user, status=Status.OPEN)
    assert reopened.status == Status.OPEN and reopened.closed_at is None


def test_another_member_cannot_close_someone_elses_ticket_but_an_admin_can(ticket, organization):
    colleague = MembershipFactory(organization=organization)
    boss = MembershipFactory(organization=organization, role="admin")
    with pytest.raises(ValidationError):
        services.ticket_change_status(ticket=ticket, actor=colleague.user, status=Status.CLOSED)
    assert services.ticket_change_status(ticket=ticket, actor=boss.user, status=Status.CLOSED).status == Status.CLOSED


@pytest.mark.parametrize(
    ("field", "value"),
    [("assignee", None), ("priority", "critical"), ("queue", "security"), ("first_response_due_at", None)],
)
def test_customers_never_set_agent_or_sla_fields(ticket, member, field, value):
    with pytest.raises(ValidationError) as error:
        services.ticket_update(ticket=ticket, actor=member.user, **{field: value})
    assert error.value.message_dict[field] == ["Only support agents can change this."]
    assert not Event.objects.filter(type="ticket.updated").exists()


def test_numbers_are_sequential_and_per_organization(member, other_member):
    first, second = make_ticket(member), make_ticket(member)
    theirs = make_ticket(other_member)
    assert (first.number, second.number) == (1001, 1002)
    assert theirs.number == 1001
    assert first.reference == "#1001"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"subject": ""}, "subject", "Enter a subject."),
        ({"subject": "x" * 300}, "subject", "Keep the subject to 255 characters"),
        ({"description": "   "}, "description", "This can't be empty."),
        ({"description": "x" * 20_001}, "description", "Keep it to 20,000 characters"),
        ({"priority": "urgent"}, "priority", "Unknown priority 'urgent'"),
        ({"category": "sales"}, "category", "Unknown category 'sales'"),
    ],
)
def test_bad_ticket_input_is_refused_and_nothing_written(member, fields, field, message):
    with pytest.raises(ValidationError) as error:
        make_ticket(member, **fields)
    assert message in error.value.message_dict[field][0]
    assert not Ticket.objects.exists() and not Event.objects.exists()


def test_creation_publishes_an_event_and_records_history(ticket, member):
    event = Event.objects.get(type="ticket.created")
    assert event.payload["ticket"] == str(ticket.public_id) and event.payload["number"] == ticket.number
    assert event.actor == member.user
    assert TicketChange.objects.filter(ticket=ticket, field="created").exists()
    assert ticket.followers.filter(pk=member.user.pk).exists()


def test_agents_first_public_reply_sets_first_response(ticket, agent):
    assert ticket.first_response_at is None
    services.comment_create(ticket=ticket, author=agent, body="Looking into it.", internal=True)
    ticket.refresh_from_db()
    assert ticket.first_response_at is None  # an internal note is not a response
    services.comment_create(ticket=ticket, author=agent, body="We are on it.")
    ticket.refresh_from_db()
    assert ticket.first_response_at is not None and ticket.comment_count == 1


@pytest.mark.parametrize("status", [Status.RESOLVED, Status.WAITING_ON_CUSTOMER])
def test_customer_reply_reopens(ticket, member, status):
    _set_status(ticket, status)
    services.comment_create(ticket=ticket, author=member.user, body="Still broken.")
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN
    assert TicketChange.objects.filter(ticket=ticket, field="status", old_value=status, new_value="open").exists()


def test_comment_on_a_closed_ticket_is_refused(ticket, member):
    services.ticket_change_status(ticket=ticket, actor=member.user, status=Status.CLOSED)
    with pytest.raises(ValidationError, match="This ticket is closed"):
        services.comment_create(ticket=ticket, author=member.user, body="hello?")
    assert not Comment.objects.exists()


def test_customers_cannot_write_internal_notes(ticket, member):
    with pytest.raises(ValidationError) as error:
        services.comment_create(ticket=ticket, author=member.user, body="psst", internal=True)
    assert "internal" in error.value.message_dict


def test_internal_notes_raise_no_public_event(ticket, agent):
    services.comment_create(ticket=ticket, author=agent, body="Customer is on the legacy plan.", internal=True)
    assert not Event.objects.filter(type="ticket.comment_added").exists()
    assert "legacy plan" not in str(list(Event.objects.values_list("payload", flat=True)))


def test_assignee_must_be_an_agent(ticket, agent, member):
    with pytest.raises(ValidationError, match="active support agents"):
        services.ticket_update(ticket=ticket, actor=agent, assignee=member.user)
    services.ticket_update(ticket=ticket, actor=agent, assignee=agent)
    event = Event.objects.filter(type="ticket.updated").latest("id")
    assert event.payload["changes"]["assignee"] == {"from": None, "to": str(agent.pk)}


def test_priority_change_recomputes_due_times_from_the_original_start(ticket, agent):
    assert ticket.first_response_due_at == ticket.sla_started_at + timedelta(hours=24)
    services.ticket_update(ticket=ticket, actor=agent, priority="critical")
    ticket.refresh_from_db()
    assert ticket.first_response_due_at == ticket.sla_started_at + timedelta(hours=1)
    assert ticket.first_response_warn_at == ticket.sla_started_at + timedelta(minutes=48)
    assert ticket.resolution_due_at == ticket.sla_started_at + timedelta(hours=8)


def test_waiting_on_customer_pauses_the_clock_and_resuming_shifts_due_times(ticket, agent, member):
    due = ticket.resolution_due_at
    start = timezone.now()
    with mock.patch("tickets.services.timezone.now", return_value=start):
        services.ticket_change_status(ticket=ticket, actor=agent, status=Status.WAITING_ON_CUSTOMER)
    ticket.refresh_from_db()
    assert ticket.sla_paused_at == start
    assert services.ticket_sla_status(ticket=ticket).state == "paused"
    with mock.patch("tickets.services.timezone.now", return_value=start + timedelta(hours=3)):
        services.comment_create(ticket=ticket, author=member.user, body="Here are the logs.")
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN and ticket.sla_paused_at is None
    assert ticket.sla_paused_seconds == 3 * 3600
    assert ticket.resolution_due_at == due + timedelta(hours=3)


def test_sla_status_moves_from_on_track_to_at_risk_to_breached(ticket):
    start = ticket.sla_started_at
    assert services.ticket_sla_status(ticket=ticket, now=start).state == "on_track"
    assert services.ticket_sla_status(ticket=ticket, now=start + timedelta(hours=20)).state == "at_risk"
    breached = services.ticket_sla_status(ticket=ticket, now=start + timedelta(hours=25))
    assert (breached.state, breached.target) == ("breached", "first_response")


def test_every_change_is_in_the_audit_trail(ticket, agent):
    services.ticket_update(
        ticket=ticket, actor=agent, status=Status.IN_PROGRESS, priority="high", subject="DB slow in eu-1"
    )
    rows = {(c.field, c.old_value, c.new_value) for c in TicketChange.objects.filter(ticket=ticket, actor=agent)}
    assert rows == {
        ("status", "open", "in_progress"),
        ("priority", "medium", "high"),
        ("subject", "Database is slow", "DB slow in eu-1"),
    }


def test_no_change_means_no_event(ticket, agent):
    services.ticket_update(ticket=ticket, actor=agent, status=ticket.status, priority=ticket.priority)
    assert not Event.objects.filter(type="ticket.updated").exists()


def test_requester_edits_subject_but_a_colleague_cannot(ticket, member, organization):
    services.ticket_update(ticket=ticket, actor=member.user, subject="Database is very slow")
    colleague = MembershipFactory(organization=organization)
    with pytest.raises(ValidationError, match="Only the requester"):
        services.ticket_update(ticket=ticket, actor=colleague.user, subject="mine now")


# --- Attachments are never left in storage by a failed write ---------------------------------


def _stored_files(settings):
    root = settings.MEDIA_ROOT / "attachments"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _upload(name="trace.log"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, b"stack trace", content_type="text/plain")


def test_a_reply_that_fails_after_its_checks_leaves_no_file_in_storage(ticket, member, settings):
    from django.db import OperationalError

    with (
        mock.patch.object(services, "_save_with_vector", side_effect=OperationalError("string is too long")),
        pytest.raises(OperationalError),
    ):
        services.comment_create(ticket=ticket, author=member.user, body="logs attached", attachments=[_upload()])
    assert _stored_files(settings) == []
    assert not Comment.objects.exists()


def test_a_failure_while_storing_files_removes_those_already_stored(ticket, member, settings):
    from tickets.models import Attachment

    real_save = Attachment.save
    calls = []

    def fail_second(self, *args, **kwargs):
        calls.append(self)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_save(self, *args, **kwargs)

    with mock.patch.object(Attachment, "save", fail_second), pytest.raises(RuntimeError):
        services.comment_create(
            ticket=ticket, author=member.user, body="two files", attachments=[_upload("a.log"), _upload("b.log")]
        )
    assert _stored_files(settings) == []
    assert not Attachment.objects.exists() and not Comment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_commit_hook_failing_after_the_commit_keeps_the_files(ticket, member, settings):
    """The reply and its attachment rows are committed: a hook that fails afterwards (say the broker
    is down) must not take their files from storage."""
    from portal import events

    with (
        mock.patch.object(events, "enqueue_dispatch", side_effect=RuntimeError("broker down")),
        pytest.raises(RuntimeError),
    ):
        services.comment_create(ticket=ticket, author=member.user, body="see log", attachments=[_upload()])
    comment = Comment.objects.get()
    assert [settings.MEDIA_ROOT / a.file.name for a in comment.attachments.all()] == _stored_files(settings)
    assert len(_stored_files(settings)) == 1


def test_replies_with_files_still_store_them(ticket, member, settings):
    comment = services.comment_create(ticket=ticket, author=member.user, body="see log", attachments=[_upload()])
    assert [f.filename for f in comment.files] == ["trace.log"] and len(_stored_files(settings)) == 1


# --- Internal notes change nothing customers see -------------------------------------------


def test_an_internal_note_does_not_touch_what_customers_see(ticket, member, agent):
    older = make_ticket(member, subject="Older ticket")
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=timezone.now() - timedelta(hours=2))
    Ticket.objects.filter(pk=older.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    before = Ticket.objects.get(pk=ticket.pk)
    services.comment_create(ticket=ticket, author=agent, body="Customer is on the old plan", internal=True)
    after = Ticket.objects.get(pk=ticket.pk)
    assert after.updated_at == before.updated_at
    assert (after.comment_count, after.status) == (before.comment_count, before.status)
    from tickets import selectors

    order = [t.subject for t in selectors.ticket_list(organization=member.organization)]
    assert order == ["Older ticket", ticket.subject]  # the note did not move the ticket up
