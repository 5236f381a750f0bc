import re

import pytest
from django.core import mail
from django.urls import reverse

from portal.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def _login(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_pages_need_sign_in(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_signed_out_htmx_request_sends_the_whole_page_to_sign_in(client, member):
    """An expired session must not get the sign-in page swapped into a fragment's place."""
    page = "http://testserver/tickets/?status=open"
    response = client.get("/tickets/?status=resolved", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=page)
    assert response.status_code == 200 and not response.content
    assert response["HX-Redirect"] == reverse("login") + "?next=/tickets/%3Fstatus%3Dopen"
    # A fragment that only takes POST (a reply) comes back to the page it was sent from.
    response = client.post(
        "/tickets/8d4d3c53-7f1c-4a47-9b84-6a9d1f5bb3a1/comments/",
        {"body": "hi"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/tickets/8d4d3c53-7f1c-4a47-9b84-6a9d1f5bb3a1/",
    )
    assert response["HX-Redirect"] == reverse("login") + "?next=/tickets/8d4d3c53-7f1c-4a47-9b84-6a9d1f5bb3a1/"
    # Without a page to come back to (another site's URL, or none), home.
    response = client.get("/tickets/", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="https://elsewhere.example/x")
    assert response["HX-Redirect"] == reverse("login") + "?next=/"
    # Whole pages are redirected as before.
    response = client.get("/tickets/?status=open")
    assert response.status_code == 302 and response["Location"] == reverse("login") + "?next=/tickets/%3Fstatus%3Dopen"


def test_sign_in_lands_on_the_dashboard(client, member):
    response = _login(client, member.user.username, PASSWORD)
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    page = client.get(reverse("dashboard"))
    assert member.organization.name in page.content.decode()


def test_wrong_password_shows_a_form_error(client, member):
    response = _login(client, member.user.username, "wrong")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_five_failed_sign_ins_lock_the_account_even_with_the_right_password(client, member):
    for _ in range(5):
        _login(client, member.user.username, "wrong")
    response = _login(client, member.user.username, PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_sign_out_is_post_only(member_client):
    assert member_client.get(reverse("logout")).status_code == 405
    assert member_client.post(reverse("logout")).status_code == 302
    assert member_client.get(reverse("dashboard")).status_code == 302


def test_password_change_keeps_you_signed_in(member_client, member):
    response = member_client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a-much-better-secret-42",
            "new_password2": "a-much-better-secret-42",
        },
    )
    assert response.status_code == 302
    member.user.refresh_from_db()
    assert member.user.check_password("a-much-better-secret-42")
    assert member_client.get(reverse("dashboard")).status_code == 200


def test_password_reset_sends_a_link_that_sets_a_new_password(client, member):
    client.post(reverse("password_reset"), {"email": member.user.email})
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [member.user.email]
    link = re.search(r"http://testserver(/accounts/password/reset/\S+)", mail.outbox[0].body).group(1)
    form_url = client.get(link)["Location"]
    response = client.post(form_url, {"new_password1": "fresh-password-777", "new_password2": "fresh-password-777"})
    assert response.status_code == 302
    member.user.refresh_from_db()
    assert member.user.check_password("fresh-password-777")


def test_password_reset_for_an_unknown_address_reveals_nothing(client):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302 and len(mail.outbox) == 0


def test_staff_agent_without_organization_is_sent_to_admin(client, django_user_model):
    agent = django_user_model.objects.create_user("agent@example.com", password=PASSWORD, is_staff=True)
    client.force_login(agent)
    assert client.get(reverse("dashboard"))["Location"] == reverse("admin:index")


def test_customer_without_organization_sees_how_to_join(client, django_user_model):
    lonely = django_user_model.objects.create_user("lonely@example.com", password=PASSWORD)
    client.force_login(lonely)
    response = client.get(reverse("dashboard"), follow=True)
    assert "not in an organization yet" in response.content.decode()
