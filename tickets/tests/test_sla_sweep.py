from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction

from portal.models import Event
from tickets import services
from tickets.models import Status
from tickets.tasks import sla_sweep_task
from tickets.tests.factories import make_ticket

pytestmark = pytest.mark.django_db


def _events(kind):
    return list(Event.objects.filter(type=f"ticket.sla_{kind}").order_by("id").values_list("payload", flat=True))


def test_warning_at_80_percent_then_breach_each_once(ticket):
    start = ticket.sla_started_at
    assert services.sla_sweep(now=start + timedelta(hours=19))["first_response_warning"] == 0
    assert services.sla_sweep(now=start + timedelta(hours=20))["first_response_warning"] == 1
    assert services.sla_sweep(now=start + timedelta(hours=21))["first_response_warning"] == 0
    [warning] = _events("warning")
    assert warning["target"] == "first_response" and warning["ticket"] == str(ticket.public_id)
    assert services.sla_sweep(now=start + timedelta(hours=25))["first_response_breach"] == 1
    assert services.sla_sweep(now=start + timedelta(hours=26))["first_response_breach"] == 0
    assert [p["target"] for p in _events("breached")] == ["first_response"]


def test_rerunning_the_sweep_is_idempotent_across_targets(ticket):
    late = ticket.sla_started_at + timedelta(days=10)
    first = services.sla_sweep(now=late)
    again = services.sla_sweep(now=late)
    assert first == {
        "first_response_warning": 1,
        "first_response_breach": 1,
        "resolution_warning": 1,
        "resolution_breach": 1,
    }
    assert set(again.values()) == {0}
    assert len(_events("warning")) == 2 and len(_events("breached")) == 2


def test_met_targets_never_warn(ticket, agent):
    services.comment_create(ticket=ticket, author=agent, body="On it")
    counts = services.sla_sweep(now=ticket.sla_started_at + timedelta(hours=30))
    assert counts["first_response_warning"] == counts["first_response_breach"] == 0


def test_paused_tickets_are_not_breached_while_waiting(ticket, agent):
    services.ticket_change_status(ticket=ticket, actor=agent, status=Status.WAITING_ON_CUSTOMER)
    assert set(services.sla_sweep(now=ticket.sla_started_at + timedelta(days=30)).values()) == {0}


def test_beat_task_runs_the_sweep(member):
    with transaction.atomic():
        make_ticket(member, priority="critical")
    # A critical ticket opened now is not yet at risk: the task answers with zero counts.
    assert sla_sweep_task.apply().get() == {
        "first_response_warning": 0,
        "first_response_breach": 0,
        "resolution_warning": 0,
        "resolution_breach": 0,
    }


def test_sweep_is_scheduled_every_minute(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["tickets-sla-sweep"]
    assert entry == {"task": "tickets.tasks.sla_sweep_task", "schedule": 60.0}
    call_command("check")
