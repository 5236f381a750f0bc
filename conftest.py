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
