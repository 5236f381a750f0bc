"""The OpenAPI document describes what lists and errors really look like."""

import json

import pytest
from django.urls import reverse

from portal.pagination import PagePagination

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get(reverse("api-schema"), {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def _resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _list_operations(schema):
    """Every GET whose 200 answer is (documented as) a list or a page of one."""
    for path, operations in schema["paths"].items():
        operation = operations.get("get")
        if not operation:
            continue
        body = operation["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema")
        if not body:
            continue
        body = _resolve(schema, body)
        if body.get("type") == "array" or "results" in body.get("properties", {}):
            yield path, operation, body


def test_the_ticket_list_is_documented_as_a_page_with_its_errors(schema):
    operation = schema["paths"]["/api/v1/tickets/"]["get"]
    page = _resolve(schema, operation["responses"]["200"]["content"]["application/json"]["schema"])
    assert {"count", "next", "previous", "results"} <= set(page["properties"])
    assert {"page", "page_size"} <= {p["name"] for p in operation["parameters"]}
    assert {"400", "401", "403", "404", "429"} <= set(operation["responses"])
    field_errors = _resolve(schema, operation["responses"]["400"]["content"]["application/json"]["schema"])
    assert field_errors["type"] == "object"
    error = _resolve(schema, operation["responses"]["404"]["content"]["application/json"]["schema"])
    assert error["properties"]["detail"]["type"] == "string"


def test_every_paginated_list_is_documented_as_a_page_not_a_bare_array(schema):
    lists = list(_list_operations(schema))
    bare = [path for path, _, body in lists if body.get("type") == "array"]
    # The lists that really are answered whole: small by nature (catalogs, a ticket's followers).
    assert sorted(bare) == [
        "/api/v1/notifications/preferences/",
        "/api/v1/tickets/{public_id}/followers/",
        "/api/v1/webhooks/event-types/",
    ]
    pages = [(path, operation) for path, operation, body in lists if body.get("type") != "array"]
    assert len(pages) >= 17
    for path, operation in pages:
        assert {"page", "page_size"} <= {p["name"] for p in operation["parameters"]}, path


def test_every_view_that_answers_a_page_declares_its_paginator():
    """paginated_response pages with view.pagination_class, which is also what the schema reads."""
    import inspect

    from django.urls import get_resolver

    def views(patterns):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                yield from views(pattern.url_patterns)
            elif hasattr(pattern.callback, "view_class"):
                yield pattern.callback.view_class

    paging = [
        view
        for view in set(views(get_resolver().url_patterns))
        if getattr(view, "get", None) and "paginated_response(" in inspect.getsource(view.get)
    ]
    assert len(paging) >= 17
    for view in paging:
        assert getattr(view, "pagination_class", None) is PagePagination, view.__name__


def test_operations_without_input_or_ids_document_no_400_or_404(schema):
    responses = schema["paths"]["/api/v1/me/"]["get"]["responses"]
    assert {"401", "403", "429"} <= set(responses)
    assert "400" not in responses and "404" not in responses


def test_an_operations_own_error_answer_is_kept(schema):
    # A rejected import documents its line report as the 400, not the generic field errors.
    body = schema["paths"]["/api/v1/costs/imports/"]["post"]["responses"]["400"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/CostRejectedImportOutput")
