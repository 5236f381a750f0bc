"""Resolve the organization for API requests before any handler runs (fails closed)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from portal.models import ApiToken, ServiceToken


def resolve_api_organization(request: Request) -> bool:
    """Set ``request.membership``/``request.organization`` from the token or the session."""
    if isinstance(request.auth, ApiToken):
        membership = request.auth.membership
    elif request.user and request.user.is_authenticated:
        membership = getattr(request._request, "membership", None)
    else:
        membership = None
    request.membership = membership
    request.organization = membership.organization if membership else None
    return membership is not None


class IsOrganizationMember(BasePermission):
    message = "You are not a member of any organization."

    def has_permission(self, request: Request, view: Any) -> bool:
        return resolve_api_organization(request)


class IsOrganizationAdmin(IsOrganizationMember):
    message = "Only organization admins can do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return super().has_permission(request, view) and request.membership.is_admin


class IsServiceToken(BasePermission):
    message = "A platform service token is required."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, ServiceToken)
