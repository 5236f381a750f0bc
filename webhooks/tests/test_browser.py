"""The webhook pages in headless Chromium: add an endpoint, send a test event inline, phone width."""

import re

import pytest
from playwright.sync_api import expect

from conftest import browser_login
from portal.tests.factories import PASSWORD
from webhooks.models import Delivery

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.browser,
]


def test_admin_adds_an_endpoint_and_sees_a_test_event_arrive_inline(page, live_server, admin_member, receiver):
    browser_login(page, live_server, admin_member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/webhooks/")
    page.get_by_role("link", name="Add your first endpoint").click()
    page.get_by_label("Endpoint URL").fill(receiver.url("/in"))
    page.get_by_label("Description").fill("Local receiver")
    page.get_by_label(re.compile(r"ticket\.created A support ticket")).check()
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(receiver.url("/in"))

    page.evaluate("window.__marker = 'same page'")
    page.get_by_role("button", name="Reveal secret").click()
    expect(page.get_by_label("Current secret")).to_have_value(re.compile(r"^whsec_"))

    page.get_by_role("button", name="Send test event").click()  # tasks run eagerly in this process
    expect(page.locator("#test-result")).to_contain_text("Delivered: HTTP 200", timeout=15_000)
    assert page.evaluate("window.__marker") == "same page"  # swapped in, no reload
    assert Delivery.objects.get().event_type == "webhook.test"

    page.get_by_role("link", name="See the request and response").click()
    expect(page.get_by_role("heading", name="Attempts")).to_be_visible()


def test_keyboard_reaches_the_event_picker_and_labels_toggle_checkboxes(page, live_server, admin_member):
    browser_login(page, live_server, admin_member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/webhooks/new/")
    page.get_by_label("Endpoint URL").focus()
    for _ in range(2):  # URL → description → "all events"
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "all_events"
    page.keyboard.press("Space")
    expect(page.get_by_label("All events, including types added later")).to_be_checked()


def test_webhook_pages_fit_a_phone(phone_page, live_server, admin_member, make_endpoint, organization, publish):
    endpoint = make_endpoint("/a-rather-long-path/that/keeps/going/and/going/for/a/while?with=query&and=more")
    publish(organization)
    msg_id = Delivery.objects.select_related("message").get().message.msg_id
    browser_login(phone_page, live_server, admin_member.user.username, PASSWORD)
    for path in (
        "/webhooks/",
        "/webhooks/new/",
        f"/webhooks/{endpoint.public_id}/",
        f"/webhooks/{endpoint.public_id}/messages/{msg_id}/",
    ):
        phone_page.goto(live_server.url + path)
        assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
