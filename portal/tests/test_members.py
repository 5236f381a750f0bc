import re

import pytest
from django.core import mail
from django.urls import reverse

from portal.models import Event, Invitation, Membership
from portal.tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _invite(client, email="new.person@example.com", role="member"):
    return client.post(reverse("member_invite"), {"email": email, "role": role})


def _link_from_email():
    return re.search(r"http://127.0.0.1:8000(/invitations/\S+/)", mail.outbox[-1].body).group(1)


def test_admin_invites_by_email(admin_client_org, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(admin_client_org)
    assert response.status_code == 302
    assert mail.outbox[-1].to == ["new.person@example.com"]
    assert "Acme Cloud" in mail.outbox[-1].subject
    invitation = Invitation.objects.get()
    assert _link_from_email().split("/")[2] not in invitation.token_hash  # only a hash is stored


def test_invitee_creates_an_account_and_joins(admin_client_org, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(admin_client_org)
    link = _link_from_email()
    admin_client_org.logout()
    response = client.post(link, {"name": "New Person", "password": "a-long-enough-password"})
    assert response.status_code == 302
    membership = Membership.objects.get(user__email="new.person@example.com")
    assert membership.role == "member"
    assert Event.objects.filter(type="member.joined", organization=membership.organization).exists()
    assert client.get(reverse("dashboard")).status_code == 200
    assert client.get(link).status_code == 404  # used up


def test_weak_password_on_acceptance_is_a_form_error_and_creates_nothing(
    admin_client_org, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(admin_client_org)
    link = _link_from_email()
    admin_client_org.logout()
    response = client.post(link, {"name": "New Person", "password": "123"})
    assert response.status_code == 400
    assert "This password is too short" in response.content.decode()
    assert not Membership.objects.filter(user__email="new.person@example.com").exists()


def test_signed_in_user_with_the_invited_email_accepts(
    admin_client_org, client, other_member, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(admin_client_org, email=other_member.user.email, role="admin")
    link = _link_from_email()
    client.force_login(other_member.user)
    assert client.post(link).status_code == 302
    assert Membership.objects.filter(user=other_member.user).count() == 2


def test_signed_in_user_with_another_email_cannot_take_the_invitation(
    admin_client_org, client, other_member, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(admin_client_org)
    client.force_login(other_member.user)
    response = client.post(_link_from_email())
    assert response.status_code == 400
    assert "This invitation is for new.person@example.com" in response.content.decode()


def test_inviting_an_existing_member_is_a_form_error(admin_client_org, member):
    response = _invite(admin_client_org, email=member.user.email)
    assert response.status_code == 400
    assert "already a member" in response.content.decode()
    assert not Invitation.objects.exists()


def test_invalid_email_is_a_form_error(admin_client_org):
    response = _invite(admin_client_org, email="not-an-email")
    assert response.status_code == 400 and "Enter a valid email address" in response.content.decode()


def test_members_cannot_invite_or_remove(member_client, admin_member):
    assert _invite(member_client).status_code == 403
    assert member_client.post(reverse("member_remove", args=[admin_member.pk])).status_code == 403
    assert Membership.objects.filter(pk=admin_member.pk).exists()


def test_admin_removes_a_member(admin_client_org, member):
    response = admin_client_org.post(reverse("member_remove", args=[member.pk]), follow=True)
    assert "Member removed." in response.content.decode()
    assert not Membership.objects.filter(pk=member.pk).exists()


def test_the_last_admin_cannot_be_removed_or_demoted(admin_client_org, admin_member):
    response = admin_client_org.post(reverse("member_remove", args=[admin_member.pk]), follow=True)
    assert "at least one admin" in response.content.decode()
    admin_client_org.post(reverse("member_change_role", args=[admin_member.pk]), {"role": "member"})
    admin_member.refresh_from_db()
    assert admin_member.role == "admin"


def test_members_page_lists_everyone_in_a_fixed_number_of_queries(
    admin_client_org, organization, django_assert_max_num_queries
):
    for _ in range(30):
        MembershipFactory(organization=organization)
    with django_assert_max_num_queries(10):
        response = admin_client_org.get(reverse("members"))
    assert response.content.decode().count('id="member-') == 31


def test_switcher_changes_the_active_organization(client, member, other_organization):
    second = MembershipFactory(organization=other_organization, user=member.user)
    client.force_login(member.user)
    page = client.get(reverse("dashboard")).content.decode()
    assert 'id="org-switcher-select"' in page
    client.post(reverse("organization_switch"), {"organization": second.organization_id})
    assert "Globex Corp" in client.get(reverse("dashboard")).content.decode().split("<h1>")[1][:40]


def test_remove_asks_first_and_is_not_offered_on_your_own_row(admin_client_org, admin_member, member):
    page = admin_client_org.get(reverse("members")).content.decode()
    confirm_url = reverse("member_remove", args=[member.pk])
    assert f'href="{confirm_url}"' in page
    assert f'href="{reverse("member_remove", args=[admin_member.pk])}"' not in page  # not on your own row
    confirm = admin_client_org.get(confirm_url)
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "Remove member" in html and member.user.email in html and f'action="{confirm_url}"' in html
    assert Membership.objects.filter(pk=member.pk).exists()  # asking removed nobody


def test_each_role_save_button_names_its_member(admin_client_org, member):
    page = admin_client_org.get(reverse("members")).content.decode()
    name = member.user.get_full_name() or member.user.email
    assert f'Save<span class="visually-hidden"> role of {name}</span>' in page


def test_the_remove_confirmation_of_another_organizations_member_is_404(admin_client_org, other_member):
    assert admin_client_org.get(reverse("member_remove", args=[other_member.pk])).status_code == 404
