"""Tickets for tests, made through the service so they carry numbers, SLA times and audit rows."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from portal.tests.factories import PASSWORD, UserFactory
from tickets import services
from tickets.models import Ticket


def make_ticket(membership: Any, **overrides: Any) -> Ticket:
    fields = {"subject": "Database is slow", "description": "Queries take 5 s since this morning.", **overrides}
    with transaction.atomic():
        return services.ticket_create(organization=membership.organization, requester=membership.user, **fields)


def make_agent(**fields: Any) -> Any:
    return UserFactory(is_staff=True, **fields)


__all__ = ["PASSWORD", "get_user_model", "make_agent", "make_ticket"]
