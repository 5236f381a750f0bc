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
    from portal.testing import token_client

    return token_client(member)


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


@pytest.fixture
def browser():
    # Per test, not per session: Playwright's sync API keeps an event loop running in this
    # thread while it is open, which would break sync-to-async calls in later tests.
    import os

    from playwright.sync_api import sync_playwright

    # Meanwhile test code still uses the ORM from this thread.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


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


# --- The real stack: Daphne (HTTP + WebSocket) and a Celery worker on the test database --------


class LiveStack:
    def __init__(self, url: str, ws_url: str) -> None:
        self.url, self.ws_url = url, ws_url

    @staticmethod
    def settle(timeout: float = 20) -> None:
        """Wait until the worker has dispatched every event and sent every push.

        Before a test's database is flushed: a TRUNCATE racing the worker's last transaction
        deadlocks, and what the flush left would leak into the next test.
        """
        import time

        from notifications.models import Push
        from portal.models import Event

        deadline = time.monotonic() + timeout
        while (
            Event.objects.filter(dispatched_at__isnull=True).exists()
            or Push.objects.filter(sent_at__isnull=True).exists()
        ):
            assert time.monotonic() < deadline, "the live-stack worker did not catch up"
            time.sleep(0.1)
        time.sleep(0.2)  # the task that set the last mark is still returning


@pytest.fixture
def real_celery(live_stack):
    """Tasks go through Redis to the live stack's worker instead of running inline."""
    from portal.celery import app

    app.conf.task_always_eager = False
    try:
        yield
        live_stack.settle()
    finally:
        app.conf.task_always_eager = True


@pytest.fixture(scope="session")
def live_stack(django_db_setup, django_db_blocker, tmp_path_factory):
    """Daphne and a real Celery worker as subprocesses, sharing the test database and Redis.

    Use with ``django_db(transaction=True)`` so what a test writes is visible to them.
    """
    import os
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    from django.conf import settings
    from django.db import connection

    from portal.testing import free_port

    port = free_port()
    db = connection.settings_dict  # already the test database's
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_ALLOW_ASYNC"))}
    env |= {
        "DEBUG": "1",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{connection.settings_dict['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_DB": str(settings.REDIS_DB),
        "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
        "MEDIA_ROOT": str(tmp_path_factory.mktemp("media")),
    }
    root = Path(__file__).resolve().parent
    bin_dir = Path(sys.executable).parent
    logs = tmp_path_factory.mktemp("live-stack")
    processes = [
        subprocess.Popen(
            [str(bin_dir / "daphne"), "-b", "127.0.0.1", "-p", str(port), "portal.asgi:application"],
            cwd=root,
            env=env,
            stdout=open(logs / "daphne.log", "w"),
            stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [
                str(bin_dir / "celery"),
                "-A",
                "portal",
                "worker",
                "--pool",
                "threads",
                "-c",
                "4",
                "-l",
                "warning",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=root,
            env=env,
            stdout=open(logs / "worker.log", "w"),
            stderr=subprocess.STDOUT,
        ),
    ]
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                for p in processes:
                    p.kill()
                raise RuntimeError(f"live stack did not start; logs in {logs}") from None
            time.sleep(0.2)
    yield LiveStack(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws/")
    for p in processes:
        p.terminate()
    for p in processes:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
