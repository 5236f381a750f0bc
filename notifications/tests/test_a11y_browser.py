"""Accessibility and small screens, in Chromium: the bell, the phone layout, form descriptions."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def _signed_in(page, live_server, member, unread=0):
    from conftest import browser_login
    from notifications import services
    from portal.tests.factories import PASSWORD

    for i in range(unread):
        services.notify(
            organization=member.organization, recipient_ids=[member.user_id], kind="billing", title=f"Invoice {i}"
        )
    browser_login(page, live_server, member.user.username, PASSWORD)


def test_escape_closes_the_bell_and_returns_focus_to_it(page, live_server, member):
    _signed_in(page, live_server, member, unread=1)
    summary = page.locator("#notification-menu summary")
    summary.click()
    expect(page.locator("#notification-menu")).to_have_attribute("open", "")
    page.locator("#notification-menu").get_by_role("button", name="Mark all read").focus()

    page.keyboard.press("Escape")

    expect(page.locator("#notification-menu")).not_to_have_attribute("open", "")
    expect(summary).to_be_focused()


def test_on_a_phone_the_unread_count_shows_without_opening_the_menu_and_the_panel_fits(page, live_server, member):
    page.set_viewport_size({"width": 375, "height": 667})
    _signed_in(page, live_server, member, unread=12)
    expect(page.locator(".nav-links")).to_be_hidden()  # the menu is closed
    expect(page.locator("#notification-badge")).to_be_visible()
    expect(page.locator("#notification-badge")).to_contain_text("12")
    expect(page.locator("#notification-menu summary")).to_have_accessible_name("Notifications 12 unread notifications")

    page.locator("#notification-menu summary").click()
    panel = page.locator(".bell-panel")
    expect(panel.locator("#notification-dropdown-list li")).to_have_count(10)
    box = panel.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    assert box["y"] >= 0 and box["y"] + box["height"] <= 667, box  # scrolls inside instead
    panel.get_by_role("link", name="All notifications").scroll_into_view_if_needed()
    expect(panel.get_by_role("link", name="All notifications")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_every_aria_describedby_of_a_form_with_errors_points_at_its_text(page, live_server, member):
    _signed_in(page, live_server, member)
    page.goto(f"{live_server.url}/tickets/new/")
    page.evaluate("document.querySelectorAll('[required]').forEach(e => e.removeAttribute('required'))")
    page.locator("#id_subject").fill("x")
    page.locator("main form").get_by_role("button", name="Open ticket").click()
    expect(page.locator(".field-invalid").first).to_be_visible()

    described = page.evaluate(
        """() => [...document.querySelectorAll('[aria-describedby]')].map(e => [
            e.id, e.getAttribute('aria-describedby').split(/\\s+/).map(id => {
                const target = document.getElementById(id);
                return target ? target.textContent.trim() : null;
            })])"""
    )
    by_field = dict(described)
    assert all(None not in texts for texts in by_field.values()), by_field
    assert any("required" in text for text in by_field["id_description"])  # the error is read out
    assert any("Critical" in text for text in by_field["id_priority"])  # and the help text
