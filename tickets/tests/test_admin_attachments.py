"""Agents open customers' attachments from the ticket's admin page."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tickets import services
from tickets.models import Attachment
from tickets.tests.factories import make_agent, make_ticket

pytestmark = pytest.mark.django_db


def _download_url(attachment):
    return reverse("admin:tickets_ticket_attachment", args=[attachment.public_id])


def _upload(name="boot.log", content=b"kernel: disk full\n"):
    return SimpleUploadedFile(name, content, content_type="text/plain")


def test_agent_without_membership_downloads_a_customers_attachment_from_the_ticket_page(agent_client, member):
    ticket = make_ticket(member, attachments=[_upload()])
    attachment = Attachment.objects.get(ticket=ticket)
    page = agent_client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()
    assert f'<a href="{_download_url(attachment)}">boot.log</a>' in page

    response = agent_client.get(_download_url(attachment))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"kernel: disk full\n"
    assert response["Content-Disposition"] == 'attachment; filename="boot.log"'
    assert response["Content-Type"] == "text/plain"


def test_agent_downloads_an_internal_notes_attachment(agent_client, ticket, agent):
    services.comment_create(
        ticket=ticket, author=agent, body="Vendor's analysis", internal=True, attachments=[_upload("vendor.txt", b"x")]
    )
    attachment = Attachment.objects.get(ticket=ticket)
    response = agent_client.get(_download_url(attachment))
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"x"


def test_customer_cannot_use_the_admin_download(client, member):
    ticket = make_ticket(member, attachments=[_upload()])
    client.force_login(member.user)  # the uploader, but not staff
    response = client.get(_download_url(Attachment.objects.get(ticket=ticket)))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


def test_staff_without_permission_to_view_tickets_is_refused(client, member):
    ticket = make_ticket(member, attachments=[_upload()])
    client.force_login(make_agent())  # staff, no permissions
    assert client.get(_download_url(Attachment.objects.get(ticket=ticket))).status_code == 403


def test_unknown_attachment_is_404(agent_client):
    url = reverse("admin:tickets_ticket_attachment", args=["00000000-0000-0000-0000-000000000000"])
    assert agent_client.get(url).status_code == 404


def test_ticket_page_costs_the_same_queries_with_1_or_10_attachments(agent_client, member, agent):
    one = make_ticket(member, attachments=[_upload()])
    ten = make_ticket(member, subject="Many files")
    for i in range(10):
        uploader = member.user if i % 2 else make_agent()
        services.comment_create(ticket=ten, author=uploader, body=f"File {i}", attachments=[_upload(f"f{i}.log")])
    assert Attachment.objects.filter(ticket=ten).count() == 10

    counts = []
    for ticket in (one, ten):
        url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
        agent_client.get(url)  # warm caches (content types, session) so both runs are alike
        with CaptureQueriesContext(connection) as queries:
            response = agent_client.get(url)
        assert response.status_code == 200
        counts.append(len(queries))
    assert response.content.decode().count(">f9.log</a>") == 1
    assert counts[0] == counts[1], counts
