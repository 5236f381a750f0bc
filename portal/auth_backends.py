"""Signing in to pages: Django's ModelBackend, reading the signed-in user with their memberships.

Every page resolves the session's user (``get_user``, one query) and then, in
``portal.middleware.OrganizationMiddleware``, that user's memberships (a second). Here one query
reads the memberships with their user and organization (a hand-written join, ``portal.joins``: the
ORM compiled it anew on every page) and the user comes from it; the list rides
on that user object for ``tenancy.memberships_for_user`` for the rest of the request (a user object
lives one request; nothing is cached across requests). A user without memberships (support staff) is
read as Django reads them. The checks are Django's: ``is_active`` here (``user_can_authenticate``),
the session's password hash in ``django.contrib.auth.get_user`` afterwards.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import router

from portal import joins, tenancy


@functools.lru_cache(maxsize=4)
def _memberships_lookup(db: str) -> joins.Join:
    """A user's memberships with the user and the organization, by organization name: one join."""
    from portal.models import Membership, Organization

    return joins.build(
        db,
        ("m", Membership),
        [("u", get_user_model(), "m", "user"), ("o", Organization, "m", "organization")],
        where=[("m", "user", "= %s")],
        order_by=[("o", "name"), ("m", "id")],
    )


class MembershipsModelBackend(ModelBackend):
    def get_user(self, user_id: Any) -> Any:
        from portal.models import Membership

        try:
            user_pk = get_user_model()._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        db = router.db_for_read(Membership)
        memberships = [row[0] for row in _memberships_lookup(db).rows(db, [user_pk])]
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
