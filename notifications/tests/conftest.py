import pytest
from django.db import transaction

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
