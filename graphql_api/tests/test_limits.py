"""Depth, complexity, aliases and size limits; introspection stays allowed."""

import pytest
from graphql import get_introspection_query

from graphql_api import limits
from graphql_api.tests.conftest import gql, post

pytestmark = pytest.mark.django_db


def test_the_full_introspection_query_is_allowed(gql_client):
    data = gql(gql_client, get_introspection_query(descriptions=True))
    names = {t["name"] for t in data["__schema"]["types"]}
    assert {"Ticket", "Query", "Mutation", "Subscription", "TicketStatus"} <= names


def test_a_too_deep_query_is_refused_before_running(gql_client):
    nested = "name"
    for _ in range(limits.max_depth()):
        nested = f"ofType {{ {nested} }}"
    response = post(gql_client, f'{{ __type(name: "Ticket") {{ {nested} }} }}')
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_DEEP"
    assert error["extensions"]["limit"] == 15 and error["extensions"]["depth"] == 17
    assert "data" not in response.json()


def test_fragments_count_towards_depth_and_cycles_do_not_hang(gql_client):
    response = post(
        gql_client,
        'query { __type(name: "Ticket") { ...A } } fragment A on __Type { ofType { ...A } }',
    )
    assert response.status_code == 400
    codes = {e["extensions"]["code"] for e in response.json()["errors"]}
    assert codes == {"GRAPHQL_VALIDATION_FAILED"}  # "Cannot spread fragment A within itself"


def test_a_too_complex_query_is_refused_before_running(gql_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    fields = " ".join(f"f{i}: subject" for i in range(25)) + " number" * 30  # 25 aliases: under that limit
    query = (
        "{ tickets(first: 100) { edges { node { "
        + fields
        + " comments { body author { name } } requester { id name } } } } }"
    )
    with CaptureQueriesContext(connection) as captured:
        response = post(gql_client, query)
    assert not [q for q in captured if "tickets_" in q["sql"]]  # authenticated, then refused: nothing ran
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["complexity"] > limits.max_complexity()


def test_a_page_size_given_as_a_variable_counts_as_the_largest_page(gql_client):
    fields = "subject " * 60
    query = "query($n: Int) { tickets(first: $n) { edges { node { " + fields + " } } } }"
    response = post(gql_client, query, {"n": 1})
    assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    gql(gql_client, "{ tickets(first: 1) { edges { node { " + fields + " } } } }")  # a literal 1 is cheap


def test_the_same_query_with_a_small_page_is_fine(gql_client):
    fields = " ".join(f"f{i}: subject" for i in range(25))
    gql(gql_client, "{ tickets(first: 10) { edges { node { " + fields + " } } } }")


def test_too_many_aliases_are_refused(gql_client):
    fields = " ".join(f"a{i}: metrics {{ openTickets }}" for i in range(limits.MAX_ALIASES + 1))
    response = post(gql_client, "{ " + fields + " }")
    assert response.status_code == 400
    assert "aliases" in response.json()["errors"][0]["message"].lower()


def test_too_many_tokens_are_refused(gql_client):
    response = post(gql_client, "{ metrics { " + "openTickets " * limits.MAX_TOKENS + "} }")
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
