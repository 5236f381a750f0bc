"""Signing in to pages: Django's ModelBackend, reading the signed-in user with their memberships.

Every page resolves the session's user (``get_user``, one query) and then, in
``portal.middleware.OrganizationMiddleware``, that user's memberships (a second). Here one query
reads the memberships with their user and organization and the user comes from it; the list rides
on that user object for ``tenancy.memberships_for_user`` for the rest of the request (a user object
lives one request; nothing is cached across requests). A user without memberships (support staff) is
read as Django reads them. The checks are Django's: ``is_active`` here (``user_can_authenticate``),
the session's password hash in ``django.contrib.auth.get_user`` afterwards.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend

from portal import tenancy


class MembershipsModelBackend(ModelBackend):
    def get_user(self, user_id: Any) -> Any:
        from portal.models import Membership

        memberships = list(
            Membership.objects.filter(user_id=user_id)
            .select_related("user", "organization")
            .order_by("organization__name", "pk")
        )
        if not memberships:
            user = super().get_user(user_id)
            if user is not None:
                tenancy.remember_memberships(user, [])
            return user
        user = memberships[0].user
        for membership in memberships:
            membership.user = user
        if not self.user_can_authenticate(user):
            return None
        tenancy.remember_memberships(user, memberships)
        return user
