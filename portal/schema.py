"""OpenAPI postprocessing: the error answers every operation shares, documented once.

``portal.exceptions.api_exception_handler`` gives every error one of two shapes: field errors
(``{"field": ["message"]}``) for a 400 from validation, ``{"detail": "message"}`` for the rest.
Operations don't declare them one by one; this hook adds the ones that can happen to each
operation, without replacing an answer an operation documents itself (an import's 400 report).
"""

from __future__ import annotations

from typing import Any

ERROR = "Error"
FIELD_ERRORS = "FieldErrors"

_SCHEMAS: dict[str, dict[str, Any]] = {
    ERROR: {
        "type": "object",
        "properties": {"detail": {"type": "string", "description": "What went wrong, for a person to read."}},
        "required": ["detail"],
    },
    FIELD_ERRORS: {
        "type": "object",
        "description": (
            "Each invalid field (or query parameter) with its messages; `non_field_errors` for the "
            "request as a whole, or `detail` alone when the body could not be parsed."
        ),
        "additionalProperties": {},
        "example": {"name": ["This field is required."]},
    },
}

_METHODS = {"get", "put", "patch", "post", "delete"}


def _response(description: str, component: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
    }


def _errors_for(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    parameters = {p.get("in") for p in operation.get("parameters", [])}
    names = {p.get("name") for p in operation.get("parameters", [])}
    errors: dict[str, dict[str, Any]] = {}
    if "requestBody" in operation or "query" in parameters:
        errors["400"] = _response(
            "Invalid input: the fields (or query parameters) and what is wrong with each.", FIELD_ERRORS
        )
    if operation.get("security"):
        errors["401"] = _response("No credentials, or a token that is unknown, revoked or expired.", ERROR)
    errors["403"] = _response("Authenticated, but not allowed: no membership, or a role the operation needs.", ERROR)
    if "path" in parameters or "page" in names:
        errors["404"] = _response(
            "No such object in your organization (another organization's id is the same 404), or a page past the end.",
            ERROR,
        )
    errors["429"] = _response("Too many requests: retry after the seconds in the Retry-After header.", ERROR)
    return errors


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOKS entry."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in _SCHEMAS.items():
        schemas.setdefault(name, schema)
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for code, response in _errors_for(operation).items():
                responses.setdefault(code, response)
    return result
