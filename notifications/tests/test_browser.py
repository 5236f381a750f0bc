"""Two browsers, the real stack: an agent's reply updates the customer's page live."""

import pytest
from django.test import Client
from playwright.sync_api import expect

from tickets.tests.factories import make_agent, make_ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.worker]


@pytest.fixture
def real_celery():
    from portal.celery import app

    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = True


def _signed_in_context(browser, live_stack, user):
    client = Client()
    client.force_login(user)
    context = browser.new_context()
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_stack.url}])
    return context


def test_agent_reply_updates_the_customers_badge_and_ticket_page_without_reload(browser, live_stack, real_celery, member):
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

    expect(customer.locator("#ticket-comments")).to_contain_text("We found the cause and deployed a fix.", timeout=15_000)
    expect(customer.locator("#ticket-status")).to_contain_text("Resolved")
    expect(customer.locator("#notification-badge")).to_contain_text("1")
    assert customer.evaluate("window.__marker") == "no reload"

    # The badge's dropdown lists it, loaded on open.
    customer.locator("#notification-menu summary").click()
    expect(customer.locator("#notification-dropdown-list")).to_contain_text("#1001")
