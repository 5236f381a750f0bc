"""Two browsers, the real stack: an agent's reply updates the customer's page live."""

import re

import pytest
from django.test import Client
from playwright.sync_api import expect

from tickets import services as ticket_services
from tickets.tests.factories import make_agent, make_ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.worker]


def _signed_in_context(browser, live_stack, user):
    client = Client()
    client.force_login(user)
    context = browser.new_context()
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_stack.url}])
    return context


def _live_page(browser, live_stack, user, path):
    """A signed-in page at ``path`` whose live socket is open."""
    page = _signed_in_context(browser, live_stack, user).new_page()
    page.goto(f"{live_stack.url}{path}")
    expect(page.locator("html")).to_have_attribute("data-live", "open", timeout=10_000)
    return page


def test_agent_reply_updates_the_customers_badge_and_ticket_page_without_reload(
    browser, live_stack, real_celery, member
):
    agent = make_agent(first_name="Sam", is_superuser=True)
    ticket = make_ticket(member, subject="Live update test")

    customer = _signed_in_context(browser, live_stack, member.user).new_page()
    customer.goto(f"{live_stack.url}/tickets/{ticket.public_id}/")
    expect(customer.locator("html")).to_have_attribute("data-live", "open", timeout=10_000)
    customer.evaluate("window.__marker = 'no reload'")
    expect(customer.locator("#notification-badge")).not_to_contain_text("1")

    staff = _signed_in_context(browser, live_stack, agent).new_page()
    staff.goto(f"{live_stack.url}/admin/tickets/ticket/{ticket.pk}/change/")
    staff.locator("#id_comments-0-body").fill("We found the cause and deployed a fix.")
    staff.locator("#id_status").select_option("resolved")
    staff.get_by_role("button", name="Save", exact=True).click()
    expect(staff.locator(".messagelist")).to_contain_text("was changed successfully")

    expect(customer.locator("[id^=ticket-comments-]")).to_contain_text(
        "We found the cause and deployed a fix.", timeout=15_000
    )
    expect(customer.locator("[id^=ticket-status-]")).to_contain_text("Resolved")
    expect(customer.locator("#notification-badge")).to_contain_text("1")
    assert customer.evaluate("window.__marker") == "no reload"

    # The badge's dropdown lists it, loaded on open.
    customer.locator("#notification-menu summary").click()
    expect(customer.locator("#notification-dropdown-list")).to_contain_text("#1001")


def test_a_status_change_reaches_the_customers_ticket_list_without_reload(browser, live_stack, real_celery, member):
    agent = make_agent()
    ticket = make_ticket(member, subject="Row update test")
    live_stack.settle()
    page = _signed_in_context(browser, live_stack, member.user).new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{live_stack.url}/tickets/")
    expect(page.locator("html")).to_have_attribute("data-live", "open", timeout=10_000)
    page.evaluate("window.__marker = 'no reload'")
    row = page.locator(f"#ticket-row-{ticket.public_id}")
    expect(row.locator("td[data-label=Status]")).to_have_text("Open")

    _in_thread(ticket_services.ticket_change_status, ticket=ticket, actor=agent, status="in_progress")

    # The row is a <tr>: pushed inside a <template>, swapped in place (it used to be dropped).
    expect(row.locator("td[data-label=Status]")).to_have_text("In progress", timeout=15_000)
    expect(page.locator("#notification-badge")).to_contain_text("1")
    assert page.evaluate("window.__marker") == "no reload"
    assert row.evaluate("r => r.tagName + ' in ' + r.parentElement.tagName") == "TR in TBODY"
    assert page.locator("table template").count() == 0  # the wrapper is not left in the table
    # The push's fragments for other pages (the ticket's own page, the notifications page) are
    # skipped quietly, not swapped at nothing.
    assert [e for e in errors if "oobErrorNoTarget" in e] == []


def test_another_tickets_update_leaves_the_ticket_on_screen_alone(browser, live_stack, real_celery, member):
    # Every socket of the organization gets every ticket's live update. The thread, status and SLA
    # of a ticket page once had the same ids on every ticket, so a reply on another ticket replaced
    # the conversation on screen.
    agent = make_agent()
    shown = make_ticket(member, subject="The one on screen")
    other = make_ticket(member, subject="Another one")
    live_stack.settle()
    page = _live_page(browser, live_stack, member.user, f"/tickets/{shown.public_id}/")

    _in_thread(ticket_services.comment_create, ticket=other, author=agent, body="Reply on the other ticket")
    _in_thread(ticket_services.ticket_change_status, ticket=other, actor=agent, status="waiting_on_customer")
    expect(page.locator("#notification-badge")).to_contain_text("1", timeout=15_000)  # the pushes arrive
    live_stack.settle()
    page.wait_for_timeout(1_000)

    expect(page.locator(f"#ticket-comments-{shown.public_id}")).to_contain_text("No replies yet")
    expect(page.locator(f"#ticket-status-{shown.public_id}")).to_contain_text("Open")
    # The ticket's own update still lands.
    _in_thread(ticket_services.comment_create, ticket=shown, author=agent, body="Reply on this one")
    expect(page.locator(f"#ticket-comments-{shown.public_id}")).to_contain_text("Reply on this one", timeout=15_000)


def _in_thread(fn, *args, **kwargs):
    """Run app code off the test thread, whose asyncio loop belongs to Playwright."""
    import threading

    errors = []

    def run():
        from django.db import connections

        try:
            fn(*args, **kwargs)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if errors:
        raise errors[0]


def _badge_after_reply(ticket, agent, body):
    _in_thread(ticket_services.comment_create, ticket=ticket, author=agent, body=body)


def _wait_until(page, condition, timeout=10.0):
    """Wait while letting Playwright deliver its events (time.sleep would block them)."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(50)


def _close(code, user_id):
    from portal import realtime

    _in_thread(realtime.sockets_close, groups=[realtime.user_group(user_id)], code=code)


def test_browser_reconnects_after_a_server_close_and_catches_up(browser, live_stack, real_celery, member):
    agent = make_agent()
    ticket = make_ticket(member, subject="Reconnect test")
    live_stack.settle()
    page = _live_page(browser, live_stack, member.user, f"/tickets/{ticket.public_id}/")

    # A server restart (1012) and a normal close (1000): both reconnect and resume.
    for opens, (code, body) in enumerate(((1012, "after restart"), (1000, "after normal close")), start=2):
        _close(code, member.user_id)
        _badge_after_reply(ticket, agent, body)  # happens while the browser is reconnecting
        expect(page.locator("html")).to_have_attribute("data-live-opens", str(opens), timeout=15_000)
        expect(page.locator("[id^=ticket-comments-]")).to_contain_text(body, timeout=15_000)
    expect(page.locator("#notification-badge")).to_contain_text("1")  # one coalesced unread


def test_signed_out_close_code_stops_retrying(browser, live_stack, member):
    from portal import realtime

    ticket = make_ticket(member)
    page = _live_page(browser, live_stack, member.user, f"/tickets/{ticket.public_id}/")
    _close(realtime.CLOSE_SIGNED_OUT, member.user_id)
    expect(page.locator("html")).to_have_attribute("data-live", "closed", timeout=5_000)
    page.wait_for_timeout(2_000)
    assert page.locator("html").get_attribute("data-live") == "closed"


def _polling_page(browser, live_stack, user, path):
    """A signed-in page at ``path`` without WebSocket, on a fake clock, once its first poll found
    nothing new; returns it with the statuses of its polls."""
    context = _signed_in_context(browser, live_stack, user)
    context.add_init_script("delete window.WebSocket")
    page = context.new_page()
    page.clock.install()
    polls = []
    page.on("response", lambda r: polls.append(r.status) if "/notifications/poll/" in r.url else None)
    page.goto(f"{live_stack.url}{path}")
    _wait_until(page, lambda: polls == [304])  # the page came with its cursor: nothing new
    return page, polls


def test_without_websocket_the_page_polls_every_30_seconds(browser, live_stack, real_celery, member):
    agent = make_agent()
    ticket = make_ticket(member, subject="Polling test")
    live_stack.settle()
    page, polls = _polling_page(browser, live_stack, member.user, f"/tickets/{ticket.public_id}/")
    page.clock.run_for(30_000)
    _wait_until(page, lambda: len(polls) == 2)
    assert polls[-1] == 304
    _badge_after_reply(ticket, agent, "seen by polling")
    live_stack.settle()  # the worker has written the pushes
    page.clock.run_for(30_000)
    expect(page.locator("[id^=ticket-comments-]")).to_contain_text("seen by polling", timeout=10_000)
    expect(page.locator("#notification-badge")).to_contain_text("1")


def test_mark_read_on_the_notifications_page_marks_that_row_after_the_bell_was_opened(page, live_server, member):
    from conftest import browser_login
    from notifications import services
    from portal.tests.factories import PASSWORD

    services.notify(
        organization=member.organization, recipient_ids=[member.user_id], kind="billing", title="Invoice ready"
    )
    browser_login(page, live_server, member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/notifications/")
    page.locator("#notification-menu summary").click()  # the dropdown loads the same notification
    expect(page.locator("#notification-dropdown-list")).to_contain_text("Invoice ready")

    row = page.locator("#notification-list li", has_text="Invoice ready")
    row.get_by_role("button", name="Mark read").click()

    expect(row.get_by_role("button", name="Mark read")).to_have_count(0)
    expect(row).not_to_have_class(re.compile("notification-unread"))


def test_opening_an_unread_notification_from_the_bell_marks_it_read(page, live_server, member):
    from conftest import browser_login
    from notifications import services
    from notifications.models import Notification
    from portal.tests.factories import PASSWORD

    services.notify(
        organization=member.organization,
        recipient_ids=[member.user_id],
        kind="billing",
        title="Invoice ready",
        link="/notifications/?kind=billing",
    )
    browser_login(page, live_server, member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/tickets/")
    expect(page.locator("#notification-badge")).to_contain_text("1")
    page.locator("#notification-menu summary").click()
    link = page.locator("#notification-dropdown-list a", has_text="Invoice ready")
    link.focus()
    page.keyboard.press("Enter")  # from the keyboard, as anyone may open it
    page.wait_for_url("**/notifications/?kind=billing")
    _wait_until(page, lambda: Notification.objects.get().read_at is not None)
    page.reload()
    expect(page.locator("#notification-badge")).not_to_contain_text("1")


def test_a_new_notification_appears_on_the_notifications_page_with_its_select_box(
    browser, live_stack, real_celery, member
):
    agent = make_agent()
    ticket = make_ticket(member, subject="Inbox test")
    live_stack.settle()
    page = _live_page(browser, live_stack, member.user, "/notifications/")
    empty = page.get_by_text("No notifications yet")
    expect(empty).to_be_visible()

    _badge_after_reply(ticket, agent, "Looking into it")

    row = page.locator("#notification-list li.notification").first
    expect(row).to_contain_text("Inbox test", timeout=15_000)
    expect(page.get_by_label("Select: Support replied on #1001: Inbox test")).to_be_visible()
    expect(empty).to_be_hidden()  # the empty state gives way to the first row


def _publish_metrics(organization):
    from django.db import transaction
    from django.utils import timezone

    from portal import events

    def publish():
        with transaction.atomic():
            events.publish(
                events.METRICS_UPDATED,
                organization=organization,
                data={"metrics": {"cpu_percent": 42.5}, "resource": "db-1", "observed_at": timezone.now().isoformat()},
            )

    _in_thread(publish)


def test_live_activity_on_the_dashboard_replaces_its_empty_state(browser, live_stack, real_celery, member):
    live_stack.settle()
    page = _live_page(browser, live_stack, member.user, "/")
    empty = page.get_by_text("Nothing has happened here yet")
    expect(empty).to_be_visible()

    _publish_metrics(member.organization)

    item = page.locator("#activity-list li", has_text="Platform metrics for the organization changed.")
    expect(item).to_be_visible(timeout=15_000)
    assert item.locator("time").get_attribute("title")  # the absolute time on hover
    expect(empty).to_be_hidden()


def test_without_websocket_the_ticket_list_row_updates_by_polling(browser, live_stack, real_celery, member):
    agent = make_agent()
    ticket = make_ticket(member, subject="Polled row")
    live_stack.settle()
    page, _ = _polling_page(browser, live_stack, member.user, "/tickets/")
    status = page.locator(f"#ticket-row-{ticket.public_id} td[data-label=Status]")
    expect(status).to_have_text("Open")

    _in_thread(ticket_services.ticket_change_status, ticket=ticket, actor=agent, status="in_progress")
    live_stack.settle()
    page.clock.run_for(30_000)

    expect(status).to_have_text("In progress", timeout=10_000)  # the <template>-wrapped row, via htmx's swap
    assert page.locator("table template").count() == 0
