"""Tenancy that fails closed.

Every tenant model carries ``organization`` and gets a queryset whose ``for_organization()``
marks it as scoped. Views fetch single objects with :func:`scoped_get_or_404`, which refuses a
queryset that was not scoped to the caller's organization, so another organization's id is the
same 404 as a missing one, and a forgotten filter is a loud error in development and tests
rather than a data leak.

The organization is resolved once per request (``OrganizationMiddleware`` for pages and
session API calls, the API token for token clients) and once per socket (consumers).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

if TYPE_CHECKING:
    from portal.models import Membership, Organization

SESSION_KEY = "organization_id"

_Q = TypeVar("_Q", bound="TenantQuerySet")


class TenantQuerySet(models.QuerySet):
    _scoped_organization_id: int | None = None

    def for_organization(self: _Q, organization: Organization | None) -> _Q:
        if organization is None or organization.pk is None:
            raise ImproperlyConfigured("A tenant query needs an organization; none was resolved.")
        queryset = self.filter(organization_id=organization.pk)
        queryset._scoped_organization_id = organization.pk
        return queryset

    def _clone(self):
        clone = super()._clone()
        clone._scoped_organization_id = self._scoped_organization_id
        return clone

    def is_scoped_to(self, organization: Organization) -> bool:
        return self._scoped_organization_id is not None and self._scoped_organization_id == organization.pk


class TenantModel(models.Model):
    """Abstract base for every model that belongs to one organization."""

    organization = models.ForeignKey("portal.Organization", on_delete=models.CASCADE, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


def require_scoped(queryset: models.QuerySet, organization: Organization) -> models.QuerySet:
    """Return ``queryset`` if it is scoped to ``organization``; refuse anything else."""
    if not isinstance(queryset, TenantQuerySet) or not queryset.is_scoped_to(organization):
        raise ImproperlyConfigured(
            f"Refusing an unscoped {queryset.model.__name__} queryset: build it with .for_organization()."
        )
    return queryset


def scoped_get_or_404(queryset: models.QuerySet, *, organization: Organization, **lookup: Any) -> Any:
    """One object of ``organization``; another organization's object is the same 404 as none."""
    scoped = require_scoped(queryset, organization)
    try:
        return scoped.get(**lookup)
    except (queryset.model.DoesNotExist, ValidationError, ValueError, TypeError) as exc:
        # A malformed id (say, not a UUID) is just another missing object.
        raise Http404(f"No {queryset.model._meta.verbose_name} matches the given query.") from exc


# --- Resolution ---------------------------------------------------------------------------


_MEMBERSHIPS = "_portal_memberships"


def remember_memberships(user: Any, memberships: list[Membership]) -> None:
    """Keep ``memberships`` (read with ``user``, see portal.auth_backends) on that user object."""
    setattr(user, _MEMBERSHIPS, memberships)


def memberships_for_user(user: Any) -> list[Membership]:
    from portal.models import Membership

    if not user.is_authenticated:
        return []
    known = getattr(user, _MEMBERSHIPS, None)
    if known is not None:
        return known
    return list(
        Membership.objects.filter(user=user).select_related("organization").order_by("organization__name", "pk")
    )


def resolve_membership(memberships: list[Membership], wanted_organization_id: Any) -> Membership | None:
    """The membership the session asked for, or the first one; None for users with none."""
    for membership in memberships:
        if membership.organization_id == wanted_organization_id:
            return membership
    return memberships[0] if memberships else None


def activate_organization(request: HttpRequest, membership: Membership) -> None:
    request.session[SESSION_KEY] = membership.organization_id
    request.membership = membership
    request.organization = membership.organization


# --- Page view decorators -----------------------------------------------------------------

ViewFunc = Callable[..., HttpResponse]


def organization_required(view: ViewFunc) -> ViewFunc:
    """Signed in and a member of the active organization; staff without one go to admin."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if getattr(request, "organization", None) is None:
            if request.user.is_staff:
                return redirect("admin:index")
            return redirect("no_organization")
        return view(request, *args, **kwargs)

    return wrapper


def organization_admin_required(view: ViewFunc) -> ViewFunc:
    @organization_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.membership.is_admin:
            raise PermissionDenied("Only organization admins can do this.")
        return view(request, *args, **kwargs)

    return wrapper
