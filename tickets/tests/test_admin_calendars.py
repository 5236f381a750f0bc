"""SLA calendars that the SLA clock cannot use are refused in admin, with the reason on the field."""

import pytest
from django.urls import reverse

from tickets.models import BusinessCalendar, Holiday, SlaPolicy
from tickets.tests.factories import make_ticket

pytestmark = pytest.mark.django_db


def _calendar_form(**overrides):
    data = {
        "name": "Paris office",
        "timezone": "Europe/Paris",
        "weekdays": "[0, 1, 2, 3, 4]",
        "start_time": "09:00",
        "end_time": "18:00",
        "holidays-TOTAL_FORMS": "1",
        "holidays-INITIAL_FORMS": "0",
        "holidays-MIN_NUM_FORMS": "0",
        "holidays-MAX_NUM_FORMS": "1000",
        "holidays-0-date": "",
        "holidays-0-name": "",
    }
    return {**data, **overrides}


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"timezone": "Europe/Pariss"}, "timezone", "Unknown time zone 'Europe/Pariss'"),
        ({"weekdays": '["mon"]'}, "weekdays", "0 = Monday … 6 = Sunday"),
        ({"weekdays": "[0, 7]"}, "weekdays", "0 = Monday … 6 = Sunday"),
        ({"weekdays": "[true]"}, "weekdays", "0 = Monday … 6 = Sunday"),
        ({"weekdays": '{"0": 1}'}, "weekdays", "0 = Monday … 6 = Sunday"),
        ({"weekdays": "[]"}, "weekdays", "0 = Monday … 6 = Sunday"),
        ({"end_time": "09:00"}, "end_time", "The working day must end after it starts."),
        ({"start_time": "18:00", "end_time": "08:00"}, "end_time", "The working day must end after it starts."),
    ],
)
def test_calendar_the_sla_clock_cannot_use_is_a_form_error(agent_client, overrides, field, message):
    response = agent_client.post(reverse("admin:tickets_businesscalendar_add"), _calendar_form(**overrides))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors and message in " ".join(errors[field])
    assert not BusinessCalendar.objects.exists()


def test_valid_calendar_is_saved_and_tickets_get_its_sla(agent_client, member):
    response = agent_client.post(
        reverse("admin:tickets_businesscalendar_add"),
        _calendar_form(weekdays="[4, 0, 1, 0]", **{"holidays-0-date": "2026-12-25", "holidays-0-name": "Christmas"}),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    calendar = BusinessCalendar.objects.get()
    assert calendar.weekdays == [0, 1, 4]
    assert Holiday.objects.get(calendar=calendar).name == "Christmas"
    SlaPolicy.objects.filter(priority="medium").update(calendar=calendar)
    ticket = make_ticket(member)
    assert ticket.first_response_due_at is not None


def test_editing_a_calendar_into_a_broken_one_keeps_the_old_one(agent_client):
    calendar = BusinessCalendar.objects.create(name="Support hours", timezone="UTC", weekdays=[0, 1, 2, 3, 4])
    response = agent_client.post(
        reverse("admin:tickets_businesscalendar_change", args=[calendar.pk]),
        _calendar_form(name="Support hours", timezone="Mars/Olympus"),
    )
    assert response.status_code == 200
    calendar.refresh_from_db()
    assert calendar.timezone == "UTC"
