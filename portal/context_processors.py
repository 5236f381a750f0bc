from django.conf import settings
from django.http import HttpRequest
from django.urls import get_script_prefix, get_urlconf, reverse

# The links of the page shell (_base.html, the bell): argument-less routes, so one ``reverse`` per
# process instead of 16 ``{% url %}`` tags on every page (a third of the shell's render time).
SHELL_ROUTES = {
    "dashboard": "dashboard",
    "tickets": "tickets:list",
    "costs": "forecasting:overview",
    "notifications": "notifications:list",
    "notifications_poll": "notifications:poll",
    "notifications_dropdown": "notifications:dropdown",
    "notifications_read_all": "notifications:read_many",
    "notification_preferences": "notifications:preferences",
    "webhooks": "webhooks:list",
    "members": "members",
    "api_tokens": "api_tokens",
    "admin": "admin:index",
    "password_change": "password_change",
    "logout": "logout",
    "api_docs": "api-docs",
}
_shell_urls: dict[tuple[str, object], dict[str, str]] = {}


def shell_urls() -> dict[str, str]:
    key = (get_script_prefix(), get_urlconf())
    urls = _shell_urls.get(key)
    if urls is None:
        urls = _shell_urls[key] = {name: reverse(route) for name, route in SHELL_ROUTES.items()}
    return urls


def portal(request: HttpRequest) -> dict:
    return {
        "current_organization": getattr(request, "organization", None),
        "current_membership": getattr(request, "membership", None),
        "user_memberships": getattr(request, "memberships", []),
        "portal_base_url": settings.PORTAL_BASE_URL,
        "shell": shell_urls(),
    }
