"""A customer's ticket flow in headless Chromium: create, filter (htmx swap), reply."""

import re

import pytest
from playwright.sync_api import expect

from conftest import browser_login
from portal.tests.factories import PASSWORD
from tickets.tests.factories import make_ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_create_filter_and_reply(page, live_server, member):
    make_ticket(member, subject="Old low priority question", priority="low")
    browser_login(page, live_server, member.user.username, PASSWORD)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tickets").click()
    page.get_by_role("link", name="Open a ticket").click()
    page.get_by_label("Subject").fill("Load balancer returns 502")
    page.get_by_label("Describe the problem").fill("Since the deploy at 10:00 every third request fails.")
    page.get_by_label("Priority").select_option("critical")
    page.get_by_role("button", name="Open ticket").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Load balancer returns 502")
    expect(page.locator("[id^=ticket-sla-]")).to_contain_text("first response due in")

    # Filtering swaps only the results (htmx) and keeps the state in the URL.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tickets").click()
    page.evaluate("window.__marker = 'same page'")
    page.get_by_label("Priority").select_option("critical")
    expect(page.locator("#ticket-results")).not_to_contain_text("Old low priority question")
    expect(page.locator("#ticket-results")).to_contain_text("Load balancer returns 502")
    assert re.search(r"priority=critical", page.url)
    assert page.evaluate("window.__marker") == "same page"  # no full reload

    page.get_by_label("Search").fill("question")
    expect(page.locator("#ticket-results")).to_contain_text("No tickets match these filters")
    page.reload()
    expect(page.get_by_label("Search")).to_have_value("question")  # bookmarkable

    page.goto(f"{live_server.url}/tickets/")
    page.get_by_role("link", name=re.compile("Load balancer returns 502")).click()
    page.get_by_label("Your reply").fill("Here is a trace id: abc-123")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator("[id^=ticket-comments-]")).to_contain_text("Here is a trace id: abc-123")
    expect(page.get_by_label("Your reply")).to_have_value("")
    # A second reply is appended to the thread, once, and the form empties again.
    page.get_by_label("Your reply").fill("It started after the certificate rotation")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator("#comments > li")).to_have_count(2)
    expect(page.locator("#comments > li").last).to_contain_text("It started after the certificate rotation")
    expect(page.get_by_label("Your reply")).to_have_value("")


def test_ticket_pages_fit_a_phone(phone_page, live_server, member):
    ticket = make_ticket(member, subject="A long subject that should wrap nicely on a small phone screen")
    browser_login(phone_page, live_server, member.user.username, PASSWORD)
    for path in ("/tickets/", f"/tickets/{ticket.public_id}/", "/tickets/new/"):
        phone_page.goto(live_server.url + path)
        assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path


def test_a_reply_already_on_the_page_is_not_appended_again(page, live_server, member):
    """The live push of a reply can swap the whole thread in before the reply's own response
    arrives; the response's out-of-band append then skips what is already there."""
    from tickets import services

    ticket = make_ticket(member, subject="Disk latency")
    services.comment_create(ticket=ticket, author=member.user, body="It spikes at noon")
    browser_login(page, live_server, member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/tickets/{ticket.public_id}/")
    expect(page.locator("#comments > li")).to_have_count(1)
    page.evaluate(
        """() => {
            const pushed = document.createElement("li");
            pushed.id = "comment-already-pushed";
            pushed.textContent = "pushed first";
            document.getElementById("comments").appendChild(pushed);
            htmx.swap("#comment-form",
                '<ol hx-swap-oob="beforeend:#comments"><li id="comment-already-pushed">answered</li>'
                + '<li id="comment-new">a new one</li></ol><form id="comment-form"></form>',
                {swapStyle: "outerHTML"});
        }"""
    )
    expect(page.locator("#comments > li")).to_have_count(3)
    expect(page.locator("#comment-already-pushed")).to_have_text("pushed first")
    expect(page.locator("#comment-new")).to_have_text("a new one")


def test_an_empty_reply_shows_its_error_in_place(page, live_server, member):
    ticket = make_ticket(member, subject="Disk latency")
    browser_login(page, live_server, member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/tickets/{ticket.public_id}/")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator("#comment-form")).to_contain_text("This field is required.")
    expect(page.get_by_label("Your reply")).to_be_visible()


def test_a_filter_after_the_session_ended_goes_to_the_sign_in_page(page, live_server, member):
    """Signed out elsewhere: the next htmx swap takes the whole page to sign-in, then back here."""
    make_ticket(member, subject="Load balancer returns 502", priority="critical")
    browser_login(page, live_server, member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/tickets/")
    page.context.clear_cookies()
    page.get_by_label("Priority").select_option("critical")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/tickets/"))
    expect(page.get_by_role("heading", level=1)).to_have_count(1)  # a page of its own, not nested
    page.get_by_label("Username").fill(member.user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/tickets/$"))


def test_a_failed_reply_says_so_and_keeps_the_text(page, live_server, member):
    ticket = make_ticket(member, subject="Disk latency")
    browser_login(page, live_server, member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/tickets/{ticket.public_id}/")
    alert = page.get_by_role("alert")
    expect(page.locator("#request-error")).to_be_hidden()
    page.get_by_label("Your reply").fill("Any news?")

    page.route("**/comments/", lambda route: route.fulfill(status=500, body="Server Error"))
    page.get_by_role("button", name="Send reply").click()
    expect(alert).to_contain_text("Something went wrong on our side")
    expect(page.get_by_label("Your reply")).to_have_value("Any news?")
    page.unroute("**/comments/")

    page.route("**/comments/", lambda route: route.abort())
    page.get_by_role("button", name="Send reply").click()
    expect(alert).to_contain_text("could not be reached")
    page.unroute("**/comments/")

    page.get_by_role("button", name="Send reply").click()
    expect(page.locator("[id^=ticket-comments-]")).to_contain_text("Any news?")
    expect(page.locator("#request-error")).to_be_hidden()


def test_keyboard_focus_stays_on_the_reply_button_after_sending(page, live_server, member):
    ticket = make_ticket(member, subject="Disk latency")
    browser_login(page, live_server, member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/tickets/{ticket.public_id}/")
    page.get_by_label("Your reply").fill("Sent from the keyboard")
    page.get_by_role("button", name="Send reply").focus()
    page.keyboard.press("Enter")
    expect(page.locator("[id^=ticket-comments-]")).to_contain_text("Sent from the keyboard")
    expect(page.get_by_label("Your reply")).to_have_value("")
    expect(page.get_by_role("button", name="Send reply")).to_be_focused()
