"""The portal in a real browser: headless Chromium through Playwright."""

import pytest

from conftest import browser_login
from portal.tests.factories import PASSWORD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_sign_in_and_see_the_dashboard(page, live_server, member):
    browser_login(page, live_server, member.user.username, PASSWORD)
    assert page.get_by_role("heading", level=1).inner_text() == member.organization.name
    assert page.get_by_role("link", name="Members").is_visible()
    # htmx is served from our own static files and loads under the CSP.
    assert page.evaluate("typeof window.htmx") == "object"


def test_keyboard_user_can_skip_to_the_content(page, live_server, member):
    browser_login(page, live_server, member.user.username, PASSWORD)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_failed_sign_in_shows_an_error(page, live_server, member):
    page.goto(f"{live_server.url}/accounts/login/")
    # The username field has focus on arrival, so typing starts right away.
    assert page.evaluate("document.activeElement.name") == "username"
    page.get_by_label("Username").fill(member.user.username)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_text("Please enter a correct username and password").is_visible()


def test_dashboard_works_on_a_phone(phone_page, live_server, member):
    browser_login(phone_page, live_server, member.user.username, PASSWORD)
    assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone_page.get_by_text("Menu").click()
    assert phone_page.get_by_role("link", name="Members").is_visible()
