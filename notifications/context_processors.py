from django.http import HttpRequest

from notifications import selectors


def inbox(request: HttpRequest) -> dict:
    """The bell's unread count on every page (one indexed count)."""
    organization = getattr(request, "organization", None)
    if organization is None or not request.user.is_authenticated:
        return {}
    return {"unread_notifications": selectors.unread_count(user_id=request.user.pk, organization=organization)}
