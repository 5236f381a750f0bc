import os
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tickets import services
from tickets.models import Attachment, Comment, Status, Ticket
from tickets.tests.factories import make_ticket

pytestmark = pytest.mark.django_db


def test_closed_tickets_are_purged_after_the_retention_period_with_their_files(
    member, agent, django_capture_on_commit_callbacks
):
    old = make_ticket(member, subject="old", attachments=[SimpleUploadedFile("a.txt", b"x", content_type="text/plain")])
    services.comment_create(ticket=old, author=agent, body="done")
    services.ticket_change_status(ticket=old, actor=agent, status=Status.CLOSED)
    recent = make_ticket(member, subject="recent")
    services.ticket_change_status(ticket=recent, actor=agent, status=Status.CLOSED)
    still_open = make_ticket(member, subject="open")
    path = Attachment.objects.get().file.path
    Ticket.objects.filter(pk__in=[old.pk, still_open.pk]).update(closed_at=timezone.now() - timedelta(days=91))

    assert os.path.exists(path)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.tickets_purge_closed() == 1
    assert set(Ticket.objects.values_list("subject", flat=True)) == {"recent", "open"}
    assert not Comment.objects.filter(ticket_id=old.pk).exists()
    assert not Attachment.objects.exists()
    assert not os.path.exists(path)  # the file goes once the rows are gone for good


def test_retention_period_is_configurable(member, agent, settings):
    settings.TICKET_RETENTION_DAYS = 7
    ticket = make_ticket(member)
    services.ticket_change_status(ticket=ticket, actor=agent, status=Status.CLOSED)
    Ticket.objects.filter(pk=ticket.pk).update(closed_at=timezone.now() - timedelta(days=8))
    assert services.tickets_purge_closed() == 1
