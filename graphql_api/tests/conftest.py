import json

import pytest

from portal import testing as portal_testing

URL = "/graphql/"


def post(client, query, variables=None, **extra):
    body = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return client.post(URL, json.dumps(body), content_type="application/json", **extra)


def gql(client, query, variables=None):
    """Run an operation that must succeed; its data."""
    response = post(client, query, variables)
    payload = response.json()
    assert response.status_code == 200 and "errors" not in payload, payload
    return payload["data"]


def token_client(membership):
    return portal_testing.token_client(membership, name="graphql")


@pytest.fixture
def gql_client(member):
    return token_client(member)


@pytest.fixture
def other_client(other_member):
    return token_client(other_member)
