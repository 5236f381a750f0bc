"""One notification's markup (notifications.templatetags.notification_tags): what people see and use."""

import datetime as dt
import re

import pytest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.utils import timezone

from notifications.models import Notification


def _notification(**fields) -> Notification:
    n = Notification(kind="ticket", title="Reply on #1042", body="", link="", updates=1, read_at=None)
    for name, value in fields.items():
        setattr(n, name, value)
    n.updated_at = timezone.now() - dt.timedelta(hours=2, minutes=7)
    return n


def _render(n: Notification, *, request=None, **context) -> str:
    return render_to_string("notifications/item.html", {"n": n, **context}, request)


def test_an_unread_item_says_so_to_screen_readers_and_offers_mark_read_and_delete():
    html = _render(_notification())
    assert 'class="notification notification-ticket notification-unread"' in html
    assert '<span class="visually-hidden">Unread: </span>Reply on #1042</a>' in html
    assert 'Mark read<span class="visually-hidden">: Reply on #1042</span>' in html
    assert 'Delete<span class="visually-hidden">: Reply on #1042</span>' in html
    assert '<time datetime="' in html and "2\xa0hours, 7\xa0minutes ago</time>" in html


def test_a_read_item_has_no_unread_marks_and_no_mark_read_button():
    html = _render(_notification(read_at=timezone.now()))
    assert "notification-unread" not in html and "Unread: " not in html
    assert "Mark read" not in html and "Delete" in html


def test_text_is_escaped_and_a_long_body_is_cut_to_240_characters():
    html = _render(_notification(title='<script>alert("x")</script>', body="é" * 300, link="/tickets/1/?a=1&b=2"))
    assert "<script>" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert 'href="/tickets/1/?a=1&amp;b=2"' in html
    body = re.search(r'<p class="muted small">(.*?)</p>', html).group(1)
    assert len(body) == 240 and body.endswith("…")
    assert f'<p class="muted small">{"x" * 240}</p>' in _render(_notification(body="x" * 240))  # not cut


def test_the_dropdown_item_is_compact_and_a_live_row_swaps_itself():
    compact = _render(_notification(body="Details", kind="alert", updates=3), compact=True)
    assert "Details" not in compact and "<form" not in compact
    assert "⚠" in compact and '<span class="kind-label">Alerts</span>' in compact
    assert " · 3 updates · " in compact
    assert 'hx-swap-oob="true"' in _render(_notification(), oob=True)
    assert "hx-swap-oob" not in _render(_notification())
    assert 'href="/notifications/"' in compact  # no link of its own: the notifications page


def test_the_actions_carry_the_csrf_token_when_rendered_for_a_request():
    request = RequestFactory().get("/notifications/")
    get_token(request)
    html = _render(_notification(), request=request)
    assert html.count('<input type="hidden" name="csrfmiddlewaretoken" value="') == 2
    # Outside a request (a live push from the worker) there is no token to render.
    assert "csrfmiddlewaretoken" not in _render(_notification())


# --- The bell: its accessible name, its live region, the push each whole-state fragment shows ---


def _notify(member, count: int) -> None:
    from notifications import services

    for i in range(count):
        services.notify(
            organization=member.organization, recipient_ids=[member.user_id], kind="billing", title=f"Invoice {i}"
        )


def _spoken(markup: str) -> str:
    """The text a screen reader reads for this markup (aria-hidden parts left out)."""
    markup = re.sub(r'<(\w+)[^>]*aria-hidden="true"[^>]*>.*?</\1>', "", markup, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", markup).split())


@pytest.mark.django_db
def test_the_bells_accessible_name_includes_the_unread_count(member_client, member):
    _notify(member, 3)
    page = member_client.get("/").content.decode()
    summary = re.search(r'<details class="bell" id="notification-menu">\s*<summary([^>]*)>(.*?)</summary>', page, re.S)
    assert summary, "the bell is on the page"
    # An aria-label on the summary would replace its content, the count with it.
    assert "aria-label" not in summary.group(1)
    assert _spoken(summary.group(2)) == "Notifications 3 unread notifications"


@pytest.mark.django_db
def test_the_badge_is_a_persistent_live_region_whose_contents_pushes_replace(member_client, member):
    from notifications import rendering, selectors

    _notify(member, 1)
    page = member_client.get("/").content.decode()
    cursor = selectors.page_live_state(user_id=member.user_id, organization=member.organization)[1]
    badge = re.search(r'<span id="notification-badge"([^>]*)>', page).group(1)
    assert 'aria-live="polite"' in badge and f'data-push-id="{cursor}"' in badge

    pushed = rendering.inbox_fragments(unread=2, latest=[])
    region = re.search(r'<span id="notification-badge"([^>]*)>', pushed).group(1)
    # innerHTML: the region on the page stays (so screen readers announce the change) and
    # keeps its aria-live; the push only brings the new contents.
    assert 'hx-swap-oob="innerHTML"' in region and "aria-live" not in region
    assert _spoken(pushed.split("<ul", 1)[0]) == "2 unread notifications"
    # Whole-state fragments are marked, so the client can drop one older than the page.
    assert 'data-push-id=""' in region
    assert re.search(r'<ul id="notification-dropdown-list"[^>]*data-push-id="', pushed)
    assert re.search(rf'<ul id="notification-dropdown-list"[^>]*data-push-id="{cursor}"', page)
