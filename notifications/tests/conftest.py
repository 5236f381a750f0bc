from datetime import datetime

import pytest
from django.db import transaction

from notifications.models import Push
from notifications.services import push_message
from portal import events
from portal.models import Event
from tickets.tests.factories import make_agent, make_ticket


@pytest.fixture
def agent(db):
    return make_agent(first_name="Sam", last_name="Support")


@pytest.fixture
def ticket(member):
    return make_ticket(member)


def dispatch_all() -> None:
    """Run every pending event's subscribers, as the worker would after commit."""
    for event_id in Event.objects.filter(dispatched_at__isnull=True).order_by("id").values_list("id", flat=True):
        events.event_dispatch(event_id=event_id)


def publish(event_type, organization, data, actor=None):
    with transaction.atomic():
        events.publish(event_type, organization=organization, data=data, actor=actor)
    dispatch_all()


def push_message_for(push_id, organization_id, *, user=None, event="metrics_update", data=None):
    """The channel-layer message a push with these values sends (``services.push_message``)."""
    push = Push(
        pk=push_id,
        type=event,
        organization_id=organization_id,
        user_id=user,
        created_at=datetime.fromisoformat("2026-11-26T04:00:00+00:00"),
        data=data or {},
        html="",
    )
    return push_message(push)
