"""Attachments as downloads: the same response for the ticket page, the API and the admin."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, Http404

from tickets import selectors, services
from tickets.models import Attachment


def attachment_response(attachment: Attachment) -> FileResponse:
    """The attachment as a download, never cached; 404 when its file is gone from storage."""
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404("The file of this attachment is gone.") from exc
    response = FileResponse(handle, as_attachment=True, filename=attachment.filename)
    response["Content-Type"] = attachment.content_type
    response["Cache-Control"] = "private, no-store"
    return response


def request_attachment(request: Any, ticket_id: Any, attachment_id: Any) -> Attachment:
    """An attachment of a ticket of the request's organization; internal notes' files for agents only."""
    ticket = selectors.ticket_get(organization=request.organization, public_id=ticket_id)
    return selectors.attachment_get(
        organization=request.organization,
        ticket=ticket,
        public_id=attachment_id,
        include_internal=services.is_agent(request.user),
    )
