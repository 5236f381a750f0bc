import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404
from django.urls import reverse

from portal import services
from portal.models import ApiToken, Membership
from portal.tenancy import require_scoped, scoped_get_or_404
from portal.testing import assert_cross_org_404

pytestmark = pytest.mark.django_db


def test_for_organization_returns_only_that_organizations_rows(member, other_member):
    rows = Membership.objects.for_organization(member.organization)
    assert list(rows) == [member]


def test_unscoped_queryset_is_refused(member):
    with pytest.raises(ImproperlyConfigured, match="unscoped Membership"):
        require_scoped(Membership.objects.all(), member.organization)


def test_queryset_scoped_to_another_organization_is_refused(member, other_member):
    with pytest.raises(ImproperlyConfigured):
        require_scoped(Membership.objects.for_organization(other_member.organization), member.organization)


def test_scope_survives_further_filtering(member):
    queryset = Membership.objects.for_organization(member.organization).filter(role="member").order_by("pk")
    assert require_scoped(queryset, member.organization) is queryset


def test_for_organization_without_an_organization_fails_closed():
    with pytest.raises(ImproperlyConfigured):
        Membership.objects.for_organization(None)


def test_another_organizations_object_is_the_same_404_as_a_missing_one(member, other_member):
    queryset = ApiToken.objects.for_organization(member.organization)
    other_token, _ = services.api_token_create(membership=other_member, name="theirs")
    with pytest.raises(Http404) as theirs:
        scoped_get_or_404(queryset, organization=member.organization, public_id=other_token.public_id)
    with pytest.raises(Http404) as missing:
        scoped_get_or_404(queryset, organization=member.organization, public_id=uuid.uuid4())
    assert str(theirs.value) == str(missing.value)


def test_malformed_id_is_a_404_not_a_500(member):
    with pytest.raises(Http404):
        scoped_get_or_404(
            ApiToken.objects.for_organization(member.organization), organization=member.organization, public_id="nope"
        )


def test_revoking_another_organizations_token_in_the_page_is_404_and_changes_nothing(member_client, other_member):
    token, _ = services.api_token_create(membership=other_member, name="theirs")
    assert_cross_org_404(member_client, "post", reverse("api_token_revoke", args=[token.public_id]), unchanged=[token])


def test_revoking_another_organizations_token_in_the_api_is_404_and_changes_nothing(api_client, other_member):
    token, _ = services.api_token_create(membership=other_member, name="theirs")
    assert_cross_org_404(api_client, "delete", reverse("api:token", args=[token.public_id]), unchanged=[token])


def test_removing_another_organizations_member_is_404(admin_client_org, other_member):
    assert_cross_org_404(
        admin_client_org, "post", reverse("member_remove", args=[other_member.pk]), unchanged=[other_member]
    )


def test_changing_another_organizations_member_role_is_404(admin_client_org, other_member):
    assert_cross_org_404(
        admin_client_org,
        "post",
        reverse("member_change_role", args=[other_member.pk]),
        {"role": "member"},
        unchanged=[other_member],
    )


def test_revoking_another_organizations_invitation_is_404(admin_client_org, other_member):
    invitation = services.invitation_create(
        organization=other_member.organization, actor_membership=other_member, email="x@example.com", role="member"
    )
    assert_cross_org_404(
        admin_client_org, "post", reverse("invitation_revoke", args=[invitation.pk]), unchanged=[invitation]
    )


def test_switching_to_an_organization_you_do_not_belong_to_is_404(member_client, member, other_member):
    assert_cross_org_404(
        member_client, "post", reverse("organization_switch"), {"organization": other_member.organization_id}
    )
    assert member_client.session.get("organization_id") != other_member.organization_id
