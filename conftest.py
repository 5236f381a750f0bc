"""Project-wide fixtures: organizations, people in them, signed-in clients and API clients."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _celery_eager():
    """Tasks run inline unless a test starts a real worker (see portal/tests/test_worker.py)."""
    from portal.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = False
    yield


@pytest.fixture(autouse=True, scope="session")
def _fresh_redis():
    """Each test worker owns one Redis database; start it empty (throttles, heartbeats, queues)."""
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    yield


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 at full strength costs ~0.3 s a user; tests check behaviour, not the hash's cost.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    yield
    cache.clear()


@pytest.fixture
def organization(db):
    from portal.tests.factories import OrganizationFactory

    return OrganizationFactory(name="Acme Cloud", slug="acme")


@pytest.fixture
def other_organization(db):
    from portal.tests.factories import OrganizationFactory

    return OrganizationFactory(name="Globex Corp", slug="globex")


@pytest.fixture
def member(organization):
    from portal.tests.factories import MembershipFactory

    return MembershipFactory(organization=organization, role="member")


@pytest.fixture
def admin_member(organization):
    from portal.tests.factories import MembershipFactory

    return MembershipFactory(organization=organization, role="admin")


@pytest.fixture
def other_member(other_organization):
    from portal.tests.factories import MembershipFactory

    return MembershipFactory(organization=other_organization, role="admin")


@pytest.fixture
def member_client(client, member):
    client.force_login(member.user)
    return client


@pytest.fixture
def admin_client_org(client, admin_member):
    """A browser signed in as an organization admin (not Django's superuser ``admin_client``)."""
    client.force_login(admin_member.user)
    return client


@pytest.fixture
def api_client(member):
    from rest_framework.test import APIClient

    from portal import services

    _, key = services.api_token_create(membership=member, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def service_client(db):
    from rest_framework.test import APIClient

    from portal import services

    _, key = services.service_token_create(name="platform-metrics")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


# --- Headless Chromium (Debian's /usr/bin/chromium driven by Playwright) ----------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    import os

    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; test code still uses the ORM.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def phone_page(browser):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def browser_login(page, live_server, username, password):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
