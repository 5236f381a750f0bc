from django.http import HttpRequest

from notifications import selectors


def inbox(request: HttpRequest) -> dict:
    """The bell's unread count and the live client's resume cursor, on every page (one query)."""
    organization = getattr(request, "organization", None)
    if organization is None or not request.user.is_authenticated:
        return {}
    unread, cursor = selectors.page_live_state(user_id=request.user.pk, organization=organization)
    return {"unread_notifications": unread, "live_cursor": cursor}
