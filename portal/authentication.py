"""API credentials: per-user organization tokens for clients, service tokens for the platform."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from portal import services


def _bearer_key(request: Request, kind: str) -> str | None:
    """The key from ``Authorization: Token <key>`` when it is of ``kind``; None otherwise."""
    header = authentication.get_authorization_header(request).decode("latin-1").split()
    if not header or header[0].lower() not in {"token", "bearer"}:
        return None
    if len(header) != 2:
        raise exceptions.AuthenticationFailed("Invalid Authorization header: use 'Token <key>'.")
    # Another kind of token is for another authenticator to judge.
    return header[1] if header[1].startswith(f"{kind}_") else None


class _KeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Token <key>`` for one kind of key; other kinds are left to the next class."""

    keyword = "Token"
    kind = ""
    failure = ""

    def lookup(self, key: str) -> Any:
        raise NotImplementedError

    def identity(self, token: Any) -> Any:
        raise NotImplementedError

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        key = _bearer_key(request, self.kind)
        if key is None:
            return None
        token = self.lookup(key)
        if token is None:
            raise exceptions.AuthenticationFailed(self.failure)
        return self.identity(token), token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class ApiTokenAuthentication(_KeyAuthentication):
    kind = services.API_TOKEN_PREFIX
    failure = "Invalid or revoked API token."

    def lookup(self, key: str) -> Any:
        return services.api_token_authenticate(key=key)

    def identity(self, token: Any) -> Any:
        return token.membership.user


class ServiceTokenAuthentication(_KeyAuthentication):
    kind = services.SERVICE_TOKEN_PREFIX
    failure = "Invalid or revoked service token."

    def lookup(self, key: str) -> Any:
        return services.service_token_authenticate(key=key)

    def identity(self, token: Any) -> Any:
        # Service tokens act for the platform, not for a person.
        return AnonymousUser()


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.authentication.ApiTokenAuthentication"
    name = "ApiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "`Token sbp_…`"}


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.authentication.ServiceTokenAuthentication"
    name = "ServiceToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "`Token sbs_…`"}
