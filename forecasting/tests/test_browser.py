"""The costs page in headless Chromium: the forecast swaps in, toggles swap the results, it fits a phone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from conftest import browser_login
from forecasting import services
from forecasting.tests.conftest import compute_forecast, load_costs, synthetic_costs
from portal.tests.factories import PASSWORD

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.browser,
]


def forecast_points(page) -> int:
    return page.locator("#forecast-chart circle.chart-point title", has_text=" forecast: ").count()


def test_toggles_swap_the_chart_without_reloading(page, live_server, admin_member, organization, until):
    load_costs(organization, synthetic_costs(until=until))
    compute_forecast(organization)
    browser_login(page, live_server, admin_member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/costs/")
    expect(page.get_by_role("heading", name="Total spend")).to_be_visible()
    assert forecast_points(page) == 12
    page.evaluate("window.__marker = 'same page'")

    page.get_by_role("group", name="Horizon").get_by_role("link", name="24 months").click()
    expect(page.locator("#forecast-chart circle.chart-point title", has_text=" forecast: ")).to_have_count(24)
    expect(page.get_by_role("group", name="Horizon").get_by_role("link", name="24 months")).to_have_attribute(
        "aria-current", "true"
    )
    assert re.search(r"horizon=24", page.url)

    page.get_by_role("group", name="Band").get_by_role("link", name="95 %").click()
    expect(page.locator(".chart-figure figcaption")).to_contain_text("95 % band")
    assert re.search(r"level=95", page.url)

    page.locator(".breakdown-table").get_by_role("link", name="Storage").click()
    expect(page.get_by_role("heading", name="Storage", exact=True)).to_be_visible()
    expect(page.locator("#forecast-chart")).to_be_visible()
    assert page.evaluate("window.__marker") == "same page"  # htmx swaps, no full reload

    page.get_by_text("Show the chart's numbers as a table").click()
    expect(page.locator("#forecast-data-table")).to_contain_text("Nov 2026")
    page.reload()
    expect(page.get_by_role("heading", name="Storage", exact=True)).to_be_visible()  # bookmarkable


def test_a_forecast_computed_after_the_page_loaded_swaps_in(page, live_server, member, organization, until):
    load_costs(organization, synthetic_costs(until=until))
    # The view queues the run; the eager worker computes it after the request's commit, and the page
    # polls its results region until the stored forecast appears.
    browser_login(page, live_server, member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/costs/")
    expect(page.locator("#forecast-chart polyline.forecast-mean")).to_be_visible(timeout=20_000)
    expect(page.locator("#forecast-results")).to_have_attribute("aria-busy", "false")


def test_budget_form_works_with_htmx(page, live_server, admin_member, organization, until):
    load_costs(organization, synthetic_costs(until=until))
    compute_forecast(organization)
    browser_login(page, live_server, admin_member.user.username, PASSWORD)
    page.goto(f"{live_server.url}/costs/")
    form = page.locator(".budget-form")
    form.get_by_label("Applies to").select_option("")
    form.get_by_label("Monthly amount").fill("2500")
    form.get_by_role("button", name="Add budget").click()
    expect(page.locator("#budgets")).to_contain_text("2,500.00 USD a month")
    assert services.selectors.budget_list(organization=organization).count() == 1


def test_costs_pages_fit_a_phone(phone_page, live_server, admin_member, organization, until):
    load_costs(organization, synthetic_costs(until=until))
    compute_forecast(organization)
    browser_login(phone_page, live_server, admin_member.user.username, PASSWORD)
    for path in ("/costs/", "/costs/?service=Compute&horizon=24", "/costs/import/"):
        phone_page.goto(live_server.url + path)
        assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
