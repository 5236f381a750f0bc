"""What the tickets app keeps in the cache, and when it is dropped.

The list filter's agent choices (``selectors.assignee_choices``): a query that the list page and
every filter swap would otherwise run, about 1 ms each, for a list that changes only when a ticket
gets an assignee nobody else in the organization had. Kept per organization for five minutes and
dropped when an assignee changes, after the change commits; a renamed agent shows their new name
within the five minutes.
"""

from __future__ import annotations

from django.core.cache import cache
from django.db import transaction

ASSIGNEE_CHOICES_SECONDS = 300


def assignee_choices_key(organization_id: int) -> str:
    return f"tickets:assignee-choices:{organization_id}"


def assignee_choices_changed(organization_id: int) -> None:
    """Drop the organization's agent choices once the caller's transaction commits."""
    key = assignee_choices_key(organization_id)
    transaction.on_commit(lambda: cache.delete(key))
