"""Signing in to pages: the session's user and their memberships come from one query."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from portal import tenancy
from portal.auth_backends import MembershipsModelBackend
from portal.tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def test_the_user_comes_with_their_memberships_in_one_query(member, django_assert_num_queries):
    zeta = OrganizationFactory(name="Zeta Hosting", slug="zeta")
    MembershipFactory(organization=zeta, user=member.user, role="admin")
    with django_assert_num_queries(1):
        user = MembershipsModelBackend().get_user(str(member.user.pk))  # the session keeps the id as text
        memberships = tenancy.memberships_for_user(user)
    assert user == member.user
    assert [m.organization.name for m in memberships] == ["Acme Cloud", "Zeta Hosting"]
    assert all(m.user is user for m in memberships)


def test_a_user_without_memberships_is_read_as_django_reads_them(db, django_assert_num_queries):
    agent = get_user_model().objects.create_user("agent@example.com", password="x" * 12, is_staff=True)
    with django_assert_num_queries(2):
        user = MembershipsModelBackend().get_user(agent.pk)
        assert tenancy.memberships_for_user(user) == []
    assert user == agent
    assert MembershipsModelBackend().get_user(987654321) is None


def test_a_deactivated_member_is_signed_out_on_their_next_page(member, member_client):
    assert member_client.get(reverse("tickets:list")).status_code == 200
    get_user_model().objects.filter(pk=member.user.pk).update(is_active=False)
    response = member_client.get(reverse("tickets:list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_password_change_elsewhere_signs_this_session_out(member, member_client):
    assert member_client.get(reverse("tickets:list")).status_code == 200
    user = get_user_model().objects.get(pk=member.user.pk)
    user.set_password("a brand new passphrase")
    user.save()
    response = member_client.get(reverse("tickets:list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_page_sees_a_membership_removed_since_the_last_request(member, member_client):
    second = MembershipFactory(organization=OrganizationFactory(name="Beta", slug="beta"), user=member.user)
    assert member_client.get(reverse("tickets:list")).status_code == 200
    member.delete()
    second.delete()
    # Nothing is remembered between requests: with no membership left the page sends them away.
    response = member_client.get(reverse("tickets:list"))
    assert response.status_code == 302 and response["Location"] == reverse("no_organization")


def test_a_malformed_session_user_id_is_nobody(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert MembershipsModelBackend().get_user("not-a-number") is None


def test_the_hand_written_join_loads_what_select_related_loads(member):
    """``portal.joins`` against the ORM: the same objects, every field, linked the same way."""
    from django.db import DEFAULT_DB_ALIAS

    from portal import joins
    from portal.auth_backends import _memberships_lookup
    from portal.models import Membership

    zeta = OrganizationFactory(name="Zeta Hosting", slug="zeta")
    MembershipFactory(organization=zeta, user=member.user, role="admin")
    MembershipFactory(organization=zeta)  # someone else's
    rows = _memberships_lookup(DEFAULT_DB_ALIAS).rows(DEFAULT_DB_ALIAS, [member.user.pk])
    orm = list(
        Membership.objects.filter(user=member.user)
        .select_related("user", "organization")
        .order_by("organization__name", "pk")
    )
    assert [row[0] for row in rows] == orm
    for (membership, user, organization), expected in zip(rows, orm, strict=True):
        assert membership.user is user and membership.organization is organization
        for obj, want in ((membership, expected), (user, expected.user), (organization, expected.organization)):
            fields = [f.attname for f in type(obj)._meta.concrete_fields]
            assert [getattr(obj, f) for f in fields] == [getattr(want, f) for f in fields]
            assert obj._state.adding is False and obj._state.db == DEFAULT_DB_ALIAS
    with pytest.raises(ValueError):
        joins.build(DEFAULT_DB_ALIAS, ("m", Membership), [], where=[("m", "user", "LIKE %s")])
    with pytest.raises(ValueError):
        joins.build(DEFAULT_DB_ALIAS, ("m; DROP", Membership), [], where=[("m; DROP", "user", "= %s")])
