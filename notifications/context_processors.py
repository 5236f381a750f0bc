import functools

from django.http import HttpRequest

from notifications import selectors


def inbox(request: HttpRequest) -> dict:
    """The bell's unread count and the live client's resume cursor, for the page shell: one query,
    run when a template first reads either of them, so fragments without the shell (htmx swaps of
    the ticket list, a reply) skip it. Templates call the callables; Python callers call them too."""
    organization = getattr(request, "organization", None)
    if organization is None or not request.user.is_authenticated:
        return {}
    state = functools.cache(lambda: selectors.page_live_state(user_id=request.user.pk, organization=organization))
    return {"unread_notifications": lambda: state()[0], "live_cursor": lambda: state()[1]}
