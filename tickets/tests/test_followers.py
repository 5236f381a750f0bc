"""Followers (CC): members of the ticket's organization, added and removed by colleagues."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from portal import services as portal_services
from portal.testing import assert_cross_org_404
from portal.tests.factories import MembershipFactory
from tickets import services
from tickets.models import TicketChange, TicketFollower

pytestmark = pytest.mark.django_db


@pytest.fixture
def colleague(organization):
    return MembershipFactory(organization=organization, user__first_name="Cara", user__last_name="Colleague").user


def _followers(ticket):
    return set(TicketFollower.objects.filter(ticket=ticket).values_list("user_id", flat=True))


def _nothing_written(ticket):
    return _followers(ticket), TicketChange.objects.filter(ticket=ticket).count()


# --- Service -------------------------------------------------------------------------------


def test_a_member_ccs_a_colleague_and_it_is_in_the_audit_trail(ticket, member, colleague):
    services.ticket_follower_add(ticket=ticket, actor=member.user, user_id=colleague.pk)
    assert _followers(ticket) == {member.user.pk, colleague.pk}
    change = TicketChange.objects.get(ticket=ticket, field="follower")
    assert (change.actor, change.old_value, change.new_value) == (member.user, "", "Cara Colleague")
    services.ticket_follower_add(ticket=ticket, actor=member.user, user_id=colleague.pk)  # twice: no-op
    assert TicketChange.objects.filter(ticket=ticket, field="follower").count() == 1


def test_removing_a_follower_is_in_the_audit_trail(ticket, member, colleague):
    services.ticket_follower_add(ticket=ticket, actor=member.user, user_id=colleague.pk)
    services.ticket_follower_remove(ticket=ticket, actor=member.user, user_id=colleague.pk)
    assert _followers(ticket) == {member.user.pk}
    last = TicketChange.objects.filter(ticket=ticket, field="follower").last()
    assert (last.old_value, last.new_value) == ("Cara Colleague", "")


def test_an_agent_can_cc_a_member(ticket, agent, colleague):
    services.ticket_follower_add(ticket=ticket, actor=agent, user_id=colleague.pk)
    assert colleague.pk in _followers(ticket)


def test_only_active_members_of_the_tickets_organization_can_follow(ticket, member, other_member, colleague):
    colleague.is_active = False
    colleague.save(update_fields=["is_active"])
    before = _nothing_written(ticket)
    for user_id in (other_member.user.pk, colleague.pk, 987654321, "²", "1" * 40, "", None, True):
        with pytest.raises(ValidationError) as error:
            services.ticket_follower_add(ticket=ticket, actor=member.user, user_id=user_id)
        assert error.value.message_dict == {"user": ["Choose an active member of this ticket's organization."]}
    assert _nothing_written(ticket) == before


def test_removing_someone_who_does_not_follow_is_an_error(ticket, member, colleague):
    before = _nothing_written(ticket)
    for user_id in (colleague.pk, "²", 10**30):
        with pytest.raises(ValidationError):
            services.ticket_follower_remove(ticket=ticket, actor=member.user, user_id=user_id)
    assert _nothing_written(ticket) == before


# --- Page ----------------------------------------------------------------------------------


def _detail(ticket):
    return reverse("tickets:detail", args=[ticket.public_id])


def test_the_page_lists_followers_and_offers_the_colleagues_who_dont_follow(member_client, ticket, member, colleague):
    body = member_client.get(_detail(ticket)).content.decode()
    section = body[body.index('id="ticket-followers"') : body.index('id="ticket-history"')]
    requester = member.user.get_full_name() or member.user.get_username()
    assert requester in section and f'name="user" value="{member.user.pk}"' in section  # with a remove button
    assert '<label for="id_user">Add a follower</label>' in section
    assert f'<option value="{colleague.pk}">Cara Colleague</option>' in section
    assert f'<option value="{member.user.pk}"' not in section  # already follows


def test_cc_a_colleague_without_javascript(member_client, ticket, member, colleague):
    response = member_client.post(reverse("tickets:follower_add", args=[ticket.public_id]), {"user": colleague.pk})
    assert response.status_code == 302 and response["Location"].endswith("#ticket-followers")
    assert colleague.pk in _followers(ticket)
    page = member_client.get(_detail(ticket)).content.decode()
    assert "added <strong>Cara Colleague</strong> as a follower" in page


def test_cc_and_remove_with_htmx_swap_the_followers_section(member_client, ticket, member, colleague):
    added = member_client.post(
        reverse("tickets:follower_add", args=[ticket.public_id]), {"user": colleague.pk}, HTTP_HX_REQUEST="true"
    )
    body = added.content.decode()
    assert (
        added.status_code == 200 and "<html" not in body and body.lstrip().startswith('<section id="ticket-followers"')
    )
    assert "Remove Cara Colleague from the followers" in body
    removed = member_client.post(
        reverse("tickets:follower_remove", args=[ticket.public_id]), {"user": colleague.pk}, HTTP_HX_REQUEST="true"
    )
    assert removed.status_code == 200 and "Remove Cara Colleague" not in removed.content.decode()
    assert f'<option value="{colleague.pk}">Cara Colleague</option>' in removed.content.decode()
    assert colleague.pk not in _followers(ticket)


@pytest.mark.parametrize("htmx", [True, False])
def test_another_organizations_user_is_a_form_error_and_nothing_is_written(member_client, ticket, other_member, htmx):
    before = _nothing_written(ticket)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    for value in (other_member.user.pk, "²", "1" * 40):
        response = member_client.post(
            reverse("tickets:follower_add", args=[ticket.public_id]), {"user": value}, **headers
        )
        assert response.status_code == 400
        assert "Select a valid choice" in response.content.decode()
    removed = member_client.post(
        reverse("tickets:follower_remove", args=[ticket.public_id]), {"user": other_member.user.pk}, **headers
    )
    assert removed.status_code == 400 and "does not follow the ticket" in removed.content.decode()
    assert _nothing_written(ticket) == before


@pytest.mark.parametrize("name", ["tickets:follower_add", "tickets:follower_remove"])
def test_another_organizations_ticket_is_404(member_client, other_ticket, member, name):
    assert_cross_org_404(
        member_client,
        "post",
        reverse(name, args=[other_ticket.public_id]),
        {"user": member.user.pk},
        unchanged=[other_ticket],
    )


# --- API -----------------------------------------------------------------------------------


def _api_followers(ticket):
    return reverse("tickets-api:followers", args=[ticket.public_id])


def _api_follower(ticket, user_id):
    return reverse("tickets-api:follower", args=[ticket.public_id, user_id])


def test_api_detail_lists_followers(api_client, ticket, member, colleague):
    services.ticket_follower_add(ticket=ticket, actor=member.user, user_id=colleague.pk)
    followers = api_client.get(reverse("tickets-api:detail", args=[ticket.public_id])).json()["followers"]
    assert {f["id"] for f in followers} == {member.user.pk, colleague.pk}
    assert {"id": colleague.pk, "name": "Cara Colleague"} in followers


def test_api_adds_and_removes_a_follower(api_client, ticket, member, colleague):
    added = api_client.post(_api_followers(ticket), {"user": colleague.pk}, format="json")
    assert added.status_code == 201, added.json()
    assert {f["id"] for f in added.json()} == {member.user.pk, colleague.pk}
    assert {f["id"] for f in api_client.get(_api_followers(ticket)).json()} == {member.user.pk, colleague.pk}
    assert api_client.delete(_api_follower(ticket, colleague.pk)).status_code == 204
    assert _followers(ticket) == {member.user.pk}
    assert [c.field for c in TicketChange.objects.filter(ticket=ticket)][-2:] == ["follower", "follower"]


@pytest.mark.parametrize("value", ["other-org", 987654321, "²", 10**30, None, "x"])
def test_api_refuses_anyone_but_a_member_with_a_field_error(api_client, ticket, other_member, value):
    before = _nothing_written(ticket)
    user = other_member.user.pk if value == "other-org" else value
    response = api_client.post(_api_followers(ticket), {"user": user}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["user"]
    assert _nothing_written(ticket) == before


def test_api_removing_a_non_follower_is_a_400(api_client, ticket, other_member):
    before = _nothing_written(ticket)
    for user_id in (other_member.user.pk, 10**30):
        response = api_client.delete(_api_follower(ticket, user_id))
        assert response.status_code == 400 and list(response.json()) == ["user"]
    assert _nothing_written(ticket) == before


def test_an_agent_member_can_cc_through_the_api(organization, ticket, agent, colleague):
    MembershipFactory(organization=organization, user=agent)
    _, key = portal_services.api_token_create(membership=agent.memberships.get(), name="tam")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.post(_api_followers(ticket), {"user": colleague.pk}, format="json").status_code == 201


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_api_another_organizations_ticket_is_404(api_client, other_ticket, other_member, member, method):
    url = _api_follower(other_ticket, other_member.user.pk) if method == "delete" else _api_followers(other_ticket)
    data = {"user": member.user.pk} if method == "post" else None
    assert_cross_org_404(api_client, method, url, data, unchanged=[other_ticket])


def test_schema_documents_the_follower_endpoints(client):
    schema = json.loads(client.get(reverse("api-schema"), HTTP_ACCEPT="application/json").content)
    assert {"/api/v1/tickets/{public_id}/followers/", "/api/v1/tickets/{public_id}/followers/{user_id}/"} <= set(
        schema["paths"]
    )
    detail = schema["components"]["schemas"]["TicketDetailOutput"]
    assert "followers" in detail["properties"]


def test_the_follow_button_and_the_followers_list_never_disagree(member_client, ticket, member, colleague):
    """Following yourself puts you on the list; removing yourself from the list resets the button."""
    MembershipFactory(organization=member.organization)  # someone left to offer, so the add form stays
    me = member.user.get_full_name() or member.user.get_username()
    followed = member_client.post(
        reverse("tickets:follow", args=[ticket.public_id]), {"follow": "1"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert followed.lstrip().startswith('<form id="follow-form"') and "Following · stop" in followed
    section = followed[followed.index('<section id="ticket-followers"') :]
    assert 'hx-swap-oob="true"' in section.split(">", 1)[0] and f"Remove {me} from the followers" in section
    removed = member_client.post(
        reverse("tickets:follower_remove", args=[ticket.public_id]), {"user": member.user_id}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert removed.lstrip().startswith('<section id="ticket-followers"') and f"Remove {me}" not in removed
    button = removed[removed.index('<form id="follow-form"') :]
    assert 'hx-swap-oob="true"' in button.split(">", 1)[0] and "Follow this ticket" in button
