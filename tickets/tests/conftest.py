import pytest

from tickets.tests.factories import make_agent, make_ticket


@pytest.fixture
def agent(db):
    return make_agent(first_name="Sam", last_name="Support")


@pytest.fixture
def agent_client(client, agent):
    """Django's test client signed in as an agent with every admin permission."""
    agent.is_superuser = True
    agent.save(update_fields=["is_superuser"])
    client.force_login(agent)
    return client


@pytest.fixture
def ticket(member):
    return make_ticket(member)


@pytest.fixture
def other_ticket(other_member):
    return make_ticket(other_member, subject="Their secret outage")


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
