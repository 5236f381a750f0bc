"""Keyboard focus, error summaries, header menus and phone layouts, in Chromium (the UX audit's findings)."""

import pytest
from playwright.sync_api import expect

from conftest import browser_login
from notifications import services as notification_services
from notifications.models import Notification
from portal.tests.factories import PASSWORD
from tickets.tests.factories import make_ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def _focused_id(page) -> str:
    return page.evaluate("document.activeElement === document.body ? 'BODY' : document.activeElement.id")


def _notify(member, *titles):
    for title in titles:
        notification_services.notify(
            organization=member.organization, recipient_ids=[member.user_id], kind="billing", title=title
        )
    return {n.title: n for n in Notification.objects.filter(recipient=member.user)}


# --- 1. Focus survives htmx swaps ------------------------------------------------------------------


def test_following_a_ticket_by_keyboard_keeps_the_focus_on_the_follow_button(page, live_server, member):
    ticket = make_ticket(member, subject="Focus test")
    browser_login(page, live_server, member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/tickets/{ticket.public_id}/")
    page.wait_for_function("window.htmx && document.readyState === 'complete'")
    button = page.locator("#follow-button")
    initially = button.get_attribute("aria-pressed")
    button.focus()
    label = button.inner_text()
    toggled = "false" if initially == "true" else "true"
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-pressed", toggled)
    expect(button).to_be_focused()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-pressed", initially)
    expect(button).to_have_text(label)
    expect(button).to_be_focused()
    assert _focused_id(page) == "follow-button"


def test_mark_read_and_delete_by_keyboard_move_the_focus_to_the_next_sensible_control(page, live_server, member):
    rows = _notify(member, "Older invoice", "Newer invoice")
    older, newer = rows["Older invoice"], rows["Newer invoice"]
    browser_login(page, live_server, member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/notifications/")

    # Mark read: the button goes away with the swap, the focus goes to the same row's Delete.
    page.locator(f"#notification-read-{newer.public_id}").focus()
    page.keyboard.press("Enter")
    expect(page.locator(f"#notification-read-{newer.public_id}")).to_have_count(0)
    expect(page.locator(f"#notification-delete-{newer.public_id}")).to_be_focused()

    # Delete: the row goes, the focus goes to the next row's first control (its checkbox).
    page.keyboard.press("Enter")
    expect(page.locator(f"#notification-{newer.public_id}")).to_have_count(0)
    expect(page.locator(f"#select-row-{newer.public_id}")).to_have_count(0)  # its checkbox went too
    expect(page.locator(f"#select-{older.public_id}")).to_be_focused()

    # The last row deleted: the list's heading.
    page.locator(f"#notification-delete-{older.public_id}").focus()
    page.keyboard.press("Enter")
    expect(page.locator(f"#notification-{older.public_id}")).to_have_count(0)
    expect(page.locator("#notifications-heading")).to_be_focused()
    assert _focused_id(page) != "BODY"


# --- 2. Form errors are announced and get the focus -----------------------------------------------


def test_an_invalid_ticket_form_shows_an_alert_summary_and_focuses_the_first_invalid_field(page, live_server, member):
    browser_login(page, live_server, member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/tickets/new/")
    page.evaluate("document.querySelectorAll('[required]').forEach(e => e.removeAttribute('required'))")
    page.locator("main form").get_by_role("button", name="Open ticket").click()

    summary = page.get_by_role("alert").filter(has_text="Please correct the following")
    expect(summary).to_be_visible()
    expect(summary.get_by_role("link", name="Subject: This field is required.")).to_have_attribute(
        "href", "#id_subject"
    )
    expect(page.locator("#id_subject")).to_be_focused()
    expect(page.locator("#id_subject")).to_have_attribute("aria-invalid", "true")


def test_an_empty_htmx_reply_shows_an_alert_summary_and_focuses_the_reply_field(page, live_server, member):
    ticket = make_ticket(member, subject="Reply errors")
    browser_login(page, live_server, member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/tickets/{ticket.public_id}/")
    page.evaluate("window.__marker = 'same page'")
    page.locator("#comment-submit").click()

    form = page.locator("#comment-form")
    expect(form.get_by_role("alert")).to_contain_text("Your reply: This field is required.")
    expect(form.locator("textarea[name=body]")).to_be_focused()
    assert page.evaluate("window.__marker") == "same page"  # swapped with htmx, not reloaded


# --- 3. The notifications pages at 375 px ---------------------------------------------------------

_TOO_WIDE = """() => [...document.querySelectorAll('body *')]
  .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && (r.right > innerWidth + 0.5 || r.left < -0.5)
    && !e.closest('.visually-hidden, .chart-scroll, [hidden], details:not([open]) > :not(summary)') && getComputedStyle(e).position !== 'absolute'; })
  .map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().left) + '-' + Math.round(e.getBoundingClientRect().right) + ' ' + (e.textContent || '').trim().slice(0, 30))"""


def test_the_notifications_pages_fit_a_phone(phone_page, live_server, member):
    page = phone_page
    rows = _notify(member, "Total spend reached 80 % of its 2026-11 budget (forecast)")
    [n] = rows.values()
    browser_login(page, live_server, member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/notifications/")

    assert page.evaluate(_TOO_WIDE) == []
    title = page.locator(f"#notification-{n.public_id} .notification-text a")
    assert title.bounding_box()["width"] >= 150
    # The checkbox's label is the tap target: at least 24 by 24 px, and tapping its corner selects.
    target = page.locator(f"label[for=select-{n.public_id}]")
    box = target.bounding_box()
    assert box["width"] >= 24 and box["height"] >= 24, box
    page.mouse.click(box["x"] + 2, box["y"] + 2)
    expect(page.locator(f"#select-{n.public_id}")).to_be_checked()

    page.goto(f"{live_server.url}/notifications/preferences/")
    assert page.evaluate(_TOO_WIDE) == []
    for select in page.locator(".preferences-table select").all():
        box = select.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375, box


# --- 4. Header menus close with Escape, a click outside, or the focus leaving ---------------------


def test_the_account_menu_closes_with_escape_a_click_outside_and_tabbing_away(page, live_server, member):
    browser_login(page, live_server, member.user.username, PASSWORD)
    menu = page.locator("details.account-menu")
    summary = menu.locator("summary")

    summary.click()
    expect(menu).to_have_attribute("open", "")
    menu.get_by_role("link", name="Change password").focus()
    page.keyboard.press("Escape")
    expect(menu).not_to_have_attribute("open", "")
    expect(summary).to_be_focused()

    summary.click()
    expect(menu).to_have_attribute("open", "")
    page.locator("main h1").click()
    expect(menu).not_to_have_attribute("open", "")

    summary.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("open", "")
    for _ in range(3):  # past "Change password" and "Sign out"
        page.keyboard.press("Tab")
    expect(menu).not_to_have_attribute("open", "")


# --- 7. The ticket list's count, its filters on a phone; copying a new API token -------------------


def test_the_ticket_count_is_a_persistent_live_region_updated_by_the_filters(page, live_server, member):
    make_ticket(member, subject="Critical one", priority="critical")
    make_ticket(member, subject="Low one", priority="low")
    browser_login(page, live_server, member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/tickets/")
    count = page.locator("#ticket-result-count")
    expect(count).to_have_text("2 tickets")
    expect(count).to_have_attribute("role", "status")
    page.evaluate("document.getElementById('ticket-result-count').__marker = 'same node'")

    page.get_by_label("Priority").select_option("critical")
    expect(page.locator("#ticket-results")).not_to_contain_text("Low one")
    expect(count).to_have_text("1 ticket matches")
    assert page.evaluate("document.getElementById('ticket-result-count').__marker") == "same node"
    expect(page.locator("#ticket-result-count")).to_have_count(1)


def test_on_a_phone_the_ticket_filters_fold_unless_a_filter_is_active(phone_page, live_server, member):
    page = phone_page
    ticket = make_ticket(member, subject="Phone ticket")
    browser_login(page, live_server, member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/tickets/")
    expect(page.get_by_label("Priority")).to_be_hidden()
    expect(page.locator(f"#ticket-row-{ticket.public_id}")).to_be_in_viewport()
    page.get_by_text("Filters", exact=True).click()
    expect(page.get_by_label("Priority")).to_be_visible()

    page.goto(f"{live_server.url}/tickets/?priority=low")
    expect(page.get_by_label("Priority")).to_be_visible()


def test_a_new_api_token_fits_and_has_a_copy_button(page, live_server, member):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    browser_login(page, live_server, member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/settings/api-tokens/")
    page.get_by_label("Token name").fill("CI")
    page.get_by_role("button", name="Create token").click()
    field = page.locator("#new-key")
    key = field.input_value()
    assert key.startswith("sbp_")
    assert page.evaluate("(e => e.scrollWidth <= e.clientWidth)(document.getElementById('new-key'))")

    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#new-key-copied")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == key
