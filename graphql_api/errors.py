"""GraphQL errors with a machine-readable ``extensions.code``, and never a stack trace.

Resolvers call the apps' selectors and services, which raise Django's ``Http404``,
``ValidationError`` and ``PermissionDenied`` (or DRF's equivalents): the ``ErrorCodes``
extension turns each into a GraphQL error with a code after the operation has run, so
resolvers stay as thin as the REST views. Anything else is a bug: it is logged with its
traceback and the client only sees "Internal server error."
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from graphql import GraphQLError, GraphQLSyntaxError
from rest_framework import exceptions as drf
from strawberry.extensions import SchemaExtension

logger = logging.getLogger(__name__)

BAD_USER_INPUT = "BAD_USER_INPUT"
NOT_FOUND = "NOT_FOUND"
FORBIDDEN = "FORBIDDEN"
UNAUTHENTICATED = "UNAUTHENTICATED"
THROTTLED = "THROTTLED"
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
BAD_REQUEST = "BAD_REQUEST"
INTERNAL = "INTERNAL_SERVER_ERROR"


class ApiError(Exception):
    """An expected failure with its code, raised by this app's resolvers."""

    def __init__(self, message: str, *, code: str = BAD_USER_INPUT, **extensions: Any) -> None:
        super().__init__(message)
        self.message, self.code, self.extensions = message, code, extensions


def _flatten(detail: Any) -> Any:
    """DRF error details as plain strings (lists and dicts of them)."""
    if isinstance(detail, dict):
        return {k: _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail)


def _validation(fields: dict[str, list[str]] | None, messages: list[str]) -> tuple[str, dict[str, Any]]:
    if fields:
        # One readable sentence for people, the field map for programs.
        first = "; ".join(f"{name}: {' '.join(map(str, errs))}" for name, errs in fields.items())
        return first, {"code": BAD_USER_INPUT, "fields": fields}
    return " ".join(messages) or "Invalid input.", {"code": BAD_USER_INPUT}


def describe(exc: BaseException) -> tuple[str, dict[str, Any]] | None:
    """(message, extensions) for an expected exception; None for a bug."""
    if isinstance(exc, ApiError):
        return exc.message, {"code": exc.code, **exc.extensions}
    if isinstance(exc, Http404):
        return "Not found.", {"code": NOT_FOUND}
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return _validation({k: list(v) for k, v in exc.message_dict.items()}, [])
        return _validation(None, list(exc.messages))
    if isinstance(exc, drf.ValidationError):
        detail = _flatten(exc.detail)
        if isinstance(detail, dict):
            return _validation({k: v if isinstance(v, list) else [v] for k, v in detail.items()}, [])
        return _validation(None, detail if isinstance(detail, list) else [detail])
    if isinstance(exc, (DjangoPermissionDenied, drf.PermissionDenied)):
        return str(exc) or "You do not have permission to do this.", {"code": FORBIDDEN}
    if isinstance(exc, drf.NotFound):
        return "Not found.", {"code": NOT_FOUND}
    return None


def with_code(error: GraphQLError) -> GraphQLError:
    """The same error with a code; unexpected exceptions masked (and logged here, once)."""
    if error.extensions and "code" in error.extensions:
        return error
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        if isinstance(error, GraphQLSyntaxError) or isinstance(original, GraphQLSyntaxError):
            code = PARSE_FAILED
        elif error.path is None and error.message.startswith("Variable '$"):
            code = BAD_USER_INPUT  # a variable that does not fit its type (an unknown enum value, say)
        elif error.path is None:
            code = VALIDATION_FAILED
        else:
            code = INTERNAL
        message, extensions = error.message, {**(error.extensions or {}), "code": code}
    else:
        described = describe(original)
        if described is None:
            logger.error("GraphQL resolver failed", exc_info=original, extra={"path": error.path})
            message, extensions = "Internal server error.", {"code": INTERNAL}
        else:
            message, extensions = described
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    """Give every error of a result a code; runs for HTTP operations and subscription setup."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [with_code(e) for e in errors]
