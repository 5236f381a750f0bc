"""POST /graphql/: the REST API's authentication, organization and throttle, then the schema.

The endpoint is a DRF view so a GraphQL request passes exactly the checks a REST request
passes: ``ApiTokenAuthentication`` or the session (with CSRF), ``IsOrganizationMember`` (the
organization from the token's membership or the session), and ``OrganizationRateThrottle``
(the same cache key and rate: one budget per organization for REST and GraphQL together).
Their failures are answered in GraphQL's shape with a code. GET serves GraphiQL to browsers.
"""

from __future__ import annotations

from typing import Any

from csp.constants import SELF, UNSAFE_INLINE
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from strawberry.http.ides import get_graphql_ide_html
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from graphql_api import errors
from graphql_api.context import Context
from graphql_api.schema import HTTP_OPERATIONS, schema

IDE_ASSETS = "https://unpkg.com"
_EXCEPTION_CODES = [
    ((exceptions.NotAuthenticated, exceptions.AuthenticationFailed), errors.UNAUTHENTICATED),
    ((exceptions.Throttled,), errors.THROTTLED),
    ((exceptions.PermissionDenied,), errors.FORBIDDEN),
    ((exceptions.ParseError, exceptions.ValidationError, exceptions.UnsupportedMediaType), errors.BAD_REQUEST),
    ((exceptions.MethodNotAllowed,), "METHOD_NOT_ALLOWED"),
]


def error_body(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}


def _bad_request(message: str) -> Response:
    return Response(error_body(message, errors.BAD_REQUEST), status=status.HTTP_400_BAD_REQUEST)


class GraphQLApi(APIView):
    renderer_classes = [JSONRenderer]
    schema = None  # not part of the REST API's OpenAPI document: docs/schema.graphql describes it

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # Answers are always JSON (or the IDE's HTML page, returned as is), whatever Accept says.
        return super().perform_content_negotiation(request, force=True)

    def get_permissions(self) -> list:
        if self.request.method == "GET":
            return [AllowAny()]  # the IDE page; every operation is a POST
        return super().get_permissions()

    def get_throttles(self) -> list:
        return [] if self.request.method == "GET" else super().get_throttles()

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)  # status and headers (WWW-Authenticate, Retry-After)
        code = next((c for kinds, c in _EXCEPTION_CODES if isinstance(exc, kinds)), errors.INTERNAL)
        detail = getattr(exc, "detail", None)
        message = str(detail) if isinstance(detail, str) else "Invalid request."
        extensions: dict[str, Any] = {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            extensions["retryAfter"] = int(exc.wait) + 1
        response.data = error_body(message, code, **extensions)
        return response

    def get(self, request: Request) -> HttpResponse:
        if not (settings.DEBUG or request.user.is_authenticated):
            return redirect_to_login(request.get_full_path())
        response = HttpResponse(get_graphql_ide_html("graphiql"))
        # The IDE is GraphiQL from unpkg (pinned, with subresource integrity) and an inline
        # bootstrap script: only this page allows them.
        response._csp_update = {
            "script-src": [IDE_ASSETS, UNSAFE_INLINE],
            "style-src": [IDE_ASSETS, UNSAFE_INLINE],
            "font-src": [IDE_ASSETS],
            "img-src": [SELF, "data:", IDE_ASSETS],
        }
        return response

    def post(self, request: Request) -> Response:
        body = request.data
        if not isinstance(body, dict):
            return _bad_request('Send one JSON object: {"query": "...", "variables": {...}, "operationName": "..."}.')
        query, variables, operation = body.get("query"), body.get("variables"), body.get("operationName")
        if not isinstance(query, str) or not query.strip():
            return _bad_request("The request has no query.")
        if variables is not None and not isinstance(variables, dict):
            return _bad_request("variables must be a JSON object.")
        if operation is not None and not isinstance(operation, str):
            return _bad_request("operationName must be a string.")
        context = Context(user=request.user, membership=request.membership, request=request)
        try:
            result = schema.execute_sync(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=operation,
                allowed_operation_types=HTTP_OPERATIONS,
            )
        except InvalidOperationTypeError:
            return _bad_request("Subscriptions run over a WebSocket: connect to /graphql/ with graphql-transport-ws.")
        except CannotGetOperationTypeError as exc:
            return _bad_request(exc.as_http_error_reason())
        payload: dict[str, Any] = {}
        if result.errors:
            payload["errors"] = [errors.with_code(e).formatted for e in result.errors]
        # Parse, validation and variable errors happen before execution (no data, no path): 400.
        # Once executed, errors sit beside the data (null up to the nearest nullable field): 200.
        executed = result.data is not None or any(e.path for e in result.errors or ())
        if executed:
            payload["data"] = result.data
        return Response(payload, status=status.HTTP_200_OK if executed else status.HTTP_400_BAD_REQUEST)


__all__ = ["GraphQLApi"]
