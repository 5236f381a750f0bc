from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class OrganizationRateThrottle(SimpleRateThrottle):
    """One budget per organization, shared by all of its users, tokens and the browser."""

    scope = "organization"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        organization = getattr(request, "organization", None)
        if organization is None:
            return None  # unauthenticated requests fail before they cost anything
        return self.cache_format % {"scope": self.scope, "ident": organization.pk}


class ServiceRateThrottle(SimpleRateThrottle):
    scope = "service"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": getattr(request.auth, "pk", "anon")}
