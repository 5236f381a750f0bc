import pytest
from django.urls import reverse

from notifications import services
from notifications.models import Notification
from portal.testing import assert_cross_org_404
from portal.tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _notify(membership, title="n", kind="billing"):
    services.notify(organization=membership.organization, recipient_ids=[membership.user_id], kind=kind, title=title)
    return Notification.objects.filter(recipient=membership.user).latest("id")


def test_list_unread_count_mark_read_and_mark_all(api_client, member):
    a = _notify(member, "a")
    _notify(member, "b", kind="alert")
    assert api_client.get(reverse("notifications-api:unread-count")).json() == {"unread": 2}
    body = api_client.get(reverse("notifications-api:list"), {"kind": "alert"}).json()
    assert [n["title"] for n in body["results"]] == ["b"]
    assert api_client.post(reverse("notifications-api:read", args=[a.public_id])).json()["read"] is True
    assert api_client.get(reverse("notifications-api:list"), {"state": "unread"}).json()["count"] == 1
    assert api_client.post(reverse("notifications-api:read-all")).json() == {"marked": 1}
    assert api_client.get(reverse("notifications-api:unread-count")).json() == {"unread": 0}


def test_delete(api_client, member):
    n = _notify(member)
    assert api_client.delete(reverse("notifications-api:detail", args=[n.public_id])).status_code == 204
    assert not Notification.objects.exists()


@pytest.mark.parametrize(("param", "value"), [("kind", "spam"), ("state", "maybe"), ("sort", "random")])
def test_bad_filters_are_400(api_client, param, value):
    response = api_client.get(reverse("notifications-api:list"), {param: value})
    assert response.status_code == 400 and param in response.json()


def test_preferences_get_and_update(api_client):
    prefs = api_client.get(reverse("notifications-api:preferences")).json()
    assert {p["kind"]: p["channel"] for p in prefs} == {
        "ticket": "email",
        "billing": "in_app",
        "compliance": "in_app",
        "alert": "email",
        "info": "in_app",
    }
    response = api_client.put(
        reverse("notifications-api:preferences"),
        {"preferences": [{"kind": "billing", "channel": "email", "digest": "daily"}]},
        format="json",
    )
    assert response.status_code == 200
    assert next(p for p in response.json() if p["kind"] == "billing")["digest"] == "daily"


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"kind": "alert", "channel": "off"}, "alert"),
        ({"kind": "spam", "channel": "off"}, "preferences"),
        ({"kind": "info", "channel": "loud"}, "preferences"),
    ],
)
def test_bad_preferences_are_400_and_change_nothing(api_client, member, item, field):
    response = api_client.put(reverse("notifications-api:preferences"), {"preferences": [item]}, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not member.user.notification_preferences.exists()


def test_list_costs_a_fixed_number_of_queries(api_client, member, django_assert_max_num_queries):
    for i in range(60):
        _notify(member, f"n{i}")
    with django_assert_max_num_queries(5):
        body = api_client.get(reverse("notifications-api:list")).json()
    assert len(body["results"]) == 50


@pytest.mark.parametrize(("route", "method"), [("read", "post"), ("detail", "delete")])
def test_someone_elses_notification_is_404(api_client, organization, route, method):
    theirs = _notify(MembershipFactory(organization=organization))
    assert_cross_org_404(
        api_client, method, reverse(f"notifications-api:{route}", args=[theirs.public_id]), unchanged=[theirs]
    )


def test_an_unknown_field_in_preferences_is_a_400_and_changes_nothing(api_client, member):
    response = api_client.put(
        reverse("notifications-api:preferences"),
        {"preferences": [{"kind": "billing", "channel": "email"}], "prefs": 1},
        format="json",
    )
    assert response.status_code == 400 and response.json() == {"prefs": ["Unknown field."]}
    assert not member.user.notification_preferences.exists()
