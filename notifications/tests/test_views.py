import re

import pytest
from django.urls import reverse

from notifications import services
from notifications.models import Notification, Preference
from portal.testing import assert_cross_org_404
from portal.tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _notify(membership, title="Invoice ready", kind="billing", target=""):
    [created] = services.notify(
        organization=membership.organization, recipient_ids=[membership.user_id], kind=kind, title=title, target=target
    )
    return Notification.objects.get(pk=created.notification_id)


def test_bell_shows_the_exact_unread_count_on_every_page(member_client, member):
    for i in range(3):
        _notify(member, title=f"n{i}")
    page = member_client.get(reverse("tickets:list")).content.decode()
    assert 'id="notification-badge"' in page and ">3<span" in page


def test_dropdown_lists_the_latest_ten(member_client, member):
    for i in range(12):
        _notify(member, title=f"note {i}")
    html = member_client.get(reverse("notifications:dropdown"), HTTP_HX_REQUEST="true").content.decode()
    assert html.count('class="notification ') == 10 and "note 11" in html and "note 1<" not in html


def test_empty_states(member_client):
    assert "You're all caught up." in member_client.get(reverse("notifications:dropdown")).content.decode()
    assert "No notifications yet" in member_client.get(reverse("notifications:list")).content.decode()


def test_mutations_are_post_only(member_client, member):
    n = _notify(member)
    assert member_client.get(reverse("notifications:read", args=[n.public_id])).status_code == 405
    assert member_client.get(reverse("notifications:delete", args=[n.public_id])).status_code == 405
    n.refresh_from_db()
    assert n.read_at is None


def test_mark_one_read_with_htmx_returns_the_row(member_client, member):
    n = _notify(member)
    response = member_client.post(reverse("notifications:read", args=[n.public_id]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and f'id="notification-{n.public_id}"' in response.content.decode()
    n.refresh_from_db()
    assert n.read_at is not None


def test_the_notifications_page_and_its_dropdown_never_share_an_id(member_client, member):
    # The bell's dropdown is on every page, filled when opened or by a live push. Its items once had
    # the page rows' ids, so on the notifications page "Mark read" (hx-target="#notification-<id>")
    # swapped the dropdown's copy and the row the user clicked stayed unread.
    import re

    notes = [_notify(member, title=f"note {i}") for i in range(3)]
    page = member_client.get(reverse("notifications:list")).content.decode()
    dropdown = member_client.get(reverse("notifications:dropdown"), HTTP_HX_REQUEST="true").content.decode()
    page_ids = re.findall(r'\sid="([^"]+)"', page)
    dropdown_ids = re.findall(r'\sid="([^"]+)"', dropdown)
    assert len(page_ids) == len(set(page_ids))
    assert set(dropdown_ids) - {"notification-dropdown-list"} and not set(page_ids) & (
        set(dropdown_ids) - {"notification-dropdown-list"}  # the list itself is what the dropdown replaces
    )
    for n in notes:
        assert f'hx-target="#notification-{n.public_id}"' in page and f'id="notification-{n.public_id}"' in page


def test_mark_all_and_bulk_read(member_client, member):
    a, b, _ = (_notify(member, title=t) for t in "abc")
    member_client.post(reverse("notifications:read_many"), {"ids": [str(a.public_id), str(b.public_id)]})
    assert set(Notification.objects.filter(read_at__isnull=True).values_list("title", flat=True)) == {"c"}
    member_client.post(reverse("notifications:read_many"), {"all": "1"})
    assert not Notification.objects.filter(read_at__isnull=True).exists()


def test_bulk_read_with_a_malformed_id_changes_nothing(member_client, member):
    _notify(member)
    response = member_client.post(reverse("notifications:read_many"), {"ids": ["not-a-uuid"]}, follow=True)
    assert "could not be found" in response.content.decode()
    assert Notification.objects.filter(read_at__isnull=True).count() == 1


def test_delete(member_client, member):
    n = _notify(member)
    member_client.post(reverse("notifications:delete", args=[n.public_id]))
    assert not Notification.objects.exists()


def test_list_filters_sort_and_keep_state_in_the_url(member_client, member):
    _notify(member, title="bill", kind="billing")
    alert = _notify(member, title="alert!", kind="alert")
    services.notification_mark_read(user=member.user, organization=member.organization, public_id=alert.public_id)
    html = member_client.get(reverse("notifications:list") + "?kind=billing").content.decode()
    assert "bill" in html and "alert!" not in html
    html = member_client.get(reverse("notifications:list") + "?state=read", HTTP_HX_REQUEST="true").content.decode()
    assert "alert!" in html and "bill" not in html and "<html" not in html
    html = member_client.get(reverse("notifications:list") + "?sort=unread").content.decode()
    assert html.index("bill") < html.index("alert!")
    assert member_client.get(reverse("notifications:list") + "?kind=spam").status_code == 400


def test_list_costs_a_fixed_number_of_queries(member_client, member, django_assert_max_num_queries):
    for i in range(30):
        _notify(member, title=f"n{i}")
    with django_assert_max_num_queries(8):
        response = member_client.get(reverse("notifications:list"))
    assert response.content.decode().count('class="notification ') == 25


def test_preferences_page_saves_and_refuses_switching_alerts_off(member_client, member):
    data = {f"{k}-channel": "in_app" for k in ("ticket", "billing", "compliance", "alert", "info")}
    data |= {f"{k}-digest": "immediate" for k in ("ticket", "billing", "compliance", "alert", "info")}
    response = member_client.post(
        reverse("notifications:preferences"), {**data, "billing-channel": "email", "billing-digest": "daily"}
    )
    assert response.status_code == 302
    assert Preference.objects.get(user=member.user, kind="billing").digest == "daily"
    response = member_client.post(reverse("notifications:preferences"), {**data, "alert-channel": "off"})
    assert response.status_code == 400 and "Alerts can&#x27;t be turned off." in response.content.decode()
    assert Preference.objects.get(user=member.user, kind="alert").channel == "in_app"


def test_mark_all_read_returns_to_the_list_as_filtered_now(member_client, member):
    """The filters change the list by htmx, not the page head holding "Mark all read": the results
    bring that form's ``next`` with them (an input bound to it by ``form=``)."""
    page = member_client.get(reverse("notifications:list")).content.decode()
    assert 'id="read-all-form"' in page
    filtered = member_client.get(reverse("notifications:list") + "?kind=ticket&state=read", HTTP_HX_REQUEST="true")
    html = filtered.content.decode()
    assert (
        '<input type="hidden" name="next" value="/notifications/?kind=ticket&amp;state=read" form="read-all-form">'
        in html
    )
    response = member_client.post(
        reverse("notifications:read_many"), {"all": "1", "next": "/notifications/?kind=ticket&state=read"}
    )
    assert response["Location"] == "/notifications/?kind=ticket&state=read"


def test_poll_answers_304_when_nothing_changed(member_client, member):
    first = member_client.get(reverse("notifications:poll"))
    assert first.status_code == 200 and 'data-live-id="0"' in first.content.decode()
    assert member_client.get(reverse("notifications:poll") + "?last_id=0").status_code == 304
    services.push_inbox_state(user_id=member.user_id, organization=member.organization)
    changed = member_client.get(reverse("notifications:poll") + "?last_id=0")
    assert changed.status_code == 200 and 'id="notification-badge"' in changed.content.decode()


@pytest.mark.parametrize("last_id", ["²", "-1", "1e3", "99999999999999999999999"])
def test_a_poll_with_a_cursor_that_is_no_whole_number_gets_a_fresh_cursor(member_client, member, last_id):
    response = member_client.get(reverse("notifications:poll"), {"last_id": last_id})
    assert response.status_code == 200 and 'data-live-id="0"' in response.content.decode()


def test_a_poll_answer_marks_each_push_with_its_own_id(member_client, member):
    """The browser applies each push once, in order, and drops a badge older than the one it shows
    (static/js/live.js): it needs each push's id, not one id for the whole answer."""
    first = services.push_inbox_state(user_id=member.user_id, organization=member.organization)
    second = services.push_inbox_state(user_id=member.user_id, organization=member.organization)
    body = member_client.get(reverse("notifications:poll") + "?last_id=0").content.decode()
    marks = [int(m) for m in re.findall(r'id="live-cursor" hidden data-live-id="(\d+)"', body)]
    assert marks[:2] == [first.pk, second.pk] and marks[-1] == second.pk
    assert body.index(f'data-live-id="{first.pk}"') < body.index('id="notification-badge"')
    assert body.count('id="notification-badge"') == 2


@pytest.mark.parametrize(("name", "method"), [("notifications:read", "post"), ("notifications:delete", "post")])
def test_another_users_notification_is_404(member_client, organization, name, method):
    colleague = MembershipFactory(organization=organization)
    theirs = _notify(colleague)
    assert_cross_org_404(member_client, method, reverse(name, args=[theirs.public_id]), unchanged=[theirs])


@pytest.mark.parametrize(("name", "method"), [("notifications:read", "post"), ("notifications:delete", "post")])
def test_another_organizations_notification_is_404(client, member, name, method):
    other = MembershipFactory(user=member.user)  # same person, other organization
    theirs = _notify(other)
    client.force_login(member.user)
    session = client.session
    session["organization_id"] = member.organization_id
    session.save()
    assert_cross_org_404(client, method, reverse(name, args=[theirs.public_id]), unchanged=[theirs])


@pytest.mark.parametrize(
    ("query", "live_inserts"),
    [
        ("", True),
        ("?state=unread", True),
        ("?sort=unread", True),
        ("?kind=billing", False),  # a new notification may be of another type
        ("?state=read", False),  # a new notification is unread
        ("?sort=oldest", False),  # it belongs at the end
        ("?page=2", False),  # it belongs on page 1
    ],
)
def test_new_notifications_arrive_live_only_where_they_belong(member_client, member, query, live_inserts):
    for i in range(30):
        _notify(member, title=f"note {i}")
    page = member_client.get(reverse("notifications:list") + query).content.decode()
    # Pushes insert new rows at the top of #notification-list; elsewhere the list has another id.
    assert ('id="notification-list"' in page) is live_inserts
    assert 'class="notification-list card"' in page


def test_a_pushed_new_row_comes_with_its_select_box(member):
    import re

    from notifications import rendering

    n = _notify(member, title="Disk almost full")
    html = rendering.inbox_fragments(unread=1, latest=[n], row=n, new=True)
    inserted = html.split('<div hx-swap-oob="afterbegin:#notification-list">', 1)[1]
    assert inserted.index(f'id="select-{n.public_id}"') < inserted.index(f'id="notification-{n.public_id}"')
    assert 'aria-label="Select: Disk almost full"' in inserted and 'form="bulk-form"' in inserted
    # Each inserted item has an id: a row already on the page (a replayed push) is skipped whole,
    # select box included, instead of repeating it.
    items = re.findall(r"<li\b[^>]*>", inserted.split("</div>")[0])
    assert len(items) == 2 and all(re.search(r'\sid="[^"]+"', item) for item in items)


def test_deleting_with_htmx_also_removes_the_rows_bulk_select_checkbox(member_client, member):
    n = _notify(member)
    page = member_client.get(reverse("notifications:list")).content.decode()
    assert f'id="select-row-{n.public_id}"' in page and f'id="notification-{n.public_id}"' in page
    response = member_client.post(reverse("notifications:delete", args=[n.public_id]), HTTP_HX_REQUEST="true")
    # The Delete button swaps its row (#notification-<id>) with the empty main content; the checkbox,
    # a separate <li>, goes with an out-of-band delete.
    assert response.status_code == 200
    assert response.content.decode() == f'<li id="select-row-{n.public_id}" hx-swap-oob="delete"></li>'
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/phish", "//evil.example/phish", "http://evil.example/", "javascript:alert(1)"]
)
def test_an_external_next_falls_back_to_the_notifications_page(member_client, member, next_url):
    n = _notify(member)
    response = member_client.post(reverse("notifications:read", args=[n.public_id]), {"next": next_url})
    assert response.status_code == 302 and response["Location"] == reverse("notifications:list")
    response = member_client.post(reverse("notifications:read_many"), {"all": "1", "next": next_url})
    assert response["Location"] == reverse("notifications:list")


def test_a_next_on_this_site_is_followed(member_client, member):
    n = _notify(member)
    response = member_client.post(reverse("notifications:delete", args=[n.public_id]), {"next": "/tickets/?page=2"})
    assert response.status_code == 302 and response["Location"] == "/tickets/?page=2"


def test_a_secure_request_does_not_follow_a_plain_http_next(member_client, member):
    n = _notify(member)
    response = member_client.post(
        reverse("notifications:read", args=[n.public_id]), {"next": "http://testserver/tickets/"}, secure=True
    )
    assert response["Location"] == reverse("notifications:list")
