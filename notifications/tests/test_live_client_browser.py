"""static/js/live.js in Chromium: how it reconnects during an outage, and what a replay may change."""

import pytest
from playwright.sync_api import expect

from notifications import services
from notifications.tests.test_browser import _live_page, _wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_reconnect_attempts_stay_bounded_while_the_server_refuses_sockets(page, live_server, member):
    # The plain live server has no WebSocket endpoint: every handshake fails (1006), as during an
    # outage. Each watchdog, "online" or "visibilitychange" trigger used to start one more retry
    # chain, so attempts kept growing (hundreds over ten minutes); now one chain backs off.
    from conftest import browser_login
    from portal.tests.factories import PASSWORD

    browser_login(page, live_server, member.user.username, PASSWORD)
    page.clock.install()
    page.add_init_script("Math.random = () => 1")  # the longest delay each time: a deterministic count
    attempts = []
    page.on("websocket", lambda ws: attempts.append(ws.url))
    page.goto(f"{live_server.url}/")
    _wait_until(page, lambda: len(attempts) >= 1)

    per_minute = []
    for _minute in range(10):  # ten minutes; the user comes back to the tab twice a minute
        before = len(attempts)
        for step in range(30):
            page.clock.run_for(2_000)
            page.wait_for_timeout(40)  # the handshakes fail in real time
            if step % 15 == 14:
                page.evaluate(
                    "document.dispatchEvent(new Event('visibilitychange'));window.dispatchEvent(new Event('online'))"
                )
        per_minute.append(len(attempts) - before)

    # Backoff 0.5, 1, 2 ... 30 s: ~8 attempts in the first minute, then 2 a minute, plus at most
    # one early attempt per trigger; never more as the outage goes on.
    assert max(per_minute[1:]) <= 5, per_minute
    assert sum(per_minute) <= 50, per_minute
    assert all("last_id=" in url for url in attempts)  # every attempt resumes from the cursor


def test_a_replayed_older_badge_never_overwrites_the_page_after_mark_all_read(browser, live_stack, real_celery, member):
    # The page renders with the newest push as its cursor; the socket replays the seconds before
    # it (commits can land out of order). "Mark read" pushes "2 unread"; "Mark all read" right
    # after reloads the page with 0, and the replayed "2 unread" used to be swapped over it.
    for title in ("First", "Second", "Third"):
        services.notify(organization=member.organization, recipient_ids=[member.user_id], kind="billing", title=title)
    live_stack.settle()
    page = _live_page(browser, live_stack, member.user, "/notifications/")
    expect(page.locator("#notification-badge")).to_contain_text("3 unread notifications")

    page.locator("#notification-list li", has_text="First").get_by_role("button", name="Mark read").click()
    expect(page.locator("#notification-badge")).to_contain_text("2 unread notifications", timeout=10_000)

    page.locator("#notification-menu summary").click()
    page.locator("#notification-menu").get_by_role("button", name="Mark all read").click()
    page.wait_for_load_state()
    expect(page.locator("html")).to_have_attribute("data-live", "open", timeout=10_000)
    live_stack.settle()
    page.wait_for_timeout(1_500)  # the replay has arrived by now
    expect(page.locator("#notification-badge")).to_have_text("No unread notifications")
