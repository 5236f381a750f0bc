from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect

from portal import tenancy
from portal.logging import request_id_var

logger = logging.getLogger("portal.request")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Tag the request (and every log line it causes) with an id; echo it in ``X-Request-ID``.

    A well-formed id from the reverse proxy is kept so logs join up across hops.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            logger.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "user_id": getattr(getattr(request, "user", None), "pk", None),
                    "organization_id": getattr(getattr(request, "organization", None), "pk", None),
                },
            )
            return response
        finally:
            request_id_var.reset(token)


NUL_MESSAGE = "The URL contains a NUL character (%00), which is never valid."


def is_api_path(path: str) -> bool:
    """Paths whose clients read JSON: their errors are ``{"detail": ...}``, never an HTML page."""
    return path.startswith("/api/")


class RejectNulMiddleware:
    """400 for a NUL byte anywhere in the path or the query string, before any view runs.

    PostgreSQL text can't hold NUL: a filter or an id carrying ``%00`` made the database raise
    (a 500) wherever it reached a query. No URL of ours has a use for it, so it is refused once,
    here, for pages and API alike.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or _query_has_nul(request):
            if is_api_path(request.path):
                return JsonResponse({"detail": NUL_MESSAGE}, status=400)
            return HttpResponseBadRequest(NUL_MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


def _query_has_nul(request: HttpRequest) -> bool:
    raw = request.META.get("QUERY_STRING", "")
    if "%00" not in raw and "\x00" not in raw:
        return False  # the common case, without parsing the query string
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists())


class OrganizationMiddleware:
    """Resolve the signed-in user's active organization once per request.

    Sets ``request.memberships`` (for the switcher), ``request.membership`` and
    ``request.organization`` (None when the user belongs to no organization).
    API token requests are resolved from the token instead, in ``portal.permissions``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.memberships = tenancy.memberships_for_user(request.user)
        membership = tenancy.resolve_membership(request.memberships, request.session.get(tenancy.SESSION_KEY))
        request.membership = membership
        request.organization = membership.organization if membership else None
        return self.get_response(request)


class HtmxSignInMiddleware:
    """Send a signed-out htmx request to the sign-in page as a whole page.

    When a session has ended (it expired, or the user signed out in another tab), ``login_required``
    answers a fragment request with a redirect to the sign-in page. The browser's XHR follows it,
    and htmx swapped the whole sign-in page into the fragment's place (a filter's results, the reply
    form). This middleware answers with ``HX-Redirect`` to the sign-in page instead, coming back to
    the page the user was on, not to the fragment's URL (which may take only POST).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 302 and getattr(request, "htmx", False) and _to_sign_in(response):
            back = request.htmx.current_url_abs_path or "/"
            return HttpResponseClientRedirect(redirect_to_login(back).url)
        return response


def _to_sign_in(response: HttpResponse) -> bool:
    return urlsplit(response["Location"]).path == resolve_url(settings.LOGIN_URL)
